"""Fill the catalogue's gaps with a trained run: the values a product lacks, the classes
of unlabelled entities.

A complete ``attribute`` run (``kgf train WS --task attribute --relation season ...``,
:mod:`fusion.tasks.attribute`) ranks every value of each relation it was trained for.
:func:`predict_values` rebuilds the run with its best weights
(:func:`fusion.run_setup.open_run`) and, per relation, runs the model once over the
**whole catalogue graph** (every known edge, the run's valid and test edges included: at
prediction time nothing is held out) **less the asked products' own edges of that
relation**, so a value is never read off the graph it is predicted for (as the inductive
evaluation does). The answer per product is the top-``k`` values with their probabilities
(softmax over the relation's values, the model's training objective)::

    preds = predict_values("fws", relations=["season"])  # every product without one
    preds[0].values   # [(value IRI, probability), ...], best first
    preds[0].known    # the catalogue's own values: empty for a gap, else a check of them

**Calibration.** The softmax of a model trained with cross-entropy is over-confident
(on Fashion, the run's test products predicted with p >= 0.99 were right 97 % of the
time). Each relation's scores are divided by a temperature fitted on the run's
**validation** edges through the same prediction pass (temperature scaling, Guo et al.,
"On Calibration of Modern Neural Networks", ICML 2017): one scalar per relation, so the
ranking is unchanged and ``--min-probability`` means what it says. ``calibrate=False``
keeps the raw softmax (a relation with fewer than :data:`MIN_CALIBRATION` validation edges
keeps it too).

Without ``nodes`` the products asked about are each relation's gaps (its source-type
nodes without an edge of it); with ``nodes`` those products, whether or not the catalogue
has the value (then ``known`` holds it: a disagreement is worth a look).

A **node-classification** run (``kgf train WS --labels train.tsv``, :mod:`fusion.tasks.node`)
predicts the class of each entity of the labelled types that the label files leave out (or
of the ``nodes`` given; ``known`` then holds a labelled node's class): :class:`NodePredictor`,
calibrated on the run's validation labels the same way. The labels come from files, not
from the graph, so the whole graph is used as it is. :func:`open_predictor` opens the right
one for a run (:data:`PREDICTORS`, by task).

Shapes: scores of a relation (or label column) ``[B, C]`` for ``B`` nodes and ``C`` values.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from kg.naming import REV_PREFIX

from .artifacts import ConfigError
from .run_setup import open_run
from .runs import COMPLETE_FILE, find_runs, run_directory, run_info

CHUNK = 4096  # nodes scored at once
MIN_CALIBRATION = 20  # validation edges (labels) needed to fit a temperature
# the grid searched, 0.5..7.4: a validation set the model gets all right drives the
# likelihood's optimum to T -> 0, so the grid never sharpens by more than 2x
TEMPERATURES = torch.exp(torch.arange(-28, 81) * 0.025)  # 1.0 (no change) included


@dataclass
class Prediction:
    """The predicted values of one node's relation (attribute runs) or label column (node
    runs).

    ``values``: ``(value, probability)`` best first (a value node's IRI, or a class
    label); ``known``: the catalogue's values of it for this node (empty: a gap);
    ``run``: the run that predicted."""

    node: str
    relation: str
    values: list[tuple[str, float]] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    run: str = ""



def _without(edges: dict, etype: tuple[str, str, str], heads: torch.Tensor) -> dict:
    """``edges`` less the edges of ``etype`` leaving ``heads`` (and their ``rev_`` inverses)."""
    s, r, d = etype
    out = dict(edges)
    for key, row in ((etype, 0), ((d, REV_PREFIX + r, s), 1)):
        ei = out.get(key)
        if ei is not None and ei.numel():
            drop = torch.zeros(int(ei[row].max()) + 1, dtype=torch.bool, device=ei.device)
            inside = heads[heads < len(drop)].to(ei.device)
            drop[inside] = True
            out[key] = ei[:, ~drop[ei[row].long()]]
    return out


def _known(edges: dict, etype, heads: torch.Tensor) -> dict[int, list[int]]:
    """``{head: [value indices]}`` of ``etype``'s edges leaving ``heads``."""
    ei = edges.get(etype)
    wanted = set(heads.tolist())
    out: dict[int, list[int]] = {}
    if ei is not None:
        for h, v in ei.T.tolist():
            if h in wanted:
                out.setdefault(h, []).append(v)
    return out


def _picked(graph, node_type: str, nodes: Sequence[str]) -> torch.Tensor:
    """Indices within ``node_type`` of the ``nodes`` of that type, sorted, once each."""
    picked = [i for t, i in (graph.node(iri) for iri in nodes) if t == node_type]
    return torch.tensor(sorted(set(picked)), dtype=torch.long)


def _lacking(count: int, have: torch.Tensor) -> torch.Tensor:
    """Indices ``0..count-1`` not in ``have``."""
    mask = torch.zeros(count, dtype=torch.bool)
    if have.numel():
        mask[have.long().cpu()] = True
    return torch.nonzero(~mask).flatten()


def is_node(graph, iri: str) -> bool:
    """Whether ``iri`` is a node of ``graph``."""
    try:
        graph.node(iri)
    except KeyError:
        return False
    return True


def fitted_temperature(scores: torch.Tensor, target: torch.Tensor) -> float:
    """The temperature of :data:`TEMPERATURES` with the lowest negative log-likelihood of
    ``target`` [n] under ``softmax(scores / T)`` (``scores`` [n, C]; temperature scaling,
    Guo et al., 2017)."""
    nll = [F.cross_entropy(scores / t, target).item() for t in TEMPERATURES.tolist()]
    return float(TEMPERATURES[int(torch.tensor(nll).argmin())])


class RunPredictor:
    """A trained run, opened once to predict many times (subclasses: one per task).

    Args:
        workspace: the workspace folder.
        run: a complete run of the subclass's task (default: the newest, :func:`predictable_run`).
        device: ``auto``, ``cpu``, ``cuda``...
        graph, features: the workspace's graph and features when the caller has them.
        calibrate: divide each target's scores by a temperature fitted on the run's
            validation split (module docstring); ``temperatures`` holds them once used.
    """

    task_name = ""

    def __init__(self, workspace, run: str | None = None, device: str = "auto", *,
                 graph=None, features=None, calibrate: bool = True):  # fmt: skip
        self.workspace, self.calibrate = workspace, calibrate
        self.temperatures: dict[str, float] = {}
        self.run = predictable_run(workspace, run, self.task_name).name
        with warnings.catch_warnings():  # the task's notes on its evaluation splits
            warnings.simplefilter("ignore", UserWarning)
            self.setup, self.amp = open_run(workspace, self.run, device, graph=graph,
                                            features=features)  # fmt: skip
        self.task, self.graph = self.setup.task, self.setup.graph
        summary = run_directory(workspace, self.run) / COMPLETE_FILE
        self.metrics = json.loads(summary.read_text(encoding="utf-8")).get("metrics", {}) \
            if summary.is_file() else {}  # fmt: skip
        self.edges = {key: ei.to(self.setup.device) for key, ei in self.setup.edges.items()}

    @property
    def relations(self) -> list[str]:
        """What the run predicts: relations (attribute runs) or label columns (node runs)."""
        raise NotImplementedError

    @property
    def targets(self) -> list[str]:
        """One name per predicted target, in the task's order: a relation (``r[source
        type]`` when a relation leaves several node types) or a label column."""
        return [self._names()[i] for i in self.target_indices()]

    def target_indices(self) -> list[int]:
        """The task's indices of :attr:`targets` (for :meth:`temperature`, :meth:`test_nodes`)."""
        return [i for i in range(len(self._names())) if self._wanted(i, self.relations)]

    def test_accuracy(self, relation: str) -> float | None:
        """The run's accuracy@1 for ``relation`` on its test split (None if not recorded)."""
        return self.metrics.get(f"test/acc.{relation}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.run!r}, relations {self.relations})"

    def predict(self, nodes: Sequence[str] | None = None, relations: Sequence[str] | None = None,
                k: int = 3) -> list[Prediction]:  # fmt: skip
        """Top-``k`` predicted values (module docstring) of ``relations`` (default: every
        one of the run) for ``nodes`` (IRIs; default: the gaps), nodes in the order of the
        graph, relation by relation."""
        if k < 1:
            raise ConfigError(f"k={k}: ask for at least one value")
        wanted = list(relations) if relations else self.relations
        unknown = [r for r in wanted if r not in self.relations]
        if unknown:
            raise ConfigError(
                f"run {self.run!r} predicts {', '.join(self.relations)}, not {', '.join(unknown)}: "
                f"{self._train_hint(unknown[0])}"
            )
        if nodes is not None:
            missing = [iri for iri in nodes if not is_node(self.graph, iri)]
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise ConfigError(f"{missing[0]!r} is not a node of {self.workspace}{more}")
        out: list[Prediction] = []
        with torch.no_grad():
            for i in range(len(self._names())):
                if self._wanted(i, wanted):
                    out += self._predict(i, nodes, k)
        return out

    def _wanted(self, i: int, wanted: list[str]) -> bool:
        return self._names()[i] in wanted

    def temperature(self, i: int) -> float:
        """Target ``i``'s temperature (:func:`fitted_temperature` on the run's validation
        split, predicted as gaps are; 1.0 without calibration or with fewer than
        :data:`MIN_CALIBRATION` validation examples)."""
        name = self._names()[i]
        if name not in self.temperatures:
            found = self._validation(i) if self.calibrate else None
            ok = found is not None and len(found[1]) >= MIN_CALIBRATION
            self.temperatures[name] = fitted_temperature(*found) if ok else 1.0
        return self.temperatures[name]

    def _rows(self, i: int, node_type: str, heads: torch.Tensor, scores: torch.Tensor,
              values: list[str], known: dict[int, list[int]], k: int) -> list[Prediction]:  # fmt: skip
        """Predictions from ``scores`` [B, C] of the nodes ``heads`` [B] (of ``node_type``)."""
        probs = torch.softmax(scores / self.temperature(i), -1)
        top = probs.topk(min(k, probs.shape[1]), dim=1)
        name, out = self._names()[i], []
        for h, p, v in zip(heads.tolist(), top.values.tolist(), top.indices.tolist(), strict=True):
            out.append(Prediction(
                node=self.graph.iri(node_type, h), relation=name,
                values=[(values[j], float(q)) for j, q in zip(v, p, strict=True)],
                known=[values[j] for j in known.get(h, [])], run=self.run,
            ))  # fmt: skip
        return out

    # what a task's predictor provides
    def _names(self) -> list[str]:  # a name per target, in the task's order
        raise NotImplementedError

    def test_nodes(self, i: int) -> list[str]:
        """IRIs of the nodes of the run's test split for target ``i`` (to measure the
        predictions against: ``benchmarks/predict_quality.py``)."""
        raise NotImplementedError

    def _validation(self, i: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        raise NotImplementedError  # (scores [n, C], targets [n]) of the validation split

    def _predict(self, i: int, nodes: Sequence[str] | None, k: int) -> list[Prediction]:
        raise NotImplementedError

    def _train_hint(self, name: str) -> str:
        raise NotImplementedError


class AttributePredictor(RunPredictor):
    """An ``attribute`` run: values of the product -> value relations (module docstring)."""

    task_name = "attribute"

    @property
    def relations(self) -> list[str]:  # those the run was trained on (``task.predict``)
        return list(dict.fromkeys(self.task.etypes[i][1] for i in self.task.active))

    def _names(self) -> list[str]:
        return list(self.task.names)

    def _train_hint(self, name: str) -> str:
        return f"train a run for it (`kgf train {self.workspace} --task attribute --relation {name}`)"

    def _wanted(self, i: int, wanted: list[str]) -> bool:  # every source type of a relation
        return self.task.etypes[i][1] in wanted

    def test_nodes(self, i: int) -> list[str]:
        heads = sorted({int(h) for h in self.task.split.of("test", i)[:, 0].tolist()})
        return [self.graph.iri(self.task.etypes[i][0], h) for h in heads]

    def _pass(self, i: int, heads: torch.Tensor):
        """The model's output over the catalogue less ``heads``' edges of relation ``i``."""
        passed = _without(self.edges, self.task.etypes[i], heads)
        result = self.setup.forward(self.amp, lambda _mp: passed)
        result.embeddings = {t: e.float() for t, e in result.embeddings.items()}
        return result

    def _validation(self, i: int):
        if "valid" not in self.task.splits:
            return None
        pairs = self.task.split.of("valid", i)
        if not len(pairs):
            return None
        scores = self.task.scores(self._pass(i, pairs[:, 0].unique()), i, pairs[:, 0]).float()
        return scores, pairs[:, 1].to(scores.device)

    def _predict(self, i: int, nodes, k: int) -> list[Prediction]:
        """Relation ``i`` for the products named (or those lacking it): one forward pass
        without their edges of it."""
        etype = self.task.etypes[i]
        ei = self.edges.get(etype)
        heads = (_picked(self.graph, etype[0], nodes) if nodes is not None else
                 _lacking(self.graph.num_nodes_dict[etype[0]], ei[0] if ei is not None else torch.zeros(0)))  # fmt: skip
        if not len(heads):
            return []
        known = _known(self.edges, etype, heads)
        result = self._pass(i, heads)
        values = self.graph.node_iris(etype[2])
        out = []
        for chunk in heads.split(CHUNK):
            scores = self.task.scores(result, i, chunk.to(self.setup.device)).float()
            out += self._rows(i, etype[0], chunk, scores, values, known, k)
        return out


class NodePredictor(RunPredictor):
    """A ``node`` (classification) run: the class of each entity of the labelled types
    (module docstring)."""

    task_name = "node"

    @property
    def relations(self) -> list[str]:
        return list(self.task.label_cols)

    def _names(self) -> list[str]:
        return list(self.task.label_cols)

    def _train_hint(self, name: str) -> str:
        return f"train a run on a labels file with a {name!r} column (`kgf train {self.workspace} --labels FILE`)"

    def test_accuracy(self, relation: str) -> float | None:  # one column: the run's "acc"
        one = self.metrics.get("test/acc") if len(self.task.label_cols) == 1 else None
        return self.metrics.get(f"test/acc.{relation}", one)

    def test_nodes(self, i: int) -> list[str]:
        data = self.task.data.get("test")
        if data is None:
            return []
        y = data.targets[self.task.label_cols[i]]
        return [e for row, e in enumerate(data.entities) if y[row] >= 0]

    def _output(self):
        if not hasattr(self, "_out"):
            self._out = self.setup.forward(self.amp)
            self._out.embeddings = {t: e.float() for t, e in self._out.embeddings.items()}
        return self._out

    def _logits(self, i: int, node_type: str, index: torch.Tensor) -> torch.Tensor:
        h = self._output().embeddings[node_type][index.to(self.setup.device)]
        return self.task.heads[f"col{i}"](h).float()

    def _labelled(self, i: int) -> dict[str, dict[int, list[int]]]:
        """``{type: {index: [class id]}}`` of every split's labels of column ``i``."""
        col, out = self.task.label_cols[i], {}
        for data in self.task.data.values():
            y = data.targets[col]
            for t, rows in data.rows.items():
                for row, idx in zip(rows.tolist(), data.index[t].tolist(), strict=True):
                    if y[row] >= 0:
                        out.setdefault(t, {}).setdefault(idx, []).append(int(y[row]))
        return out

    def _validation(self, i: int):
        if "valid" not in self.task.data:
            return None
        data, col = self.task.data["valid"], self.task.label_cols[i]
        scores, targets = [], []
        for t, rows in data.rows.items():
            y = data.targets[col][rows]
            keep = y >= 0
            scores.append(self._logits(i, t, data.index[t][keep]))
            targets.append(y[keep].to(scores[-1].device))
        return (torch.cat(scores), torch.cat(targets)) if scores else None

    def _predict(self, i: int, nodes, k: int) -> list[Prediction]:
        """Column ``i`` for the named nodes of the labelled types (or their unlabelled ones)."""
        labelled = self._labelled(i)
        values = list(self.task.classes[self.task.label_cols[i]])
        out = []
        for t in self.task.data["train"].node_types:
            known = labelled.get(t, {})
            heads = (_picked(self.graph, t, nodes) if nodes is not None else
                     _lacking(self.graph.num_nodes_dict[t], torch.tensor(sorted(known), dtype=torch.long)))  # fmt: skip
            for chunk in heads.split(CHUNK):
                out += self._rows(i, t, chunk, self._logits(i, t, chunk), values, known, k)
        return out


#: the predictor of each task that can fill gaps
PREDICTORS: dict[str, type[RunPredictor]] = {"attribute": AttributePredictor, "node": NodePredictor}


def predictable_run(workspace, run: str | None = None, task: str | None = None):
    """The :class:`fusion.runs.RunInfo` of ``run`` when it is a complete run of ``task``
    (any task of :data:`PREDICTORS` when None), else of the newest such run; a
    :class:`ConfigError` that says how to train one otherwise."""
    tasks = [task] if task else list(PREDICTORS)
    what = " or ".join(f"{t!r}" for t in tasks)
    if run:
        info = run_info(run_directory(workspace, run))  # raises: unknown, incomplete
        if info.task not in tasks:
            raise ConfigError(f"run {run!r} is a {info.task!r} run; predictions need a run of "
                              f"task {what} (`kgf train {workspace} --task attribute --relation "
                              f"REL`, or `--labels FILE` for entity classes)")  # fmt: skip
        return info
    found = [r for r in find_runs(workspace) if r.task in tasks]
    if not found:
        raise ConfigError(
            f"{workspace} has no {what} run to predict with: train one with `kgf train "
            f"{workspace} --task attribute --relation REL` (once per relation to predict) or, "
            f"for entity classes, `kgf train {workspace} --labels FILE`"
        )
    return found[-1]


def open_predictor(workspace, run: str | None = None, device: str = "auto", **options) -> RunPredictor:
    """The predictor of ``run`` (default: the newest attribute or node run), by its task."""
    info = predictable_run(workspace, run)
    return PREDICTORS[info.task](workspace, info.name, device, **options)


def predict_values(workspace, run: str | None = None, *, relations: Sequence[str] | None = None,
                   nodes: Sequence[str] | None = None, k: int = 3, device: str = "auto",
                   graph=None, features=None) -> list[Prediction]:  # fmt: skip
    """:meth:`RunPredictor.predict` of ``run`` (default: the newest attribute or node run)."""
    predictor = open_predictor(workspace, run, device, graph=graph, features=features)
    return predictor.predict(nodes, relations, k)


def gap_triples(graph, predictions: Sequence[Prediction]) -> bytes:
    """N-Triples of the best value of each prediction for a gap (``known`` empty): ``<node>
    <the relation's predicate> <value>``, to load next to the catalogue (``kgf build
    catalogue.nt predicted.nt``). Only attribute runs' predictions are graph edges; a class
    of a node run raises :class:`ConfigError`."""
    import pyoxigraph as ox

    from kg.terms import named_node

    predicates = {r.name: r.predicate for r in graph.relations}
    triples = []
    for p in predictions:
        if p.known:
            continue
        predicate = predicates.get(p.relation.split("[")[0])
        if predicate is None:
            raise ConfigError(f"{p.relation!r} is no relation of the graph (a node run's label "
                              "column?): only attribute predictions can be written as triples")  # fmt: skip
        triples.append(ox.Triple(named_node(p.node), named_node(predicate), named_node(p.values[0][0])))
    return ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b""

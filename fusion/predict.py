"""Fill the catalogue's gaps with a trained run: the attribute values a product lacks.

A complete ``attribute`` run (``kgf train WS --task attribute --relation season ...``,
:mod:`fusion.tasks.attribute`) ranks every value of each relation it was trained for.
:func:`predict_attributes` rebuilds the run with its best weights
(:func:`fusion.run_setup.open_run`) and, per relation, runs the model once over the
**whole catalogue graph** (every known edge, the run's valid and test edges included: at
prediction time nothing is held out) **less the asked products' own edges of that
relation**, so a value is never read off the graph it is predicted for (as the inductive
evaluation does). The answer per product is the top-``k`` values with their probabilities
(softmax over the relation's values, the model's training objective)::

    preds = predict_attributes("fws", relations=["season"])  # every product without one
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

Shapes: scores of a relation ``[B, N_value]`` for ``B`` products.
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
from .runs import COMPLETE_FILE, find_run, run_directory

TASK = "attribute"
CHUNK = 4096  # products scored at once
MIN_CALIBRATION = 20  # validation edges needed to fit a relation's temperature
# the grid searched, 0.5..7.4: a validation set the model gets all right drives the
# likelihood's optimum to T -> 0, so the grid never sharpens by more than 2x
TEMPERATURES = torch.exp(torch.arange(-28, 81) * 0.025)  # 1.0 (no change) included


@dataclass
class AttributePrediction:
    """The predicted values of one product's relation.

    ``values``: ``(value IRI, probability)`` best first; ``known``: the catalogue's values
    of the relation for this product (empty: a gap); ``run``: the run that predicted."""

    node: str
    relation: str
    values: list[tuple[str, float]] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    run: str = ""


def attribute_run(workspace, run: str | None = None) -> str:
    """``run`` when it is a complete attribute-completion run, else the newest such run;
    a :class:`ConfigError` that says how to train one otherwise."""
    info = find_run(workspace, run, task=None if run else TASK)
    if info is None:
        if run:
            run_directory(workspace, run)  # raises: incomplete, or lists the runs
        raise ConfigError(
            f"{workspace} has no attribute-completion run: train one with `kgf train "
            f"{workspace} --task attribute --relation REL` (once per relation to predict)"
        )
    if info.task != TASK:
        raise ConfigError(
            f"run {info.name!r} is a {info.task!r} run; predictions need an attribute-completion "
            f"run (`kgf train {workspace} --task attribute --relation REL`)"
        )
    return info.name


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


def _asked(graph, etype, edges: dict, nodes: Sequence[str] | None) -> torch.Tensor:
    """Indices (of ``etype``'s source type) of the products to predict for: those of
    ``nodes`` of that type, or without ``nodes`` every product lacking the relation."""
    s = etype[0]
    if nodes is not None:
        picked = [i for t, i in (graph.node(iri) for iri in nodes) if t == s]
        return torch.tensor(sorted(set(picked)), dtype=torch.long)
    have = torch.zeros(graph.num_nodes_dict[s], dtype=torch.bool)
    ei = edges.get(etype)
    if ei is not None and ei.numel():
        have[ei[0].long().cpu()] = True
    return torch.nonzero(~have).flatten()


class AttributePredictor:
    """A trained attribute-completion run, opened once to predict many times.

    Args:
        workspace: the workspace folder.
        run: a complete ``attribute`` run (default: the newest, :func:`attribute_run`).
        device: ``auto``, ``cpu``, ``cuda``...
        graph, features: the workspace's graph and features when the caller has them.
        calibrate: divide each relation's scores by a temperature fitted on the run's
            validation edges (module docstring); ``temperatures`` holds them once used.
    """

    def __init__(self, workspace, run: str | None = None, device: str = "auto", *,
                 graph=None, features=None, calibrate: bool = True):  # fmt: skip
        self.workspace, self.calibrate = workspace, calibrate
        self.temperatures: dict[str, float] = {}
        self.run = attribute_run(workspace, run)
        with warnings.catch_warnings():  # the task's notes on its evaluation splits
            warnings.simplefilter("ignore", UserWarning)
            self.setup, self.amp = open_run(workspace, self.run, device, graph=graph,
                                            features=features)  # fmt: skip
        self.task, self.graph = self.setup.task, self.setup.graph
        summary = run_directory(workspace, self.run) / COMPLETE_FILE
        self.metrics = json.loads(summary.read_text(encoding="utf-8")).get("metrics", {}) \
            if summary.is_file() else {}  # fmt: skip
        device = self.setup.device
        self.edges = {key: ei.to(device) for key, ei in self.setup.edges.items()}

    @property
    def relations(self) -> list[str]:
        """The relations the run predicts."""
        return list(self.task.relations)

    def test_accuracy(self, relation: str) -> float | None:
        """The run's accuracy@1 for ``relation`` on its test edges (None if not recorded)."""
        return self.metrics.get(f"test/acc.{relation}")

    def __repr__(self) -> str:
        return f"AttributePredictor({self.run!r}, relations {self.relations})"

    def predict(self, nodes: Sequence[str] | None = None, relations: Sequence[str] | None = None,
                k: int = 3) -> list[AttributePrediction]:  # fmt: skip
        """Top-``k`` predicted values (module docstring) of ``relations`` (default: every
        relation of the run) for ``nodes`` (IRIs; default: each relation's gaps), products
        in the order of the graph, relation by relation."""
        if k < 1:
            raise ConfigError(f"k={k}: ask for at least one value")
        wanted = list(relations) if relations else self.relations
        unknown = [r for r in wanted if r not in self.relations]
        if unknown:
            raise ConfigError(
                f"run {self.run!r} predicts {', '.join(self.relations)}, not {', '.join(unknown)}: "
                f"train a run for it (`kgf train {self.workspace} --task attribute --relation "
                f"{unknown[0]}`)"
            )
        if nodes is not None:
            missing = [iri for iri in nodes if not _in_graph(self.graph, iri)]
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise ConfigError(f"{missing[0]!r} is not a node of {self.workspace}{more}")
        out: list[AttributePrediction] = []
        with torch.no_grad():
            for i, etype in enumerate(self.task.etypes):
                if etype[1] in wanted:
                    out += self._predict_relation(i, _asked(self.graph, etype, self.edges, nodes), k)
        return out

    def _pass(self, i: int, heads: torch.Tensor):
        """The model's output over the catalogue less ``heads``' edges of relation ``i``."""
        passed = _without(self.edges, self.task.etypes[i], heads)
        result = self.setup.forward(self.amp, lambda _mp: passed)
        result.embeddings = {t: e.float() for t, e in result.embeddings.items()}
        return result

    def temperature(self, i: int) -> float:
        """Relation ``i``'s temperature: the one of :data:`TEMPERATURES` with the lowest
        negative log-likelihood of the run's validation edges, their products predicted as
        gaps (1.0 without calibration or with too few validation edges)."""
        name = self.task.names[i]
        if name not in self.temperatures:
            pairs = self.task.split.of("valid", i) if "valid" in self.task.splits else []
            if not self.calibrate or len(pairs) < MIN_CALIBRATION:
                self.temperatures[name] = 1.0
            else:
                scores = self.task.scores(self._pass(i, pairs[:, 0].unique()), i, pairs[:, 0]).float()
                target = pairs[:, 1].to(scores.device)
                nll = [F.cross_entropy(scores / t, target).item() for t in TEMPERATURES.tolist()]
                self.temperatures[name] = float(TEMPERATURES[int(torch.tensor(nll).argmin())])
        return self.temperatures[name]

    def _predict_relation(self, i: int, heads: torch.Tensor, k: int) -> list[AttributePrediction]:
        """Predictions of relation ``i`` (of the task's edge types) for products ``heads``:
        one forward pass without their edges of it."""
        if not len(heads):
            return []
        s, etype, graph = self.setup, self.task.etypes[i], self.graph
        known = _known(self.edges, etype, heads)
        temperature = self.temperature(i)
        result = self._pass(i, heads)
        values = graph.node_iris(etype[2])
        out = []
        for chunk in heads.split(CHUNK):
            scores = self.task.scores(result, i, chunk.to(s.device)).float()
            probs = torch.softmax(scores / temperature, -1)
            top = probs.topk(min(k, probs.shape[1]), dim=1)
            for h, p, v in zip(chunk.tolist(), top.values.tolist(), top.indices.tolist(),
                               strict=True):  # fmt: skip
                out.append(AttributePrediction(
                    node=graph.iri(etype[0], h), relation=self.task.names[i],
                    values=[(values[j], float(q)) for j, q in zip(v, p, strict=True)],
                    known=[values[j] for j in known.get(h, [])], run=self.run,
                ))  # fmt: skip
        return out


def predict_attributes(workspace, run: str | None = None, *, relations: Sequence[str] | None = None,
                       nodes: Sequence[str] | None = None, k: int = 3, device: str = "auto",
                       graph=None, features=None) -> list[AttributePrediction]:  # fmt: skip
    """:meth:`AttributePredictor.predict` of ``run`` (default: the newest attribute run)."""
    predictor = AttributePredictor(workspace, run, device, graph=graph, features=features)
    return predictor.predict(nodes, relations, k)


def _in_graph(graph, iri: str) -> bool:
    try:
        graph.node(iri)
    except KeyError:
        return False
    return True

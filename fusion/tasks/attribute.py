"""Attribute completion: predict the hidden value of a product's attribute relation.

Multimodal knowledge-graph completion on a product graph (the task of OpenBG-IMG and
MKGformer, Chen et al., 2022): for each chosen relation (``season``, ``usage``...) a cut
of the ``product -> value`` edges is hidden (:mod:`.attribute_split`: transductive, or
inductive with withheld products), the model trains on the rest, and each hidden edge's
true value is ranked among every node of the relation's value type (``Season``...).

- **Scores.** ``scorer = "linear"`` (default): a linear head per relation on the product's
  GNN embedding, one output per value node, ``s(p, v) = w_{r,v} . h_p + b_{r,v}``;
  ``"decoder"``: ``s(p, v) = decoder(h_p, r, h_v) + b_{r,v}`` with the value node's own
  embedding (:mod:`.decoders`, DistMult by default; a value's embedding is the mean of
  thousands of products after propagation, close to its siblings', so this alone trains
  poorly on a dense attribute graph); ``"both"``: the sum. A softmax over the relation's
  values, cross-entropy on the training edges (1-N scoring).
- **Training.** Each step draws ``supervision_fraction`` of every relation's training
  edges as its targets and takes them (and their inverses) out of that step's
  message-passing graph (:meth:`AttributeCompletionTask.step_edges`): a target is never
  read off the graph, as at test time, where the hidden edge is absent.
- **Label inputs** (``label_inputs = true``; the label trick of UniMP, Shi et al., 2021,
  "Masked Label Prediction"): every source node also gets the known values of the
  relations as an input modality ``labels`` (multi-hot ``[N_t, sum of the relations' value
  counts]``), read off each forward pass's message-passing edges, so a training step's
  targets (taken out of the graph) are masked in it as at test time, where the hidden edge
  is absent. A 2-layer GNN then sees the sibling products' values (product -> article type ->
  sibling's ``labels``), which without it are 3 hops away (product -> article type -> sibling
  -> value node), and the product's own other attributes as plain inputs.
  ``label_head = true`` also adds a linear term of these values to every relation's scores
  (``s(p, v) += u_{r,v} . labels_p``, the values of the pass that gave the embeddings).
- **No leakage.** Valid / test edges (and their ``rev_`` inverses) are absent from the
  message-passing graph; inductively every edge of a withheld product is, and at
  evaluation the product arrives with its edges except the predicted relation's: one
  forward pass per relation (:meth:`AttributeCompletionTask.evaluate_pass`).
- **Metrics.** Per relation (per edge type ``<r>[<source type>]`` when a relation links
  several node types) ``acc.<r>`` (accuracy@1 = filtered hits@1), ``mrr.<r>``
  (filtered: other known values of the same product are dropped, realistic ranks as
  PyKEEN computes them, :mod:`.ranking`), ``hits@3.<r>``; ``acc`` and ``mrr`` are the
  means over the relations that have evaluation edges (a relation without any is left
  out, with a warning).

Shapes: ``emb[t]`` ``[N_t, d]``; scores of a relation ``[B, N_value_type]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kg.hints import did_you_mean
from kg.naming import REV_PREFIX

from ..model import ConfigError, FusionGNNConfig, FusionOutput
from .attribute_split import SPLITS, arrival_edges, merge_edges, split_attributes, training_edges
from .base import Task, register_task
from .decoders import get_decoder
from .ranking import KnownTriples, filter_scores_, rank_metrics, ranks_from_scores

SCORERS = ("linear", "decoder", "both")
LABEL_MODALITY = "labels"


@dataclass
class AttributeTaskConfig:
    """``relations``: the attribute relations to complete (one edge type each);
    ``test_fraction`` / ``valid_fraction``: of each relation's edges (transductive) or of
    the products (``inductive = true``); ``split_seed`` fixes the cut; ``decoder``: a
    :data:`~fusion.tasks.decoders.DECODERS` name; ``scorer``: ``"linear"``, ``"decoder"``
    or ``"both"`` (module docstring); ``value_bias``: a learned prior per value;
    ``label_inputs``: the known values as an input modality (module docstring);
    ``label_head``: plus a linear term of them in every relation's scores (a wide path next
    to the GNN: ``s(p, v) += u_{r,v} . labels_p``); ``predict``: the relations this run is
    trained and evaluated on (default: all of ``relations``). The split is always made over
    all of ``relations`` (so one run per relation, ``predict = [r]``, meets the same held-out
    edges as one run for all), and only the predicted relations' held-out edges leave the
    graph: the product keeps its other edges, all of them."""

    relations: list[str] = field(default_factory=list)
    test_fraction: float = 0.2
    valid_fraction: float = 0.1
    split_seed: int = 0
    inductive: bool = False
    decoder: str = "distmult"
    scorer: str = "linear"
    value_bias: bool = True
    label_smoothing: float = 0.0
    supervision_fraction: float = 0.3
    label_inputs: bool = False
    label_head: bool = False
    predict: list[str] = field(default_factory=list)

    def __post_init__(self):
        if isinstance(self.relations, str):
            self.relations = [self.relations]
        if isinstance(self.predict, str):
            self.predict = [self.predict]
        unknown = [r for r in self.predict if r not in self.relations]
        if unknown:
            raise ConfigError(f"task.predict names {unknown[0]!r}, which is not among "
                              f"task.relations {self.relations}")  # fmt: skip
        if self.scorer not in SCORERS:
            raise ConfigError(f"task.scorer={self.scorer!r}; expected one of {SCORERS}")
        fractions = (self.test_fraction, self.valid_fraction)
        if any(not 0 <= f < 1 for f in fractions) or sum(fractions) >= 1:
            raise ConfigError(
                f"task.test_fraction={self.test_fraction}, task.valid_fraction="
                f"{self.valid_fraction}; expected fractions >= 0 that sum to less than 1"
            )


def relation_edge_types(edge_index_dict, relations: list[str]) -> list[tuple[str, str, str]]:
    """The ``(source type, relation, value type)`` edge types of the relations, in the
    relations' order (:class:`ConfigError` with a hint for a relation not in the graph)."""
    names = sorted({e[1] for e in edge_index_dict if not e[1].startswith(REV_PREFIX)})
    if not relations:
        raise ConfigError(
            "task 'attribute' needs relations to complete (task.relations, or --relation once "
            f"per relation, e.g. --relation {names[0] if names else 'REL'}); relations in this "
            f"graph: {', '.join(names)}"
        )
    out = []
    for r in relations:
        found = [e for e in edge_index_dict if e[1] == r]
        if not found:
            hint = did_you_mean(r, names, paren=True)
            raise ConfigError(f"no relation {r!r} in the graph{hint}; relations: {', '.join(names)}")
        out.extend(found)
    return out


def slot_names(etypes: list[tuple[str, str, str]]) -> list[str]:
    """A metric name per edge type: the relation, or ``relation[source type]`` when the
    relation links several node types (each is predicted and scored on its own)."""
    counts: dict[str, int] = {}
    for e in etypes:
        counts[e[1]] = counts.get(e[1], 0) + 1
    return [r if counts[r] == 1 else f"{r}[{s}]" for s, r, _ in etypes]


@register_task
class AttributeCompletionTask(Task):
    """Rank each hidden attribute value among the relation's value nodes (module docstring)."""

    name = "attribute"
    Config = AttributeTaskConfig
    metric = "mrr"
    eval_train = False
    trainer_defaults = {"lr": 0.01, "epochs": 200, "patience": 30, "weight_decay": 0.0}
    model_defaults = {"residual": True}  # +3 points of validation accuracy on Fashion, every model

    def __init__(self, config: AttributeTaskConfig, graph, edge_index_dict, features=None):
        super().__init__(config, graph, edge_index_dict, features)
        self._edges = dict(edge_index_dict)
        self.relations = list(config.relations)
        self.etypes = relation_edge_types(edge_index_dict, self.relations)
        self.names = slot_names(self.etypes)
        num_nodes = {}
        for (s, _, d), ei in edge_index_dict.items():
            for t, row in ((s, 0), (d, 1)):
                size = int(ei[row].max()) + 1 if ei.numel() else 0
                num_nodes[t] = max(num_nodes.get(t, 0), size)
        num_nodes.update(getattr(graph, "num_nodes_dict", None) or {})
        self.num_nodes = num_nodes
        if config.label_inputs and features is not None:
            taken = [s for s, _, _ in self.etypes if LABEL_MODALITY in features.features.get(s, {})]
            if taken:
                raise ConfigError(
                    f"task.label_inputs adds a {LABEL_MODALITY!r} modality to {taken[0]!r}, "
                    "whose features already have one; rename that modality or set "
                    "task.label_inputs = false"
                )
        self.active = [i for i, e in enumerate(self.etypes)
                       if not config.predict or e[1] in config.predict]  # fmt: skip
        self.split = split_attributes(
            edge_index_dict, self.etypes, num_nodes, test_fraction=config.test_fraction,
            valid_fraction=config.valid_fraction, seed=config.split_seed,
            inductive=config.inductive,
        )  # fmt: skip
        self.triples = self.split.triples
        if not len(self.triples["train"]):
            raise ConfigError(f"relations {self.relations} leave no training edge")
        self.splits = tuple(s for s in SPLITS if len(self.triples[s]))
        self._warn_gaps()

    def _warn_gaps(self) -> None:
        """Say which relations have no held-out edge, and how many held-out values never
        occur in training (ranked all the same: their node has its own features)."""
        for i, r in enumerate(self.names):
            if not len(self.split.of("test", i)):
                warnings.warn(
                    f"relation {r!r} has no held-out test edge ({len(self.split.of('train', i))} "
                    "edge(s) in all); it is left out of the test metrics",
                    stacklevel=3,
                )
            seen = set(self.split.of("train", i)[:, 1].tolist())
            unseen = [v for v in self.split.of("test", i)[:, 1].tolist() if v not in seen]
            if unseen:
                warnings.warn(
                    f"relation {r!r}: {len(unseen)} test edge(s) point to {len(set(unseen))} "
                    "value(s) never seen in training; they are ranked from the value's own "
                    "features and edges",
                    stacklevel=3,
                )

    def message_passing(self, edge_index_dict) -> dict:
        """Training edges only (:func:`~.attribute_split.training_edges`) of the predicted
        relations; the others keep all their edges."""
        return training_edges(edge_index_dict, self.split, self.active)

    def _label_layout(self) -> dict[str, list[tuple[int, int]]]:
        """Per source type: ``(relation index, column offset)`` of each relation's block in
        its ``labels`` input; the width is the last offset + that relation's value count."""
        layout: dict[str, list[tuple[int, int]]] = {}
        width: dict[str, int] = {}
        for i, (s, _, d) in enumerate(self.etypes):
            layout.setdefault(s, []).append((i, width.get(s, 0)))
            width[s] = width.get(s, 0) + self.num_nodes[d]
        self._label_width = width
        return layout

    def input_dims(self) -> dict[str, dict[str, int]]:
        """``{source type: {"labels": sum of the relations' value counts}}`` with
        ``label_inputs``, else none."""
        if not self.config.label_inputs:
            return {}
        self._label_layout()
        return {s: {LABEL_MODALITY: w} for s, w in self._label_width.items()}

    def input_features(self, edge_index_dict) -> dict:
        """The ``labels`` modality of this pass: ``x[p, offset_r + v] = 1`` for each of the
        relations' edges ``p -> v`` in ``edge_index_dict`` (the pass's message-passing
        edges: targets and held-out edges are absent); ``mask[p]``: p has a known value."""
        if not (self.config.label_inputs or self.config.label_head):
            return {}
        out = {}
        device = next(iter(edge_index_dict.values())).device
        for s, blocks in self._label_layout().items():
            x = torch.zeros(self.num_nodes[s], self._label_width[s], device=device)
            for i, offset in blocks:
                ei = edge_index_dict.get(self.etypes[i])
                if ei is not None and ei.numel():
                    x[ei[0].long(), offset + ei[1].long()] = 1.0
            out[s] = {LABEL_MODALITY: (x, x.any(dim=1))}
        self._pass_labels = {s: mods[LABEL_MODALITY][0] for s, mods in out.items()}
        return out if self.config.label_inputs else {}

    def build(self, model_config: FusionGNNConfig) -> None:
        num = model_config.num_nodes
        self.decoder = None
        if self.config.scorer != "linear":
            self.decoder = get_decoder(self.config.decoder, len(self.etypes), model_config.out_dim)
        self.bias = nn.ParameterList(
            [nn.Parameter(torch.zeros(num[d]), requires_grad=self.config.value_bias)
             for _, _, d in self.etypes]
        )  # fmt: skip
        self.value_heads = nn.ModuleList()
        if self.config.scorer != "decoder":
            self.value_heads.extend(nn.Linear(model_config.out_dim, num[d], bias=False)
                                    for _, _, d in self.etypes)  # fmt: skip
        self.label_heads = nn.ModuleList()
        if self.config.label_head:
            self._label_layout()
            self.label_heads.extend(nn.Linear(self._label_width[s], num[d], bias=False)
                                    for s, _, d in self.etypes)  # fmt: skip
        every = torch.cat([self.triples[s] for s in SPLITS])
        self.known = []
        for i, (s, _, _) in enumerate(self.etypes):
            mine = every[every[:, 0] == i]
            self.known.append(KnownTriples(mine[:, 1], mine[:, 2], num[s]))

    def scores(self, out: FusionOutput, relation: int, heads: Tensor) -> Tensor:
        """``[B, N_value]`` scores of every value of ``relation`` for the ``heads`` [B]."""
        s, _, d = self.etypes[relation]
        h = out.embeddings[s][heads].float()
        r = torch.full((len(heads),), relation, dtype=torch.long, device=h.device)
        scores = self.bias[relation][None].expand(len(heads), -1)
        if self.config.scorer != "linear":
            scores = scores + self.decoder.score_tails(h, r, out.embeddings[d].float())
        if self.config.scorer != "decoder":
            scores = scores + self.value_heads[relation](h)
        if self.config.label_head:  # the labels of the pass that gave ``out``
            scores = scores + self.label_heads[relation](self._pass_labels[s][heads])
        return scores

    def batches(self, epoch: int):
        """One full-batch step: ``{relation: [k, 2] supervision (head, tail) pairs, ...,
        "kept": {relation: [n - k, 2] pairs left in message passing}}``."""
        step, kept = {}, {}
        for i in self.active:
            pairs = self.split.of("train", i)
            order = torch.randperm(len(pairs), device=pairs.device)
            k = max(1, int(self.config.supervision_fraction * len(pairs) + 0.5)) if len(pairs) else 0
            step[i], kept[i] = pairs[order[:k]], pairs[order[k:]]
        yield {"targets": step, "kept": kept}

    def step_edges(self, batch):
        if batch is None:
            return None

        def edit(mp):
            mp = dict(mp)
            for i in batch["kept"]:
                s, r, d = self.etypes[i]
                kept = batch["kept"][i].T.to(mp[(s, r, d)].dtype)
                mp[(s, r, d)] = kept
                if (d, REV_PREFIX + r, s) in mp:
                    mp[(d, REV_PREFIX + r, s)] = kept.flip(0)
            return mp

        return edit

    def loss(self, out: FusionOutput, batch=None) -> Tensor:
        losses = []
        for i in self.active:
            pairs = self.split.of("train", i) if batch is None else batch["targets"][i]
            if len(pairs):
                logits = self.scores(out, i, pairs[:, 0])
                losses.append(F.cross_entropy(
                    logits, pairs[:, 1], label_smoothing=self.config.label_smoothing))  # fmt: skip
        return torch.stack(losses).mean()

    @torch.no_grad()
    def ranks(self, out: FusionOutput, split: str, relation: int) -> Tensor:
        """Filtered realistic ranks ``[n]`` of ``relation``'s ``split`` edges."""
        pairs = self.split.of(split, relation)
        if not len(pairs):
            return torch.zeros(0)
        heads, tails = pairs[:, 0], pairs[:, 1]
        scores = self.scores(out, relation, heads)
        rows, cols = self.known[relation].lookup(heads)
        filter_scores_(scores, rows, cols, tails)
        true = scores[torch.arange(len(tails), device=scores.device), tails]
        return ranks_from_scores(true, scores)["realistic"]

    def evaluate_pass(self, out: FusionOutput, split: str, forward) -> dict[str, float]:
        """Inductive: one forward pass per relation over the training graph plus the
        arriving products' edges except that relation's (``forward(edit)`` runs the model on
        ``edit(message-passing edges)``); transductive: ``out`` as it is."""
        if not self.split.inductive:
            return self.evaluate(out, split)
        ranks = {}
        for i in self.active:
            extra = arrival_edges(self._edges, self.split, split, i)
            out_i = forward(lambda mp, extra=extra: merge_edges(mp, extra))
            ranks[i] = self.ranks(out_i, split, i)
        return self._metrics(ranks)

    @torch.no_grad()
    def evaluate(self, out: FusionOutput, split: str) -> dict[str, float]:
        return self._metrics({i: self.ranks(out, split, i) for i in self.active})

    def _metrics(self, ranks: dict[int, Tensor]) -> dict[str, float]:
        metrics: dict[str, float] = {}
        accs, mrrs = [], []
        for i, r in enumerate(self.names):
            if i not in ranks or not len(ranks[i]):
                continue
            m = rank_metrics(ranks[i], (1, 3))
            metrics[f"acc.{r}"], metrics[f"mrr.{r}"] = m["hits@1"], m["mrr"]
            metrics[f"hits@3.{r}"] = m["hits@3"]
            accs.append(m["hits@1"])
            mrrs.append(m["mrr"])
        metrics["acc"] = sum(accs) / len(accs) if accs else 0.0
        metrics["mrr"] = sum(mrrs) / len(mrrs) if mrrs else 0.0
        return metrics

    def info(self) -> dict:
        sizes = {s: len(self.triples[s]) for s in SPLITS}
        return {"relations": self.relations, "edge_types": [list(e) for e in self.etypes],
                "inductive": self.split.inductive, "sizes": sizes}  # fmt: skip

    def check_info(self, saved) -> None:
        sizes = {s: len(self.triples[s]) for s in SPLITS}
        if saved.get("sizes") and saved["sizes"] != sizes:
            raise ConfigError(
                f"the graph now gives other attribute splits ({sizes}) than the run was "
                f"trained with ({saved['sizes']}); evaluate on the original graph"
            )

    def to_device(self, device):
        self.split.triples = self.triples = {s: t.to(device) for s, t in self.triples.items()}
        for known in self.known:
            known.to(device)
        return self.to(device)

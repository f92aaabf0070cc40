"""Link prediction on chosen relations, with leak-free splits and filtered ranking.

The R-GCN link prediction setting (Schlichtkrull et al., 2018, section 4): the GNN encodes
the nodes, a decoder (:mod:`fusion.tasks.decoders`, DistMult by default) scores triples.

- **Split.** The edges of each chosen relation (over all its ``(src, relation, dst)`` edge
  types) are shuffled with ``split_seed`` and cut into train / valid / test
  (``split``, default 80/10/10).
- **No leakage.** Valid and test edges, and their ``rev_<relation>`` inverses, are removed
  from the message-passing graph (:meth:`message_passing`); only training edges of the
  chosen relations are propagated over. (Another predicate that states the same fact, e.g.
  an explicit inverse property in the data, is not detected: drop it from the graph.)
- **Training.** Each training triple gets ``num_negatives`` corrupted copies, each
  replacing the tail or (with probability 1/2) the head by a uniformly drawn node of the
  same node type; binary cross-entropy on the scores.
- **Evaluation.** Every evaluation triple ``(h, r, t)`` ranks its true tail against every
  node of the tail's node type, and its true head against every node of the head's type;
  other known true triples (train, valid and test) are filtered out; realistic ranks, MRR,
  Hits@k, both sides pooled: see :mod:`fusion.tasks.ranking` (PyKEEN, Ali et al., 2021).

Shapes: ``triples[split]`` int64 [n, 3] = (edge type index, head index, tail index), the
indices local to their node types.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from kg.hints import did_you_mean
from kg.naming import REV_PREFIX

from ..model import ConfigError, FusionGNNConfig, FusionOutput
from .base import Task, move, register_task
from .decoders import get_decoder, start_small
from .link_via import SHARED_SCALE, ViaLinks
from .ranking import KnownTriples, filter_scores_, rank_metrics, ranks_from_scores

SPLITS = ("train", "valid", "test")
PRIOR_SCALE = 5.0
EMB_SCALE = 3.0  # normalised embeddings times this: the correction can reach 9 |w_r|
TEXT = "text"


class TextPrior(torch.nn.Module):
    """``score_r(h, t) = a_r cos(text_h, text_t) + b_r`` per relation ``r`` (``[R]``
    parameters ``scale`` and ``bias``); nodes without text have a zero text row, so the
    term is ``b_r`` for them. Shapes: ``h``, ``t`` [B, d_text] (L2-normalised rows),
    ``r`` [B] -> [B]; :meth:`score_all` ``h`` [B, d_text], ``candidates`` [M, d_text] ->
    [B, M]."""

    def __init__(self, num_relations: int):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.full((num_relations,), PRIOR_SCALE))
        self.bias = torch.nn.Parameter(torch.full((num_relations,), -PRIOR_SCALE / 2))

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self.scale[r] * (h * t).sum(-1) + self.bias[r]

    def score_all(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        return self.scale[r, None] * (h @ candidates.T) + self.bias[r, None]


class SharedNeighbours(torch.nn.Module):
    """``score_r(h, t) += sum_g w[r, g] shared_g(h, t)``: how many neighbours ``h`` and
    ``t`` share by each predicate and direction ``g`` (same brand, same category; the
    common-neighbour features of path-based link prediction), ``w`` ``[R, G]`` starting at
    zero (stored divided by :data:`SHARED_SCALE`). Built from the edges between entity types, except the predicted relations and
    the ``rev_`` inverses (each edge counts in both directions): the same at training and
    at scoring time (:class:`fusion.scoring.LinkScorer`), and no predicted edge leaks in.

    ``A`` is a sparse ``[N, G * N]`` matrix (row: a node; column ``g * N + u``: ``u`` is
    its neighbour by ``g``), ``N`` the nodes of ``node_types`` in order (``offsets``).
    Shapes: :meth:`forward` ``h``, ``t`` [B] global ids, ``r`` [B] -> [B];
    :meth:`score_all` ``h`` [B], ``r`` [B] (one relation), ``candidates`` [M] -> [B, M]."""

    def __init__(self, num_relations: int, edge_index_dict, node_types, num_nodes,
                 exclude: set[str]):  # fmt: skip
        super().__init__()
        self.offsets, start = {}, 0
        for t in node_types:
            self.offsets[t] = start
            start += num_nodes[t]
        self.n = n = start
        groups: dict[tuple[str, str], list[Tensor]] = {}
        for (s, p, d), ei in edge_index_dict.items():
            if (
                p.startswith(REV_PREFIX)
                or p in exclude
                or s not in self.offsets
                or d not in self.offsets
            ):
                continue
            ei = ei.long().cpu()
            src, dst = ei[0] + self.offsets[s], ei[1] + self.offsets[d]
            groups.setdefault((p, "out"), []).append(torch.stack([src, dst]))
            groups.setdefault((p, "in"), []).append(torch.stack([dst, src]))
        self.groups = sorted(groups)
        rows, cols = [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)]
        for g, key in enumerate(self.groups):
            pairs = torch.cat(groups[key], 1)
            rows.append(pairs[0])
            cols.append(pairs[1] + g * n)
        index = torch.stack([torch.cat(rows), torch.cat(cols)])
        values = torch.ones(index.shape[1])
        shape = (n, max(1, len(self.groups)) * n)
        self.A = torch.sparse_coo_tensor(index, values, shape, check_invariants=True).coalesce()
        self.weight = torch.nn.Parameter(torch.zeros(num_relations, max(1, len(self.groups))))

    def ids(self, node_type: str, local: Tensor) -> Tensor:
        return local + self.offsets[node_type]

    def _rows(self, ids: Tensor) -> Tensor:
        return self.A.index_select(0, ids.to(self.A.device)).coalesce()

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        both = (self._rows(h) * self._rows(t)).coalesce()
        row, col = both.indices()
        part = both.values() * SHARED_SCALE * self.weight[r[row], col // self.n]
        return torch.zeros(len(h), device=part.device).index_add(0, row, part)

    def score_all(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        rows = self._rows(h)
        row, col = rows.indices()
        values = rows.values() * SHARED_SCALE * self.weight[r[row], col // self.n]
        scaled = torch.sparse_coo_tensor(rows.indices(), values, rows.shape, check_invariants=True)
        with warnings.catch_warnings():  # torch: "Sparse CSR tensor support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            out = torch.sparse.mm(scaled, self._rows(candidates).t())
        return out.to_dense() if out.is_sparse else out

    def to(self, *args, **kwargs):
        self.A = self.A.to(*args, **kwargs)
        return super().to(*args, **kwargs)


def text_rows(features, node_types, num_nodes: dict[str, int]) -> dict[str, Tensor] | None:
    """``{node_type: [N_t, d] L2-normalised text features}`` (zero rows for nodes and types
    without text), or None when no node type has a ``text`` feature. ``features``:
    :class:`fusion.features.NodeFeatures` or its ``features`` dict."""
    feats = getattr(features, "features", features) or {}
    found = {t: mods[TEXT] for t, mods in feats.items() if TEXT in mods and t in num_nodes}
    if not found:
        return None
    dim = next(iter(found.values()))[0].shape[1]
    out = {}
    for t in node_types:
        if t in found and found[t][0].shape[1] == dim:
            x, mask = found[t]
            out[t] = F.normalize(x.float(), dim=1) * mask.to(x.device)[:, None].float()
        else:
            out[t] = torch.zeros(num_nodes[t], dim)
    return out


@dataclass
class LinkTaskConfig:
    """``relations``: relation names to predict; ``split``: train/valid/test fractions.

    ``text_prior``: when the nodes have a ``text`` feature, every score gets the term
    ``a_r cos(text_h, text_t) + b_r`` (:class:`TextPrior`, ``a_r`` initialised at
    :data:`PRIOR_SCALE`): the decoder learns a relation-specific correction on top of text
    similarity instead of rediscovering it (on the sample catalogue's accessory links the
    model alone ranked below text similarity, ``benchmarks/related_quality.py``).

    ``shared_neighbours``: every score also gets a learned weight per predicate and
    direction times the neighbours the two ends share by it (:class:`SharedNeighbours`,
    weights starting at zero): "an accessory of the same brand" is one weight, where the
    GNN + DistMult would have to rediscover it.

    ``via_links`` (with ``shared_neighbours``): every score also gets learned weights times
    the share of the head's other links whose tails share a neighbour by each predicate with
    the tail, and the reverse (:class:`fusion.tasks.link_via.ViaLinks`, from zero): "like
    this accessory's other products: same brand, same category".

    ``candidates``: what an evaluation triple is ranked against. ``"seen"`` (default): the
    nodes that are at that end of the relation in some training triple, plus the true one
    (an accessory is ranked among the products that have accessories, as
    ``related()`` is asked: the best epoch is chosen on the question it will answer);
    ``"all"``: every node of the end's type."""

    relations: list[str] = field(default_factory=list)
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 0
    decoder: str = "distmult"
    num_negatives: int = 1
    batch_size: int = 0
    eval_batch_size: int = 256
    ks: list[int] = field(default_factory=lambda: [1, 3, 10])
    text_prior: bool = True
    hard_negatives: float = 0.5
    hard_k: int = 10
    shared_neighbours: bool = True
    via_links: bool = True
    candidates: str = "seen"

    def __post_init__(self):
        if isinstance(self.relations, str):
            self.relations = [self.relations]
        if not self.relations:
            raise ConfigError(
                "task 'link' needs relations to predict (task.relations / --relation)"
            )
        if (
            len(self.split) != 3
            or any(f < 0 for f in self.split)
            or abs(sum(self.split) - 1) > 1e-6
        ):
            raise ConfigError(f"task.split={self.split}; expected three fractions summing to 1")
        if self.candidates not in ("seen", "all"):
            raise ConfigError(f"task.candidates={self.candidates!r}; expected 'seen' or 'all'")
        if self.num_negatives < 1:
            raise ConfigError("task.num_negatives must be >= 1")


@register_task
class LinkPredictionTask(Task):
    """Link prediction with negative sampling and filtered rank metrics (module docstring)."""

    name = "link"
    Config = LinkTaskConfig
    metric = "mrr"
    eval_train = False  # ranking every training edge is costly and says little
    # DistMult on GNN outputs starts near its saddle at zero: lr 0.01 stays there (loss
    # ln 2) on the sample catalogue, 0.001 escapes; it needs more epochs to converge.
    trainer_defaults = {"lr": 0.001, "epochs": 300, "patience": 50}

    def __init__(self, config: LinkTaskConfig, graph, edge_index_dict, features=None):
        super().__init__(config, graph, edge_index_dict, features)
        self._features = features
        self._edges = dict(edge_index_dict)
        self._entity_types = set(getattr(graph, "num_nodes_dict", None) or {})
        names = sorted({e[1] for e in edge_index_dict if not e[1].startswith(REV_PREFIX)})
        for r in config.relations:
            if r not in names:
                hint = did_you_mean(r, names, paren=True)
                raise ConfigError(
                    f"no relation {r!r} in the graph{hint}; relations: {', '.join(names)}"
                )
        self.relations = list(config.relations)
        self.etypes = [e for e in edge_index_dict if e[1] in self.relations]
        generator = torch.Generator().manual_seed(config.split_seed)
        parts: dict[str, list[Tensor]] = {s: [] for s in SPLITS}
        for r in self.relations:
            rows = []
            for i, e in enumerate(self.etypes):
                if e[1] == r:
                    ei = edge_index_dict[e].long()
                    rows.append(torch.stack([torch.full_like(ei[0], i), ei[0], ei[1]], 1))
            triples = torch.cat(rows)
            triples = triples[torch.randperm(len(triples), generator=generator)]
            n = len(triples)
            n_test = int(config.split[2] * n + 0.5)
            n_valid = int(config.split[1] * n + 0.5)
            if n - n_test - n_valid < 1:
                warnings.warn(
                    f"relation {r!r} has only {n} edge(s); all of them are training edges",
                    stacklevel=2,
                )
                n_test = n_valid = 0
            parts["test"].append(triples[:n_test])
            parts["valid"].append(triples[n_test : n_test + n_valid])
            parts["train"].append(triples[n_test + n_valid :])
        self.triples = {s: torch.cat(p) for s, p in parts.items()}
        self.relation_of = torch.tensor([self.relations.index(e[1]) for e in self.etypes])
        self.splits = tuple(s for s in SPLITS if len(self.triples[s]))
        if "train" not in self.splits:
            raise ConfigError(f"relations {self.relations} leave no training edge")

    def message_passing(self, edge_index_dict) -> dict:
        """All edges except the valid / test edges of the chosen relations and their inverses."""
        edges = dict(edge_index_dict)
        train = self.triples["train"]
        for i, (s, r, d) in enumerate(self.etypes):
            mine = train[train[:, 0] == i]
            kept = torch.stack([mine[:, 1], mine[:, 2]]).to(edges[(s, r, d)].dtype)
            edges[(s, r, d)] = kept
            if (d, REV_PREFIX + r, s) in edges:
                edges[(d, REV_PREFIX + r, s)] = kept.flip(0)
        return edges

    def build(self, model_config: FusionGNNConfig) -> None:
        self.node_types = list(model_config.node_types)
        self.num_nodes = dict(model_config.num_nodes)
        self.known_tail, self.known_head = [], []  # every known triple, for filtering
        all_triples = torch.cat([self.triples[x] for x in SPLITS])
        for i, (s, _, d) in enumerate(self.etypes):
            mine = all_triples[all_triples[:, 0] == i]
            self.known_tail.append(KnownTriples(mine[:, 1], mine[:, 2], self.num_nodes[s]))
            self.known_head.append(KnownTriples(mine[:, 2], mine[:, 1], self.num_nodes[d]))
        offsets, start = {}, 0
        for t in self.node_types:
            offsets[t] = start
            start += model_config.num_nodes[t]
        self.src_offset = torch.tensor([offsets[e[0]] for e in self.etypes])
        self.dst_offset = torch.tensor([offsets[e[2]] for e in self.etypes])
        self.src_count = torch.tensor([self.num_nodes[e[0]] for e in self.etypes])
        self.dst_count = torch.tensor([self.num_nodes[e[2]] for e in self.etypes])
        self.decoder = get_decoder(self.config.decoder, len(self.relations), model_config.out_dim)
        rows = text_rows(self._features, self.node_types, self.num_nodes)
        self.prior = None
        self.seen = []  # per edge type: (heads seen [n_s], tails seen [n_d]) bool masks
        train = self.triples["train"]
        for i, (s, _, d) in enumerate(self.etypes):
            mine = train[train[:, 0] == i]
            heads = torch.zeros(self.num_nodes[s], dtype=torch.bool)
            tails = torch.zeros(self.num_nodes[d], dtype=torch.bool)
            heads[mine[:, 1]] = True
            tails[mine[:, 2]] = True
            self.seen.append((heads, tails))
        if self.config.text_prior and rows is not None:
            self.prior = TextPrior(len(self.relations))
            self.text = torch.cat([rows[t] for t in self.node_types])  # [N_total, d_text]
            start_small(self.decoder)  # the model starts as text similarity, nearly
            self.near = self._text_neighbours()
        self.shared = self.via = None
        if self.config.shared_neighbours:
            self._build_shared()

    def _build_shared(self) -> None:
        types = [t for t in self.node_types if not self._entity_types or t in self._entity_types]
        ends = {e[0] for e in self.etypes} | {e[2] for e in self.etypes}
        if not ends <= set(types):
            return
        shared = SharedNeighbours(
            len(self.relations), self._edges, types, self.num_nodes, set(self.relations)
        )
        if shared.groups:
            self.shared = shared
            self.sn_src = torch.tensor([shared.offsets[e[0]] for e in self.etypes])
            self.sn_dst = torch.tensor([shared.offsets[e[2]] for e in self.etypes])
            if self.config.via_links:
                train = self.triples["train"]
                links = [
                    (int(self.relation_of[i]), mine[:, 1] + self.sn_src[i], mine[:, 2] + self.sn_dst[i])
                    for i in range(len(self.etypes))
                    for mine in [train[train[:, 0] == i]]
                ]  # fmt: skip
                self.via = ViaLinks(shared, links, len(self.relations))

    def _text_neighbours(self) -> tuple[Tensor, Tensor]:
        """``[N_total, hard_k]`` global ids of each node's text-nearest nodes of its own
        type, for the head and the tail sides (the same table; one per side for clarity)."""
        k = self.config.hard_k
        near = torch.arange(len(self.text))[:, None].repeat(1, k)
        start = 0
        for t in self.node_types:
            n = self.num_nodes[t]
            block = self.text[start : start + n]
            if n > 1:
                sim = block @ block.T
                sim.fill_diagonal_(-2.0)
                top = sim.topk(min(k, n - 1), dim=1).indices + start
                near[start : start + n] = top.repeat(1, -(-k // top.shape[1]))[:, :k]
            start += n
        return near, near

    def _all(self, out: FusionOutput) -> Tensor:
        """Every node's embedding in one [N_total, d] matrix (types in model order); with
        the text prior L2-normalised, so that the decoder's correction stays bounded by its
        relation weights (it starts at zero) instead of drowning the prior."""
        return self.scale_embeddings(torch.cat([out.embeddings[t] for t in self.node_types]))

    def scale_embeddings(self, emb: Tensor) -> Tensor:
        """``emb`` [n, d] as the decoder sees it (L2-normalised x EMB_SCALE with the prior)."""
        return EMB_SCALE * F.normalize(emb, dim=1) if self.prior is not None else emb

    def batches(self, epoch: int):
        train = self.triples["train"]
        size = self.config.batch_size or len(train)
        order = torch.randperm(len(train), device=train.device)
        for start in range(0, len(train), size):
            yield order[start : start + size]

    def loss(self, out: FusionOutput, batch=None) -> Tensor:
        emb = self._all(out)
        pos = self.triples["train"] if batch is None else self.triples["train"][batch]
        return self.triple_loss(emb, torch.cat([pos, self.negatives(pos)]), len(pos))

    def negatives(self, pos: Tensor) -> Tensor:
        """``num_negatives`` corrupted copies ``[n * num_negatives, 3]`` of ``pos`` [n, 3]."""
        neg = pos.repeat(self.config.num_negatives, 1)
        e = neg[:, 0]
        corrupt_head = torch.rand(len(neg), device=neg.device) < 0.5
        draw = torch.rand(len(neg), device=neg.device)
        heads = torch.minimum((draw * self.src_count[e]).long(), self.src_count[e] - 1)
        tails = torch.minimum((draw * self.dst_count[e]).long(), self.dst_count[e] - 1)
        if self.prior is not None and self.config.hard_negatives > 0:
            # hard negatives: the text-nearest nodes of the true head / tail (same kind of
            # product), so the correction learns what text similarity does not tell
            hard = torch.rand(len(neg), device=neg.device) < self.config.hard_negatives
            pick = torch.randint(self.config.hard_k, (len(neg),), device=neg.device)
            near_h, near_t = self.near
            glob_h, glob_t = self.src_offset[e] + neg[:, 1], self.dst_offset[e] + neg[:, 2]
            heads = torch.where(hard, near_h[glob_h, pick] - self.src_offset[e], heads)
            tails = torch.where(hard, near_t[glob_t, pick] - self.dst_offset[e], tails)
        return torch.stack(
            [
                e,
                torch.where(corrupt_head, heads, neg[:, 1]),
                torch.where(corrupt_head, neg[:, 2], tails),
            ],
            1,
        )

    def triple_loss(self, emb: Tensor, triples: Tensor, n_pos: int, rows=None) -> Tensor:
        """Binary cross-entropy of ``triples`` [n, 3] (the first ``n_pos`` true, the rest
        negatives); ``emb`` [N, d] scaled embeddings, indexed by the triples' global node
        ids, or by ``rows = (head rows [n], tail rows [n])`` (a mini-batch's embeddings)."""
        e = triples[:, 0]
        heads, tails = self.src_offset[e] + triples[:, 1], self.dst_offset[e] + triples[:, 2]
        h_rows, t_rows = (heads, tails) if rows is None else rows
        scores = self.decoder(emb[h_rows], self.relation_of[e], emb[t_rows]).float()
        if self.prior is not None:
            scores = scores + self.prior(self.text[heads], self.relation_of[e], self.text[tails])
        if self.shared is not None:
            h_ids, t_ids = self.sn_src[e] + triples[:, 1], self.sn_dst[e] + triples[:, 2]
            scores = scores + self.shared(h_ids, self.relation_of[e], t_ids)
            if self.via is not None:
                scores = scores + self.via(h_ids, self.relation_of[e], t_ids)
        target = torch.cat([scores.new_ones(n_pos), scores.new_zeros(len(triples) - n_pos)])
        return F.binary_cross_entropy_with_logits(scores, target)

    @torch.no_grad()
    def ranks(self, out: FusionOutput, split: str) -> dict[str, Tensor]:
        """Filtered realistic ranks [n] of the ``split`` triples: ``{"head", "tail"}``."""
        emb = self._all(out).float()
        found: dict[str, list[Tensor]] = {"head": [], "tail": []}
        triples = self.triples[split]
        for i in range(len(self.etypes)):
            mine = triples[triples[:, 0] == i]
            if not len(mine):
                continue
            s0, n_s = int(self.src_offset[i]), int(self.src_count[i])
            d0, n_d = int(self.dst_offset[i]), int(self.dst_count[i])
            heads_all, tails_all = emb[s0 : s0 + n_s], emb[d0 : d0 + n_d]
            if self.prior is not None:
                text_h, text_t = self.text[s0 : s0 + n_s], self.text[d0 : d0 + n_d]
            for chunk in mine.split(self.config.eval_batch_size):
                h, t = chunk[:, 1], chunk[:, 2]
                r = self.relation_of[chunk[:, 0]]
                for side, given, true, known, candidates, score in (
                    ("tail", heads_all[h], t, self.known_tail[i], tails_all, self.decoder.score_tails),
                    ("head", tails_all[t], h, self.known_head[i], heads_all, self.decoder.score_heads),
                ):  # fmt: skip
                    scores = score(given, r, candidates).float()
                    if self.prior is not None:
                        mine_text, all_text = (
                            (text_h[h], text_t) if side == "tail" else (text_t[t], text_h)
                        )
                        scores = scores + self.prior.score_all(mine_text, r, all_text)
                    if self.shared is not None:
                        base, count = (
                            (self.sn_dst[i], n_d) if side == "tail" else (self.sn_src[i], n_s)
                        )
                        anchor = (h + self.sn_src[i]) if side == "tail" else (t + self.sn_dst[i])
                        everyone = torch.arange(count, device=anchor.device) + base
                        scores = scores + self.shared.score_all(anchor, r, everyone)
                        if self.via is not None:
                            side_score = (
                                self.via.score_tails if side == "tail" else self.via.score_heads
                            )
                            scores = scores + side_score(anchor, r, everyone)
                    if self.config.candidates == "seen":
                        keep = self.seen[i][1] if side == "tail" else self.seen[i][0]
                        rows_ = torch.arange(len(true), device=scores.device)
                        true_raw = scores[rows_, true]
                        scores = scores.masked_fill(~keep[None], float("-inf"))
                        scores[rows_, true] = true_raw
                    anchors = h if side == "tail" else t
                    rows, cols = known.lookup(anchors)
                    filter_scores_(scores, rows, cols, true)
                    true_score = scores[torch.arange(len(true), device=scores.device), true]
                    found[side].append(ranks_from_scores(true_score, scores)["realistic"])
        return {
            side: torch.cat(v) if v else torch.zeros(0, device=emb.device)
            for side, v in found.items()
        }

    @torch.no_grad()
    def evaluate(self, out: FusionOutput, split: str) -> dict[str, float]:
        ranks = self.ranks(out, split)
        metrics = rank_metrics(torch.cat([ranks["head"], ranks["tail"]]), self.config.ks)
        for side in ("head", "tail"):
            metrics[f"mrr.{side}"] = rank_metrics(ranks[side], ())["mrr"]
        return metrics

    def info(self) -> dict:
        return {
            "relations": self.relations,
            "edge_types": [list(e) for e in self.etypes],
            "sizes": {s: len(self.triples[s]) for s in SPLITS},
        }

    def check_info(self, saved) -> None:
        sizes = {s: len(self.triples[s]) for s in SPLITS}
        if saved.get("sizes") and saved["sizes"] != sizes:
            raise ConfigError(
                f"the graph now gives other link splits ({sizes}) than the run was trained "
                f"with ({saved['sizes']}); evaluate on the original graph"
            )

    def to_device(self, device):
        self.triples = move(self.triples, device)
        for name in ("relation_of", "src_offset", "dst_offset", "src_count", "dst_count"):
            setattr(self, name, getattr(self, name).to(device))
        if self.prior is not None:
            self.text = self.text.to(device)
            self.near = tuple(x.to(device) for x in self.near)
        if self.shared is not None:
            self.shared.to(device)
            if self.via is not None:
                self.via.to(device)
            self.sn_src, self.sn_dst = self.sn_src.to(device), self.sn_dst.to(device)
        self.seen = [(a.to(device), b.to(device)) for a, b in self.seen]
        for known in self.known_tail + self.known_head:
            known.to(device)
        return self.to(device)

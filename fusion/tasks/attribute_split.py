"""Leak-free splits for attribute completion (:mod:`fusion.tasks.attribute`).

An attribute relation links an entity (a product) to a value node (its season, colour...).
Two protocols, both with fixed seeds:

- **transductive**: per relation, the ``(entity, value)`` edges are shuffled
  (``torch.Generator`` seeded with ``seed``) and cut into ``test_fraction`` test,
  ``valid_fraction`` valid and the rest training edges. The entity keeps its other edges.
- **inductive**: the entities (every node of the relations' source types) are shuffled
  once and cut into test / valid / training entities. Every edge touching a valid or test
  entity (of any relation, in both directions) is absent from the training graph; at
  evaluation time the entity arrives with its features and its edges except the ones of
  the relation being predicted (:func:`arrival_edges`).

Shapes: ``triples[split]`` int64 ``[n, 3]`` = (relation index, head index, tail index),
indices local to their node types; ``withheld[split][node_type]`` bool ``[N_t]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from kg.naming import REV_PREFIX

SPLITS = ("train", "valid", "test")
EdgeType = tuple[str, str, str]


@dataclass
class AttributeSplit:
    """The cut of one split seed (module docstring); ``etypes[i]`` is relation ``i``'s
    ``(source type, relation, value type)`` edge type."""

    etypes: list[EdgeType]
    triples: dict[str, Tensor]
    inductive: bool = False
    withheld: dict[str, dict[str, Tensor]] = field(default_factory=dict)

    def of(self, split: str, relation: int) -> Tensor:
        """``[n, 2]`` (head, tail) of ``relation`` in ``split``."""
        t = self.triples[split]
        return t[t[:, 0] == relation][:, 1:]


def _cut(n: int, test_fraction: float, valid_fraction: float) -> tuple[int, int]:
    n_test = int(test_fraction * n + 0.5)
    n_valid = int(valid_fraction * n + 0.5)
    if n - n_test - n_valid < 1:  # too few edges to hold any out: all of them train
        return 0, 0
    return n_test, n_valid


def split_attributes(edge_index_dict: Mapping[EdgeType, Tensor], etypes: list[EdgeType],
                     num_nodes: Mapping[str, int], *, test_fraction: float = 0.2,
                     valid_fraction: float = 0.1, seed: int = 0,
                     inductive: bool = False) -> AttributeSplit:  # fmt: skip
    """Cut the edges of ``etypes`` (one per predicted relation) into train / valid / test.

    ``edge_index_dict[e]``: ``[2, E]`` local (source, target) indices; ``num_nodes``: nodes
    per type (the inductive cut draws entities of the source types). Same inputs and seed,
    same split."""
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[Tensor]] = {s: [] for s in SPLITS}
    withheld: dict[str, dict[str, Tensor]] = {}
    if inductive:
        withheld = {"valid": {}, "test": {}}
        for t in sorted({e[0] for e in etypes}):
            n = int(num_nodes[t])
            order = torch.randperm(n, generator=generator)
            n_test, n_valid = _cut(n, test_fraction, valid_fraction)
            for split, chosen in (("test", order[:n_test]),
                                  ("valid", order[n_test : n_test + n_valid])):  # fmt: skip
                mask = torch.zeros(n, dtype=torch.bool)
                mask[chosen] = True
                withheld[split][t] = mask
    for i, e in enumerate(etypes):
        ei = edge_index_dict[e].long()
        triples = torch.stack([torch.full_like(ei[0], i), ei[0], ei[1]], 1)
        if inductive:
            in_test = withheld["test"][e[0]][ei[0]]
            in_valid = withheld["valid"][e[0]][ei[0]]
            parts["test"].append(triples[in_test])
            parts["valid"].append(triples[in_valid])
            parts["train"].append(triples[~(in_test | in_valid)])
            continue
        triples = triples[torch.randperm(len(triples), generator=generator)]
        n_test, n_valid = _cut(len(triples), test_fraction, valid_fraction)
        parts["test"].append(triples[:n_test])
        parts["valid"].append(triples[n_test : n_test + n_valid])
        parts["train"].append(triples[n_test + n_valid :])
    empty = torch.zeros(0, 3, dtype=torch.long)
    joined = {s: torch.cat([empty, *p]) for s, p in parts.items()}
    return AttributeSplit(list(etypes), joined, inductive, withheld)


def _touches(e: EdgeType, ei: Tensor, masks: Mapping[str, Tensor]) -> Tensor:
    """``[E]`` bool: the edge has an end among the nodes flagged in ``masks``."""
    hit = torch.zeros(ei.shape[1], dtype=torch.bool, device=ei.device)
    if e[0] in masks:
        hit |= masks[e[0]].to(ei.device)[ei[0]]
    if e[2] in masks:
        hit |= masks[e[2]].to(ei.device)[ei[1]]
    return hit


def training_edges(edge_index_dict: Mapping[EdgeType, Tensor], split: AttributeSplit,
                   predicted=None) -> dict[EdgeType, Tensor]:  # fmt: skip
    """The message-passing graph of training: the predicted relations (``predicted``:
    indices into ``split.etypes``, default all) keep only their training edges (and ``rev_``
    inverses); inductively, every edge touching a valid or test entity is dropped as well."""
    edges = dict(edge_index_dict)
    for i, (s, r, d) in enumerate(split.etypes):
        if predicted is not None and i not in predicted:
            continue
        kept = split.of("train", i).T.to(edges[(s, r, d)].dtype)
        edges[(s, r, d)] = kept
        if (d, REV_PREFIX + r, s) in edges:
            edges[(d, REV_PREFIX + r, s)] = kept.flip(0)
    if split.inductive:
        gone = {t: split.withheld["valid"][t] | split.withheld["test"][t]
                for t in split.withheld["test"]}  # fmt: skip
        edges = {e: ei[:, ~_touches(e, ei, gone)] for e, ei in edges.items()}
    return edges


def arrival_edges(edge_index_dict: Mapping[EdgeType, Tensor], split: AttributeSplit,
                  which: str, relation: int) -> dict[EdgeType, Tensor]:  # fmt: skip
    """Inductive: the edges the ``which``-split entities bring when relation ``relation`` is
    predicted -- all their edges (both directions) except that relation's and its inverse.
    ``{}`` for a transductive split."""
    if not split.inductive:
        return {}
    masks = split.withheld[which]
    _, r, _ = split.etypes[relation]
    out = {}
    for e, ei in edge_index_dict.items():
        if e[1] in (r, REV_PREFIX + r):
            continue
        mine = ei[:, _touches(e, ei, masks)]
        if mine.shape[1]:
            out[e] = mine
    return out


def merge_edges(base: Mapping[EdgeType, Tensor],
                extra: Mapping[EdgeType, Tensor]) -> dict[EdgeType, Tensor]:  # fmt: skip
    """``base`` with ``extra``'s edges appended per edge type (on ``base``'s device)."""
    out = dict(base)
    for e, ei in extra.items():
        out[e] = torch.cat([out[e], ei.to(out[e].device, out[e].dtype)], 1) if e in out else ei
    return out

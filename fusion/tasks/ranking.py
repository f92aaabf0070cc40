"""Filtered rank-based link prediction metrics, computed as PyKEEN's RankBasedEvaluator does.

Ali et al. (2021), "Bringing Light Into the Dark: A Large-scale Evaluation of Knowledge
Graph Embedding Models Under a Unified Framework" (PyKEEN): for an evaluation triple the
true entity's score ``s`` is compared with the scores of all candidates ``S`` (the true one
included); in the *filtered* setting the scores of the other known true triples (train,
valid and test) are set to NaN first, so that they compare false and drop out, and the
true score is written back.

- optimistic rank = 1 + #(S > s); pessimistic rank = #(S >= s);
  realistic rank = (optimistic + pessimistic) / 2 (the expected rank under random tie
  breaking) -- the default that the metrics use;
- ``mrr`` = mean of 1 / realistic rank (PyKEEN's inverse harmonic mean rank);
  ``hits@k`` = fraction of realistic ranks <= k; ``mr`` = mean realistic rank;
- "both" sides: the head ranks and the tail ranks are pooled before averaging.
"""

from __future__ import annotations

import torch
from torch import Tensor


def ranks_from_scores(true_score: Tensor, all_scores: Tensor) -> dict[str, Tensor]:
    """``true_score`` [B], ``all_scores`` [B, M] (NaN: filtered out) -> ranks [B] each."""
    true_score = true_score.unsqueeze(-1)
    optimistic = (all_scores > true_score).sum(dim=1) + 1
    pessimistic = (all_scores >= true_score).sum(dim=1)
    return {
        "optimistic": optimistic.float(),
        "pessimistic": pessimistic.float(),
        "realistic": (optimistic + pessimistic).float() * 0.5,
    }


def filter_scores_(scores: Tensor, rows: Tensor, cols: Tensor, true_index: Tensor) -> Tensor:
    """Set ``scores[rows, cols]`` (other known true candidates) to NaN, keeping each row's
    true candidate ``true_index`` [B]; in place, returns ``scores`` [B, M]."""
    batch = torch.arange(scores.shape[0], device=scores.device)
    true_score = scores[batch, true_index].clone()
    scores[rows, cols] = float("nan")
    scores[batch, true_index] = true_score
    return scores


class KnownTriples:
    """Known true ``(anchor, candidate)`` pairs of one relation, for filtering (CSR lookup).

    ``anchors`` / ``candidates``: int64 [K] local indices; ``num_anchors``: size of the
    anchor's node type. :meth:`lookup` gives, for a batch of anchors [B], the ``(rows,
    cols)`` pairs of every known candidate of each anchor.
    """

    def __init__(self, anchors: Tensor, candidates: Tensor, num_anchors: int):
        order = torch.argsort(anchors, stable=True)
        self.candidates = candidates[order]
        counts = torch.bincount(anchors, minlength=num_anchors)
        self.ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

    def to(self, device) -> KnownTriples:
        self.candidates, self.ptr = self.candidates.to(device), self.ptr.to(device)
        return self

    def lookup(self, anchors: Tensor) -> tuple[Tensor, Tensor]:
        starts, ends = self.ptr[anchors], self.ptr[anchors + 1]
        counts = ends - starts
        rows = torch.repeat_interleave(torch.arange(len(anchors), device=anchors.device), counts)
        offsets = torch.cumsum(counts, 0) - counts
        within = torch.arange(int(counts.sum()), device=anchors.device) - offsets[rows]
        return rows, self.candidates[starts[rows] + within]


def rank_metrics(ranks: Tensor, ks=(1, 3, 10)) -> dict[str, float]:
    """``mrr``, ``mr`` and ``hits@k`` of realistic ranks [n] (empty -> zeros)."""
    if ranks.numel() == 0:
        return {"mrr": 0.0, "mr": 0.0, **{f"hits@{k}": 0.0 for k in ks}}
    ranks = ranks.double()
    metrics = {"mrr": (1.0 / ranks).mean().item(), "mr": ranks.mean().item()}
    for k in ks:
        metrics[f"hits@{k}"] = (ranks <= k).double().mean().item()
    return metrics

"""Relation-aware evidence for link prediction: "like the query's other links".

For a predicted relation ``r`` and a pair ``(h, t)``, :class:`ViaLinks` adds::

    score_r(h, t) += sum_g u[r, g] * out_g(h, t) + v[r, g] * in_g(h, t)

    out_g(h, t) = share of h's *other* r-tails  that share a neighbour by g with t
    in_g(h, t)  = share of t's *other* r-heads  that share a neighbour by g with h

``g`` runs over the predicate / direction groups of :class:`fusion.tasks.link.
SharedNeighbours` (brand, category ...): an accessory whose known products are toy cars of
one brand makes another toy car of that brand likely (``out``); a product whose known
accessories are battery packs of its brand makes another such pack likely (``in``). These
are the two-hop, relation-then-attribute paths of path-ranking link prediction (Lao and
Cohen, 2010) read as features, each a fraction in [0, 1], so the weights carry over
between graphs of other sizes. The link ``(h, t)`` itself is never its own evidence: it is
left out of both counts (it is a training edge at training time, a known edge at scoring
time), so a training edge's score does not see itself and known links are scored as the
held-out ones are.

``u``, ``v`` ``[R, G]`` start at zero (stored divided by :data:`SHARED_SCALE`, as the
shared-neighbour weights are). The links are the training edges of the predicted relations
in the link task and the graph's edges of them in :class:`fusion.scoring.LinkScorer`. Node ids are those of the shared-neighbour matrix (``SharedNeighbours.ids``).
Shapes: :meth:`forward` ``h``, ``t`` [B] ids, ``r`` [B] -> [B]; :meth:`score_tails` ``h``
[B], :meth:`score_heads` ``t`` [B] (one relation per call), ``candidates`` [M] -> [B, M].
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

SHARED_SCALE = 10.0  # w is learned x 10: Adam at the link task's lr 0.001 moves it fast enough


def _group_sums(x: Tensor, n: int, groups: int) -> Tensor:
    """Sparse ``[B, G * n]`` -> dense ``[B, G]`` row sums per group of ``n`` columns."""
    x = x.coalesce()
    row, col = x.indices()
    out = torch.zeros(x.shape[0], groups, device=x.device)
    return out.index_put_((row, col // n), x.values().float(), accumulate=True)


def _cross(left: Tensor, weight: Tensor, right: Tensor, n: int) -> Tensor:
    """``out[b, m] = sum_g weight[g] * left[b, g-block] . right[m, g-block]`` for sparse
    ``left`` [B, G * n], ``right`` [M, G * n], ``weight`` [G] -> dense [B, M]."""
    left = left.coalesce()
    row, col = left.indices()
    scaled = torch.sparse_coo_tensor(
        left.indices(), left.values() * weight[col // n], left.shape, check_invariants=True
    )
    with warnings.catch_warnings():  # torch: "Sparse CSR tensor support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        out = torch.sparse.mm(scaled, right.coalesce().t())
    return out.to_dense() if out.is_sparse else out


class ViaLinks(torch.nn.Module):
    """The "like the other links" term (module docstring).

    Args:
        shared: the :class:`fusion.tasks.link.SharedNeighbours` whose matrix ``A``
            ``[N, G * N]`` (and ids) it reads.
        links: ``[(relation index, heads [E], tails [E])]``, ids of ``shared``.
        num_relations: ``R``.
    """

    def __init__(self, shared, links: list[tuple[int, Tensor, Tensor]], num_relations: int):
        super().__init__()
        self.scale = SHARED_SCALE
        self.n, self.g, self.r = shared.n, max(1, len(shared.groups)), num_relations
        self.A = shared.A
        n, num = self.n, num_relations
        heads = torch.cat([h.long().cpu() + r * n for r, h, _ in links] or [torch.zeros(0, dtype=torch.long)])  # fmt: skip
        tails = torch.cat([t.long().cpu() for _, _, t in links] or [torch.zeros(0, dtype=torch.long)])  # fmt: skip
        keep = torch.unique(heads * n + tails)  # one count per distinct link
        heads, tails = keep // n, keep % n
        self.keys = keep  # sorted (r * N + h) * N + t
        ones = torch.ones(len(keep))
        # R [R * N, N]: row r * N + h, column t; Rt [R * N, N]: row r * N + t, column h
        R = torch.sparse_coo_tensor(
            torch.stack([heads, tails]), ones, (num * n, n), check_invariants=True
        ).coalesce()
        rel, h_local = heads // n, heads % n
        Rt = torch.sparse_coo_tensor(
            torch.stack([rel * n + tails, h_local]), ones, (num * n, n), check_invariants=True
        ).coalesce()
        with warnings.catch_warnings():  # torch: "Sparse CSR tensor support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            self.P = torch.sparse.mm(R, self.A).coalesce()  # [R * N, G * N]: h's tails have
            self.Q = torch.sparse.mm(Rt, self.A).coalesce()  # what t's heads have
        self.deg_out = torch.zeros(num * n).index_add_(0, heads, ones)
        self.deg_in = torch.zeros(num * n).index_add_(0, rel * n + tails, ones)
        self.D = _group_sums(self.A, n, self.g)  # [N, G]: neighbours of each node per group
        self.u = torch.nn.Parameter(torch.zeros(num_relations, self.g))
        self.v = torch.nn.Parameter(torch.zeros(num_relations, self.g))

    def _rows(self, matrix: Tensor, ids: Tensor) -> Tensor:
        return matrix.index_select(0, ids.to(matrix.device)).coalesce()

    def _known(self, r: Tensor, h: Tensor, t: Tensor) -> Tensor:
        """1.0 where ``(h, r, t)`` is one of the links (broadcasting), else 0.0."""
        key = (r * self.n + h) * self.n + t
        keys = self.keys.to(key.device)
        if not len(keys):
            return torch.zeros(key.shape, device=key.device)
        pos = torch.searchsorted(keys, key).clamp(max=len(keys) - 1)
        return (keys[pos] == key).float()

    def _combine(self, out_raw, in_raw, known, d_t, d_h, deg_out, deg_in, u, v) -> Tensor:
        """Leave the link itself out of both counts, then divide by the other links."""
        out_part = (out_raw - known * (d_t * u).sum(-1)) / (deg_out - known).clamp(min=1)
        in_part = (in_raw - known * (d_h * v).sum(-1)) / (deg_in - known).clamp(min=1)
        return self.scale * (out_part + in_part)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        n, g = self.n, self.g
        rh, rt = r * n + h, r * n + t
        a_h, a_t = self._rows(self.A, h), self._rows(self.A, t)
        u, v = self.u[r], self.v[r]  # [B, G]
        out_raw = (_group_sums(self._rows(self.P, rh) * a_t, n, g) * u).sum(-1)
        in_raw = (_group_sums(self._rows(self.Q, rt) * a_h, n, g) * v).sum(-1)
        dev = self.D.device
        return self._combine(
            out_raw, in_raw, self._known(r, h, t), self.D[t.to(dev)], self.D[h.to(dev)],
            self.deg_out[rh.to(dev)], self.deg_in[rt.to(dev)], u, v,
        )  # fmt: skip

    def _one_relation(self, r: Tensor) -> int:
        if len(r) and bool((r != r[0]).any()):
            raise ValueError("ViaLinks.score_tails / score_heads take one relation per call")
        return int(r[0]) if len(r) else 0

    def score_tails(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        """``[B, M]`` terms of ``(h_b, r, candidates_m)``."""
        rel, n = self._one_relation(r), self.n
        u, v = self.u[rel], self.v[rel]
        out_raw = _cross(self._rows(self.P, h + rel * n), u, self._rows(self.A, candidates), n)
        in_raw = _cross(self._rows(self.A, h), v, self._rows(self.Q, candidates + rel * n), n)
        known = self._known(torch.tensor(rel), h[:, None], candidates[None, :])
        dev = self.D.device
        return self._combine(
            out_raw, in_raw, known, self.D[candidates.to(dev)][None], self.D[h.to(dev)][:, None],
            self.deg_out[(h + rel * n).to(dev)][:, None],
            self.deg_in[(candidates + rel * n).to(dev)][None], u, v,
        )  # fmt: skip

    def score_heads(self, t: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        """``[B, M]`` terms of ``(candidates_m, r, t_b)``."""
        rel, n = self._one_relation(r), self.n
        u, v = self.u[rel], self.v[rel]
        out_raw = _cross(self._rows(self.A, t), u, self._rows(self.P, candidates + rel * n), n)
        in_raw = _cross(self._rows(self.Q, t + rel * n), v, self._rows(self.A, candidates), n)
        known = self._known(torch.tensor(rel), candidates[None, :], t[:, None])
        dev = self.D.device
        return self._combine(
            out_raw, in_raw, known, self.D[t.to(dev)][:, None], self.D[candidates.to(dev)][None],
            self.deg_out[(candidates + rel * n).to(dev)][None],
            self.deg_in[(t + rel * n).to(dev)][:, None], u, v,
        )  # fmt: skip

    def to(self, *args, **kwargs):
        for name in ("A", "P", "Q", "deg_out", "deg_in", "D", "keys"):
            setattr(self, name, getattr(self, name).to(*args, **kwargs))
        return super().to(*args, **kwargs)


__all__ = ["ViaLinks"]

"""Link decoders: score a triple ``(h, r, t)`` from the head and tail node embeddings.

- ``distmult``: ``score = sum_i h_i * w_r,i * t_i`` with one diagonal ``w_r`` per relation
  (Yang et al., 2015, "Embedding Entities and Relations for Learning and Inference in
  Knowledge Bases"); the R-GCN link predictor (Schlichtkrull et al., 2018, section 4).
- ``dot``: ``score = <h, t>`` (relation-agnostic).
- ``bilinear``: ``score = h^T W_r t`` with a full ``d x d`` matrix per relation (RESCAL,
  Nickel et al., 2011, "A Three-Way Model for Collective Learning on Multi-Relational
  Data"): not symmetric, so it can tell the roles apart (an accessory *for* a product is
  not a product for an accessory, and two products alike are not accessories of each other).

Shapes: :meth:`forward` ``h`` [B, d], ``r`` [B] int64, ``t`` [B, d] -> [B];
:meth:`score_tails` ``h`` [B, d], ``r`` [B], ``candidates`` [M, d] -> [B, M] (every
candidate as the tail); :meth:`score_heads` likewise with ``t`` as the given side.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..model import ConfigError
from ..registry import Registry

DECODERS: Registry[nn.Module] = Registry("decoder", unknown_error=ConfigError)


@DECODERS.register("distmult")
class DistMult(nn.Module):
    def __init__(self, num_relations: int, dim: int):
        super().__init__()
        self.relation = nn.Parameter(torch.ones(num_relations, dim))

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (h * self.relation[r] * t).sum(-1)

    def score_tails(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        return (h * self.relation[r]) @ candidates.T

    def score_heads(self, t: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        return (t * self.relation[r]) @ candidates.T


@DECODERS.register("dot")
class Dot(nn.Module):
    def __init__(self, num_relations: int, dim: int):
        super().__init__()

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (h * t).sum(-1)

    def score_tails(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        return h @ candidates.T

    def score_heads(self, t: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        return t @ candidates.T


@DECODERS.register("bilinear")
class Bilinear(nn.Module):
    def __init__(self, num_relations: int, dim: int):
        super().__init__()
        self.relation = nn.Parameter(torch.eye(dim).repeat(num_relations, 1, 1))

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return torch.einsum("bi,bij,bj->b", h, self.relation[r], t)

    def score_tails(self, h: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        return torch.einsum("bi,bij->bj", h, self.relation[r]) @ candidates.T

    def score_heads(self, t: Tensor, r: Tensor, candidates: Tensor) -> Tensor:
        return torch.einsum("bij,bj->bi", self.relation[r], t) @ candidates.T


@torch.no_grad()
def start_small(decoder: nn.Module, value: float = 0.01) -> None:
    """Set a decoder's relation parameters to ``value`` times their initial value (DistMult:
    ``value`` everywhere), so that it scores every triple close to 0 at first and learns a
    correction on top of another score (the link task's text prior) while the loss still
    reaches the GNN from the first step. Decoders without relation parameters (``dot``)
    are left as they are."""
    relation = getattr(decoder, "relation", None)
    if isinstance(relation, nn.Parameter):
        relation.mul_(value)


def get_decoder(name: str, num_relations: int, dim: int) -> nn.Module:
    """The decoder registered as ``name`` for ``num_relations`` relations of ``dim``-wide
    embeddings (:class:`ConfigError` with a suggestion for an unknown name)."""
    return DECODERS.get(name, num_relations=num_relations, dim=dim)

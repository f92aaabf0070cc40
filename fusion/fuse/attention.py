"""Modality attention: a softmax over the present modalities."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import FUSIONS, Fusion, masked_softmax

__all__ = ["AttentionFusion"]


@FUSIONS.register("attention")
class AttentionFusion(Fusion):
    r"""Attention over modalities (additive attention, as in Bahdanau et al. 2015 and
    the modality attention of Moon et al., NAACL 2018, "Multimodal Named Entity
    Recognition for Short Social Media Posts").

    .. math::
        h_m = W_m x_m + b_m, \qquad
        s_m = w^\top \tanh(W_a h_m + b_a), \qquad
        a_m = \frac{\exp s_m}{\sum_{k \in P} \exp s_k}\ (m \in P),\ a_m = 0\ (m \notin P),
        \qquad z = \sum_{m \in P} a_m h_m

    with :math:`P` the node's present modalities; nodes with :math:`P = \emptyset` get
    :attr:`empty`. After each forward, :attr:`last_weights` holds the detached
    ``a: [N, M]`` (columns in :attr:`modalities` order; rows sum to 1, or to 0 for a
    node with no modality); :meth:`weights` computes it for given inputs.

    Args:
        in_dims: ``{modality: d_m}``.
        out_dim: output size (also the size of each ``h_m``).
        attn_dim: size of the attention hidden layer ``W_a`` (default ``out_dim``).
        dropout: dropout on the attention weights (default ``0.0``).

    Shapes:
        input ``x[m]: [N, d_m]``, ``mask[m]: [N]``; output ``[N, out_dim]``.
    """

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        attn_dim: int | None = None,
        dropout: float = 0.0,
    ):
        attn_dim = attn_dim or out_dim
        super().__init__(in_dims, out_dim, attn_dim=attn_dim, dropout=dropout)
        self.projs = nn.ModuleList(nn.Linear(d, out_dim) for d in self.in_dims.values())
        self.attn = nn.Linear(out_dim, attn_dim)
        self.score = nn.Linear(attn_dim, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.last_weights: Tensor | None = None

    def fuse(self, xs: list[Tensor], mask: Tensor) -> Tensor:
        h = torch.stack(
            [proj(x) for proj, x in zip(self.projs, xs, strict=True)], dim=1
        )  # [N, M, out]
        scores = self.score(torch.tanh(self.attn(h))).squeeze(-1)  # [N, M]
        a = masked_softmax(scores, mask, dim=1)
        self.last_weights = a.detach()
        return (self.dropout(a).unsqueeze(-1) * h).sum(dim=1)

    @torch.no_grad()
    def weights(self, x: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> Tensor:
        """The attention weights ``[N, M]`` for ``x`` under ``mask`` (no gradient)."""
        self.forward(x, mask)
        assert self.last_weights is not None
        return self.last_weights

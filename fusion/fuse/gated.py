"""Gated Multimodal Unit, generalised to M modalities."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import FUSIONS, Fusion, masked_softmax

__all__ = ["GatedFusion"]


@FUSIONS.register("gated")
class GatedFusion(Fusion):
    r"""The Gated Multimodal Unit of Arevalo et al., "Gated Multimodal Units for
    Information Fusion" (ICLR workshop 2017), generalised from two to M modalities.

    .. math::
        h_m = \tanh(W_m x_m + b_m), \qquad
        g = W_z\,[x_1; \dots; x_M; b_1; \dots; b_M] + c_z \in \mathbb{R}^{M \times d},

    .. math::
        z_m = \operatorname{softmax}_{m \in P}(g_{m}) \ \text{(per output dimension)},
        \qquad h = \sum_{m \in P} z_m \odot h_m

    For two modalities the softmax is the paper's sigmoid gate
    (:math:`z = \sigma(g_1 - g_2)`, :math:`h = z\,h_1 + (1 - z)\,h_2`). Missing modalities
    enter the gate network as zeros plus their mask bit :math:`b_m` and get gate 0 (the
    softmax runs over the present modalities :math:`P` only), so their features are never
    read; a node with a single modality gets exactly its :math:`h_m`; nodes with none get
    :attr:`empty`.

    Args:
        in_dims: ``{modality: d_m}``.
        out_dim: output size ``d``.
        dropout: dropout on the gate network's input (default ``0.0``).

    Shapes:
        input ``x[m]: [N, d_m]``, ``mask[m]: [N]``; output ``[N, out_dim]``.
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int, *, dropout: float = 0.0):
        super().__init__(in_dims, out_dim, dropout=dropout)
        dims = list(self.in_dims.values())
        self.projs = nn.ModuleList(nn.Linear(d, out_dim) for d in dims)
        self.gate = nn.Linear(sum(dims) + len(dims), len(dims) * out_dim)
        self.dropout = nn.Dropout(dropout)

    def fuse(self, xs: list[Tensor], mask: Tensor) -> Tensor:
        h = torch.stack(
            [torch.tanh(proj(x)) for proj, x in zip(self.projs, xs, strict=True)], dim=1
        )
        gate_in = self.dropout(torch.cat([*xs, mask.to(xs[0].dtype)], dim=1))
        g = self.gate(gate_in).view(-1, len(xs), self.out_dim)  # [N, M, out]
        z = masked_softmax(g, mask.unsqueeze(-1), dim=1)
        return (z * h).sum(dim=1)

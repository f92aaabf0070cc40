"""Masked mean of per-modality projections."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import FUSIONS, Fusion

__all__ = ["MeanFusion"]


@FUSIONS.register("mean")
class MeanFusion(Fusion):
    r"""Mean of the present modalities after a per-modality linear projection.

    .. math::
        h_m = W_m x_m + b_m, \qquad
        z = \frac{1}{|P|} \sum_{m \in P} h_m

    with :math:`P` the node's present modalities (nodes with :math:`P = \emptyset` get
    :attr:`empty`). A missing modality is left out of both the sum and the count.

    Args:
        in_dims: ``{modality: d_m}``.
        out_dim: output size.

    Shapes:
        input ``x[m]: [N, d_m]``, ``mask[m]: [N]``; output ``[N, out_dim]``.
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int):
        super().__init__(in_dims, out_dim)
        self.projs = nn.ModuleList(nn.Linear(d, out_dim) for d in self.in_dims.values())

    def fuse(self, xs: list[Tensor], mask: Tensor) -> Tensor:
        h = torch.stack(
            [proj(x) for proj, x in zip(self.projs, xs, strict=True)], dim=1
        )  # [N, M, out]
        weight = mask.to(h.dtype).unsqueeze(-1)
        return (h * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1.0)

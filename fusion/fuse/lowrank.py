"""Low-rank Multimodal Fusion: the tensor fusion with rank-r weight factors."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import FUSIONS, Fusion

__all__ = ["LowRankFusion"]


@FUSIONS.register("lowrank")
class LowRankFusion(Fusion):
    r"""Low-rank Multimodal Fusion of Liu et al., "Efficient Low-rank Multimodal Fusion with
    Modality-Specific Factors" (ACL 2018).

    The tensor-fusion output :math:`W \cdot \operatorname{vec}(\otimes_m [x_m; 1])` with the
    weight tensor decomposed into ``rank`` modality-specific factors
    :math:`W_m^{(i)} \in \mathbb{R}^{(d_m + 1) \times d}`:

    .. math::
        z = \sum_{i=1}^{r} \lambda_i \bigodot_{m=1}^{M}
            \left( [x_m; 1]^\top W_m^{(i)} \right) + c

    (:math:`\odot`: element-wise product over modalities; :math:`\lambda`, :math:`c`
    learned), computed in :math:`O(r \sum_m d_m d)` without building the tensor.

    **Missing modality:** like :class:`~fusion.fuse.tensor.TensorFusion`, its vector is
    replaced by the appended-1 basis vector :math:`[0, \dots, 0, 1]`, so its factor
    contributes only its last row :math:`W_m^{(i)}[d_m]` (the row that multiplies the
    constant 1). That is the slice of the full fusion tensor at modality :math:`m`'s
    constant-1 coordinate, i.e. the low-rank fusion of the present modalities; it does not
    depend on the missing features. Unlike TFN this neutral factor is a learned vector, not
    literally 1 (it is what the factorised weight tensor holds there). Nodes with no
    modality get :attr:`empty`.

    Args:
        in_dims: ``{modality: d_m}``.
        out_dim: output size ``d``.
        rank: the rank ``r`` (default 4).
        dropout: dropout on each ``x_m`` (not on the appended 1) (default ``0.0``).

    Shapes:
        input ``x[m]: [N, d_m]``, ``mask[m]: [N]``; output ``[N, out_dim]``.
    """

    def __init__(
        self, in_dims: Mapping[str, int], out_dim: int, *, rank: int = 4, dropout: float = 0.0
    ):
        if not isinstance(rank, int) or rank <= 0:
            raise ValueError(f"fusion 'lowrank': rank must be a positive int, got {rank!r}")
        super().__init__(in_dims, out_dim, rank=rank, dropout=dropout)
        self.rank = rank
        self.factors = nn.ParameterList(
            nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, d + 1, out_dim)))
            for d in self.in_dims.values()
        )
        self.fusion_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)))
        self.fusion_bias = nn.Parameter(torch.zeros(out_dim))
        self.dropout = nn.Dropout(dropout)

    def fuse(self, xs: list[Tensor], mask: Tensor) -> Tensor:
        prod: Tensor | None = None
        for x, factor in zip(xs, self.factors, strict=True):
            z = torch.cat([self.dropout(x), x.new_ones(x.shape[0], 1)], dim=1)  # missing: [0..0, 1]
            f = torch.matmul(z, factor)  # [rank, N, out]
            prod = f if prod is None else prod * f
        assert prod is not None
        out = torch.einsum("r,rnd->nd", self.fusion_weights[0], prod)
        return out + self.fusion_bias

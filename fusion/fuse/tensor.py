"""Tensor Fusion Network: the outer product of the modalities, each with a constant 1."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import FUSIONS, Fusion

__all__ = ["TensorFusion"]

MAX_PRODUCT = 1 << 20


@FUSIONS.register("tensor")
class TensorFusion(Fusion):
    r"""The Tensor Fusion Network of Zadeh et al., "Tensor Fusion Network for Multimodal
    Sentiment Analysis" (EMNLP 2017).

    .. math::
        h_m = \operatorname{ReLU}(W_m x_m + b_m) \in \mathbb{R}^{k_m}, \qquad
        Z = \begin{bmatrix} h_1 \\ 1 \end{bmatrix} \otimes \dots \otimes
            \begin{bmatrix} h_M \\ 1 \end{bmatrix}
            \in \mathbb{R}^{(k_1 + 1) \times \dots \times (k_M + 1)},

    .. math::
        z = W_2 \operatorname{ReLU}(W_1 \operatorname{vec}(Z) + c_1) + c_2

    The appended 1 keeps every lower-order interaction (each single modality, each pair...)
    inside :math:`Z`. The projections :math:`k_m` (``hidden``) are small so that
    :math:`\prod_m (k_m + 1)` stays small (8 per modality and three modalities: 729).

    **Missing modality:** its factor is replaced by the appended-1 basis vector
    :math:`[0, \dots, 0, 1]`, i.e. :math:`h_m := 0`. Every entry of :math:`Z` that
    involves a coordinate of :math:`h_m` is then exactly 0, and the remaining entries
    (modality :math:`m` at its constant-1 coordinate) are exactly the tensor of the present
    modalities alone, so the product ignores the missing modality: the output is the TFN
    of the present modalities (sharing the post-fusion weights). Nodes with no modality
    get :attr:`empty`.

    Args:
        in_dims: ``{modality: d_m}``.
        out_dim: output size.
        hidden: ``k_m``, one int for all modalities or ``{modality: k_m}`` (default 8).
        post_hidden: size of the post-fusion hidden layer (default ``out_dim``).
        dropout: dropout on ``vec(Z)`` (default ``0.0``).

    Shapes:
        input ``x[m]: [N, d_m]``, ``mask[m]: [N]``; output ``[N, out_dim]``; the
        intermediate ``vec(Z)`` is ``[N, prod_m (k_m + 1)]``.
    """

    def __init__(
        self,
        in_dims: Mapping[str, int],
        out_dim: int,
        *,
        hidden: int | Mapping[str, int] = 8,
        post_hidden: int | None = None,
        dropout: float = 0.0,
    ):
        post_hidden = post_hidden or out_dim
        hidden_cfg = dict(hidden) if isinstance(hidden, Mapping) else hidden
        super().__init__(
            in_dims, out_dim, hidden=hidden_cfg, post_hidden=post_hidden, dropout=dropout
        )
        ks = [
            int(hidden[m]) if isinstance(hidden, Mapping) else int(hidden) for m in self.modalities
        ]
        size = math.prod(k + 1 for k in ks)
        if size > MAX_PRODUCT:
            raise ValueError(
                f"fusion 'tensor': the outer product would have {size:,} entries per node "
                f"(hidden={ks}); use smaller hidden sizes or the 'lowrank' fusion"
            )
        self.hidden_dims = ks
        self.projs = nn.ModuleList(
            nn.Linear(d, k) for d, k in zip(self.in_dims.values(), ks, strict=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.post = nn.Sequential(
            nn.Linear(size, post_hidden), nn.ReLU(), nn.Linear(post_hidden, out_dim)
        )

    def fuse(self, xs: list[Tensor], mask: Tensor) -> Tensor:
        z: Tensor | None = None
        for i, (proj, x) in enumerate(zip(self.projs, xs, strict=True)):
            h = torch.relu(proj(x)) * mask[:, i : i + 1].to(x.dtype)  # missing -> [0, ..., 0]
            h = torch.cat([h, h.new_ones(h.shape[0], 1)], dim=1)  # [h; 1]
            z = h if z is None else (z.unsqueeze(-1) * h.unsqueeze(1)).flatten(1)
        assert z is not None
        return self.post(self.dropout(z))

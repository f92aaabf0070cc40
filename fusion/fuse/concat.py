"""Concatenation fusion with learned missing-modality embeddings."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import FUSIONS, Fusion

__all__ = ["ConcatFusion"]


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    r"""Early fusion by concatenation and a linear projection.

    .. math::
        \tilde x_m = \begin{cases} x_m & \text{if } m \text{ present} \\
                     e_m & \text{otherwise}\end{cases}, \qquad
        z = W\,[\tilde x_1; \dots; \tilde x_M; b_1; \dots; b_M] + c

    where :math:`e_m \in \mathbb{R}^{d_m}` is a learned per-modality "missing" embedding
    (initialised to zeros) and :math:`b_m \in \{0, 1\}` the mask bit, also an input, so the
    projection can tell "missing" from "present with these values". The missing features
    themselves are never read. Nodes with no modality get :attr:`empty` instead.

    Args:
        in_dims: ``{modality: d_m}``.
        out_dim: output size.
        dropout: dropout on the concatenated input (default ``0.0``).

    Shapes:
        input ``x[m]: [N, d_m]``, ``mask[m]: [N]``; output ``[N, out_dim]``.
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int, *, dropout: float = 0.0):
        super().__init__(in_dims, out_dim, dropout=dropout)
        dims = list(self.in_dims.values())
        self.missing = nn.ParameterList([nn.Parameter(torch.zeros(d)) for d in dims])
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(sum(dims) + len(dims), out_dim)

    def fuse(self, xs: list[Tensor], mask: Tensor) -> Tensor:
        parts = [
            torch.where(mask[:, i : i + 1], x, e.to(x.dtype))
            for i, (x, e) in enumerate(zip(xs, self.missing, strict=True))
        ]
        parts.append(mask.to(xs[0].dtype))
        return self.proj(self.dropout(torch.cat(parts, dim=1)))

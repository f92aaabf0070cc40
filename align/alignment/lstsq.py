"""``lstsq``: a least-squares linear map ``W`` from the image space to the text space.

The cross-modal mapping of Frome et al., "DeViSE: A Deep Visual-Semantic Embedding Model"
(NeurIPS 2013) in its closed linear form (ridge regression)::

    W, b = argmin ||V W + 1 b^T - T||^2 + alpha * s * ||W||^2      W [d_v, d_t], b [d_t]
    zt = t                 (the text space is kept: out = d_t)
    zv = v W + b

on L2-normalised features ``t`` [N, d_t], ``v`` [N, d_v]; ``s`` is the mean squared
singular value of the centred ``V`` (so ``alpha`` does not depend on the feature scale).
Solved once with :func:`torch.linalg.solve` on the centred normal equations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import ALIGNMENTS, Alignment, AlignmentData


@ALIGNMENTS.register("lstsq")
class LstsqAlignment(Alignment):
    """Ridge least squares image -> text (module docstring); ``dim`` is unused (the text
    space is kept)."""

    def __init__(self, text_dim: int, image_dim: int, dim: int = 128, seed: int = 0,
                 alpha: float = 0.1, info: dict | None = None):  # fmt: skip
        super().__init__(text_dim, image_dim, dim, seed, info, alpha=alpha)
        self.alpha = alpha
        self.register_buffer("W", torch.zeros(image_dim, text_dim))
        self.register_buffer("b", torch.zeros(text_dim))

    @property
    def out_dim(self) -> int:
        return self.text_dim

    def fit(self, data: AlignmentData) -> dict:
        device = self._device()
        t = F.normalize(data.text.float().to(device), dim=-1)
        v = F.normalize(data.image.float().to(device), dim=-1)
        mu_v, mu_t = v.mean(0), t.mean(0)
        vc, tc = v - mu_v, t - mu_t
        gram = vc.T @ vc
        scale = float(gram.diagonal().sum()) / gram.shape[0]
        eye = torch.eye(gram.shape[0], device=device)
        w = torch.linalg.solve(gram + self.alpha * max(scale, 1e-12) * eye, vc.T @ tc)
        self.W.copy_(w)
        self.b.copy_(mu_t - mu_v @ w)
        fit = ((v @ w + self.b - t) ** 2).sum(1).mean()
        return self._done({"pairs": len(t), "train_mse": float(fit)})

    def text_space(self, text: Tensor, context: Tensor | None) -> Tensor:
        return F.normalize(text, dim=-1)

    def image_space(self, image: Tensor, context: Tensor | None) -> Tensor:
        return F.normalize(image, dim=-1) @ self.W + self.b

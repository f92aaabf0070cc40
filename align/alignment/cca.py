"""``cca``: canonical correlation analysis of the frozen text and image features.

Hotelling, "Relations between two sets of variates" (Biometrika, 1936); fitted with
scikit-learn's :class:`sklearn.cross_decomposition.CCA` (NIPALS). Each modality's
features (``t`` [N, d_t], ``v`` [N, d_v]) are first reduced to their ``pre_dim`` principal
components (centred, :func:`torch.linalg.svd`; NIPALS on the full 1280-wide image features
would cost minutes), then sklearn standardises them and finds ``dim`` canonical
directions. Everything is folded into one affine map per modality::

    zt = (t - mu_t) @ R_t - s_t          R_t [d_t, dim]  (PCA basis / scale / CCA rotation)
    zv = (v - mu_v) @ R_v - s_v          R_v [d_v, dim]

so the k-th coordinates of ``zt`` and ``zv`` are maximally correlated on the training
pairs. ``mu``, ``R``, ``s`` are buffers, saved in ``model.safetensors``. ``dim`` is capped
at ``min(d_t, d_v, pre_dim)`` and, when fitting, at ``N - 1``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from .base import ALIGNMENTS, Alignment, AlignmentData, AlignmentError


def _pca(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``(mean [d], basis [d, k])`` of the rows of ``x`` [N, d]."""
    mean = x.mean(0)
    _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
    return mean, vh[:k].T


@ALIGNMENTS.register("cca")
class CCAAlignment(Alignment):
    """PCA + scikit-learn CCA (module docstring). ``max_iter``/``tol``: NIPALS, per component."""

    def __init__(self, text_dim: int, image_dim: int, dim: int = 48, seed: int = 0,
                 pre_dim: int = 128, max_iter: int = 200, tol: float = 1e-4,
                 info: dict | None = None):  # fmt: skip
        dim = min(dim, text_dim, image_dim, pre_dim)
        super().__init__(text_dim, image_dim, dim, seed, info, pre_dim=pre_dim,
                         max_iter=max_iter, tol=tol)  # fmt: skip
        self.pre_dim, self.max_iter, self.tol = pre_dim, max_iter, tol
        for side, width in (("t", text_dim), ("v", image_dim)):
            self.register_buffer(f"mean_{side}", torch.zeros(width))
            self.register_buffer(f"rot_{side}", torch.zeros(width, dim))
            self.register_buffer(f"shift_{side}", torch.zeros(dim))

    def fit(self, data: AlignmentData) -> dict:
        from sklearn.cross_decomposition import CCA
        from sklearn.exceptions import ConvergenceWarning

        n = len(data)
        dim = min(self.dim, n - 1)
        if dim < 1:
            raise AlignmentError("cca needs at least 2 products with text and an image")
        device = self._device()
        sides = {}
        for side, x in (("t", data.text), ("v", data.image)):
            x = torch.nn.functional.normalize(x.float().cpu(), dim=-1)
            mean, basis = _pca(x, min(self.pre_dim, n - 1, x.shape[1]))
            sides[side] = (mean, basis, ((x - mean) @ basis).double().numpy())
        cca = CCA(n_components=dim, max_iter=self.max_iter, tol=self.tol, scale=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            cca.fit(sides["t"][2], sides["v"][2])
        fitted = {"t": (cca._x_mean, cca._x_std, cca.x_rotations_),
                  "v": (cca._y_mean, cca._y_std, cca.y_rotations_)}  # fmt: skip
        for side, (mean, basis, _) in sides.items():
            m2, s2, rot = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in fitted[side])
            full = basis @ (rot / s2[:, None])  # [d, dim]
            getattr(self, f"mean_{side}").copy_(mean.to(device))
            getattr(self, f"rot_{side}").zero_()
            getattr(self, f"rot_{side}")[:, :dim] = full.to(device)
            getattr(self, f"shift_{side}").zero_()
            getattr(self, f"shift_{side}")[:dim] = ((m2 / s2) @ rot).to(device)
        return self._done({"pairs": n, "components": dim,
                           "converged": not any(issubclass(w.category, ConvergenceWarning)
                                                for w in caught)})  # fmt: skip

    def text_space(self, text: Tensor, context: Tensor | None) -> Tensor:
        return (torch.nn.functional.normalize(text, dim=-1) - self.mean_t) @ self.rot_t - self.shift_t

    def image_space(self, image: Tensor, context: Tensor | None) -> Tensor:
        return (torch.nn.functional.normalize(image, dim=-1) - self.mean_v) @ self.rot_v - self.shift_v

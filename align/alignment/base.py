"""What every cross-modal alignment method shares: the base class, its registry, the data.

An alignment maps the frozen features of two modalities of the same products, text
``t`` [N, d_t] (e.g. MiniLM, 384) and image ``v`` [N, d_v] (e.g. EfficientNet-Lite0,
1280), into one space where a product's name and its photo are close::

    zt = method.embed_text(t, context)     # [N, dim], L2-normalised
    zv = method.embed_image(v, context)    # [N, dim], L2-normalised
    zt @ zv.T                              # cosine: name <-> photo

``context`` [N, d_t] is the mean text feature of each product's graph neighbours (its
colour, category, season nodes...; :class:`AlignmentData`); only the graph method
(``infonce-graph``) reads it, the others ignore it. A method is one class in one file,
registered in :data:`ALIGNMENTS` (the project's one :class:`fusion.registry.Registry`
class); ``fit(data)`` learns it in place and returns an info dict; it is saved as
``config.json`` + ``model.safetensors`` (:func:`fusion.registry.save_module`: every matrix,
CCA's too, is a buffer or a parameter) and rebuilt by :func:`fusion.registry.load_module`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusion.registry import Registry

__all__ = ["ALIGNMENTS", "Alignment", "AlignmentData", "AlignmentError", "info_nce"]


class AlignmentError(ValueError):
    """An alignment cannot be fitted or used (too few pairs, wrong widths); says what to do."""


class Alignment(nn.Module):
    """Base class: text features [N, d_t] and image features [N, d_v] -> one space [N, dim].

    Args:
        text_dim, image_dim: the widths of the frozen features.
        dim: the width of the shared space (methods that keep the text space ignore it).
        seed: the seed of everything random in :meth:`fit`.
        info: what :meth:`fit` reported (kept in ``config.json``).
    """

    name: str = ""
    uses_graph: bool = False  # reads the graph context (neighbours' text features)
    trained_by_epochs: bool = False  # takes an ``epochs`` option (gradient training)

    def __init__(self, text_dim: int, image_dim: int, dim: int = 128, seed: int = 0,
                 info: dict | None = None, **options):  # fmt: skip
        super().__init__()
        if min(text_dim, image_dim, dim) < 1:
            raise AlignmentError(f"{self.name}: widths must be >= 1, got text_dim={text_dim}, "
                                 f"image_dim={image_dim}, dim={dim}")  # fmt: skip
        self.text_dim, self.image_dim, self.dim, self.seed = text_dim, image_dim, dim, seed
        self.info = dict(info or {})
        self.config = {"name": self.name, "text_dim": text_dim, "image_dim": image_dim,
                       "dim": dim, "seed": seed, **options, "info": self.info}  # fmt: skip

    @property
    def fitted(self) -> bool:
        return bool(self.info.get("fitted"))

    # ------------------------------------------------------------------ to override
    def fit(self, data: AlignmentData) -> dict:
        """Learn the alignment from the pairs of ``data`` (in place); returns an info dict."""
        raise NotImplementedError

    def text_space(self, text: Tensor, context: Tensor | None) -> Tensor:
        """Unnormalised text embeddings [N, out] (``out``: :attr:`out_dim`)."""
        raise NotImplementedError

    def image_space(self, image: Tensor, context: Tensor | None) -> Tensor:
        """Unnormalised image embeddings [N, out]."""
        raise NotImplementedError

    @property
    def out_dim(self) -> int:
        return self.dim

    # ------------------------------------------------------------------ shared
    def embed_text(self, text, context=None) -> Tensor:
        """Text features [N, d_t] (and graph context [N, d_t]) -> L2-normalised [N, out]."""
        return F.normalize(self.text_space(self._input(text, self.text_dim, "text"),
                                           self._context(context, len(text))), dim=-1)  # fmt: skip

    def embed_image(self, image, context=None) -> Tensor:
        """Image features [N, d_v] (and graph context [N, d_t]) -> L2-normalised [N, out]."""
        return F.normalize(self.image_space(self._input(image, self.image_dim, "image"),
                                            self._context(context, len(image))), dim=-1)  # fmt: skip

    def forward(self, text, image, context=None) -> tuple[Tensor, Tensor]:
        return self.embed_text(text, context), self.embed_image(image, context)

    def _input(self, x, width: int, what: str) -> Tensor:
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
        x = x.to(dtype=torch.float32, device=self._device())
        if x.dim() != 2 or x.shape[1] != width:
            raise AlignmentError(
                f"{self.name}: {what} features of shape {tuple(x.shape)}; this alignment was "
                f"fitted on {what} features of width {width} (re-fit it after re-encoding)"
            )
        return x

    def _context(self, context, n: int) -> Tensor | None:
        if context is None or not self.uses_graph:
            return None
        return self._input(context, self.text_dim, "graph context")[:n]

    def _device(self) -> torch.device:
        for tensor in list(self.parameters()) + list(self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def _done(self, info: dict) -> dict:
        self.info.clear()
        self.info.update(info, fitted=True)
        return self.info


ALIGNMENTS: Registry[Alignment] = Registry("alignment method", base=Alignment)


@dataclass
class AlignmentData:
    """Paired features of the products an alignment learns from (rows = products).

    ``text`` [N, d_t], ``image`` [N, d_v]: frozen features of the same N products.
    ``neighbours`` [N, K] int64: rows of ``node_text`` that are each product's graph
    neighbours (its attribute and category nodes), ``-1`` padding; ``node_text`` [V, d_t]
    their text features. ``context()`` is the mean over the kept neighbours.
    """

    text: Tensor
    image: Tensor
    neighbours: Tensor | None = None
    node_text: Tensor | None = None

    def __post_init__(self):
        if len(self.text) != len(self.image):
            raise AlignmentError(f"{len(self.text)} text rows but {len(self.image)} image rows")
        if len(self.text) < 4:
            raise AlignmentError(
                f"{len(self.text)} products with both text and an image; an alignment needs "
                "at least 4 (run `kgf encode` on a catalogue with images)"
            )

    def __len__(self) -> int:
        return len(self.text)

    def subset(self, rows) -> AlignmentData:
        rows = torch.as_tensor(rows, dtype=torch.long)
        nb = self.neighbours[rows] if self.neighbours is not None else None
        return AlignmentData(self.text[rows], self.image[rows], nb, self.node_text)

    def context(self, keep: Tensor | None = None) -> Tensor | None:
        """Mean text feature of each product's neighbours [N, d_t] (zero without any);
        ``keep`` [N, K] bool drops neighbours (neighbour dropout)."""
        if self.neighbours is None or self.node_text is None:
            return None
        return neighbour_mean(self.neighbours, self.node_text, keep)


def neighbour_mean(neighbours: Tensor, node_text: Tensor, keep: Tensor | None = None) -> Tensor:
    """``mean_k node_text[neighbours[i, k]]`` over valid (``>= 0``, kept) k: [N, d_t]."""
    valid = neighbours >= 0
    if keep is not None:
        valid = valid & keep
    vecs = F.normalize(node_text.float(), dim=-1)[neighbours.clamp(min=0)]  # [N, K, d]
    summed = (vecs * valid[..., None]).sum(1)
    return summed / valid.sum(1, keepdim=True).clamp(min=1)


def info_nce(za: Tensor, zb: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE of paired rows (CLIP's form, as :mod:`fusion.tasks.contrastive`)::

        logits = za @ zb.T / temperature                # [B, B]
        loss = (CE(logits, arange B) + CE(logits.T, arange B)) / 2

    ``za``, ``zb``: L2-normalised [B, p]. van den Oord et al., "Representation Learning with
    Contrastive Predictive Coding" (2018); Radford et al., CLIP (ICML 2021).
    """
    logits = za @ zb.T / temperature
    target = torch.arange(len(za), device=za.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def recall_at(zq: Tensor, zc: Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Recall@k of retrieving row i of ``zc`` for row i of ``zq`` (both normalised)."""
    out = {f"r@{k}": 0.0 for k in ks}
    for start in range(0, len(zq), 1024):
        scores = zq[start : start + 1024] @ zc.T
        true = torch.arange(start, start + len(scores), device=scores.device)
        own = scores[torch.arange(len(scores)), true]
        rank = (scores > own[:, None]).sum(1)
        for k in ks:
            out[f"r@{k}"] += float((rank < k).sum())
    return {key: value / max(len(zq), 1) for key, value in out.items()}

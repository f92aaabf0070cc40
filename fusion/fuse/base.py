"""The fusion interface: per-modality node features + presence masks -> one vector per node.

Every fusion module takes

* ``x: dict[str, Tensor[N, d_m]]``, one feature matrix per modality (``d_m`` may differ per
  modality; a modality absent from the dict is missing for every node), and
* ``mask: dict[str, BoolTensor[N]]`` (``True`` = the node has that modality; ``None`` or an
  absent key = present wherever ``x`` has the modality),

and returns ``Tensor[N, out_dim]``.

**Missing modalities are masked out, never zero-imputed.** Before a variant sees the
features, every masked-out row is replaced by zeros with ``torch.where`` (so even NaN or
inf in a masked row cannot leak into the output or its gradient), and each variant then
ignores those rows by construction (a masked mean, a softmax over the present modalities
only, ...): its docstring says exactly how. Changing the features of a masked-out modality
never changes the output.

**Nodes with no modality at all** get the learned "no-feature" vector ``self.empty``
(``[out_dim]``, initialised to zeros) instead of the variant's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..registry import Registry, check_json_config, load_module, save_module

__all__ = ["FUSIONS", "Fusion"]

FUSIONS: Registry[Fusion] = Registry("fusion")


class Fusion(nn.Module):
    """Base class of the fusion modules (see the module docstring for the contract).

    Args:
        in_dims: feature size per modality, e.g. ``{"text": 384, "image": 1280}``. The
            modalities are kept sorted by name (:attr:`modalities`), the order of every
            per-modality list (weights, ``last_weights`` columns...), so a config whose dict
            order changed (JSON tools) rebuilds the same module.
        out_dim: size of the fused vector.
        **options: the variant's own keyword arguments; stored in :attr:`config`.

    Subclasses implement :meth:`fuse`.
    """

    name: str = ""

    def __init__(self, in_dims: Mapping[str, int], out_dim: int, **options: Any):
        super().__init__()
        where = f"fusion {self.name or type(self).__name__!r}"
        if not isinstance(in_dims, Mapping) or not in_dims:
            raise ValueError(f"{where}: in_dims must be a non-empty dict modality -> size")
        for modality, dim in in_dims.items():
            if not isinstance(modality, str) or not isinstance(dim, int) or dim <= 0:
                raise ValueError(
                    f"{where}: in_dims[{modality!r}] = {dim!r}; sizes must be positive ints"
                )
        if not isinstance(out_dim, int) or out_dim <= 0:
            raise ValueError(f"{where}: out_dim must be a positive int, got {out_dim!r}")
        self.modalities: list[str] = sorted(in_dims)
        self.in_dims: dict[str, int] = {m: in_dims[m] for m in self.modalities}
        self.out_dim = out_dim
        self.config: dict[str, Any] = check_json_config(
            {"name": self.name, "in_dims": dict(self.in_dims), "out_dim": out_dim, **options}, where
        )
        self.empty = nn.Parameter(torch.zeros(out_dim))

    # -- the part a variant writes ---------------------------------------------------------

    def fuse(self, xs: list[Tensor], mask: Tensor) -> Tensor:
        """Fuse ``xs`` (one ``[N, d_m]`` per modality, in :attr:`modalities` order, masked-out
        rows already zero) under ``mask`` (``BoolTensor[N, M]``) into ``[N, out_dim]``.

        Rows with no modality are replaced by :attr:`empty` afterwards, but must be finite.
        """
        raise NotImplementedError

    # -- the shared part -------------------------------------------------------------------

    def forward(self, x: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> Tensor:
        """``x``: ``{modality: [N, d_m]}``; ``mask``: ``{modality: BoolTensor[N]}`` -> ``[N, out_dim]``."""
        xs, m = self.prepare(x, mask)
        out = self.fuse(xs, m)
        return torch.where(m.any(dim=1, keepdim=True), out, self.empty.to(out.dtype))

    def prepare(
        self, x: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """Check the inputs; return the per-modality features with masked-out rows set to 0
        and the mask as ``BoolTensor[N, M]``."""
        where = f"fusion {self.name!r}"
        mask = dict(mask or {})
        unknown = sorted((set(x) | set(mask)) - set(self.modalities))
        if unknown:
            raise ValueError(
                f"{where}: unknown modalities {unknown}; this module was built for "
                f"{self.modalities}"
            )
        ref = next((t for t in x.values() if t is not None), None)
        if ref is None:
            ref_mask = next((t for t in mask.values() if t is not None), None)
            if ref_mask is None:
                raise ValueError(f"{where}: no features and no masks given; cannot tell N")
            n, device, dtype = ref_mask.shape[0], ref_mask.device, self.empty.dtype
        else:
            n, device, dtype = ref.shape[0], ref.device, ref.dtype
        xs: list[Tensor] = []
        masks: list[Tensor] = []
        for modality in self.modalities:
            dim = self.in_dims[modality]
            feats = x.get(modality)
            present = mask.get(modality)
            if present is not None:
                present = torch.as_tensor(present, device=device)
                if present.shape != (n,):
                    raise ValueError(
                        f"{where}: mask[{modality!r}] has shape {tuple(present.shape)}, "
                        f"expected ({n},)"
                    )
                present = present.bool()
            if feats is None:
                if present is not None and bool(present.any()):
                    raise ValueError(
                        f"{where}: mask[{modality!r}] marks nodes present but x has no "
                        f"{modality!r} features"
                    )
                xs.append(torch.zeros(n, dim, device=device, dtype=dtype))
                masks.append(torch.zeros(n, dtype=torch.bool, device=device))
                continue
            if feats.dim() != 2 or feats.shape != (n, dim):
                raise ValueError(
                    f"{where}: x[{modality!r}] has shape {tuple(feats.shape)}, expected "
                    f"({n}, {dim})"
                )
            if present is None:
                present = torch.ones(n, dtype=torch.bool, device=device)
            xs.append(torch.where(present[:, None], feats, feats.new_zeros(())))
            masks.append(present)
        return xs, torch.stack(masks, dim=1)

    # -- config + weights ------------------------------------------------------------------

    def save(self, directory) -> None:
        """Write ``config.json`` + ``model.safetensors`` into ``directory``."""
        save_module(self, directory)

    @staticmethod
    def load(directory, map_location: str | torch.device = "cpu") -> Fusion:
        """Rebuild a fusion module saved with :meth:`save` (any registered variant)."""
        return load_module(directory, FUSIONS, map_location)

    def extra_repr(self) -> str:
        dims = ", ".join(f"{m}={d}" for m, d in self.in_dims.items())
        return f"in_dims=({dims}), out_dim={self.out_dim}"


def masked_softmax(scores: Tensor, mask: Tensor, dim: int) -> Tensor:
    """Softmax of ``scores`` over ``dim`` restricted to ``mask`` (broadcastable): masked
    entries get weight 0; a slice with nothing present gets all zeros (not NaN)."""
    scores = scores.masked_fill(~mask, float("-inf"))
    any_present = mask.any(dim=dim, keepdim=True)
    scores = torch.where(any_present, scores, scores.new_zeros(()))
    return torch.softmax(scores, dim=dim) * mask

"""Modality fusion: per-modality node features (with presence masks) -> one vector per node.

>>> from fusion.fuse import get_fusion, list_fusions
>>> list_fusions()
['attention', 'concat', 'gated', 'lowrank', 'mean', 'tensor']
>>> fuse = get_fusion("attention", in_dims={"text": 384, "image": 1280}, out_dim=128)
>>> z = fuse({"text": t, "image": i}, mask={"text": has_text, "image": has_image})  # [N, 128]

Each variant is one class in one file, registered in :data:`FUSIONS` (a
:class:`fusion.registry.Registry`: a notebook cell may register one too); the contract (masks,
missing modalities, the learned no-feature vector) is in :mod:`fusion.fuse.base`. A module's
``config`` (JSON) rebuilds it with :func:`build_from_config`; ``module.save(dir)`` /
``Fusion.load(dir)`` write and read ``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .attention import AttentionFusion
from .base import FUSIONS, Fusion
from .concat import ConcatFusion
from .gated import GatedFusion
from .lowrank import LowRankFusion
from .mean import MeanFusion
from .tensor import TensorFusion

__all__ = [
    "FUSIONS",
    "AttentionFusion",
    "ConcatFusion",
    "Fusion",
    "GatedFusion",
    "LowRankFusion",
    "MeanFusion",
    "TensorFusion",
    "build_from_config",
    "get_fusion",
    "list_fusions",
]


def get_fusion(name: str, in_dims: Mapping[str, int], out_dim: int, **kwargs: Any) -> Fusion:
    """The fusion module registered as ``name`` (``list_fusions()``), built with ``kwargs``."""
    return FUSIONS.get(name, in_dims=in_dims, out_dim=out_dim, **kwargs)


def build_from_config(config: Mapping[str, Any]) -> Fusion:
    """Rebuild a fusion module from its ``config`` (``{"name": ..., "in_dims": ..., ...}``)."""
    return FUSIONS.build_from_config(config)


def list_fusions() -> list[str]:
    """The registered fusion names, sorted."""
    return FUSIONS.names()

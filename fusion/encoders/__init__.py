"""Modality encoders, found by name: raw text / images / numbers / frames -> tensors.

>>> from fusion.encoders import get_encoder, list_encoders
>>> list_encoders()
['e5-multilingual', 'efficientnet-lite0', 'minilm', 'numeric', 'video']
>>> get_encoder("minilm").encode(["red toy car"]).shape
torch.Size([1, 384])

``get_encoder("hf:<folder or cached hub id>")`` wraps any local transformers model. Each
encoder is one class in one file, registered in :data:`ENCODERS` (with :func:`register`);
see :mod:`fusion.encoders.base` for the interface, the missing-input rules and
:func:`load_image`. Importing this package imports no encoder module: the classes below
(``MiniLMEncoder``...) are loaded on first use.
"""

from __future__ import annotations

from typing import Any

from ..registry import import_target
from .base import (
    ENCODERS,
    Encoder,
    EncoderError,
    ImageError,
    UnknownEncoderError,
    get_encoder,
    is_missing_text,
    list_encoders,
    load_image,
    precision_kwargs,
    register,
    resolve_device,
)

#: the encoder classes exported here, loaded on first access (``"module:Class"`` targets
#: of the registry's built-in entries and its ``hf:`` prefix)
_LAZY_CLASSES = {
    target.partition(":")[2]: target
    for target in ENCODERS.targets().values()
    if target.startswith(__name__ + ".")
}

__all__ = [
    "ENCODERS",
    "E5MultilingualEncoder",
    "EfficientNetLite0Encoder",
    "Encoder",
    "EncoderError",
    "HFEncoder",
    "ImageError",
    "MiniLMEncoder",
    "NumericEncoder",
    "UnknownEncoderError",
    "VideoEncoder",
    "get_encoder",
    "precision_kwargs",
    "is_missing_text",
    "list_encoders",
    "load_image",
    "register",
    "resolve_device",
]


def __getattr__(attr: str) -> Any:
    target = _LAZY_CLASSES.get(attr)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    return import_target(target)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_CLASSES))

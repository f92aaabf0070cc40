"""Modality encoders, found by name: raw text / images / numbers / frames -> tensors.

>>> from fusion.encoders import get_encoder, list_encoders
>>> list_encoders()
['e5-multilingual', 'efficientnet-lite0', 'minilm', 'numeric', 'video']
>>> get_encoder("minilm").encode(["red toy car"]).shape
torch.Size([1, 384])

``get_encoder("hf:<folder or cached hub id>")`` wraps any local transformers model. Each
encoder is one class in one file, registered with :func:`register`; see
:mod:`fusion.encoders.base` for the interface, the missing-input rules and
:func:`load_image`.
"""

from .base import (
    Encoder,
    EncoderError,
    ImageError,
    UnknownEncoderError,
    get_encoder,
    is_missing_text,
    list_encoders,
    load_image,
    register,
    resolve_device,
)
from .e5 import E5MultilingualEncoder
from .efficientnet_lite0 import EfficientNetLite0Encoder
from .hf import HFEncoder
from .minilm import MiniLMEncoder
from .numeric import NumericEncoder
from .video import VideoEncoder

__all__ = [
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
    "is_missing_text",
    "list_encoders",
    "load_image",
    "register",
    "resolve_device",
]

"""The encoder interface, the registry, and the helpers every encoder shares.

An :class:`Encoder` turns a batch of raw inputs of one modality into a float32 tensor
``[N, dim]`` on the CPU. Encoders are found by name in :data:`ENCODERS` (a
:class:`fusion.registry.Registry`; :func:`get_encoder` is the short way); the built-ins are
lazy entries, so no encoder module is imported before its name is used. A name
``"hf:<folder or hub id>"`` loads any local Hugging Face model (:mod:`fusion.encoders.hf`).
Models are loaded lazily, on the first ``encode``, and cached per process, so creating an
encoder is cheap and two encoders with the same model share its weights.

Missing inputs are the caller's business: an encoder encodes what it is given. Feature
building masks missing text (:func:`is_missing_text`), unreadable images (:class:`ImageError`
from :func:`load_image`) and absent numbers *before* calling ``encode``; the zero rows it
leaves behind carry ``mask = False`` and are never read as data.
"""

from __future__ import annotations

import abc
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..registry import Registry, UnknownNameError

__all__ = [
    "ENCODERS",
    "Encoder",
    "EncoderError",
    "ImageError",
    "UnknownEncoderError",
    "get_encoder",
    "is_missing_text",
    "length_buckets",
    "list_encoders",
    "load_image",
    "mean_pool",
    "register",
    "resolve_device",
]


class EncoderError(ValueError):
    """An encoder cannot be built or cannot encode its input (the message says why)."""


class UnknownEncoderError(EncoderError, UnknownNameError):
    """``get_encoder`` was given a name that no encoder is registered under."""


class ImageError(EncoderError):
    """An image cannot be used: ``path`` names it, ``reason`` says what is wrong.

    Raised for missing, corrupt or truncated files, decompression bombs and remote
    references (which are never downloaded). Callers skip the image and report it.
    """

    def __init__(self, path: Any, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(self.path, reason)  # both in args, so the error pickles

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# --------------------------------------------------------------------------- device
def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) -> ``cuda`` when available, else ``cpu``; anything else as given."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# --------------------------------------------------------------------------- interface
class Encoder(abc.ABC):
    """One modality's raw inputs -> ``float32 [N, dim]`` on the CPU.

    Class attributes: ``name`` (the registry name), ``modality`` (``"text"``, ``"image"``,
    ``"numeric"`` or ``"video"``). Instance attributes: ``dim`` (output width),
    ``version`` (part of every cache key: it changes whenever outputs would change),
    ``device`` (where the forward pass runs) and ``batch_size``. ``precisions``: the
    inference precisions the class takes as ``precision=`` (:mod:`fusion.precision`);
    those with only ``"fp32"`` take no such argument.
    """

    precisions: tuple[str, ...] = ("fp32",)
    name: str = ""
    modality: str = ""
    dim: int
    version: str = "1"

    def __init__(self, device: str | torch.device | None = "auto", batch_size: int = 64):
        if int(batch_size) < 1:
            raise EncoderError(f"{type(self).__name__}: batch_size must be >= 1, not {batch_size}")
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)

    @abc.abstractmethod
    def encode(self, batch: list) -> torch.Tensor:
        """``batch`` of N inputs -> ``float32 [N, dim]`` on the CPU (row i encodes input i)."""

    @property
    def cache_id(self) -> str:
        """``name@version``: what an embedding cache is keyed by."""
        return f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        try:
            dim = self.dim
        except EncoderError:  # e.g. an unfitted numeric encoder: no width yet
            dim = None
        return (
            f"{type(self).__name__}(name={self.name!r}, modality={self.modality!r}, "
            f"dim={dim}, device={str(self.device)!r})"
        )


# --------------------------------------------------------------------------- registry
ENCODERS: Registry[Encoder] = Registry(
    "encoder", base=Encoder, unknown_error=UnknownEncoderError, taken_error=EncoderError
)
# the built-ins, lazily: no encoder module is imported until its name is asked for
for _name, _target in {
    "e5-multilingual": "fusion.encoders.e5:E5MultilingualEncoder",
    "efficientnet-lite0": "fusion.encoders.efficientnet_lite0:EfficientNetLite0Encoder",
    "minilm": "fusion.encoders.minilm:MiniLMEncoder",
    "numeric": "fusion.encoders.numeric:NumericEncoder",
    "video": "fusion.encoders.video:VideoEncoder",
}.items():
    ENCODERS.register_lazy(_name, _target)
del _name, _target
ENCODERS.register_prefix(
    "hf", "fusion.encoders.hf:HFEncoder", usage="hf:<local model folder or cached hub id>"
)


def register(name: str) -> Callable[[type[Encoder]], type[Encoder]]:
    """Class decorator: make an :class:`Encoder` subclass findable as ``name``."""
    return ENCODERS.register(name)


def list_encoders() -> list[str]:
    """Registered encoder names (any ``hf:<path>`` works besides these)."""
    return ENCODERS.names()


def get_encoder(name: str | Encoder, **kwargs: Any) -> Encoder:
    """The encoder registered as ``name``, built with ``kwargs`` (``device``, ``batch_size``...).

    ``"hf:<folder or hub id>"`` builds :class:`fusion.encoders.hf.HFEncoder` on that model
    (local files only). An :class:`Encoder` instance is returned as is. Building is cheap:
    weights load on the first ``encode`` and are shared by every encoder of the same model.
    """
    return ENCODERS.get(name, **kwargs)


def precision_kwargs(name: str | Encoder, precision: str | None) -> dict[str, str]:
    """``{"precision": precision}`` when the encoder ``name`` has a bf16 path (its class's
    ``precisions``), else ``{}``: encoders without one (E5's own engine, EfficientNet-Lite0,
    numbers) run as they always do, whatever is asked."""
    if precision in (None, "fp32"):
        return {}
    return {"precision": precision} if "bf16" in ENCODERS.get_class(name).precisions else {}


# --------------------------------------------------------------------------- text helpers
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def is_missing_text(text: Any) -> bool:
    """True for None, NaN, and strings that are empty once whitespace is stripped.

    Feature building masks such texts instead of encoding them: the embedding of an empty
    string is a real vector that would look like information.
    """
    if text is None:
        return True
    if isinstance(text, float):
        return text != text  # NaN
    if not isinstance(text, str):
        return False
    return not text.strip().strip(_INVISIBLE).strip()


def length_buckets(lengths: Sequence[int] | np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Indices of the inputs, longest first, cut into batches of ``batch_size``.

    Length bucketing: each batch holds inputs of similar length, so padding to the batch
    maximum wastes little compute. The outputs are scattered back to the input order.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the tokens where ``mask`` is 1: ``[B, T, H]``, ``[B, T]`` -> ``[B, H]``."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1e-9)


# --------------------------------------------------------------------------- images
_REMOTE = ("http://", "https://", "ftp://", "s3://", "gs://", "data:")


def load_image(image: Any) -> Any:
    """A ``PIL.Image`` in RGB from an image or a local path; :class:`ImageError` otherwise.

    - Paths (``str``, ``Path``, ``file://`` URI) are opened and fully decoded here, so a
      corrupt or truncated file fails now, not later in a batch.
    - Remote references (``http(s)://`` and other URLs) are never downloaded.
    - Decompression bombs: images above ``PIL.Image.MAX_IMAGE_PIXELS`` are refused
      (PIL's warning is treated as the error it warns about).
    - EXIF orientation is applied. Every mode becomes RGB: grayscale, CMYK, palette,
      16-bit and float images are converted, and transparency is composited on white.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return _to_rgb(image)
    if isinstance(image, bytes | bytearray):
        raise ImageError("<bytes>", "pass a path or a PIL image, not raw bytes")
    if not isinstance(image, str | os.PathLike):
        raise ImageError(repr(image)[:80], f"not an image or a path ({type(image).__name__})")
    ref = os.fspath(image)
    lowered = ref.strip().lower()
    if lowered.startswith("file://"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        ref = url2pathname(urlparse(ref.strip()).path)
    elif lowered.startswith(_REMOTE):
        raise ImageError(ref, "remote image not downloaded (give a local file)")
    path = Path(ref)
    if not path.is_file():
        raise ImageError(ref, "no such file" if not path.exists() else "not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                opened.load()
                result = _to_rgb(ImageOps.exif_transpose(opened) or opened)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(
            ref, f"decompression bomb refused ({err}); raise PIL.Image.MAX_IMAGE_PIXELS to allow"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(ref, "not an image, or a format PIL cannot read") from None
    except Exception as err:  # noqa: BLE001 - decoders raise anything on damaged input
        reason = str(err) or type(err).__name__
        raise ImageError(ref, f"corrupt or truncated image ({reason})") from None
    return result


def _to_rgb(img: Any) -> Any:
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return img if img.getbands() == ("R", "G", "B") else img.convert("RGB")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        array = np.asarray(img, dtype=np.float32)
        if mode == "F":
            top = 1.0 if array.size and float(np.nanmax(array)) <= 1.0 else 255.0
        else:
            top = 65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        scaled = np.clip(np.nan_to_num(array) * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")

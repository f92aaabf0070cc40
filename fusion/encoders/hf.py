"""Any local Hugging Face transformers model as an encoder: ``get_encoder("hf:<path>")``.

``<path>`` is a folder written by ``save_pretrained`` (or a sentence-transformers folder),
or a hub id already in the local Hugging Face cache. Nothing is ever downloaded
(``local_files_only=True``) and no code from the model folder runs
(``trust_remote_code=False``).

The modality comes from the model's config:

- a text model (BERT, RoBERTa, MiniLM, XLM-R, ...): ``AutoTokenizer`` + ``AutoModel``,
  mean pooling of the last hidden state over the attention mask (CLS pooling when a
  sentence-transformers ``1_Pooling/config.json`` asks for it), L2-normalised, ``[N, hidden]``;
- a vision model (ViT, DINOv2, ConvNeXt, ResNet, ...): ``AutoImageProcessor`` + ``AutoModel``,
  the model's ``pooler_output`` when its weights were loaded from the checkpoint, otherwise
  the mean of the last hidden state (over tokens, or over the spatial grid), ``[N, hidden]``;
- a CLIP-style dual encoder (a config with ``text_config`` and ``vision_config``):
  ``get_image_features`` for images (the default) or ``get_text_features`` for text
  (``modality="text"``, or the suffix ``"hf:<path>#text"``), L2-normalised,
  ``[N, projection_dim]``, so both land in the shared space.

Text is tokenised in one call for the whole input, truncated at the model's limit
(``max_seq_length`` of a sentence-transformers folder, else the tokenizer's
``model_max_length`` capped by the position embeddings), ordered by length and cut into
batches padded to their own longest member (length bucketing), then put back in input
order.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..precision import resolve_precision, torch_dtype
from .base import Encoder, EncoderError, length_buckets, load_image, mean_pool

RECIPE = "2"  # bump when pooling / preprocessing here changes outputs
_SENTINEL_MAX = 100_000  # tokenizers without a known limit report ~1e30


@functools.lru_cache(maxsize=32)
def resolve_folder(reference: str) -> Path:
    """A local model folder for ``reference`` (a folder, or a hub id in the local cache)."""
    path = Path(reference).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise EncoderError(f"hf:{reference}: is a file; give the model folder")
    looks_like_id = reference.count("/") <= 1 and not reference.startswith((".", "/", "~"))
    if looks_like_id:
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(reference, local_files_only=True))
        except Exception:  # noqa: BLE001 - any failure means "not available offline"
            pass
    raise EncoderError(
        f"hf:{reference}: no such local folder, and not in the local Hugging Face cache "
        "(models are never downloaded at run time: save_pretrained it to a folder, "
        "or fetch it into the cache beforehand)"
    )


def folder_stamp(folder: Path) -> str:
    """Cheap identity of a folder's current files (names, sizes, mtimes) for cache keys."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".git" not in path.parts:
            info = path.stat()
            digest.update(
                f"{path.relative_to(folder)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode()
            )
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=32)
def load_config(folder: Path, stamp: str = "") -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001
        raise EncoderError(f"hf:{folder}: cannot read the model config ({err})") from err


@contextlib.contextmanager
def quiet_loading():
    """No "Loading weights 0/103" progress bar (nor info logs) from transformers while a
    model loads; the previous settings are restored afterwards."""
    from transformers.utils import logging

    bars, level = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


@functools.lru_cache(maxsize=16)
def load_model(
    folder: Path, device: str, stamp: str = "", precision: str = "fp32"
) -> tuple[Any, bool]:
    """``(model in eval mode on device, in ``precision``'s dtype (:mod:`fusion.precision`);
    whether a pooler came from the weights)``."""
    from transformers import AutoModel

    try:
        with quiet_loading():
            model, info = AutoModel.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False, output_loading_info=True
            )
    except Exception as err:  # noqa: BLE001
        raise EncoderError(f"hf:{folder}: cannot load the model ({err})") from err
    missing = [k for k in info.get("missing_keys", ()) if "pooler" in k]
    model.eval().requires_grad_(False)
    model.to(device=torch.device(device), dtype=torch_dtype(precision))
    return model, not missing


@functools.lru_cache(maxsize=16)
def load_tokenizer(folder: Path, stamp: str = "") -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001
        raise EncoderError(f"hf:{folder}: cannot load the tokenizer ({err})") from err


@functools.lru_cache(maxsize=16)
def load_processor(folder: Path, stamp: str = "") -> Any:
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False
        )
    except Exception as err:  # noqa: BLE001
        raise EncoderError(f"hf:{folder}: cannot load the image processor ({err})") from err


def detect_modality(config: Any) -> str:
    """``"dual"`` (CLIP-like: text and image towers), ``"image"`` or ``"text"``."""
    if getattr(config, "text_config", None) is not None and (
        getattr(config, "vision_config", None) is not None
    ):
        return "dual"
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_MAPPING_NAMES

    model_type = getattr(config, "model_type", "")
    if model_type in MODEL_FOR_IMAGE_MAPPING_NAMES or model_type.endswith("_vision_model"):
        return "image"
    if getattr(config, "num_channels", None) and not getattr(config, "vocab_size", None):
        return "image"
    return "text"


@functools.lru_cache(maxsize=32)
def _sentence_transformers_settings(folder: Path, stamp: str = "") -> tuple[int | None, str]:
    """``(max_seq_length, pooling)`` from a sentence-transformers folder, if it is one."""
    max_length = None
    pooling = "mean"
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        max_length = json.loads(st_config.read_text()).get("max_seq_length")
    pool_config = folder / "1_Pooling" / "config.json"
    if pool_config.is_file():
        modes = json.loads(pool_config.read_text())
        if modes.get("pooling_mode_cls_token") and not modes.get("pooling_mode_mean_tokens"):
            pooling = "cls"
    return max_length, pooling


def _fingerprint(folder: Path) -> str:
    """A short hash of the folder's files: names, sizes, first and last MiB."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(-(1 << 20), os.SEEK_END)
                digest.update(handle.read())
    return digest.hexdigest()[:16]


class HFEncoder(Encoder):
    """A local transformers model (text, vision or CLIP-style): inputs -> ``float32 [N, dim]``.

    See the module docstring for the recipe per modality. ``name`` is ``"hf:<path>"``;
    ``version`` hashes the model files and the recipe, so a changed checkpoint never
    reuses cached embeddings. ``dim`` comes from the config (hidden size, or the CLIP
    projection size); for vision backbones it is measured with one tiny forward pass.

    ``precision`` (``"fp32"``, ``"bf16"`` or ``"auto"``: bf16 where the device multiplies it
    natively, :mod:`fusion.precision`) is the dtype of the weights and activations; outputs
    are float32 either way, and a bf16 encoder's ``version`` differs from the fp32 one's so
    caches never mix them.
    """

    precisions = ("fp32", "bf16")

    def __init__(
        self,
        path: str | os.PathLike,
        device: str | torch.device | None = "auto",
        batch_size: int = 64,
        modality: str | None = None,
        max_length: int | None = None,
        precision: str = "fp32",
    ):
        super().__init__(device=device, batch_size=batch_size)
        try:
            self.precision = resolve_precision(precision, self.device, self.precisions)
        except ValueError as err:
            raise EncoderError(f"{type(self).__name__}: {err}") from None
        reference = os.fspath(path).strip()
        if "#" in reference and modality is None:
            reference, _, modality = reference.rpartition("#")
        if not reference:
            raise EncoderError("hf: needs a model folder or hub id, e.g. hf:/models/my-bert")
        self.reference = reference
        self.name = f"hf:{reference}" + (f"#{modality}" if modality else "")
        self.folder = resolve_folder(reference)
        self.stamp = folder_stamp(self.folder)
        self.config = load_config(self.folder, self.stamp)
        self.kind = detect_modality(self.config)
        if modality is None:
            modality = "image" if self.kind in ("image", "dual") else "text"
        if modality not in ("text", "image"):
            raise EncoderError(f"{self.name}: modality must be 'text' or 'image', not {modality!r}")
        if self.kind != "dual" and modality != self.kind:
            raise EncoderError(
                f"{self.name}: the config ({type(self.config).__name__}) is a {self.kind} "
                f"model; it cannot encode {modality}"
            )
        self.modality = modality
        self._max_length = max_length
        self._dim: int | None = None
        self._version: str | None = None

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            self._dim = self._config_dim() or self._probe_dim()
        return self._dim

    @property
    def version(self) -> str:  # type: ignore[override]
        if self._version is None:
            settings = (
                f"{RECIPE}|{self.modality}|{self.max_length if self.modality == 'text' else ''}"
            )
            if self.precision != "fp32":  # fp32 keeps the versions (and caches) of before
                settings += f"|{self.precision}"
            self._version = (
                f"{_fingerprint(self.folder)}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"
            )
        return self._version

    @property
    def max_length(self) -> int:
        """Tokens per text after truncation (special tokens included)."""
        if self._max_length is None:
            st_max, _ = _sentence_transformers_settings(self.folder, self.stamp)
            config = self._text_config()
            positions = getattr(config, "max_position_embeddings", None) or 512
            limit = st_max or getattr(self._tokenizer(), "model_max_length", None)
            if not limit or limit > _SENTINEL_MAX:
                limit = positions
            if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
                positions -= 2  # RoBERTa offsets its positions by the padding index + 1
            self._max_length = int(min(limit, positions))
        return self._max_length

    def _tokenizer(self) -> Any:
        return load_tokenizer(self.folder, self.stamp)

    def _model(self) -> tuple[Any, bool]:
        return load_model(self.folder, str(self.device), self.stamp, self.precision)

    def _text_config(self) -> Any:
        return getattr(self.config, "text_config", None) or self.config

    def _config_dim(self) -> int | None:
        if self.kind == "dual":
            sub = self.config.text_config if self.modality == "text" else self.config.vision_config
            return getattr(self.config, "projection_dim", None) or sub.hidden_size
        if self.kind == "text":
            return getattr(self.config, "hidden_size", None) or getattr(
                self.config, "d_model", None
            )
        return None  # vision backbones: measured

    def _probe_dim(self) -> int:
        """One tiny forward pass, for models whose config does not give the output width."""
        if self.modality == "text":
            return int(self._encode_texts(["a"]).shape[1])
        from PIL import Image

        return int(self._encode_images([Image.new("RGB", (64, 64), (128, 128, 128))]).shape[1])

    # ------------------------------------------------------------------ encoding
    def encode(self, batch: list) -> torch.Tensor:
        batch = list(batch)
        if self.modality == "text":
            bad = next((x for x in batch if not isinstance(x, str)), None)
            if bad is not None:
                raise EncoderError(f"{self.name}: text encoder got {type(bad).__name__}: {bad!r}")
            return self._encode_texts(batch)
        return self._encode_images(batch)

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokenizer = self._tokenizer()
        model, _ = self._model()
        _, pooling = _sentence_transformers_settings(self.folder, self.stamp)
        if not texts:
            return torch.empty(0, self.dim)
        out = None
        ids = tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        for index in length_buckets(lengths, self.batch_size):
            rows = lengths[index]
            mask = np.arange(int(rows.max()))[None, :] < rows[:, None]
            input_ids = np.full(mask.shape, pad_id, dtype=np.int64)
            input_ids[mask] = np.fromiter(
                (t for i in index for t in ids[i]), dtype=np.int64, count=int(rows.sum())
            )
            with torch.inference_mode():
                input_ids_t = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
                mask_t = torch.from_numpy(mask.astype(np.int64)).to(self.device, non_blocking=True)
                if self.kind == "dual":
                    pooled = _features(
                        model.get_text_features(input_ids=input_ids_t, attention_mask=mask_t)
                    )
                else:
                    hidden = _text_backbone(model)(
                        input_ids=input_ids_t, attention_mask=mask_t
                    ).last_hidden_state
                    hidden = hidden.float()  # pooled in float32 whatever the precision
                    pooled = hidden[:, 0] if pooling == "cls" else mean_pool(hidden, mask_t)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu()
            if out is None:
                out = torch.empty(len(texts), pooled.shape[1])
            out[torch.from_numpy(index)] = pooled
        return out

    def _encode_images(self, images: list) -> torch.Tensor:
        processor = load_processor(self.folder, self.stamp)
        model, pooler_loaded = self._model()
        chunks = []
        for start in range(0, len(images), self.batch_size):
            pil = [load_image(x) for x in images[start : start + self.batch_size]]
            pixels = processor(images=pil, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                dtype = torch_dtype(self.precision)
                pixels = pixels.to(self.device, dtype=dtype, non_blocking=True)
                if self.kind == "dual":
                    pooled = _features(model.get_image_features(pixel_values=pixels))
                    pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                else:
                    output = model(pixel_values=pixels)
                    pooler = getattr(output, "pooler_output", None)
                    if pooler is not None and pooler_loaded:
                        pooled = pooler.flatten(1)
                    else:
                        hidden = output.last_hidden_state
                        pooled = hidden.mean(dim=1) if hidden.dim() == 3 else hidden.mean((2, 3))
                chunks.append(pooled.float().cpu())
        if not chunks:
            return torch.empty(0, self.dim)
        return torch.cat(chunks).clone()


def _features(output: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor (transformers 4) or an output object (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _text_backbone(model: Any) -> Any:
    """The encoder stack of an encoder-decoder model (T5...), else the model itself."""
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        return model.get_encoder()
    return model

"""Trained artefacts on disk: a JSON config next to safetensors weights, written once.

Every trained artefact of kgfusion (a :class:`~fusion.model.FusionGNN`, a registered fusion
or GNN module, align's text and image linkers) is a folder holding::

    config.json          the config (a dataclass or a JSON-serialisable dict)
    model.safetensors    the weights, ``{name: tensor}``

as Hugging Face transformers' ``save_pretrained`` / ``from_pretrained`` write them. This
module is the one place that knows those names and how they are written and read:

- :func:`save_pretrained` writes the weights first and the config last, each through a
  temporary file and a rename (:func:`kg.workspace.atomic_write_bytes`); with
  ``replace=True`` the two files are written into a temporary folder that replaces the
  target as one set (:func:`kg.workspace.atomic_directory`), so a reader never sees the
  config of one save with the weights of another;
- :func:`load_pretrained` rebuilds a module from its config and loads the weights strictly;
- :func:`read_weights` reads a safetensors file only (nothing is ever unpickled) and refuses
  non-finite tensors; :func:`load_into` checks names and shapes before loading. Every error
  names the file and what to do.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_tensors
from torch import Tensor, nn

from kg.hints import did_you_mean
from kg.workspace import atomic_directory, atomic_write_bytes

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ArtifactError",
    "ConfigError",
    "config_from_dict",
    "load_into",
    "load_pretrained",
    "read_config",
    "read_weights",
    "save_pretrained",
    "state_tensors",
]


class ConfigError(ValueError):
    """A configuration that cannot be used (unknown key, bad value); says what to change."""


def config_from_dict(cls, data: Mapping | None, where: str):
    """Build dataclass ``cls`` from ``data``, refusing unknown keys with a suggestion."""
    data = dict(data or {})
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            hint = did_you_mean(key, names, cutoff=0.5)
            raise ConfigError(
                f"{where}: unknown key {key!r}{hint} (known keys: {', '.join(names)})"
            )
    return cls(**data)


class ArtifactError(ConfigError):
    """A missing, damaged or mismatched artefact file; the message names the file."""


def state_tensors(weights: nn.Module | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A module's ``state_dict()`` (or a tensor mapping) as independent contiguous CPU
    tensors: safetensors refuses tensors that share memory, so tied or viewed tensors are
    copied (each name is saved once)."""
    state = weights.state_dict() if isinstance(weights, nn.Module) else weights
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def _config_dict(config: Any) -> dict:
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"a config must be a dataclass or a mapping, not {type(config).__name__}")


def _json_text(config: Any, where: str) -> str:
    try:
        return json.dumps(_config_dict(config), indent=2, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{where}: config is not JSON-serialisable ({err}); pass plain numbers, strings, "
            "lists and dicts"
        ) from None


def save_pretrained(directory, config: Any, weights: nn.Module | Mapping[str, Tensor], *,
                    metadata: Mapping[str, str] | None = None, replace: bool = False) -> Path:  # fmt: skip
    """Write ``config.json`` + ``model.safetensors`` into ``directory``; returns it.

    Args:
        config: a dataclass (``to_dict()`` when it has one, else ``asdict``) or a mapping.
        weights: a module (its ``state_dict()``) or ``{name: tensor}``.
        metadata: string metadata stored in the safetensors header (e.g. a format tag).
        replace: write both files into a temporary folder that replaces ``directory`` as a
            whole (other files in it are dropped); otherwise each file is replaced atomically
            in place, weights first, config last.
    """
    directory = Path(directory)
    text = _json_text(config, str(directory / CONFIG_FILE))
    blob = save_tensors(state_tensors(weights), metadata=dict(metadata) if metadata else None)
    if replace:
        with atomic_directory(directory, overwrite=True) as tmp:
            (tmp / WEIGHTS_FILE).write_bytes(blob)
            (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / WEIGHTS_FILE, blob)
    atomic_write_bytes(directory / CONFIG_FILE, text.encode("utf-8"))
    return directory


def read_config(directory, what: str = "model") -> dict:
    """The ``config.json`` of an artefact folder as a dict (errors name the file and line)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; is {Path(directory)} a saved {what}?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ArtifactError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg}); save the {what} again"
        ) from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_weights(path, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """The tensors of a safetensors file (``path``: the file, or a folder holding
    ``model.safetensors``). Refuses a missing or damaged file and NaN / infinite values,
    naming the file and the tensor. Nothing is unpickled."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; save or train the artefact again")
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(f"{path} is not a readable safetensors file ({err})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ArtifactError(
                f"{path}: tensor {name!r} holds NaN or infinite values; the artefact is "
                "damaged (or was saved from a diverged run): retrain it"
            )
    return tensors


def load_into(module: nn.Module, tensors: Mapping[str, Tensor], path, *,
              prefix: str = "", strict: bool = True) -> None:  # fmt: skip
    """Load ``tensors`` (those under ``prefix``, with it stripped) into ``module`` after
    checking names and shapes; a mismatch raises :class:`ArtifactError` naming ``path``."""
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if strict and (missing or unexpected):
        raise ArtifactError(
            f"{path} does not match the model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}; it was saved from another configuration"
        )
    wrong = [
        f"{prefix}{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if wrong:
        raise ArtifactError(f"{path}: tensor shapes differ from the model ({'; '.join(wrong[:3])})")
    module.load_state_dict(state, strict=strict)


def load_pretrained(directory, build: Callable[[dict], nn.Module], *,
                    device: str | torch.device = "cpu", strict: bool = True,
                    what: str = "model") -> nn.Module:  # fmt: skip
    """Rebuild the module saved by :func:`save_pretrained`: ``build(config dict)`` makes
    it, the weights are loaded into it (checked as :func:`load_into` does), on ``device``."""
    directory = Path(directory)
    config = read_config(directory, what)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing; is {directory} a saved {what}?")
    module = build(config)
    load_into(module, read_weights(weights, device), weights, strict=strict)
    return module.to(device)

"""Named registries of model variants, and config + weights on disk.

A variant (a fusion module, a GNN, later an encoder or a task head) is one class in one
file, registered under a name; configuration refers to it by that name::

    FUSIONS = Registry("fusion")

    @FUSIONS.register("mean")
    class MeanFusion(Fusion): ...

    FUSIONS.names()                      # ['mean', ...]
    FUSIONS.get("mean", in_dims=..., out_dim=64)
    FUSIONS.build_from_config({"name": "mean", "in_dims": ..., "out_dim": 64})
    FUSIONS.get("maen")                  # UnknownNameError: unknown fusion 'maen' (did you mean 'mean'?) ...

A registered module keeps the keyword arguments it was built with in ``self.config`` (a
JSON-serialisable dict that includes ``"name"``), so :func:`save_module` writes
``config.json`` + ``model.safetensors`` and :func:`load_module` rebuilds the same module
from them. Nothing is pickled: weights go through safetensors only.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from .artifacts import CONFIG_FILE, WEIGHTS_FILE, load_pretrained, save_pretrained

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "Registry",
    "UnknownNameError",
    "check_json_config",
    "load_module",
    "save_module",
]

T = TypeVar("T")

CONFIG_NAME = CONFIG_FILE  # the file names of fusion.artifacts, under their old names
WEIGHTS_NAME = WEIGHTS_FILE


class UnknownNameError(KeyError):
    """A registry was asked for a name nobody registered; the message lists the names."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Classes registered by name, built by name.

    Args:
        kind: what the registry holds, used in messages (``"fusion"``, ``"gnn"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: make ``cls`` findable as ``name`` (also sets ``cls.name``)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")

        def wrap(cls: type[T]) -> type[T]:
            other = self._classes.get(name)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise ValueError(
                    f"{self.kind} name {name!r} is already taken by {other.__module__}."
                    f"{other.__qualname__}; pick another name"
                )
            cls.name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            return cls

        return wrap

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._classes)

    def get_class(self, name: str) -> type[T]:
        """The class registered as ``name``; :class:`UnknownNameError` (a ``KeyError``) if none."""
        cls = self._classes.get(name) if isinstance(name, str) else None
        if cls is None:
            close = (
                difflib.get_close_matches(name.lower(), list(self._classes), n=1, cutoff=0.5)
                if isinstance(name, str)
                else []
            )
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint}; registered: {', '.join(self.names())}"
            )
        return cls

    def get(self, name: str, /, **kwargs: Any) -> T:
        """An instance of the class registered as ``name``, built with ``kwargs``."""
        return self.get_class(name)(**kwargs)

    def build_from_config(self, config: Mapping[str, Any]) -> T:
        """Rebuild a module from its ``config`` (``{"name": ..., **init kwargs}``).

        A class may define ``from_config(kwargs)`` to undo JSON's changes (tuples that
        came back as lists); otherwise it is called with the kwargs as they are.
        """
        if not isinstance(config, Mapping) or "name" not in config:
            raise ValueError(f"a {self.kind} config must be a mapping with a 'name' key")
        kwargs = dict(config)
        cls = self.get_class(kwargs.pop("name"))
        from_config = getattr(cls, "from_config", None)
        return from_config(kwargs) if from_config is not None else cls(**kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"


def check_json_config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """``config`` itself if ``json.dumps`` accepts it, else a ``TypeError`` naming ``where``."""
    try:
        json.dumps(config)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{where}: config is not JSON-serialisable ({err}); pass plain numbers, "
            "strings, lists and dicts"
        ) from None
    return config


def save_module(module: torch.nn.Module, directory: str | os.PathLike) -> Path:
    """Write ``module.config`` as ``config.json`` and its weights as ``model.safetensors``
    (:func:`fusion.artifacts.save_pretrained`: atomic files). Returns the directory."""
    config = getattr(module, "config", None)
    if not isinstance(config, dict) or "name" not in config:
        raise TypeError(f"{type(module).__name__} has no registry config (self.config)")
    return save_pretrained(directory, check_json_config(config, type(module).__name__), module)


def load_module(
    directory: str | os.PathLike,
    registry: Registry,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> torch.nn.Module:
    """Rebuild the module saved by :func:`save_module` in ``directory`` and load its weights."""
    return load_pretrained(
        directory, registry.build_from_config, device=map_location, strict=strict,
        what=f"{registry.kind} module",
    )  # fmt: skip

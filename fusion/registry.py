"""The one registry of model variants, and config + weights on disk.

A variant (a fusion module, a GNN, an encoder, a task, a link decoder) is one class in one
file, registered under a name in a :class:`Registry`; configuration refers to it by that
name. Each kind has one registry, defined next to its base class: ``fusion.fuse.FUSIONS``,
``fusion.gnn.GNNS``, ``fusion.encoders.ENCODERS``, ``fusion.tasks.TASKS``,
``fusion.tasks.decoders.DECODERS``. Modelled on PyKEEN's ``class_resolver``::

    FUSIONS = Registry("fusion")

    @FUSIONS.register("mean")            # also works from a notebook cell
    class MeanFusion(Fusion): ...

    FUSIONS.names()                      # ['mean', ...]
    FUSIONS.get("mean", in_dims=..., out_dim=64)    # name -> instance
    FUSIONS.get(module)                  # an instance is returned as it is
    FUSIONS.get_class("mean")            # name -> class
    FUSIONS.build_from_config({"name": "mean", "in_dims": ..., "out_dim": 64})
    FUSIONS.get("maen")                  # UnknownNameError: unknown fusion 'maen' (did you mean 'mean'?) ...

Entries may be lazy: ``register_lazy("minilm", "fusion.encoders.minilm:MiniLMEncoder")``
names the class without importing its module; the first lookup imports it. A prefix
(``register_prefix("hf", "fusion.encoders.hf:HFEncoder", ...)``) turns ``"hf:<arg>"`` into
``HFEncoder("<arg>", **kwargs)``. Names are matched as given, then stripped and
lower-cased; an unknown name raises the registry's error with one "did you mean" hint
(:func:`kg.hints.did_you_mean`) and the registered names.

A registered module keeps the keyword arguments it was built with in ``self.config`` (a
JSON-serialisable dict that includes ``"name"``), so :func:`save_module` writes
``config.json`` + ``model.safetensors`` and :func:`load_module` rebuilds the same module
from them. Nothing is pickled: weights go through safetensors only.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from kg.hints import did_you_mean

from .artifacts import CONFIG_FILE, WEIGHTS_FILE, load_pretrained, save_pretrained

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "Registry",
    "UnknownNameError",
    "check_json_config",
    "import_target",
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


def target_of(cls: type) -> str:
    """``"module:QualName"``: where ``cls`` is defined, as :func:`import_target` reads it."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_target(target: str) -> Any:
    """The object a ``"package.module:Name"`` (or ``"...:Outer.Inner"``) string names."""
    module_name, sep, qualname = target.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"{target!r}: expected 'package.module:ClassName'")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Classes registered by name (eagerly, or lazily as ``"module:Class"``), built by name.

    Args:
        kind: what the registry holds, used in messages (``"fusion"``, ``"encoder"``).
        base: instances (and subclasses) of this class are accepted where a name is
            expected: :meth:`get` returns an instance as it is and builds a class. Without
            it, instances and subclasses of the registered classes are accepted.
        unknown_error: the exception raised for an unknown name (called with the message).
        taken_error: the exception raised when a name is registered twice.
    """

    def __init__(
        self,
        kind: str,
        *,
        base: type | None = None,
        unknown_error: Callable[[str], Exception] = UnknownNameError,
        taken_error: Callable[[str], Exception] = ValueError,
    ):
        self.kind = kind
        self.base = base
        self.unknown_error = unknown_error
        self.taken_error = taken_error
        self._entries: dict[str, type[T] | str] = {}  # a class, or a lazy "module:Class"
        self._prefixes: dict[str, tuple[type[T] | str, str]] = {}  # prefix -> (target, usage)

    # ------------------------------------------------------------------ registration
    def register(self, name: str, cls: type[T] | None = None) -> Any:
        """Make ``cls`` findable as ``name`` (also sets ``cls.name``).

        Used as a class decorator (``@REG.register("mean")``) or called with the class.
        Registering the same class again (a re-run notebook cell, the module behind a lazy
        entry being imported) is allowed; another class under a taken name is not.
        """
        self._check_name(name)

        def wrap(cls: type[T]) -> type[T]:
            other = self._entries.get(name)
            if other is not None and _target(other) != target_of(cls):
                raise self.taken_error(
                    f"{self.kind} name {name!r} is already taken by {_target(other)}; "
                    "pick another name"
                )
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return wrap if cls is None else wrap(cls)

    def register_lazy(self, name: str, target: str) -> None:
        """Make the class at ``target`` (``"package.module:Class"``) findable as ``name``
        without importing it; the first lookup of ``name`` imports it."""
        self._check_name(name)
        if target.count(":") != 1:
            raise ValueError(f"{target!r}: expected 'package.module:ClassName'")
        other = self._entries.get(name)
        if other is not None and _target(other) != target:
            raise self.taken_error(
                f"{self.kind} name {name!r} is already taken by {_target(other)}; "
                "pick another name"
            )
        if other is None:
            self._entries[name] = target

    def register_prefix(self, prefix: str, target: type[T] | str, usage: str) -> None:
        """Names ``"<prefix>:<arg>"`` build ``target(arg, **kwargs)`` (``target``: a class
        or a lazy ``"module:Class"``); ``usage`` (e.g. ``"hf:<model folder>"``) is listed
        with the registered names in errors."""
        self._check_name(prefix)
        self._prefixes[prefix.lower()] = (target, usage)

    def _check_name(self, name: object) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")

    # ------------------------------------------------------------------ lookup
    def names(self) -> list[str]:
        """The registered names (lazy ones included, nothing imported), sorted."""
        return sorted(self._entries)

    def targets(self) -> dict[str, str]:
        """``{name: "module:Class"}`` for every entry, prefixes as ``"<prefix>:"``."""
        out = {name: _target(entry) for name, entry in self._entries.items()}
        out.update({f"{p}:": _target(t) for p, (t, _) in self._prefixes.items()})
        return out

    def get_class(self, query: str | type[T] | T) -> type[T]:
        """The class for ``query``: a registered name (or ``"<prefix>:..."``), a class, or
        an instance (its class). Unknown names raise ``unknown_error`` with a hint."""
        if not isinstance(query, str):
            if isinstance(query, type) and self._accepts_class(query):
                return query
            if self._accepts_instance(query):
                return type(query)
            raise self._unknown(query)
        key = self._key(query)
        if key is not None:
            return self._load(key)
        prefix = self._prefix_of(query)
        if prefix is not None:
            return self._resolve(self._prefixes[prefix][0], f"{prefix}:")
        raise self._unknown(query)

    def get(self, query: str | type[T] | T, /, **kwargs: Any) -> T:
        """An instance for ``query``: a name's class (or a given class) built with
        ``kwargs``; ``"<prefix>:<arg>"`` builds the prefix's class with ``arg`` first; an
        instance is returned as it is (``kwargs`` are then ignored)."""
        if not isinstance(query, str | type) and self._accepts_instance(query):
            return query  # type: ignore[return-value]
        if isinstance(query, str) and self._key(query) is None:
            prefix = self._prefix_of(query)
            if prefix is not None:
                cls = self._resolve(self._prefixes[prefix][0], f"{prefix}:")
                return cls(query.strip()[len(prefix) + 1 :], **kwargs)
        return self.get_class(query)(**kwargs)

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

    def suggest(self, query: object) -> str:
        """The "did you mean" hint for an unknown ``query`` (``""`` when nothing is close)."""
        if not isinstance(query, str):
            return ""
        return did_you_mean(query.strip().lower(), self._entries, cutoff=0.5, paren=True)

    def _key(self, query: str) -> str | None:
        """The registered name ``query`` means (as given, or stripped and lower-cased)."""
        if query in self._entries:
            return query
        key = query.strip().lower()
        return key if key in self._entries else None

    def _prefix_of(self, query: str) -> str | None:
        head, sep, _ = query.strip().partition(":")
        return head.lower() if sep and head.lower() in self._prefixes else None

    def _load(self, name: str) -> type[T]:
        entry = self._entries[name]
        if isinstance(entry, type):
            return entry
        cls = self._resolve(entry, name)
        if not isinstance(self._entries[name], type):  # its module did not register it
            self.register(name, cls)
        return self._entries[name]  # type: ignore[return-value]

    def _resolve(self, target: type[T] | str, name: str) -> type[T]:
        if isinstance(target, type):
            return target
        try:
            return import_target(target)
        except (ImportError, AttributeError) as err:
            raise ImportError(
                f"{self.kind} {name!r} is registered as {target!r}, which cannot be "
                f"imported: {err}"
            ) from err

    def _accepts_class(self, cls: type) -> bool:
        if self.base is not None:
            return issubclass(cls, self.base)
        return any(issubclass(cls, c) for c in self._loaded())

    def _accepts_instance(self, obj: object) -> bool:
        if self.base is not None:
            return isinstance(obj, self.base)
        return isinstance(obj, tuple(self._loaded()))

    def _loaded(self) -> list[type]:
        return [c for c in self._entries.values() if isinstance(c, type)]

    def _unknown(self, query: object) -> Exception:
        usages = "".join(f", or {usage}" for _, usage in self._prefixes.values())
        return self.unknown_error(
            f"unknown {self.kind} {query!r}{self.suggest(query)}; "
            f"registered: {', '.join(self.names())}{usages}"
        )

    # ------------------------------------------------------------------ mapping protocol
    def __getitem__(self, name: str) -> type[T]:
        return self.get_class(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"


def _target(entry: type | str) -> str:
    return target_of(entry) if isinstance(entry, type) else entry


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

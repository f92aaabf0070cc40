"""A content-addressed embedding cache kept inside the workspace.

Each encoder has one safetensors file ``features/cache/<encoder>.safetensors`` holding
``keys`` (uint8 [n, 32]: sha256 of encoder name + version + the input's bytes) and
``values`` (float32 [n, d]; another ``dtype`` on request, e.g. float16 for the intermediate
feature maps the image linker keeps). Re-encoding an unchanged catalogue finds every key and
runs no forward pass; a changed product changes only its own key.

Progress is kept in chunks: :meth:`EmbeddingCache.checkpoint` writes the rows added since
the last one to a part file ``<encoder>.part-NNNNNN.safetensors`` (atomically, temp file +
rename), and :meth:`EmbeddingCache.save` folds the parts into the main file. A run that is
killed therefore loses at most the chunk it was encoding: the next run loads the main file
and every complete part, and encodes only the rest.

Every file is verified on load (two tensors, uint8 keys ``[n, 32]``, values ``[n, d]`` of
finite numbers); a damaged one is a :class:`~kg.workspace.WorkspaceError` naming the file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from kg.workspace import WorkspaceError, atomic_write_bytes


def content_key(encoder_id: str, payload: bytes) -> bytes:
    """sha256 over the encoder's identity and the input's bytes."""
    digest = hashlib.sha256(encoder_id.encode("utf-8"))
    digest.update(b"\0")
    digest.update(payload)
    return digest.digest()


def _damaged(path: Path, why: str) -> WorkspaceError:
    return WorkspaceError(
        f"{path}: the embedding cache is damaged ({why}); delete it (it is only a cache) "
        "and run `kgf encode` again"
    )


def read_cache_file(path: Path) -> tuple[np.ndarray, torch.Tensor]:
    """``(keys uint8 [n, 32], values [n, d])`` of one cache file, verified."""
    try:
        stored = load_file(str(path))
    except Exception as err:  # SafetensorError, OSError, a truncated header...
        raise _damaged(path, f"unreadable: {err}") from None
    keys, values = stored.get("keys"), stored.get("values")
    if keys is None or values is None or set(stored) != {"keys", "values"}:
        raise _damaged(path, f"tensors {sorted(stored)}, expected keys and values")
    if keys.dtype != torch.uint8 or keys.dim() != 2 or keys.shape[1] != 32:
        raise _damaged(path, f"keys {keys.dtype} {tuple(keys.shape)}, expected uint8 [n, 32]")
    if values.dim() != 2 or values.shape[0] != keys.shape[0]:
        raise _damaged(
            path, f"values {tuple(values.shape)} for {keys.shape[0]} keys, expected [n, d]"
        )
    if not values.is_floating_point() or not bool(torch.isfinite(values).all()):
        raise _damaged(path, "values that are not finite numbers")
    return keys.numpy(), values


class EmbeddingCache:
    """``lookup(keys)`` -> rows found; ``put(keys, values)``; ``checkpoint()`` keeps the
    rows added so far in a part file; ``save()`` writes one file atomically."""

    def __init__(self, folder: Path, encoder_id: str, dtype: torch.dtype = torch.float32):
        safe = re.sub(r"[^0-9A-Za-z_.-]+", "_", encoder_id)[:100]
        self.path = Path(folder) / f"{safe}.safetensors"
        self._part_glob = f"{safe}.part-*.safetensors"
        self.encoder_id = encoder_id
        self.dtype = dtype
        self._rows: dict[bytes, int] = {}
        self._values: list[torch.Tensor] = []
        self._dirty = False
        self._checkpointed = 0  # rows already kept on disk (main file + parts)
        files = [self.path] if self.path.is_file() else []
        for path in [*files, *self.parts()]:
            keys, values = read_cache_file(path)
            self._add(keys, values)
        self._checkpointed = len(self._rows)
        self._dirty = bool(self.parts())

    def __len__(self) -> int:
        return len(self._rows)

    def parts(self) -> list[Path]:
        """The part files of unfinished runs, in the order they were written."""
        folder = self.path.parent
        return sorted(folder.glob(self._part_glob)) if folder.is_dir() else []

    def key(self, payload: bytes) -> bytes:
        return content_key(self.encoder_id, payload)

    def lookup(self, keys: list[bytes]) -> tuple[list[int], torch.Tensor | None]:
        """Indices (into ``keys``) found in the cache, and their stored vectors."""
        found = [i for i, k in enumerate(keys) if k in self._rows]
        if not found:
            return [], None
        table = self._table()
        return found, table[[self._rows[keys[i]] for i in found]]

    def _add(self, keys: np.ndarray, values: torch.Tensor) -> None:
        if self._values and values.shape[1] != self._values[0].shape[1]:
            raise _damaged(
                self.path, f"rows of width {values.shape[1]} and {self._values[0].shape[1]}"
            )
        fresh = []
        for i in range(len(keys)):
            k = keys[i].tobytes()
            if k not in self._rows:
                self._rows[k] = len(self._rows)
                fresh.append(i)
        if fresh:
            self._values.append(values[fresh].to(self.dtype).cpu())

    def put(self, keys: list[bytes], values: torch.Tensor) -> None:
        start = len(self._rows)
        fresh = []
        for i, k in enumerate(keys):
            if k not in self._rows:
                self._rows[k] = start + len(fresh)
                fresh.append(i)
        if fresh:
            self._values.append(values[fresh].to(self.dtype).cpu())
            self._dirty = True

    def _table(self) -> torch.Tensor:
        if len(self._values) > 1:
            self._values = [torch.cat(self._values)]
        return self._values[0]

    def _keys(self, start: int = 0) -> torch.Tensor:
        ordered = sorted(self._rows.items(), key=lambda kv: kv[1])[start:]
        raw = b"".join(k for k, _ in ordered)
        return torch.from_numpy(np.frombuffer(raw, np.uint8).reshape(-1, 32).copy())

    def checkpoint(self) -> Path | None:
        """Write the rows added since the last checkpoint (or load) to a new part file, so
        that a killed run resumes after them; the path, or None when nothing was added."""
        if len(self._rows) == self._checkpointed:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        parts = self.parts()
        number = int(parts[-1].name.rsplit("part-", 1)[1].split(".")[0]) + 1 if parts else 0
        stem = self.path.name[: -len(".safetensors")]
        path = self.path.with_name(f"{stem}.part-{number:06d}.safetensors")
        keys = self._keys(self._checkpointed)
        values = self._table()[self._checkpointed :].contiguous()
        atomic_write_bytes(path, save({"keys": keys, "values": values}))
        self._checkpointed = len(self._rows)
        return path

    def save(self) -> None:
        """Write every row to the main file atomically, then remove the part files."""
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        parts = self.parts()
        atomic_write_bytes(
            self.path, save({"keys": self._keys(), "values": self._table().contiguous()})
        )
        for part in parts:
            part.unlink(missing_ok=True)
        for tmp in self.path.parent.glob(f".{self._part_glob.split('.part-')[0]}*.tmp"):
            tmp.unlink(missing_ok=True)  # half-written files of a killed run
        self._checkpointed = len(self._rows)
        self._dirty = False

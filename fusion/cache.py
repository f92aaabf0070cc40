"""A content-addressed embedding cache kept inside the workspace.

Each encoder has one safetensors file ``features/cache/<encoder>.safetensors`` holding
``keys`` (uint8 [n, 32]: sha256 of encoder name + version + the input's bytes) and
``values`` (float32 [n, d]; another ``dtype`` on request, e.g. float16 for the intermediate
feature maps the image linker keeps). Re-encoding an unchanged catalogue finds every key and
runs no forward pass; a changed product changes only its own key. The file is rewritten
atomically (temp file + rename), so an interrupted run never leaves a half-written cache.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from kg.workspace import atomic_write_bytes


def content_key(encoder_id: str, payload: bytes) -> bytes:
    """sha256 over the encoder's identity and the input's bytes."""
    digest = hashlib.sha256(encoder_id.encode("utf-8"))
    digest.update(b"\0")
    digest.update(payload)
    return digest.digest()


class EmbeddingCache:
    """``get(keys)`` -> rows found; ``put(keys, values)``; ``save()`` writes atomically."""

    def __init__(self, folder: Path, encoder_id: str, dtype: torch.dtype = torch.float32):
        safe = re.sub(r"[^0-9A-Za-z_.-]+", "_", encoder_id)[:100]
        self.path = Path(folder) / f"{safe}.safetensors"
        self.encoder_id = encoder_id
        self.dtype = dtype
        self._rows: dict[bytes, int] = {}
        self._values: list[torch.Tensor] = []
        self._dirty = False
        if self.path.is_file():
            stored = load_file(str(self.path))
            keys = stored["keys"].numpy()
            self._values = [stored["values"].to(dtype)]
            self._rows = {keys[i].tobytes(): i for i in range(len(keys))}

    def __len__(self) -> int:
        return len(self._rows)

    def key(self, payload: bytes) -> bytes:
        return content_key(self.encoder_id, payload)

    def lookup(self, keys: list[bytes]) -> tuple[list[int], torch.Tensor | None]:
        """Indices (into ``keys``) found in the cache, and their stored vectors."""
        found = [i for i, k in enumerate(keys) if k in self._rows]
        if not found:
            return [], None
        table = self._table()
        return found, table[[self._rows[keys[i]] for i in found]]

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

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ordered = sorted(self._rows.items(), key=lambda kv: kv[1])
        keys = torch.from_numpy(
            np.frombuffer(b"".join(k for k, _ in ordered), np.uint8).reshape(-1, 32).copy()
        )
        atomic_write_bytes(self.path, save({"keys": keys, "values": self._table().contiguous()}))
        self._dirty = False

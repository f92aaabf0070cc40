"""What every linker shares: the :class:`Link` it returns, :class:`LinkerError`, and the
reader of a linker's ``config.json``.

The text linker (:mod:`align.linker`), the image linker (:mod:`align.images`), their
training (:mod:`align.train`, :mod:`align.image_train`) and the table helpers
(:mod:`align.tables`) import these from here, so no module of the package needs another
one that needs it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class LinkerError(RuntimeError):
    """A workspace the linker cannot use, or a bad input; the message says what to do."""


@dataclass
class Link:
    """One linked (or NIL) mention.

    ``start``/``end`` are character offsets into the linked text (``text[start:end] ==
    mention``; a record spans its joined text); for a photo both are None and ``mention``
    is the image's file name. ``iri``/``type`` are None when ``nil``;
    ``score`` is the best candidate's match probability either way, and ``alternatives``
    lists the top-k candidates ``(iri, probability)``, best first (the link included).
    ``representation`` [d_m + d_g]: the mention (or photo) embedding concatenated with the
    linked entity's graph-enriched vector (zeros for a NIL link).
    """

    mention: str
    start: int | None
    end: int | None
    iri: str | None
    type: str | None
    score: float
    alternatives: list[tuple[str, float]]
    nil: bool
    representation: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self, representation: bool = False) -> dict:
        out = {
            "mention": self.mention, "start": self.start, "end": self.end, "iri": self.iri,
            "type": self.type, "score": round(self.score, 6), "nil": self.nil,
            "alternatives": [[iri, round(s, 6)] for iri, s in self.alternatives],
        }  # fmt: skip
        if representation and self.representation is not None:
            out["representation"] = self.representation.tolist()
        return out


def read_config(cls, path: Path, fmt: str, version: int, what: str):
    """A config dataclass from its ``config.json``: the format tag must match and the
    version must not be newer than this code's; unknown keys are ignored."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != fmt:
        raise LinkerError(f"{path} is not a kgfusion {what} config")
    if data.get("version", 0) > version:
        raise LinkerError(f"{path}: {what} format {data['version']}; upgrade kgfusion")
    known = set(cls.__dataclass_fields__)
    return cls(**{k: v for k, v in data.items() if k in known})

"""The kinds of question -> attribute scorer, by name (``kgf qa-train --scorer KIND``).

- ``features``: :class:`align.qa_scorer.QAScorer`, a head over frozen multilingual E5
  embeddings (questions in en / de / es / zh), trained by :func:`align.qa_train.fit_scorer`;
- ``bi-encoder``: :class:`align.qa_biencoder.BiEncoderScorer`, all-MiniLM-L6-v2 fine-tuned
  (English), trained by :func:`align.qa_biencoder.fit_biencoder`.

Both answer ``score`` / ``score_many`` / ``save`` / ``load`` alike;
:func:`load_scorer` reads either from a folder (by the ``format`` of its config.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from fusion.artifacts import CONFIG_FILE

from .base import LinkerError
from .qa_biencoder import FORMAT as BI_FORMAT
from .qa_biencoder import BiEncoderScorer, fit_biencoder
from .qa_scorer import FORMAT, QAScorer, Question
from .qa_train import fit_scorer


class ScorerKind(NamedTuple):
    """A kind of scorer: its class, its training function, its default epochs and the
    ``format`` tag of its config.json."""

    cls: type
    fit: object
    epochs: int
    format: str


SCORERS: dict[str, ScorerKind] = {
    "features": ScorerKind(QAScorer, fit_scorer, 30, FORMAT),
    "bi-encoder": ScorerKind(BiEncoderScorer, fit_biencoder, 3, BI_FORMAT),
}


def scorer_kind(kind: str) -> ScorerKind:
    """The kind registered as ``kind`` (``LinkerError`` listing the kinds otherwise)."""
    if kind not in SCORERS:
        raise LinkerError(f"unknown question scorer {kind!r}; choose one of {', '.join(SCORERS)}")
    return SCORERS[kind]


def scorer_class(kind: str) -> type:
    """The scorer class of ``kind``."""
    return scorer_kind(kind).cls


def train_scorer(questions: list[Question], kind: str = "features", *, encoder: str | None = None,
                 scorer=None, epochs: int | None = None, **options):  # fmt: skip
    """Train a new scorer of ``kind`` over ``encoder`` (or the given untrained ``scorer``,
    e.g. one whose embedding cache is filled) on labelled questions; ``epochs`` None: the
    kind's default. Returns ``(scorer, hold-out metrics)``."""
    spec = scorer_kind(kind)
    scorer = scorer or spec.cls.untrained(encoder)
    metrics = spec.fit(scorer, questions, epochs=epochs or spec.epochs, **options)
    return scorer, metrics


def load_scorer(directory):
    """The trained scorer saved in ``directory``, whichever kind (read from the ``format``
    of its config.json); a missing one raises :class:`LinkerError` naming ``kgf qa-train``."""
    path = Path(directory) / CONFIG_FILE
    fmt = None
    if path.is_file():
        try:
            fmt = json.loads(path.read_text(encoding="utf-8")).get("format")
        except (ValueError, AttributeError):
            raise LinkerError(f"{path}: not a JSON object; train the scorer again") from None
    spec = next((k for k in SCORERS.values() if k.format == fmt), SCORERS["features"])
    return spec.cls.load(directory)

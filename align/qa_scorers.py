"""The kinds of question -> attribute scorer, by name (``kgf qa-train --scorer KIND``).

- ``features``: :class:`align.qa_scorer.QAScorer`, a head over frozen multilingual E5
  embeddings (questions in en / de / es / zh), trained by :func:`align.qa_train.fit_scorer`;
- ``bi-encoder``: :class:`align.qa_biencoder.BiEncoderScorer`, all-MiniLM-L6-v2 fine-tuned
  (English), trained by :func:`align.qa_biencoder.fit_biencoder`;
- ``cross-encoder``: :class:`align.qa_crossencoder.CrossEncoderScorer`, all-MiniLM-L6-v2
  fine-tuned as a cross-encoder over (question, attribute) pairs (English), trained by
  :func:`align.qa_crossencoder.fit_crossencoder`;
- ``ensemble``: :class:`align.qa_ensemble.EnsembleScorer`, a bi-encoder and a cross-encoder
  whose log-probabilities are pooled with weights fitted on their common hold-out
  (:func:`align.qa_ensemble.fit_ensemble`).

All answer ``score`` / ``score_many`` / ``save`` / ``load`` alike;
:func:`load_scorer` reads any of them from a folder (by the ``format`` of its config.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from fusion.artifacts import CONFIG_FILE

from .base import LinkerError
from .qa_biencoder import FORMAT as BI_FORMAT
from .qa_biencoder import BiEncoderScorer, fit_biencoder
from .qa_crossencoder import FORMAT as CROSS_FORMAT
from .qa_crossencoder import CrossEncoderScorer, fit_crossencoder
from .qa_ensemble import FORMAT as ENSEMBLE_FORMAT
from .qa_ensemble import EnsembleScorer, fit_ensemble
from .qa_scorer import FORMAT, QAScorer, Question
from .qa_train import fit_scorer


class ScorerKind(NamedTuple):
    """A kind of scorer: its class, its training function, its default epochs, the
    ``format`` tag of its config.json and a line for ``kgf qa-train --help``."""

    cls: type
    fit: object
    epochs: int
    format: str
    help: str = ""


SCORERS: dict[str, ScorerKind] = {
    "features": ScorerKind(QAScorer, fit_scorer, 30, FORMAT,
                           "a head over frozen multilingual E5 embeddings (en / de / es / zh)"),
    "bi-encoder": ScorerKind(BiEncoderScorer, fit_biencoder, 3, BI_FORMAT,
                             "fine-tunes all-MiniLM-L6-v2 (English, minutes of CPU)"),
    "cross-encoder": ScorerKind(CrossEncoderScorer, fit_crossencoder, 2, CROSS_FORMAT,
                                "fine-tunes all-MiniLM-L6-v2 over (question, attribute) "
                                "pairs (English, several times the bi-encoder's CPU)"),
    "ensemble": ScorerKind(EnsembleScorer, fit_ensemble, 0, ENSEMBLE_FORMAT,
                           "a bi-encoder and a cross-encoder, weights fitted on their hold-out"),
}  # fmt: skip


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
    metrics = spec.fit(scorer, questions, epochs=epochs or spec.epochs or None, **options)
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

"""The single-model kinds of question -> attribute scorer and how to load any saved one.

:data:`BASE_SCORERS` maps a kind's name to its :class:`ScorerKind` (class, training
function, default epochs, ``format`` tag of its config.json, help line);
:func:`load_from` reads a saved scorer of any kind of a table by that ``format`` tag.
:mod:`align.qa_scorers` adds the ensemble of these (:mod:`align.qa_ensemble`, whose members
are base kinds) to make the registry of ``kgf qa-train --scorer``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from fusion.artifacts import CONFIG_FILE

from .base import LinkerError
from .qa_biencoder import FORMAT as BI_FORMAT
from .qa_biencoder import BiEncoderScorer, fit_biencoder, refit_biencoder
from .qa_crossencoder import FORMAT as CROSS_FORMAT
from .qa_crossencoder import CrossEncoderScorer, fit_crossencoder, refit_crossencoder
from .qa_memory import FORMAT as MEMORY_FORMAT
from .qa_memory import QuestionMemory, fit_memory
from .qa_scorer import FORMAT, QAScorer
from .qa_train import fit_scorer


class ScorerKind(NamedTuple):
    """A kind of scorer: its class, its training function, its default epochs, the
    ``format`` tag of its config.json, a line for ``kgf qa-train --help`` and, for a
    fine-tuned kind, its refit on all the questions (``refit(scorer, questions, progress)``)."""

    cls: type
    fit: object
    epochs: int
    format: str
    help: str = ""
    refit: object = None


BASE_SCORERS: dict[str, ScorerKind] = {
    "features": ScorerKind(QAScorer, fit_scorer, 30, FORMAT,
                           "a head over frozen multilingual E5 embeddings (en / de / es / zh)"),
    "bi-encoder": ScorerKind(BiEncoderScorer, fit_biencoder, 3, BI_FORMAT,
                             "fine-tunes all-MiniLM-L6-v2 (English, minutes of CPU)",
                             refit_biencoder),
    "cross-encoder": ScorerKind(CrossEncoderScorer, fit_crossencoder, 2, CROSS_FORMAT,
                                "fine-tunes all-MiniLM-L6-v2 over (question, attribute) "
                                "pairs (English, several times the bi-encoder's CPU)",
                                refit_crossencoder),
    "memory": ScorerKind(QuestionMemory, fit_memory, 0, MEMORY_FORMAT,
                         "votes for the attribute names that answered the nearest training "
                         "questions (frozen MiniLM; seconds)"),
}  # fmt: skip


def kind_in(kind: str, kinds: dict[str, ScorerKind]) -> ScorerKind:
    """The kind registered as ``kind`` in ``kinds`` (``LinkerError`` listing them otherwise)."""
    if kind not in kinds:
        raise LinkerError(f"unknown question scorer {kind!r}; choose one of {', '.join(kinds)}")
    return kinds[kind]


def load_from(directory, kinds: dict[str, ScorerKind]):
    """The trained scorer saved in ``directory``, whichever kind of ``kinds`` (read from the
    ``format`` of its config.json; none: the features scorer, whose loader names ``kgf
    qa-train``)."""
    path = Path(directory) / CONFIG_FILE
    fmt = None
    if path.is_file():
        try:
            fmt = json.loads(path.read_text(encoding="utf-8")).get("format")
        except (ValueError, AttributeError):
            raise LinkerError(f"{path}: not a JSON object; train the scorer again") from None
    spec = next((k for k in kinds.values() if k.format == fmt), kinds["features"])
    return spec.cls.load(directory)

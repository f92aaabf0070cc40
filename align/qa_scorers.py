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
  (:func:`align.qa_ensemble.fit_ensemble`);
- ``memory``: :class:`align.qa_memory.QuestionMemory`, votes of the nearest training
  questions for the names of the attributes that answered them (:func:`align.qa_memory.
  fit_memory`);
- ``ensemble-memory``: the ensemble of a bi-encoder, a cross-encoder and a question memory
  (:class:`align.qa_ensemble.MemoryEnsemble`, saved as any ensemble).

All answer ``score`` / ``score_many`` / ``save`` / ``load`` alike;
:func:`load_scorer` reads any of them from a folder (by the ``format`` of its config.json).
The single-model kinds live in :data:`align.qa_kinds.BASE_SCORERS` (the ensemble's members
are of those).
"""

from __future__ import annotations

from .qa_ensemble import FORMAT as ENSEMBLE_FORMAT
from .qa_ensemble import EnsembleScorer, MemoryEnsemble, fit_ensemble
from .qa_kinds import BASE_SCORERS, ScorerKind, kind_in, load_from
from .qa_scorer import Question

SCORERS: dict[str, ScorerKind] = {
    **BASE_SCORERS,
    "ensemble": ScorerKind(EnsembleScorer, fit_ensemble, 0, ENSEMBLE_FORMAT,
                           "a bi-encoder and a cross-encoder, weights fitted on their hold-out"),
    "ensemble-memory": ScorerKind(MemoryEnsemble, fit_ensemble, 0, ENSEMBLE_FORMAT,
                                  "the ensemble plus the question memory, weights fitted on "
                                  "hold-outs of unseen and seen attribute types"),
}  # fmt: skip


def scorer_kind(kind: str) -> ScorerKind:
    """The kind registered as ``kind`` (``LinkerError`` listing the kinds otherwise)."""
    return kind_in(kind, SCORERS)


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
    return load_from(directory, SCORERS)


__all__ = ["SCORERS", "ScorerKind", "load_scorer", "scorer_class", "scorer_kind", "train_scorer"]

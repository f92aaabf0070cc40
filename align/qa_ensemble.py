"""A learned combination of question scorers (``kgf qa-train --scorer ensemble``).

Scorers of different kinds err on different questions: the bi-encoder
(:mod:`align.qa_biencoder`) compares the question with each attribute from apart, the
cross-encoder (:mod:`align.qa_crossencoder`) reads them together. For a question with
candidates ``c_1..c_C`` and members ``k`` giving probabilities ``p_k`` over ``[c_1 .. c_C,
NIL]``::

    s = sum_k w_k * log p_k          [C + 1]
    p = softmax(s)

the weights ``w`` (one per member) fitted by listwise cross-entropy on the members'
hold-out scores: every member is trained with the same attribute-wise hold-out
(:func:`align.qa_train.attribute_split`, same seed and fraction) and keeps the model chosen
on it, so its hold-out scores are those of questions and attributes it never trained on.
The NIL threshold is then calibrated on the combined hold-out probabilities (the model that
is kept). A member with ``hold_out_views`` (the question memory, :mod:`align.qa_memory`)
gives several rows per hold-out question (its memory of the training part only: attribute
types unseen; all of it less the question's own product: types seen); the others' rows
are repeated, and the weights and threshold are fitted on all the views together
(``metrics["views"]``: the hold-out metrics per view). A log-linear pool of experts
(Hinton, "Training Products of Experts by Minimizing Contrastive Divergence", Neural
Computation 2002, in its simplest weighted form).

Saved as ``config.json`` (:class:`EnsembleConfig`: the weights, the threshold) with each
member in its own sub-folder ``member-<i>`` (its own ``config.json`` and weights).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from fusion.artifacts import CONFIG_FILE
from kg.workspace import atomic_directory

from .base import LinkerError, read_config
from .qa_kinds import BASE_SCORERS, kind_in, load_from
from .qa_scorer import Candidate, Question
from .qa_train import attribute_split, calibrate, rank_metrics
from .qa_tuned import ProbabilityScorer

FORMAT = "kgfusion-qa-ensemble"
VERSION = 1
MEMBERS = ("bi-encoder", "cross-encoder")  # the default members' kinds
MEMORY_MEMBERS = (*MEMBERS, "memory")  # with the question memory (align.qa_memory)
_EPS = 1e-6


@dataclass
class EnsembleConfig:
    """What a saved ensemble needs besides its members (``config.json``)."""

    format: str = FORMAT
    version: int = VERSION
    members: list = field(default_factory=lambda: list(MEMBERS))  # kinds, in order
    weights: list = field(default_factory=list)  # one per member
    threshold: float = 0.3
    max_question_chars: int = 500  # longer questions are cut before asking (align.qa)
    epochs: int = 0
    trained: bool = False
    metrics: dict = field(default_factory=dict)


def _log_rows(rows: list[np.ndarray]) -> list[np.ndarray]:
    return [np.log(np.clip(r, _EPS, 1.0)) for r in rows]


def pooled(weights, member_rows: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Combined probability rows ``[C_i + 1]`` from each member's rows (module docstring)."""
    out = []
    for rows in zip(*member_rows, strict=True):
        s = sum(w * r for w, r in zip(weights, _log_rows(list(rows)), strict=True))
        s = np.exp(s - s.max())
        out.append((s / s.sum()).astype(np.float32))
    return out


def fit_weights(questions: list[Question], member_rows: list[list[np.ndarray]],
                steps: int = 200) -> list[float]:  # fmt: skip
    """Weights ``[K]`` minimising the listwise cross-entropy of :func:`pooled` on labelled
    ``questions`` (answering candidates share the target; NIL questions: the NIL slot),
    from ``member_rows[k][i]``, member ``k``'s probability row ``[C_i + 1]`` of question
    ``i``."""
    k = len(member_rows)
    width = max(len(q.candidates) for q in questions) + 1
    logp = torch.full((k, len(questions), width), 0.0)
    mask = torch.zeros(len(questions), width, dtype=torch.bool)
    target = torch.zeros(len(questions), width)
    for i, q in enumerate(questions):
        c = len(q.candidates)
        for m in range(k):
            row = torch.from_numpy(_log_rows([member_rows[m][i]])[0]).float()
            logp[m, i, :c], logp[m, i, -1] = row[:c], row[-1]
        mask[i, :c], mask[i, -1] = True, True
        if q.labels:
            target[i, q.labels] = 1.0 / len(q.labels)
        else:
            target[i, -1] = 1.0
    w = torch.full((k,), 1.0 / k, requires_grad=True)
    optimiser = torch.optim.Adam([w], lr=0.05)
    for _ in range(steps):
        s = torch.einsum("k,kbc->bc", w, logp).masked_fill(~mask, float("-inf"))
        loss = -(target * torch.log_softmax(s, -1).masked_fill(target == 0, 0.0)).sum(-1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return [round(float(x), 4) for x in w.detach()]


class EnsembleScorer(ProbabilityScorer):
    """Members (scorers of the kinds of ``config.members``) and their weights; same
    interface as :class:`align.qa_scorer.QAScorer`."""

    def __init__(self, config: EnsembleConfig, members: list):
        if len(members) != len(config.members):
            raise LinkerError(f"an ensemble of {config.members} needs {len(config.members)} "
                              f"members, not {len(members)}")  # fmt: skip
        self.config, self.members = config, members

    @classmethod
    def untrained(cls, encoder: str | None = None, kinds=MEMBERS) -> EnsembleScorer:
        """New members of ``kinds`` (``encoder``: the base model of each, default theirs)."""
        return cls(EnsembleConfig(members=list(kinds)),
                   [kind_in(kind, BASE_SCORERS).cls.untrained(encoder) for kind in kinds])  # fmt: skip

    def __repr__(self) -> str:
        state = "trained" if self.config.trained else "untrained"
        return (f"EnsembleScorer({' + '.join(self.config.members)}, {state}, "
                f"threshold {self.config.threshold:.3f})")  # fmt: skip

    def member_rows(self, questions: list[str], candidates: list[list[Candidate]]):
        """Each member's probability rows ``[C_i + 1]`` (the last entry NIL)."""
        out = []
        for member in self.members:
            scored = member.score_many(questions, candidates)
            out.append([np.append(s.probs, s.nil_prob).astype(np.float32) for s in scored])
        return out

    def probabilities(self, questions: list[str], candidates: list[list[Candidate]]):
        """Combined softmax rows ``[C_i + 1]`` (the last entry NIL) per question."""
        if not questions:
            return []
        weights = self.config.weights or [1.0 / len(self.members)] * len(self.members)
        return pooled(weights, self.member_rows(questions, candidates))

    # -------------------------------------------------------------- disk
    def save(self, directory) -> Path:
        """``config.json`` + one sub-folder per member, replacing ``directory`` whole."""
        directory = Path(directory)
        with atomic_directory(directory, overwrite=True) as tmp:
            for i, member in enumerate(self.members):
                member.save(Path(tmp) / f"member-{i}")
            (Path(tmp) / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2),
                                                 encoding="utf-8")  # fmt: skip
        return directory

    @classmethod
    def load(cls, directory) -> EnsembleScorer:
        """An ensemble saved by :meth:`save` (``LinkerError`` naming the folder otherwise)."""
        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file():
            raise LinkerError(f"{directory} holds no question scorer ensemble; train one with "
                              f"`kgf qa-train WS --scorer ensemble`")  # fmt: skip
        config = read_config(EnsembleConfig, directory / CONFIG_FILE, FORMAT, VERSION,
                             "QA scorer ensemble")  # fmt: skip
        members = [load_from(directory / f"member-{i}", BASE_SCORERS)
                   for i in range(len(config.members))]  # fmt: skip
        return cls(config, members)


def _views(member, check: list[Question], train: list[Question]) -> list[list[np.ndarray]]:
    """``member``'s probability rows ``[C_i + 1]`` of the hold-out questions ``check``, one
    list per hold-out view: its own ``hold_out_views(check, train)`` where it has one (the
    question memory: types unseen, then seen), else its plain rows (one view)."""
    own = getattr(member, "hold_out_views", None)
    if own is not None:
        return own(check, train)
    scored = member.score_many([q.text for q in check], [q.candidates for q in check])
    return [[np.append(x.probs, x.nil_prob).astype(np.float32) for x in scored]]


def fit_ensemble(scorer: EnsembleScorer, questions: list[Question], *, epochs: int | None = None,
                 valid_fraction: float = 0.2, seed: int = 0, refit: bool = True,
                 progress=None) -> dict:  # fmt: skip
    """Train the members not trained yet (each its kind's default epochs, or ``epochs``;
    the same hold-out for all), fit the weights on their hold-out scores and calibrate the
    NIL threshold on the combined hold-out probabilities (module docstring); with ``refit``,
    then refit the members trained here on all the questions (their kind's ``refit``).
    Returns the combined hold-out metrics with the weights (also in
    ``scorer.config.metrics``)."""
    questions = [q for q in questions if q.candidates]
    if len(questions) < 2:
        raise LinkerError("training the question scorer needs at least 2 questions with candidates")
    members, trained_here = {}, []
    for kind, member in zip(scorer.config.members, scorer.members, strict=True):
        if not member.config.trained:
            spec = kind_in(kind, BASE_SCORERS)
            members[kind] = spec.fit(member, questions, epochs=epochs or spec.epochs,
                                     valid_fraction=valid_fraction, seed=seed, refit=False,
                                     progress=progress)  # fmt: skip
            trained_here.append((spec, member))
    valid, train = attribute_split(questions, valid_fraction, seed)
    check = valid or train
    views = [_views(member, check, train) for member in scorer.members]
    count = max(len(v) for v in views)
    rows = [[r for view in (v * count if len(v) == 1 else v) for r in view] for v in views]
    weights = fit_weights(check * count, rows)
    probs = [r[:-1] for r in pooled(weights, rows)]
    threshold = calibrate(check * count, probs)
    metrics = rank_metrics(check * count, probs, [0.0] * len(probs), threshold)
    per_view = [rank_metrics(check, probs[i * len(check) : (i + 1) * len(check)],
                             [0.0] * len(check), threshold) for i in range(count)]  # fmt: skip
    metrics = {**{k: round(v, 4) for k, v in metrics.items()}, "threshold": round(threshold, 4),
               "weights": dict(zip(scorer.config.members, weights, strict=True)),
               "views": [{k: round(v, 4) for k, v in m.items()} for m in per_view],
               "members": members, "questions": len(questions),
               "calibration": {"on": "hold-out scores of the kept models",
                               "questions": len(check) * count}}  # fmt: skip
    scorer.config.weights, scorer.config.threshold = weights, threshold
    scorer.config.metrics, scorer.config.trained = metrics, True
    for spec, member in trained_here if refit else ():
        if spec.refit is not None and member.config.epochs > 0:
            spec.refit(member, questions, progress=progress)
    return metrics


class MemoryEnsemble(EnsembleScorer):
    """The ensemble of :data:`MEMORY_MEMBERS` (``kgf qa-train --scorer ensemble-memory``);
    saved and loaded as any ensemble."""

    @classmethod
    def untrained(cls, encoder: str | None = None, kinds=None) -> EnsembleScorer:
        return EnsembleScorer.untrained(encoder, kinds or MEMORY_MEMBERS)

"""Training data and training of the question -> predicate scorer (:mod:`align.qa_scorer`).

- :func:`read_semipqa`: labelled shopper questions in the semiPQA layout (tab-separated
  ``qid, qa_pair_id, question, candidate, label``; Amazon, ECNLP 2022), one
  :class:`~align.qa_scorer.Question` per ``qid``;
- :func:`graph_questions`: questions generated from a workspace's own products (per
  product and attribute, in en / de / es / zh: :mod:`align.qa_lexicon`), for a catalogue
  without labelled questions;
- :func:`fit_scorer`: listwise training with a hold-out that picks the epoch (by MRR), a
  refit on all the questions, and the NIL threshold (accuracy of the answer / NIL
  decisions) calibrated for the model kept: on out-of-fold scores of the refit recipe
  (:func:`out_of_fold`), or on the hold-out without a refit;
- :func:`rank_metrics`: P@1, MRR and NIL accuracy of scored questions.
"""

from __future__ import annotations

import copy
import csv
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from .base import LinkerError
from .qa_lexicon import ENGLISH_TEMPLATES, generated_questions
from .qa_scorer import (
    Candidate,
    QAScorer,
    QAScorerModule,
    Question,
    _masked,
    parse_semipqa,
    shuffled,
)

SEMIPQA_COLUMNS = ("qid", "question", "candidate", "label")

#: English templates for attributes outside the multilingual vocabulary (kept name).
GRAPH_TEMPLATES = ENGLISH_TEMPLATES


def read_semipqa(path) -> list[Question]:
    """Questions of a semiPQA-layout file, in file order of their ``qid``. A missing file
    or column raises :class:`LinkerError` naming the file (and the line of a bad label)."""
    path = Path(path)
    if not path.is_file():
        raise LinkerError(f"{path}: no such file (a semiPQA-layout question file)")
    groups: dict[str, list] = defaultdict(list)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in SEMIPQA_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise LinkerError(
                f"{path}: missing column(s) {', '.join(missing)}; expected tab-separated "
                f"{', '.join(SEMIPQA_COLUMNS)}"
            )
        for line, row in enumerate(reader, start=2):
            if row["label"] not in ("0", "1"):
                raise LinkerError(
                    f"{path}, line {line}: label must be 0 or 1, not {row['label']!r}"
                )
            groups[row["qid"]].append(row)
    out = []
    for rows in groups.values():
        cands = [parse_semipqa(r["candidate"]) for r in rows]
        labels = [i for i, r in enumerate(rows) if r["label"] == "1"]
        out.append(Question(rows[0]["question"], cands, labels))
    return out


def graph_questions(graph, candidates_of, products: list[str], seed: int = 0) -> list[Question]:
    """Generated questions about ``products``, labelled with the attribute asked: for each
    product and attribute, one question per language (en, de, es, zh) from the generic
    multilingual vocabulary, or English ones over the attribute's words, plus a
    value-choice question (:func:`align.qa_lexicon.generated_questions`).
    ``candidates_of(iri)`` gives a product's :class:`Candidate` list (:mod:`align.qa`);
    ``graph`` is kept for callers (unused)."""
    del graph
    return generated_questions(candidates_of, products, seed)


# ------------------------------------------------------------------ metrics
def rank_metrics(questions: list[Question], probs: list[np.ndarray], nil_probs: list[float],
                 threshold: float) -> dict:  # fmt: skip
    """``p@1`` and ``mrr`` over the answerable questions; ``nil_acc``: the share of NIL
    questions answered NIL, ``answer_acc``: of answerable ones not answered NIL;
    ``accuracy``: the share of all questions decided right (the best candidate answers and
    is kept, or a NIL question is answered NIL). NIL: the best candidate's probability is
    below ``threshold``."""
    p1, rr, nil_ok, ans_ok, right = [], [], [], [], []
    for q, p in zip(questions, probs, strict=True):
        top = float(p.max()) if len(p) else 0.0
        is_nil = top < threshold
        if not q.labels:
            nil_ok.append(is_nil)
            right.append(is_nil)
            continue
        ans_ok.append(not is_nil)
        order = np.argsort(-p, kind="stable")
        rank = min(int(np.nonzero(order == i)[0][0]) + 1 for i in q.labels)
        p1.append(rank == 1)
        rr.append(1.0 / rank)
        right.append(rank == 1 and not is_nil)
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return {"p@1": mean(p1), "mrr": mean(rr), "nil_acc": mean(nil_ok), "answer_acc": mean(ans_ok),
            "accuracy": mean(right)}  # fmt: skip


def calibrate(questions: list[Question], probs: list[np.ndarray]) -> float:
    """The NIL threshold with the best ``accuracy`` (:func:`rank_metrics`) on
    ``questions``, the lowest of equals (midpoints between neighbouring best-candidate
    probabilities): a wrong best attribute is as bad as a wrong NIL."""
    tops = sorted({float(p.max()) for p in probs if len(p)})
    cuts = [0.0] + [(a + b) / 2 for a, b in zip(tops, tops[1:], strict=False)]
    nils = [0.0] * len(questions)
    best = max(cuts, key=lambda t: (rank_metrics(questions, probs, nils, t)["accuracy"], -t))
    return float(best)


# ------------------------------------------------------------------ training
def _targets(batch: list[Question], width: int) -> torch.Tensor:
    """Target distributions ``[B, width + 1]``: uniform over the answering candidates, or
    all mass on the NIL column."""
    y = torch.zeros(len(batch), width + 1)
    for i, q in enumerate(batch):
        if q.labels:
            y[i, q.labels] = 1.0 / len(q.labels)
        else:
            y[i, -1] = 1.0
    return y


class _Item:
    """One question's model inputs, computed once: ``q [d]``, ``k, v [C, d]``, ``lex [C, 2]``."""

    def __init__(self, scorer: QAScorer, question: Question):
        q, k, v, lex, _ = scorer.inputs([question.text], [question.candidates])
        self.question, self.q, self.k, self.v, self.lex = question, q[0], k[0], v[0], lex[0]


def _collate(items: list[_Item]):
    """Padded inputs ``q [B, d]``, ``k, v [B, C, d]``, ``lex [B, C, 2]``, ``mask [B, C]``."""
    width = max(len(it.k) for it in items)
    b, d = len(items), items[0].q.shape[0]
    k, v = torch.zeros(b, width, d), torch.zeros(b, width, d)
    lex, mask = (
        torch.zeros(b, width, items[0].lex.shape[1]),
        torch.zeros(b, width, dtype=torch.bool),
    )
    for i, it in enumerate(items):
        n = len(it.k)
        k[i, :n], v[i, :n], lex[i, :n], mask[i, :n] = it.k, it.v, it.lex, True
    return torch.stack([it.q for it in items]), k, v, lex, mask


def _predict(module: QAScorerModule, items: list[_Item], batch_size: int = 256):
    """Probabilities per question (over its candidates) and of NIL, by ``module``."""
    probs, nils = [], []
    module.eval()
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        q, k, v, lex, mask = _collate(batch)
        with torch.no_grad():
            p = torch.softmax(_masked(module(q, k, v, lex), mask), -1).numpy()
        for row, it in zip(p, batch, strict=True):
            probs.append(row[: len(it.question.candidates)])
            nils.append(float(row[-1]))
    return probs, nils


def predict(scorer: QAScorer, questions: list[Question]):
    """``(probabilities per question [C_i], NIL probabilities)`` of labelled questions."""
    return _predict(scorer.module, [_Item(scorer, q) for q in questions if q.candidates])


def _epoch(module: QAScorerModule, train: list[_Item], optimiser, batch_size: int) -> float:
    module.train()
    total = 0.0
    for start in range(0, len(train), batch_size):
        batch = train[start : start + batch_size]
        q, k, v, lex, mask = _collate(batch)
        logits = _masked(module(q, k, v, lex), mask)
        y = _targets([it.question for it in batch], k.shape[1])
        logp = torch.log_softmax(logits, -1).masked_fill(y == 0, 0.0)
        loss = -(y * logp).sum(-1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / max(len(train), 1)


def attribute_split(questions: list[Question], fraction: float, seed: int):
    """``(hold-out, train)``: the hold-out takes about ``fraction`` of the questions, whole
    answering attributes at a time (an attribute in the hold-out is never trained on), so
    the epoch is chosen for attributes the scorer has not seen; NIL questions are split at
    random."""
    if fraction <= 0:
        return [], list(questions)
    keys = shuffled(sorted({c.key for q in questions for i in q.labels
                            for c in [q.candidates[i]]}), seed)  # fmt: skip
    held = set(keys[: max(1, round(len(keys) * fraction))])
    valid, train = [], []
    rng = random.Random(seed)
    for q in questions:
        answer_keys = {q.candidates[i].key for i in q.labels}
        out = answer_keys & held if answer_keys else rng.random() < fraction
        (valid if out else train).append(q)
    return valid, train


def attribute_folds(questions: list[Question], folds: int, seed: int) -> list[int]:
    """The fold (``0 .. folds-1``) of each question, whole answering attributes at a time
    (as :func:`attribute_split`: a question is in the fold of its first answering
    attribute; NIL questions at random), so out-of-fold scores are those of attributes the
    fold's model never trained on."""
    keys = shuffled(sorted({q.candidates[i].key for q in questions for i in q.labels}), seed)
    fold_of = {key: n % folds for n, key in enumerate(keys)}
    rng = random.Random(seed)
    out = []
    for q in questions:
        answer_keys = sorted(q.candidates[i].key for i in q.labels)
        out.append(fold_of[answer_keys[0]] if answer_keys else rng.randrange(folds))
    return out


def out_of_fold(questions: list[Question], fit_predict, folds: int = 5, seed: int = 0):
    """Out-of-fold scores of a training recipe: for each of ``folds`` attribute-wise folds
    (:func:`attribute_folds`), ``fit_predict(train, held)`` trains on the other folds and
    returns ``(probabilities per held question [C_i], NIL probabilities)``. Returns
    ``(questions in fold order, their probabilities, NIL probabilities)``: the scores a
    model trained the same way gives questions (and attributes) it has not seen, on which
    the final model's NIL threshold is calibrated (:func:`calibrate`)."""
    fold = attribute_folds(questions, folds, seed)
    order, probs, nils = [], [], []
    for f in range(folds):
        held = [q for q, g in zip(questions, fold, strict=True) if g == f]
        train = [q for q, g in zip(questions, fold, strict=True) if g != f]
        if not held or not train:
            continue
        p, n = fit_predict(train, held)
        order.extend(held)
        probs.extend(p)
        nils.extend(n)
    return order, probs, nils


def fit_scorer(scorer: QAScorer, questions: list[Question], *, epochs: int = 30,
               lr: float = 2e-3, batch_size: int = 32, valid_fraction: float = 0.2,
               seed: int = 0, refit: bool = True, folds: int = 5, progress=None) -> dict:  # fmt: skip
    """Train ``scorer`` in place on labelled questions; the epoch (best MRR) is chosen on a
    hold-out of ``valid_fraction`` of them, whole attributes at a time
    (:func:`attribute_split`). ``refit``: then train a fresh head on all the questions for
    the chosen number of epochs (so no attribute of the catalogue stays untrained).

    The NIL threshold is calibrated for the model that is kept: without a refit, on its
    hold-out scores; with a refit, on the out-of-fold scores of the refit's own recipe
    (``folds`` attribute-wise folds, each a fresh head trained for the chosen epochs on
    the other folds: :func:`out_of_fold`), since the refit model has no held-out
    questions left and is more confident than the hold-out model. Returns the hold-out
    metrics (``p@1``, ``mrr``, ``nil_acc``, ``accuracy``, ``epoch``) with ``threshold`` and
    ``calibration`` (what it was calibrated on, with NIL / overall accuracy there), also
    kept in ``scorer.config.metrics``."""
    questions = [q for q in questions if q.candidates]
    if len(questions) < 2:
        raise LinkerError("training the question scorer needs at least 2 questions with candidates")
    torch.manual_seed(seed)
    scorer.embed([scorer.question_text(q.text) for q in questions], "query")  # batched, once
    scorer.embed([t for q in questions for c in q.candidates for t in scorer.candidate_texts(c)])
    valid, train = attribute_split(questions, valid_fraction, seed)
    valid, train = [_Item(scorer, q) for q in valid], [_Item(scorer, q) for q in train]
    train = train or valid
    check = valid or train
    optimiser = torch.optim.AdamW(scorer.module.parameters(), lr=lr, weight_decay=1e-2)
    best = (-1.0, 0, copy.deepcopy(scorer.module.state_dict()))
    for epoch in range(1, epochs + 1):
        loss = _epoch(scorer.module, shuffled(train, seed + epoch), optimiser, batch_size)
        probs, nils = _predict(scorer.module, check)
        mrr = rank_metrics([it.question for it in check], probs, nils, 0.0)["mrr"]
        if progress is not None:
            progress(epoch, loss, mrr)
        if mrr > best[0]:
            best = (mrr, epoch, copy.deepcopy(scorer.module.state_dict()))
    scorer.module.load_state_dict(best[2])
    scorer.module.eval()
    probs, nils = _predict(scorer.module, check)
    labelled = [it.question for it in check]
    metrics = rank_metrics(labelled, probs, nils, calibrate(labelled, probs))
    metrics = {**{k: round(v, 4) for k, v in metrics.items()}, "epoch": best[1],
               "questions": len(questions), "refit": bool(refit and valid)}  # fmt: skip
    if refit and valid:
        items = train + valid
        scorer.module = _train_module(scorer.config, items, best[1], lr, batch_size, seed)
        recipe = _fit_predict(scorer.config, items, best[1], lr, batch_size, seed)
        labelled, probs, _ = out_of_fold(questions, recipe, folds, seed)
        on = f"out-of-fold scores of the refit recipe ({folds} attribute-wise folds)"
    else:
        on = "hold-out scores of the kept model"
    threshold = calibrate(labelled, probs)
    calib = rank_metrics(labelled, probs, [0.0] * len(probs), threshold)
    metrics["threshold"] = round(threshold, 4)
    metrics["calibration"] = {"on": on, "questions": len(labelled),
                              "nil_acc": round(calib["nil_acc"], 4),
                              "accuracy": round(calib["accuracy"], 4)}  # fmt: skip
    scorer.config.threshold, scorer.config.epochs = threshold, best[1]
    scorer.config.metrics, scorer.config.trained = metrics, True
    return metrics


def _train_module(config, items: list[_Item], epochs: int, lr: float, batch_size: int,
                  seed: int) -> QAScorerModule:  # fmt: skip
    """A fresh head (of ``config``'s shape) trained on ``items`` for ``epochs`` epochs (the
    number :func:`fit_scorer` chose on the hold-out): the refit recipe."""
    torch.manual_seed(seed)
    module = QAScorerModule(config.dim, config.hidden, config.dropout)
    optimiser = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-2)
    for epoch in range(1, max(epochs, 1) + 1):
        _epoch(module, shuffled(items, seed + epoch), optimiser, batch_size)
    module.eval()
    return module


def train_head(scorer: QAScorer, questions: list[Question], epochs: int, *, lr: float = 2e-3,
               batch_size: int = 32, seed: int = 0) -> QAScorerModule:  # fmt: skip
    """The refit recipe of :func:`fit_scorer` on its own: a fresh head for ``scorer``'s
    embeddings trained on ``questions`` for ``epochs`` epochs (``scorer`` is unchanged)."""
    items = [_Item(scorer, q) for q in questions if q.candidates]
    return _train_module(scorer.config, items, epochs, lr, batch_size, seed)


def _fit_predict(config, items: list[_Item], epochs: int, lr: float, batch_size: int,
                 seed: int):  # fmt: skip
    """The refit recipe as ``fit_predict(train, held)`` for :func:`out_of_fold` (questions
    of ``items``)."""
    item = {id(it.question): it for it in items}

    def fit_predict(train, held):
        module = _train_module(config, [item[id(q)] for q in train], epochs, lr, batch_size, seed)
        return _predict(module, [item[id(q)] for q in held])

    return fit_predict


def train_questions(paths) -> list[Question]:
    """The labelled questions of several semiPQA-layout files."""
    return [q for path in paths for q in read_semipqa(path)]


__all__ = [
    "Candidate",
    "GRAPH_TEMPLATES",
    "attribute_folds",
    "calibrate",
    "fit_scorer",
    "graph_questions",
    "out_of_fold",
    "predict",
    "rank_metrics",
    "read_semipqa",
    "train_head",
    "train_questions",
]

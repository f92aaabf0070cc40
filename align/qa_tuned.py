"""What the question -> attribute scorers share: scoring from probability rows, batched
inference and saving / loading a fine-tuned transformers model with its head.

:class:`ProbabilityScorer` gives ``score`` / ``score_many`` to any scorer with a
``probabilities(questions, candidates)`` method (softmax rows ``[C_i + 1]``, the last
entry NIL) and a ``config.threshold``; :func:`batched_probabilities` runs a scorer's
``logits`` without gradients a batch at a time; :func:`save_tuned` / :func:`load_tuned`
write and read ``config.json`` (the scorer's config dataclass, with the transformers
config) + ``model.safetensors`` (:mod:`fusion.artifacts`) + the tokenizer's JSON files.
"""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import torch

from fusion.artifacts import CONFIG_FILE, WEIGHTS_FILE, load_into, read_weights, save_pretrained
from kg.workspace import atomic_directory

from .base import LinkerError, read_config
from .qa_scorer import Candidate, Question, Scored
from .qa_train import calibrate, rank_metrics


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process has spent so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ProbabilityScorer:
    """``score`` / ``score_many`` over ``self.probabilities`` and ``self.config.threshold``
    (a subclass provides both)."""

    def probabilities(self, questions: list[str], candidates: list[list[Candidate]]):
        raise NotImplementedError

    def score(self, question: str, candidates: list[Candidate]) -> Scored:
        return self.score_many([question], [candidates])[0]

    def score_many(self, questions: list[str], candidates: list[list[Candidate]]) -> list[Scored]:
        """As :meth:`align.qa_scorer.QAScorer.score_many`: per question the candidates'
        probabilities ``[C_i]``, the NIL probability and the best candidate (None below the
        threshold)."""
        out = []
        for row, cands in zip(self.probabilities(questions, candidates), candidates, strict=True):
            p, nil = row[: len(cands)], float(row[-1])
            best = int(p.argmax()) if len(cands) else None
            if best is not None and p[best] < self.config.threshold:
                best = None
            out.append(Scored(p, nil, best))
        return out


def batched_probabilities(scorer, questions: list[str], candidates: list[list[Candidate]],
                          batch_size: int) -> list[np.ndarray]:  # fmt: skip
    """Softmax rows ``[C_i + 1]`` (the last entry NIL) of ``scorer.logits`` (``[B, C + 1]``)
    per question, ``batch_size`` questions at a time, in eval mode without gradients."""
    scorer.module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(questions), batch_size):
            part = slice(start, start + batch_size)
            probs = torch.softmax(scorer.logits(questions[part], candidates[part]), -1).numpy()
            out.extend(np.append(row[: len(cs)], row[-1]).astype(np.float32)
                       for row, cs in zip(probs, candidates[part], strict=True))  # fmt: skip
    return out


def save_tuned(scorer, model, directory) -> Path:
    """Save ``scorer`` (``config``, ``module``, ``tokenizer``; ``model``: its transformers
    model, whose config is stored in ``config.model``), replacing ``directory`` as a whole
    (atomically)."""
    directory = Path(directory)
    scorer.config.model = model.config.to_dict()
    with atomic_directory(directory, overwrite=True) as tmp:
        scorer.tokenizer.save_pretrained(str(tmp))
        save_pretrained(tmp, scorer.config, scorer.module,
                        metadata={"format": scorer.config.format})  # fmt: skip
    return directory


def load_tuned(directory, config_cls, fmt: str, version: int, kind: str, auto_model,
               build_module):  # fmt: skip
    """``(config, module, tokenizer)`` of a scorer saved by :func:`save_tuned`: the config
    read as ``config_cls`` (``fmt``, ``version``), the transformers model rebuilt by
    ``auto_model.from_config`` (never remote code), wrapped by ``build_module(model,
    config)`` and loaded with the weights. ``kind`` (``bi-encoder``...) names the scorer in
    the ``LinkerError`` of a folder that holds none."""
    from transformers import AutoConfig, AutoTokenizer

    directory = Path(directory)
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise LinkerError(f"{directory} holds no {kind} question scorer; train one with "
                          f"`kgf qa-train WS --scorer {kind}`")  # fmt: skip
    config = read_config(config_cls, directory / CONFIG_FILE, fmt, version, f"QA {kind}")
    spec = dict(config.model)
    model_type = spec.pop("model_type", None)
    if not model_type:
        raise LinkerError(f"{directory / CONFIG_FILE}: 'model' has no model_type")
    model = auto_model.from_config(AutoConfig.for_model(model_type, **spec),
                                   trust_remote_code=False)  # fmt: skip
    module = build_module(model.float(), config)
    load_into(module, read_weights(directory / WEIGHTS_FILE), directory / WEIGHTS_FILE)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True,
                                              trust_remote_code=False)  # fmt: skip
    return config, module, tokenizer


def predict_rows(scorer, questions: list[Question]):
    """``(probabilities per question [C_i], NIL probabilities)`` of labelled questions."""
    rows = scorer.probabilities([q.text for q in questions], [q.candidates for q in questions])
    return [r[:-1] for r in rows], [float(r[-1]) for r in rows]


def kept_metrics(scorer, check: list[Question], epoch: int, questions: int, cpu: float) -> dict:
    """Calibrate the NIL threshold of the kept model (``epoch``) on its scores of the
    hold-out ``check``, store it with the hold-out metrics in ``scorer.config`` (now
    trained) and return the metrics (with the CPU seconds since ``cpu``)."""
    probs, nils = predict_rows(scorer, check)
    threshold = calibrate(check, probs)
    metrics = rank_metrics(check, probs, nils, threshold)
    metrics = {**{k: round(v, 4) for k, v in metrics.items()}, "threshold": round(threshold, 4),
               "epoch": epoch, "questions": questions,
               "calibration": {"on": "hold-out scores of the kept model", "questions": len(check)},
               "cpu_seconds": round(cpu_seconds() - cpu, 1)}  # fmt: skip
    scorer.config.threshold, scorer.config.epochs = threshold, epoch
    scorer.config.metrics, scorer.config.trained = metrics, True
    return metrics


def epoch_line(epoch: int, loss: float, mrr: float | None) -> str:
    """A training progress line: ``mrr`` is the hold-out MRR, None in a refit's epochs
    (there is no hold-out left)."""
    if mrr is None:
        return f"refit epoch {epoch}: loss {loss:.4f} (all questions, no hold-out)"
    return f"epoch {epoch}: loss {loss:.4f}, hold-out MRR {mrr:.4f}"


def training_recipe(scorer) -> dict:
    """The fine-tuning recipe saved in ``scorer.config.training`` (what a refit repeats);
    ``LinkerError`` for a scorer saved without one."""
    if not scorer.config.training:
        raise LinkerError("this question scorer was saved before refits were recorded; "
                          "fine-tune it again to refit it")  # fmt: skip
    return scorer.config.training


def refit_tuned(scorer, fresh, questions: list[Question], train_epoch, progress=None) -> dict:
    """The refit step of a fine-tuned scorer (scikit-learn's ``refit``, as
    :func:`align.qa_train.fit_scorer` does for the feature head): ``fresh``, a new scorer
    from the same base model, trained on *all* ``questions`` for the ``scorer.config.epochs``
    the hold-out chose (``train_epoch(fresh, epoch)`` runs one epoch and returns its loss),
    then its weights replace ``scorer``'s. The attribute types of the hold-out are then
    trained on too. The NIL threshold stays the one calibrated on the hold-out model: the
    refit model has no held-out questions left (it is somewhat more confident, so NIL is
    said a little less often). Records and returns ``metrics["refit"]``."""
    cpu = cpu_seconds()
    for epoch in range(1, scorer.config.epochs + 1):
        loss = train_epoch(fresh, epoch)
        if progress is not None:
            progress(epoch, loss, None)
    scorer.module.load_state_dict(fresh.module.state_dict())
    scorer.module.eval()
    info = {"questions": len(questions), "epochs": scorer.config.epochs,
            "cpu_seconds": round(cpu_seconds() - cpu, 1)}  # fmt: skip
    scorer.config.metrics["refit"] = info
    scorer.config.metrics["calibration"] = {
        **scorer.config.metrics.get("calibration", {}),
        "on": "hold-out scores of the model chosen before the refit on all questions",
    }
    return info

"""Training losses of the fine-tuned bi-encoder (:func:`align.qa_biencoder.fit_biencoder`),
by where a question's negatives come from (``negatives=``):

- ``product``: listwise over the question's own product's attributes plus the NIL slot
  (Cao et al., ICML 2007): the answering attributes share the target;
- ``batch``: the same, plus a symmetric in-batch InfoNCE over the whole batch's distinct
  attribute texts (the multiple-negatives ranking loss of sentence-transformers; van den
  Oord et al. 2018, Henderson et al. 2017): question -> attribute, each answerable
  question against every attribute text of the batch (the other questions' products'
  attributes as easy negatives, its own product's other attributes as hard ones), and
  attribute -> question, each answering text against the batch's questions. A text of
  another product whose normalised name (:func:`align.qa_scorer.name_key`) answers the
  question (``color: red`` for "what colour is it?" about another product) is no negative
  and is left out of both directions. Scores are ``a * cos`` with the model's own scale
  ``a`` (the lexical features are pair features of the listwise part only).

Each loss takes the scorer, the batch's questions and the :meth:`BiEncoderScorer.encoded`
tensors, and returns a scalar.
"""

from __future__ import annotations

import torch

from .base import LinkerError
from .qa_scorer import Question, name_key
from .qa_train import _targets


def listwise_loss(scorer, batch: list[Question], encoded) -> torch.Tensor:
    """Cross-entropy of the logits ``[B, C + 1]`` against :func:`align.qa_train._targets`."""
    logits = encoded.logits
    y = _targets(batch, logits.shape[1] - 1)
    return -(y * torch.log_softmax(logits, -1).masked_fill(y == 0, 0.0)).sum(-1).mean()


def _multi_positive_nce(scores: torch.Tensor, positive: torch.Tensor,
                        excluded: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Mean over rows with a positive of ``-log(sum_pos e^s / sum_kept e^s)``; ``scores``,
    ``positive``, ``excluded`` ``[R, N]`` (excluded entries are neither)."""
    rows = positive.any(-1)
    if not rows.any():
        return scores.sum() * 0.0
    scores, positive, excluded = scores[rows], positive[rows], excluded[rows]
    kept = scores.masked_fill(excluded & ~positive, float("-inf"))
    pos = scores.masked_fill(~positive, float("-inf"))
    return (torch.logsumexp(kept, -1) - torch.logsumexp(pos, -1)).mean()


def in_batch_masks(batch: list[Question], encoded) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive, excluded)`` ``[B, U]`` over the batch's distinct attribute texts:
    the question's answering texts, and the texts whose name answers it without being
    one of its own answers (false negatives, left out)."""
    width = len(encoded.text_keys)
    positive = torch.zeros(len(batch), width, dtype=torch.bool)
    excluded = torch.zeros(len(batch), width, dtype=torch.bool)
    names = [name_key(key) for key in encoded.text_keys]
    for i, q in enumerate(batch):
        asked = {name_key(q.candidates[j].key) for j in q.labels}
        for j in q.labels:
            positive[i, encoded.index[i, j]] = True
        excluded[i] = torch.tensor([name in asked for name in names], dtype=torch.bool)
    return positive, excluded


def in_batch_loss(scorer, batch: list[Question], encoded) -> torch.Tensor:
    """:func:`listwise_loss` plus the symmetric in-batch InfoNCE (module docstring)."""
    scores = scorer.module.scale * encoded.q @ encoded.c.T  # [B, U]
    positive, excluded = in_batch_masks(batch, encoded)
    forward = _multi_positive_nce(scores, positive, excluded)
    backward = _multi_positive_nce(scores.T, positive.T, excluded.T)
    return listwise_loss(scorer, batch, encoded) + (forward + backward) / 2


#: ``fit_biencoder(negatives=...)`` -> loss.
NEGATIVES = {"product": listwise_loss, "batch": in_batch_loss}


def negatives_loss(name: str):
    """The loss registered as ``name`` (:class:`LinkerError` listing the choices otherwise)."""
    if name not in NEGATIVES:
        raise LinkerError(
            f"unknown bi-encoder negatives {name!r}; choose one of {sorted(NEGATIVES)}"
        )
    return NEGATIVES[name]

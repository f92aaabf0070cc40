"""The learned pair scorer and the NIL threshold.

:class:`PairScorer` maps pair features [P, F] (:data:`align.pair_features.FEATURES`) to a
match probability [P]: features are standardised (``(x - mean) / std``, fitted on the
training pairs; a feature constant in training is only centred; clipped to +-8), then either a logistic regression (``hidden = 0``) or a one-hidden-layer
MLP (``F -> hidden -> 1``, ReLU). Training (:func:`fit_scorer`) is full-batch Adam on the
class-balanced binary cross-entropy (``pos_weight = negatives / positives``) with weight
decay; with validation pairs, the epoch with the best validation average precision is kept
(early stopping). Weights are saved as safetensors; nothing is pickled.

The NIL threshold (:func:`best_threshold`) is the probability cut that maximises F1 on the
validation pairs, placed midway between the two scores it separates; a mention whose best
candidate scores below it is NIL (not in the catalogue). This is how Ditto picks its
matching threshold too (Li et al., "Deep Entity Matching with Pre-Trained Language Models",
VLDB 2021 / arXiv 2020).

Without training data the linker uses :func:`default_scorer`: a logistic regression with
hand-set weights on the strongest signals (dense cosine, fuzzy name match, shared model
number, brand) and threshold 0.5 - a reasonable start, to be replaced by ``train_linker``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .pair_features import FEATURES

CLIP = 8.0  # standardised features are clipped to [-CLIP, CLIP]: unseen values stay bounded
MIN_STD = 1e-2  # a feature (nearly) constant in training is centred, not scaled


class PairScorer(nn.Module):
    """Standardise, then logistic regression (``hidden=0``) or a small MLP: [P, F] -> [P]."""

    def __init__(self, n_features: int = len(FEATURES), hidden: int = 32):
        super().__init__()
        self.n_features, self.hidden = n_features, hidden
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        if hidden > 0:
            self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        else:
            self.net = nn.Sequential(nn.Linear(n_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [P] for features ``x`` [P, F]."""
        z = ((x - self.mean) / self.std).clamp(-CLIP, CLIP)
        return self.net(z).squeeze(-1)

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Match probabilities [P] (float32) for features [P, F]."""
        if not len(x):
            return np.zeros(0, np.float32)
        self.eval()
        return torch.sigmoid(self(torch.as_tensor(x, dtype=torch.float32))).numpy()


def default_scorer() -> PairScorer:
    """Hand-weighted logistic regression used before any training (see module docstring)."""
    weights = dict(
        dense_cos=8.0, proj_cos=0.0, graph_cos=2.0, fuzzy_set=3.0, tfidf_title=2.0,
        model_match=2.5, model_contained=1.0, model_conflict=-2.0, brand_match=0.5,
        dense_margin=2.0, bm25_rel=1.0,
    )  # fmt: skip
    scorer = PairScorer(len(FEATURES), hidden=0)
    with torch.no_grad():
        linear = scorer.net[0]
        linear.weight.zero_()
        for name, w in weights.items():
            linear.weight[0, FEATURES.index(name)] = w
        linear.bias.fill_(-9.5)
    return scorer


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    labels = np.asarray(labels, bool)
    if not labels.any():
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> dict:
    """The cut on ``scores`` that maximises F1 of ``scores >= threshold`` against ``labels``.

    Returns ``{"threshold", "f1", "precision", "recall"}``; with no positive label the
    threshold sits above every score (everything is NIL).
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    if not len(scores) or not labels.any():
        top = float(scores.max()) + 1e-6 if len(scores) else 0.5
        return {"threshold": min(top, 1.0), "f1": 0.0, "precision": 0.0, "recall": 0.0}
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    predicted = np.arange(1, len(y) + 1)
    # only cut between distinct scores: position i means "the first i+1 are matches"
    last = np.r_[s[1:] != s[:-1], True]
    precision = tp / predicted
    recall = tp / y.sum()
    f1 = np.where(tp > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    f1 = np.where(last, f1, -1.0)
    i = int(np.argmax(f1))
    threshold = (s[i] + s[i + 1]) / 2 if i + 1 < len(s) else s[i] - 1e-6
    return {
        "threshold": float(threshold),
        "f1": float(f1[i]),
        "precision": float(precision[i]),
        "recall": float(recall[i]),
    }


def prf(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """Precision, recall and F1 of boolean predictions."""
    predicted, labels = np.asarray(predicted, bool), np.asarray(labels, bool)
    tp = int((predicted & labels).sum())
    p = tp / max(int(predicted.sum()), 1)
    r = tp / max(int(labels.sum()), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12)}


def fit_scorer(
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_valid: np.ndarray | None = None,
    y_valid: np.ndarray | None = None,
    hidden: int = 32,
    epochs: int = 400,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> tuple[PairScorer, dict]:
    """Train a :class:`PairScorer` on features ``x`` [P, F] and 0/1 labels ``y`` [P]."""
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    if not len(x) or y.min() == y.max():
        raise ValueError(
            f"the training pairs need both matches and non-matches (got {int(y.sum())} "
            f"matches among {len(y)} pairs)"
        )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        scorer = PairScorer(x.shape[1], hidden)
    finally:
        torch.random.set_rng_state(generator_state)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    with torch.no_grad():
        scorer.mean.copy_(xt.mean(0))
        std = xt.std(0)
        scorer.std.copy_(torch.where(std < MIN_STD, torch.ones_like(std), std))
    pos_weight = torch.tensor((len(y) - y.sum()) / max(y.sum(), 1.0))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optimiser = torch.optim.Adam(scorer.parameters(), lr=lr, weight_decay=weight_decay)
    best_state, best_ap, best_epoch = None, -1.0, epochs
    for epoch in range(1, epochs + 1):
        scorer.train()
        optimiser.zero_grad()
        loss = loss_fn(scorer(xt), yt)
        loss.backward()
        optimiser.step()
        if x_valid is not None and len(x_valid) and (epoch % 10 == 0 or epoch == epochs):
            ap = average_precision(scorer.predict(x_valid), y_valid)
            if ap >= best_ap:  # ties: the later (longer-trained) epoch
                best_ap, best_epoch = ap, epoch
                best_state = {k: v.clone() for k, v in scorer.state_dict().items()}
    if best_state is not None:
        scorer.load_state_dict(best_state)
    scorer.eval()
    info = {"epochs": epochs, "best_epoch": best_epoch, "train_loss": float(loss.detach())}
    if best_ap >= 0:
        info["valid_ap"] = best_ap
    return scorer, info

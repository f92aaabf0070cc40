"""Calibrated match probabilities, so that one decision threshold means the same everywhere.

A score (a cross-encoder logit, a scorer's probability) is not a probability: its scale
depends on the data set it was trained on, so a threshold tuned for F1 on one set does not
transfer to another. :class:`Calibrator` maps a few such scores per pair, ``z`` [P, S], to a
calibrated probability ``p = sigmoid(w . z + b)`` fitted on held-out labelled pairs (a
validation split of the training data, never the test pairs):

- with one score this is Platt scaling (Platt, "Probabilistic Outputs for Support Vector
  Machines", 1999), including Platt's smoothed targets ``(N+ + 1) / (N+ + 2)`` and
  ``1 / (N- + 2)`` that keep the fit finite on separable data;
- with several scores (the cross-encoder logit and the feature scorer's logit) it is the same
  logistic regression over both: a stacked, calibrated combination (Wolpert, "Stacked
  Generalization", 1992).

The fit is Newton's method (iteratively reweighted least squares) with a small L2 penalty on
``w``. The decision is ``p >= threshold`` with the fixed ``threshold = 0.5`` (the
Bayes-optimal cut for accuracy on calibrated probabilities); :func:`expected_calibration_error`
measures how calibrated ``p`` is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DECISION = 0.5  # the match / no-match cut on calibrated probabilities
L2 = 1e-3
EPS = 1e-6


class CalibrationError(ValueError):
    """Labels a calibrator cannot be fitted on (one class only, too few pairs)."""


def logit(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped to [1e-6, 1 - 1e-6]; shape kept."""
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


@dataclass
class Calibrator:
    """``p = sigmoid(z @ weights + bias)`` for scores ``z`` [P, S] (see module docstring).

    ``inputs`` names the S scores (e.g. ``["rerank_logit", "scorer_logit"]``) so a saved
    calibrator says what it expects; ``threshold`` is the decision cut on ``p``."""

    inputs: list[str]
    weights: list[float] = field(default_factory=list)
    bias: float = 0.0
    threshold: float = DECISION
    fitted_on: dict = field(default_factory=dict)

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Calibrated probabilities [P] (float64) for scores ``z`` [P, S] (or [P] if S = 1)."""
        z = np.asarray(z, np.float64).reshape(len(z), -1)
        if z.shape[1] != len(self.inputs):
            raise ValueError(
                f"the calibrator expects {len(self.inputs)} score(s) ({', '.join(self.inputs)}), "
                f"got {z.shape[1]}"
            )
        return sigmoid(z @ np.asarray(self.weights) + self.bias)

    def decide(self, z: np.ndarray) -> np.ndarray:
        """Match decisions [P] (bool): ``predict(z) >= threshold``."""
        return self.predict(z) >= self.threshold

    def to_dict(self) -> dict:
        return {
            "inputs": list(self.inputs), "weights": [float(w) for w in self.weights],
            "bias": float(self.bias), "threshold": float(self.threshold),
            "fitted_on": dict(self.fitted_on),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        return cls(**data)


def check_labels(labels, what: str = "the labelled pairs") -> np.ndarray:
    """Labels as a 0/1 int array; :class:`CalibrationError` unless both classes occur."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if not len(y):
        raise CalibrationError(f"{what}: no pairs")
    bad = sorted(set(np.unique(y).tolist()) - {0, 1})
    if bad:
        raise CalibrationError(f"{what}: labels must be 0 or 1, found {bad[:3]}")
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        only = "matches (label 1)" if positives else "non-matches (label 0)"
        raise CalibrationError(
            f"{what}: all {len(y)} pairs are {only}; a match decision needs both classes - "
            "add labelled pairs of the other class"
        )
    return y


def fit_calibrator(z, labels, inputs: list[str], *, l2: float = L2, iterations: int = 100,
                   threshold: float = DECISION) -> Calibrator:  # fmt: skip
    """Fit :class:`Calibrator` on scores ``z`` [P, S] and 0/1 ``labels`` [P] (Newton / IRLS
    on the log-loss with Platt's smoothed targets and an L2 penalty ``l2 * P`` on the
    weights). Raises :class:`CalibrationError` for one class only."""
    y = check_labels(labels, "calibration pairs")
    z = np.asarray(z, np.float64).reshape(len(y), -1)
    if z.shape[1] != len(inputs):
        raise ValueError(f"{z.shape[1]} score column(s) but inputs {inputs}")
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    x = np.hstack([z, np.ones((len(z), 1))])
    penalty = np.full(x.shape[1], l2 * len(y))
    penalty[-1] = 0.0
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = sigmoid(x @ beta)
        grad = x.T @ (p - target) + penalty * beta
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    fitted = {"pairs": len(y), "matches": n_pos}
    return Calibrator(list(inputs), beta[:-1].tolist(), float(beta[-1]), threshold, fitted)


def expected_calibration_error(p, labels, bins: int = 10) -> float:
    """ECE: the mean over equal-width probability bins of ``|mean(p) - mean(label)|``,
    weighted by the bin's share of pairs (Guo et al., "On Calibration of Modern Neural
    Networks", ICML 2017)."""
    p = np.asarray(p, np.float64)
    y = np.asarray(labels, np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(total)

"""The reranker's calibration stage, fitted on validation pairs after fine-tuning.

:func:`calibrate_reranker` fits the :class:`~align.calibration.Calibrator` over ``[cross-encoder
logit, logit of the linker's feature-decision probability]`` (plus the known-match views of
:mod:`align.known_matches` where they are used), the cascade band
(:func:`align.pair_decision.fit_cascade`), the decision cut (:func:`decision_cut`: F*/2,
Lipton et al. 2014) and the NIL threshold of reranked linking
(:func:`align.calibrate.calibrate_nil`). :func:`recalibrate` runs the same stage again on a
trained reranker (another validation set, known matches on or off) without fine-tuning.
"""

from __future__ import annotations

import numpy as np

from kg.progress import stage

from .calibrate import calibrate_nil
from .calibration import expected_calibration_error, fit_calibrator
from .known_matches import KNOWN_INPUTS, attach_known_matches
from .pair_decision import cascade_probs, f1_optimal_cut, fit_cascade
from .rerank import INPUTS, Reranker, calibrator_inputs
from .scorer import average_precision, best_threshold, prf


def calibrate_reranker(linker, reranker: Reranker, ce, valid, scorer, types, progress: bool,
                       cascade: bool = True, known=("off", None, None)) -> dict:  # fmt: skip
    """Fit ``reranker``'s calibrator on the validation pairs (cross-encoder logits ``ce``
    [V], the linker's feature-scorer probabilities ``scorer`` [V]; ``valid`` = their
    records, IRIs and labels; with ``known = (setting, training pairs, serialised
    validation records)`` the known-match views too: :func:`align.known_matches.
    attach_known_matches`), its cascade band (:func:`align.pair_decision.fit_cascade`;
    stored with ``cascade`` and without known matches, always measured), then its NIL
    threshold on their matched mentions; returns the validation metrics."""
    v_records, v_iris, v_labels = valid
    views, known_info = attach_known_matches(reranker, known[0], known[1], (known[2], v_iris))
    z = calibrator_inputs(ce, scorer, views)
    inputs = INPUTS if views is None else INPUTS + KNOWN_INPUTS
    calibrator = fit_calibrator(z, v_labels, inputs)
    reranker.config.calibrator = calibrator.to_dict()
    reranker.calibrator = calibrator
    p = calibrator.predict(z)
    valid = prf(p >= calibrator.threshold, v_labels.astype(bool))
    valid.update(
        best_cut=best_threshold(p, v_labels), ece=expected_calibration_error(p, v_labels),
        rerank_only_ap=average_precision(ce, v_labels),
        cascade=fit_cascade(scorer, p, v_labels, [reranker.mention_text(r) for r in v_records],
                            calibrator.threshold),
    )  # fmt: skip
    # with known matches every pair is reranked: the evidence reaches a pair only through the
    # cross-encoder, and the features are surest, and wrong, where the catalogue holds another
    # offer of the same product (WDC: the cascade below full reranking, by up to 1.6 test F1,
    # in 29 of the 32 cascade / full figure pairs in benchmarks/README.md)
    reranker.config.cascade = valid["cascade"]["band"] if cascade and views is None else None
    decision_cut(reranker, calibrator, scorer, p, v_labels, valid)
    stage("rerank: calibrating the NIL threshold of reranked linking", progress)
    nil = calibrate_nil(linker, v_records, v_iris, v_labels, types, reranker=reranker)
    return {"valid": valid, "nil": nil, "known_matches": known_info}


def decision_cut(reranker: Reranker, calibrator, scorer, p, labels, valid: dict) -> None:
    """The pair decision's cut: F*/2 of the cascade's (or full reranking's) calibrated
    validation probabilities (:func:`align.pair_decision.f1_optimal_cut`); the band is
    widened down to the cut when it sat above it, so pairs near the cut are reranked."""
    band = reranker.config.cascade
    decided = cascade_probs(scorer, p, band)
    cut = f1_optimal_cut(decided, labels)
    y = labels.astype(bool)
    valid["decision"] = {"rule": "F*/2 (Lipton et al. 2014)", "threshold": cut,
                         "f1": prf(decided >= cut, y)["f1"],
                         "f1_at_0.5": prf(decided >= 0.5, y)["f1"]}  # fmt: skip
    calibrator.threshold = cut
    reranker.config.calibrator = calibrator.to_dict()
    if band is not None and band[0] > cut:
        reranker.config.cascade = [cut, band[1]]


def recalibrate(linker, reranker: Reranker, train, valid, *, known_matches: str = "auto",
                cascade: bool = True, progress: bool = False) -> dict:  # fmt: skip
    """Refit a trained reranker's calibration stage on ``valid`` without fine-tuning again
    (calibrator, cascade band, decision cut, NIL threshold, known matches: what
    :func:`fit_reranker` does after training); ``train`` / ``valid`` = (records, iris,
    labels). Returns the new metrics (also merged into ``reranker.config.metrics``)."""
    rows = linker.entities.row_of
    ce = reranker.pair_logits(linker, valid[0], [rows[i] for i in valid[1]])
    scorer = linker.score_pairs(valid[0], valid[1], rerank=False)
    types = sorted({linker.entities.types[rows[i]] for i in train[1]})
    reranker.known = None
    texts = [reranker.mention_text(r) for r in valid[0]]
    valid = (valid[0], valid[1], np.asarray(valid[2]))
    metrics = calibrate_reranker(linker, reranker, ce, valid, scorer, types, progress, cascade,
                                 (known_matches, train, texts))  # fmt: skip
    reranker.config.metrics.update(metrics)
    return metrics

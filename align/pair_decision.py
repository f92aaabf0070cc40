"""The pair decision: is ``(record, entity)`` a match? Calibrated, with the catalogue as context.

A pair scorer sees one pair at a time, and its probability's scale is the training set's: a
threshold on it that is right on one product set is wrong on another (the issue measured
pair F1 63 on a held-out set while the top-ranked entity was right 98 % of the time). What
does transfer is the comparison with the rest of the catalogue: a record's true match is the
entity its linker ranks first, and a wrong pair usually has a better-scoring rival.

So the decision reads two scores per pair, both the feature scorer's (:mod:`align.scorer`)
logits: the pair's own, and its **rival**'s, the best-scoring *other* candidate entity of the
same record, drawn from the catalogue by the candidate generator (:mod:`align.candidates`),
as linking draws them. A :class:`~align.calibration.Calibrator` over
``[scorer_logit, rival_logit]`` is fitted on held-out validation pairs (logistic regression:
Platt scaling with the rival as a second input), and a pair is a match when its calibrated
probability is at least 0.5 - no threshold tuned per data set. This is the match decision of
entity linking (the pair is a match when linking would link the record to that entity,
Wu et al., "Scalable Zero-shot Entity Linking with Dense Entity Retrieval", EMNLP 2020),
made soft and calibrated; the catalogue is context, never the test labels, and each pair
is still decided on its own (Ditto's protocol).

The rival is *any* other candidate, duplicates of the paired entity included. Rivals that
skip the paired entity's near-duplicates (by the linker's vectors, by its scorer reading the
entity's text as a mention, hard or soft) were measured (``benchmarks/rival_rules.py``,
benchmarks/README.md) and not adopted: they lift Abt-Buy -> WDC from 8 to 21-38 pair F1 but
cost Abt-Buy -> Amazon-Google 2-12 F1 and most of them Abt-Buy's own 95, because Amazon-
Google's near-duplicates (editions, versions) are labelled non-matches where WDC's are matches.
"""

from __future__ import annotations

import numpy as np

from .calibration import Calibrator, fit_calibrator, logit

INPUTS = ["scorer_logit", "rival_logit"]


def pair_context(linker, mentions, groups, types=None, cache: bool = False):
    """Pair features, raw scorer probabilities and rivals of the pairs of
    :meth:`align.Linker.group_pairs` (``P`` pairs, pair-index order).

    Each mention's candidates are drawn from ``types`` plus its paired entities.
    Returns ``(x [P, F] float32, raw [P] float64, rival [P] float64)``: ``rival`` is the
    best raw probability among the mention's other candidates (0 when it has none)."""
    from .pair_features import FEATURES

    vecs = linker.encode(mentions, cache=cache)
    extra = [list(dict.fromkeys(r for _, r in g)) for g in groups]
    cands, blocks, _ = linker.score_candidates(mentions, vecs, types, extra=extra)
    n = sum(len(g) for g in groups)
    x = np.zeros((n, len(FEATURES)), np.float32)
    raw, rival = np.zeros(n), np.zeros(n)
    sizes = [len(b) for b in blocks]
    stacked = np.concatenate(blocks) if blocks else np.zeros((0, len(FEATURES)), np.float32)
    probs = np.split(linker.scorer.predict(stacked).astype(np.float64), np.cumsum(sizes)[:-1])
    for g, cand, block, p in zip(groups, cands, blocks, probs, strict=True):
        where = {int(r): j for j, r in enumerate(cand.rows.tolist())}
        for pair, row in g:
            j = where[int(row)]
            x[pair], raw[pair] = block[j], p[j]
            others = np.delete(p, j)
            rival[pair] = others.max() if len(others) else 0.0
    return x, raw, rival


def decision_inputs(raw, rival) -> np.ndarray:
    """``[logit(raw), logit(rival)]`` [P, 2], the calibrator's inputs (:data:`INPUTS`)."""
    return np.stack([logit(raw), logit(rival)], axis=1)


def fit_decision(raw, rival, labels) -> Calibrator:
    """The decision calibrator fitted on validation pairs (raw [V], rival [V], labels [V])."""
    return fit_calibrator(decision_inputs(raw, rival), labels, list(INPUTS))


def decide_candidates(linker, probs) -> np.ndarray:
    """Decision probabilities [C] of one mention's ranked candidates from their linking
    probabilities ``probs`` [C] (Platt-calibrated, :meth:`align.Linker.probabilities`; best
    first or not, but holding the mention's two best candidates, as a link's alternatives
    do): each candidate's raw scorer logit is recovered from its Platt probability and its
    rival is the best of the others. Unchanged when the linker has no decision (untrained,
    or saved before it)."""
    probs = np.asarray(probs, np.float64)
    config = linker.config
    if not config.decision or not config.calibrator or not len(probs):
        return probs
    platt = Calibrator.from_dict(config.calibrator)
    if abs(platt.weights[0]) < 1e-9:  # a flat calibrator cannot be inverted
        return probs
    raw = (logit(probs) - platt.bias) / platt.weights[0]
    order = np.argsort(-raw, kind="stable")
    best, second = raw[order[0]], raw[order[1]] if len(raw) > 1 else logit(np.zeros(1))[0]
    rival = np.where(np.arange(len(raw)) == order[0], second, best)
    decision = Calibrator.from_dict(config.decision)
    return decision.predict(np.stack([raw, rival], axis=1))


def _f1(decided: np.ndarray, y: np.ndarray) -> float:
    tp = float((decided & y).sum())
    return 2 * tp / max(float(decided.sum() + y.sum()), 1.0)


def f1_optimal_cut(probs, labels) -> float:
    """The F1-optimal decision cut on calibrated match probabilities ``probs`` [V] of
    validation pairs with 0/1 ``labels`` [V]: half the best F1 they reach, ``F* / 2``
    (Lipton, Elkan & Narayanaswamy, "Optimally Thresholding Classifiers to Maximize F1
    Measure", ECML PKDD 2014: for calibrated probabilities the F1-optimal threshold is
    F*/2). Read off the probabilities' calibration, not tuned to the cut: the argmax of the
    validation F1 curve jumps between neighbouring cuts (0.30-0.48 on our sets), F* does
    not. Below 0.5 when matches are hard to tell apart (Amazon-Google: 0.38), near it when
    they are not (Abt-Buy: 0.47)."""
    from .scorer import best_threshold

    return float(best_threshold(np.asarray(probs, np.float64), np.asarray(labels))["f1"]) / 2


def in_band(features, band) -> np.ndarray:
    """Which features' decision probabilities [P] a cascade sends to the cross-encoder: those
    within ``band = [lo, hi]``; all of them when ``band`` is None (no cascade)."""
    f = np.asarray(features, np.float64)
    if not band:
        return np.ones(len(f), bool)
    lo, hi = band
    return (f >= lo) & (f <= hi)


def cascade_probs(features, reranked, band) -> np.ndarray:
    """The cascade's decision probabilities [P]: ``reranked`` where the features' probability
    is :func:`in_band`, ``features`` elsewhere (``band`` None: ``reranked``)."""
    f, r = np.asarray(features, np.float64), np.asarray(reranked, np.float64)
    return np.where(in_band(f, band), r, f)


def fit_cascade(features, reranked, labels, mentions, threshold: float = 0.5,
                step: float = 0.02, max_changed: float = 0.001) -> dict:  # fmt: skip
    """The band ``[lo, hi]`` (``lo <= threshold <= hi``) of the features' decision
    probability inside which a cross-encoder rescores, chosen on validation pairs so that
    the cascade decides them as full reranking does (at most ``max_changed`` of them
    otherwise, and a pair F1 not below full reranking's) and as few mentions as possible
    are rescored. Agreement, not F1 alone: the narrowest band with the same validation F1
    was measured to keep only the few pairs where the reranker's gain on valid happened to
    lie (Amazon-Google: [0.4, 0.5], 4 % of the mentions, test F1 76.5 against 77.9 for full
    reranking), where the agreeing band ([0.2, 0.8], 26 %) gave test F1 77.9.

    ``features`` [V]: the feature linker's decision probabilities; ``reranked`` [V]: the
    reranker's calibrated ones; ``labels`` [V] 0/1; ``mentions`` [V]: a key per pair naming
    its mention. The cascade decides a pair by ``reranked >= threshold`` inside the band and
    by ``features >= threshold`` outside; a mention is rescored when its best pair's feature
    probability is inside (as in linking: its top candidate). Among the qualifying bands on
    a grid of ``step``, the one rescoring the fewest mentions, then the fewest pairs, then
    the widest. Returns ``{"band": [lo, hi], "valid_f1": cascade, "valid_f1_full",
    "valid_f1_features", "mentions_reranked": share, "pairs_reranked": share, "changed":
    pairs decided otherwise than by full reranking}``."""
    f = np.asarray(features, np.float64)
    r = np.asarray(reranked, np.float64)
    y = np.asarray(labels).astype(bool)
    keys = {m: i for i, m in enumerate(dict.fromkeys(mentions))}
    index = np.array([keys[m] for m in mentions], np.int64)
    top = np.full(len(keys), -np.inf)
    np.maximum.at(top, index, f)
    full = _f1(r >= threshold, y)
    by_features = f >= threshold
    by_reranker = r >= threshold
    allowed = int(max_changed * len(y))
    best = None
    for lo in np.round(np.arange(0.0, threshold + 1e-9, step), 6):  # stored as compared
        for hi in np.round(np.arange(1.0, threshold - 1e-9, -step), 6):
            inside = (f >= lo) & (f <= hi)
            decided = np.where(inside, by_reranker, by_features)
            changed = int((decided != by_reranker).sum())
            score = _f1(decided, y)
            if score < full - 1e-12 or changed > allowed:
                continue
            cost = (float(((top >= lo) & (top <= hi)).mean()), float(inside.mean()), lo - hi)
            if best is None or cost < best[0]:
                best = (cost, [float(lo), float(hi)], score, changed)
    (mentions_share, pairs_share, _), band, score, changed = best  # [0, 1] always qualifies
    return {"band": band, "valid_f1": score, "valid_f1_full": full,
            "valid_f1_features": _f1(by_features, y), "mentions_reranked": mentions_share,
            "pairs_reranked": pairs_share, "changed": changed}  # fmt: skip


__all__ = ["INPUTS", "cascade_probs", "decide_candidates", "decision_inputs", "f1_optimal_cut",
           "fit_cascade", "fit_decision", "in_band", "pair_context"]  # fmt: skip

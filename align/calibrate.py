"""The NIL threshold of linking, calibrated apart from the pair-decision threshold.

A trained linker makes two different decisions with one scorer:

- **pair decisions** (:meth:`align.Linker.score_pairs`, Ditto's protocol): is this
  (record, entity) pair a match? ``LinkerConfig.threshold`` is 0.5 on the calibrated
  decision probability of :mod:`align.pair_decision` (fitted on the validation pairs,
  which are mostly hard non-matches);
- **linking** (:meth:`align.Linker.link_text`, :meth:`align.Linker.link_records`): is the
  *best* candidate in the whole catalogue the mention's product, or is the product not in
  the catalogue (NIL)? Using the pair threshold here turns true matches into NIL (the issue
  measured 16 of 60).

:func:`calibrate_nil` chooses ``LinkerConfig.nil_threshold`` for linking on the validation
mentions that have a labelled match, each linked twice:

1. against the catalogue as it is: a *present* example, right when the top candidate is a
   labelled match and its probability is at or above the threshold;
2. against the catalogue without its labelled matches (:meth:`align.Linker.score_candidates`
   with ``exclude``): an *absent* example (the product is not in the catalogue), right when
   the best remaining candidate scores below the threshold.

A user asking for a product that is in the catalogue must get it, so the cut may turn at
most ``max_lost`` (default 5 %) of the rightly ranked present mentions into NIL; among the
cuts that keep that promise, the one with the best accuracy over both sets wins (cut
midway between two adjacent scores; ties: the lower cut, which links more). The scores are
the Platt-calibrated probabilities of linking (``LinkerConfig.calibrator``); on Abt-Buy the
cut that accuracy alone would pick rejects true matches en masse (out-of-catalogue
stand-ins there are colour siblings that score high), hence the 95 % promise. With a
cross-encoder (``reranker=``) the same is done on its reranked probabilities and stored as
the reranker's ``nil_threshold``. Removing the gold entity to simulate
out-of-catalogue mentions is how zero-shot linking sets evaluate NIL (Logeswaran et al.,
"Zero-Shot Entity Linking by Reading Entity Descriptions", ACL 2019, hold entities out of
the dictionary); the decision rule on the top score follows BLINK's NIL handling.
"""

from __future__ import annotations

import numpy as np


def link_outcomes(linker, records, gold: list[list[int]], types=None, exclude_gold=False,
                  reranker=None):  # fmt: skip
    """Top-candidate probability [M] and whether it is a gold row [M] for each record.

    ``gold[i]``: entity rows that match ``records[i]``; with ``exclude_gold`` they are taken
    out of the catalogue for that record first (then "correct" is always False). With a
    ``reranker`` (:mod:`align.rerank`) its calibrated probabilities over each mention's
    top ``reranker.config.k`` candidates decide, as in linking."""
    mentions = [linker.mention(r) for r in records]
    vecs = linker.encode(mentions, cache=True)
    found = linker.score_candidates(mentions, vecs, types, exclude=gold if exclude_gold else None)
    depth = reranker.config.k if reranker is not None else 1
    tops = [np.lexsort((c.rows, -p))[:depth] for c, p in zip(found.candidates, found.probs, strict=True)]
    rows = [c.rows[t].astype(np.int64) for c, t in zip(found.candidates, tops, strict=True)]
    probs = [p[t].astype(np.float64) for p, t in zip(found.probs, tops, strict=True)]
    if reranker is not None and sum(len(r) for r in rows):
        from .pair_decision import decide_candidates

        sources = [r for r, rs in zip(records, rows, strict=True) for _ in rs]
        flat = np.concatenate(rows)
        prior = np.concatenate([decide_candidates(linker, p) for p in probs])
        p = reranker.pair_probability(linker, sources, flat, prior)
        probs = np.split(p, np.cumsum([len(r) for r in rows])[:-1])
    scores = np.zeros(len(mentions), np.float64)
    correct = np.zeros(len(mentions), bool)
    for i, (r, p) in enumerate(zip(rows, probs, strict=True)):
        if len(p):
            j = int(np.argmax(p))
            scores[i], correct[i] = float(p[j]), int(r[j]) in set(gold[i])
    return scores, correct


def best_nil_threshold(present: np.ndarray, correct: np.ndarray, absent: np.ndarray,
                       max_lost: float = 0.05) -> dict:  # fmt: skip
    """The cut maximising ``(#present correct and >= t) + (#absent < t)`` among the cuts
    that leave at least ``1 - max_lost`` of the correct present links linked (module
    docstring).

    Returns ``{"threshold", "accuracy", "linked_right", "nil_right"}``: the accuracy over
    both sets, the share of present mentions linked to their match, of absent ones NIL."""
    present = np.asarray(present, np.float64)
    absent = np.asarray(absent, np.float64)
    correct = np.asarray(correct, bool)
    scores = np.concatenate([present, absent])
    if not len(scores):
        return {"threshold": 0.5, "accuracy": 0.0, "linked_right": 0.0, "nil_right": 0.0}
    cuts = np.unique(np.concatenate([[0.0], scores, [1.0 + 1e-9]]))
    mids = np.concatenate([[0.0], (cuts[:-1] + cuts[1:]) / 2])  # 0 links everything
    good_present = np.sort(present[correct])
    absent_sorted = np.sort(absent)
    linked = len(good_present) - np.searchsorted(good_present, mids, side="left")
    nil = np.searchsorted(absent_sorted, mids, side="left")
    accuracy = (linked + nil) / len(scores)
    kept = linked >= (1.0 - max_lost) * len(good_present) - 1e-9
    i = int(np.argmax(np.where(kept, accuracy, -1.0)))  # first maximum: the lowest cut
    t = float(min(max(mids[i], 0.0), 1.0))
    return {
        "threshold": t,
        "max_lost": max_lost,
        "accuracy": float(accuracy[i]),
        "linked_right": float(linked[i] / max(len(present), 1)),
        "nil_right": float(nil[i] / max(len(absent), 1)),
    }


def calibrate_nil(linker, records, iris, labels, types=None, reranker=None) -> dict:
    """Set ``linker.config.nil_threshold`` (with a ``reranker``: its
    ``config.nil_threshold``, on its reranked probabilities) from labelled pairs (module
    docstring); returns the figures of :func:`best_nil_threshold` plus ``mentions`` (how
    many were used).

    Only mentions with at least one label-1 pair take part; with none, the threshold is left
    unset (linking then uses the pair threshold) and ``{"mentions": 0}`` is returned."""
    gold: dict[tuple, list[int]] = {}
    record_of: dict[tuple, object] = {}
    for record, iri, label in zip(records, iris, labels, strict=True):
        if not label:
            continue
        mention = linker.mention(record)
        key = (mention.text, mention.title, mention.price)
        record_of.setdefault(key, record)
        gold.setdefault(key, []).append(linker.entities.row_of[iri])
    if not gold:
        return {"mentions": 0}
    keys = list(gold)
    chosen = [record_of[k] for k in keys]
    rows = [gold[k] for k in keys]
    present, correct = link_outcomes(linker, chosen, rows, types, reranker=reranker)
    absent, _ = link_outcomes(linker, chosen, rows, types, exclude_gold=True, reranker=reranker)
    found = best_nil_threshold(present, correct, absent)
    (reranker or linker).config.nil_threshold = found["threshold"]
    return {**found, "mentions": len(keys), "top1_right": float(correct.mean())}


__all__ = ["best_nil_threshold", "calibrate_nil", "link_outcomes"]

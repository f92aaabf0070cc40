"""Training the linker from labelled pairs (the DeepMatcher layout), and reading its tables.

The DeepMatcher / Ditto benchmark layout (Mudgal et al., "Deep Learning for Entity
Matching: A Design Space Exploration", SIGMOD 2018; Li et al., "Deep Entity Matching with
Pre-Trained Language Models", VLDB 2021 / arXiv 2020)::

    tableA.csv   the catalogue (built into the workspace: ``kgf build tableA.csv --mapping``)
    tableB.csv   the mentions: offers / records of another source, one per row, with an id
    train.csv    ltable_id, rtable_id, label   (catalogue id, mention id, 1 = same product)
    valid.csv    the same, for early stopping and the NIL threshold
    test.csv     the same, held out

:func:`train_linker` reads them, maps each ``ltable_id`` to its entity IRI
(:func:`resolve_ids`: the table mapping's ``base`` + the percent-quoted id, as ``kg.tabular``
mints IRIs; else by the IRI's last path segment), and calls :func:`fit_linker`:

1. encode the mentions (through the workspace's embedding cache);
2. optionally fit the contrastive projection (:mod:`align.projection`) on the positive
   pairs, early-stopped on the validation positives;
3. compute pair features (:mod:`align.pair_features`) for the labelled pairs, plus - with
   ``mine_negatives = n`` - the ``n`` best-retrieved wrong candidates of each mention that
   has a match (hard negatives for ranking against the whole catalogue);
4. fit the scorer (:mod:`align.scorer`), early-stopped on the validation pairs;
5. calibrate its probabilities on the validation pairs (Platt scaling) and the pair
   decision (:mod:`align.pair_decision`: the pair's and its best rival's scores,
   :func:`calibrate_pairs`), so that a pair is a match at ``p >= 0.5`` on any data set
   with no threshold tuned per set; and calibrate the NIL
   threshold of linking apart from it (:mod:`align.calibrate`); without a validation file
   both use a held-out fifth of the training mentions.

The result is saved as ``WORKSPACE/linker/config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np

from kg.progress import progress as make_bar
from kg.progress import stage

from .base import LinkerError
from .calibrate import calibrate_nil
from .calibration import CalibrationError, expected_calibration_error, fit_calibrator, logit
from .linker import Linker, LinkerConfig
from .pair_decision import decision_inputs, fit_decision, pair_context
from .pair_features import FEATURES, F
from .projection import train_projection
from .scorer import average_precision, best_threshold, fit_scorer, prf
from .tables import read_pairs, read_table


@dataclass
class TrainReport:
    """What :func:`train_linker` produced: the saved config, metrics, and where."""

    config: LinkerConfig
    metrics: dict
    path: Path | None


# ---------------------------------------------------------------------- ids
def resolve_ids(linker: Linker, ids, base: str | None = None) -> dict[str, str]:
    """Catalogue ids -> entity IRIs.

    With ``base`` (or the ``[entity] base`` of the mapping recorded in the workspace manifest
    by ``kgf build --mapping``) an id becomes ``base + quote(id)``, as the table converter
    mints IRIs. Otherwise ids are matched to the last path segment (after ``/`` or ``#``,
    percent-decoded) of the linkable entities' IRIs. Raises :class:`LinkerError` for an id
    that matches nothing, or several entities.
    """
    return resolve_entity_ids(linker.entities.row_of, linker.graph, ids, base, linker.workspace)


def resolve_entity_ids(rows, graph, ids, base: str | None = None, workspace="the workspace"):
    """:func:`resolve_ids` against any set of entity IRIs ``rows`` (a dict or set) of
    ``graph``; an id that is itself one of the IRIs maps to itself."""
    ids = list(dict.fromkeys(ids))
    if base is None:
        base = _mapping_base(graph)
    if base is not None:
        found = {i: i if i in rows else base + quote(i, safe="") for i in ids}
        missing = [i for i, iri in found.items() if iri not in rows]
        if not missing:
            return found
        if len(missing) < len(ids):
            raise LinkerError(
                f"{len(missing)} catalogue id(s) have no entity {base}<id> in "
                f"{workspace}, e.g. {missing[0]!r}; was the workspace built from "
                "this table?"
            )
    by_suffix: dict[str, list[str]] = {}
    for iri in rows:
        suffix = unquote(iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
        by_suffix.setdefault(suffix, []).append(iri)
    out = {}
    for i in ids:
        hits = [i] if i in rows else by_suffix.get(i, [])
        if len(hits) != 1:
            why = "matches no entity IRI" if not hits else f"matches {len(hits)} entities"
            raise LinkerError(
                f"catalogue id {i!r} {why} of {workspace}; pass base= (the mapping's "
                "[entity] base) so ids map to IRIs exactly"
            )
        out[i] = hits[0]
    return out


def _mapping_base(graph) -> str | None:
    from kg.tabular import Mapping

    for source in graph.sources:
        mapping = source.get("mapping")
        if mapping and Path(mapping).is_file():
            try:
                return Mapping.from_toml(mapping).base
            except Exception:  # noqa: BLE001 - an unreadable mapping: fall back to suffixes
                return None
    return None


# ---------------------------------------------------------------------- training
CHUNK = 256  # mentions per step of the progress bars (encoding, candidates, features)


def _negatives(linker, mentions, groups, labels, n: int, types, progress: bool = False):
    """Up to ``n`` best-retrieved candidates per mention with a match that are not labelled
    matches: ``(mention index, entity row)``."""
    if n <= 0:
        return []
    positive = [{row for pair, row in g if labels[pair]} for g in groups]
    chosen = [i for i, p in enumerate(positive) if p]
    out = []
    bar = make_bar(total=len(chosen), desc="hard negatives", unit="mention", enabled=progress)
    for start in range(0, len(chosen), CHUNK):
        part = chosen[start : start + CHUNK]
        sub = [mentions[i] for i in part]
        vecs = linker.encode(sub, cache=True)
        cands, blocks, _ = linker.score_candidates(sub, vecs, types)
        for i, cand, block in zip(part, cands, blocks, strict=True):
            labelled = {row for _, row in groups[i]}
            strength = block[:, F["proj_cos"]] + block[:, F["bm25_rel"]]
            order = np.argsort(-strength, kind="stable")
            picked = [int(cand.rows[j]) for j in order if int(cand.rows[j]) not in labelled][:n]
            out += [(i, row) for row in picked]
        bar.update(len(part))
    bar.close()
    return out


def _pair_features(linker, mentions, groups, types, desc: str, progress: bool) -> np.ndarray:
    """:meth:`Linker.grouped_pair_features` ([P, F], pair-index order) in chunks of
    mentions, with a progress bar."""
    x = np.zeros((sum(len(g) for g in groups), len(FEATURES)), np.float32)
    bar = make_bar(total=len(mentions), desc=desc, unit="mention", enabled=progress)
    for start in range(0, len(mentions), CHUNK):
        part = groups[start : start + CHUNK]
        pairs = [pair for g in part for pair, _ in g]
        local, j = [], 0
        for g in part:
            local.append([(j + k, row) for k, (_, row) in enumerate(g)])
            j += len(g)
        chunk, _ = linker.grouped_pair_features(
            mentions[start : start + CHUNK], local, types, cache=True
        )
        x[pairs] = chunk
        bar.update(len(part))
    bar.close()
    return x


def _pair_data(linker, records, iris, labels, types, mine: int = 0, desc="pairs",
               progress: bool = False):  # fmt: skip
    mentions, groups = linker.group_pairs(records, iris)
    labels = np.asarray(labels, np.float32)
    extra = _negatives(linker, mentions, groups, labels, mine, types, progress)
    mined_labels = np.zeros(len(extra), np.float32)
    if extra:
        start = len(labels)
        for j, (i, row) in enumerate(extra):
            groups[i].append((start + j, row))
        labels = np.concatenate([labels, mined_labels])
    x = _pair_features(linker, mentions, groups, types, desc, progress)
    return x, labels, mentions, groups


def fit_linker(
    linker: Linker,
    records,
    iris,
    labels,
    valid=None,
    *,
    hidden: int = 32,
    projection: bool = True,
    mine_negatives: int = 5,
    epochs: int = 400,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Train ``linker`` in memory on pairs ``(records[i], iris[i], labels[i])``.

    ``valid = (records, iris, labels)`` chooses the epoch and the NIL threshold; without it
    a fifth of the training mentions is held out for that. Returns the metrics (also kept
    in ``linker.config.metrics``); call :meth:`Linker.save` to keep the result. This is
    how a :class:`Linker` is trained in memory (``fit_linker(linker, records, iris, labels)``).
    ``progress``: a progress bar (or line) per step (:mod:`kg.progress`).
    """
    started = time.perf_counter()
    labels = np.asarray(labels, np.int64)
    if len(records) != len(iris) or len(iris) != len(labels):
        raise ValueError("records, iris and labels must have the same length")
    if valid is None:
        records, iris, labels, valid = _hold_out(records, iris, labels, seed)
    v_records, v_iris, v_labels = valid
    v_labels = np.asarray(v_labels, np.int64)
    rows = linker.entities.row_of
    for iri in list(iris) + list(v_iris):
        if iri not in rows:
            raise LinkerError(f"{iri!r} is not a linkable entity of {linker.workspace}")
    types = sorted({linker.entities.types[rows[i]] for i in iris})
    config = linker.config
    config.record_types = types
    config.calibrator = config.decision = None  # a new scorer gets new calibrators
    metrics: dict = {"train_pairs": len(labels), "train_matches": int(labels.sum())}
    metrics.update(valid_pairs=len(v_labels), valid_matches=int(v_labels.sum()))

    linker.candidates.set_projection(None)
    config.projection = False
    if projection:
        stage("link-train: encoding the matching mentions for the projection", progress)
        info = _fit_projection(linker, records, iris, labels, v_records, v_iris, v_labels, types)
        metrics["projection"] = info

    x, y, _, _ = _pair_data(
        linker, records, iris, labels, types, mine_negatives, "train pairs", progress
    )
    xv, yv, v_mentions, v_groups = _pair_data(
        linker, v_records, v_iris, v_labels, types, 0, "valid pairs", progress
    )
    metrics["mined_negatives"] = int(len(y) - len(labels))
    stage(f"link-train: fitting the scorer on {len(y):,} pairs ({epochs} epochs at most)", progress)
    scorer, info = fit_scorer(x, y, x_valid=xv, y_valid=yv, hidden=hidden, epochs=epochs, seed=seed)
    linker.scorer = scorer
    config.hidden = hidden
    stage("link-train: calibrating the pair decision on the validation pairs", progress)
    metrics["valid"] = calibrate_pairs(linker, v_mentions, v_groups, yv, types)
    stage("link-train: calibrating the NIL threshold of linking (apart from the pair one)", progress)
    metrics["nil"] = calibrate_nil(linker, v_records, v_iris, v_labels, types)
    train_scores = linker.probabilities(x[: len(labels)])
    metrics["scorer"] = info
    metrics["train"] = prf(train_scores >= config.threshold, labels.astype(bool))
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    config.trained = True
    config.metrics = metrics
    return metrics


def calibrate_pairs(linker: Linker, mentions, groups, yv: np.ndarray, types=None) -> dict:
    """Fit the two calibrators of ``linker`` on the validation pairs (``mentions, groups``
    of :meth:`Linker.group_pairs`, labels ``yv`` [V]):

    - ``config.calibrator``: Platt scaling of the scorer's logit, for the probabilities of
      linking (:meth:`Linker.probabilities`);
    - ``config.decision``: the pair decision over the pair's and its rival's scorer logits
      (:mod:`align.pair_decision`); a pair is a match when it gives ``p >= 0.5``.

    Returns the validation figures of the decision, plus the F1-optimal cut on the raw
    scores (``tuned_threshold``, the decision used before, kept for comparison:
    ``benchmarks/matching.py --transfer``)."""
    _, raw, rival = pair_context(linker, mentions, groups, types, cache=True)
    tuned = best_threshold(raw, yv)
    try:
        calibrator = fit_calibrator(logit(raw), yv, ["scorer_logit"])
    except CalibrationError as err:
        raise LinkerError(
            f"the validation pairs (--valid, or a fifth of the training mentions held out) "
            f"calibrate the match decision: {err}"
        ) from None
    decision = fit_decision(raw, rival, yv)
    linker.config.calibrator = calibrator.to_dict()
    linker.config.decision = decision.to_dict()
    linker.config.threshold = decision.threshold
    p = decision.predict(decision_inputs(raw, rival))
    return {
        **prf(p >= decision.threshold, yv.astype(bool)), "threshold": decision.threshold,
        "ap": average_precision(p, yv), "ece": expected_calibration_error(p, yv),
        "tuned_threshold": tuned["threshold"], "tuned_f1": tuned["f1"],
    }  # fmt: skip


def _fit_projection(linker, records, iris, labels, v_records, v_iris, v_labels, types) -> dict:
    pool = np.concatenate([linker.entities.type_rows[t] for t in types])
    position = {int(r): j for j, r in enumerate(pool.tolist())}

    def positives(recs, targets, labs):
        chosen = [(r, t) for r, t, lab in zip(recs, targets, labs, strict=True) if lab]
        mentions = [linker.mention(r) for r, _ in chosen]
        vecs = linker.encode(mentions, cache=True)
        gold = np.array([position[linker.entities.row_of[t]] for _, t in chosen], np.int64)
        return vecs, gold

    m, gold = positives(records, iris, labels)
    vm, vgold = positives(v_records, v_iris, v_labels)
    w, info = train_projection(m, gold, linker.entities.text_vecs[pool], valid=(vm, vgold))
    if w is not None:
        linker.candidates.set_projection(w)
        linker.config.projection = True
    info["used"] = w is not None
    return info


def _hold_out(records, iris, labels, seed: int):
    """Split pairs 80 / 20 by mention (all pairs of a mention on one side)."""
    keys = [repr(sorted(r.items())) if isinstance(r, dict) else repr(r) for r in records]
    unique = list(dict.fromkeys(keys))
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(len(unique))[: max(1, len(unique) // 5)].tolist())
    held_keys = {unique[i] for i in held}
    mask = np.array([k in held_keys for k in keys])
    if mask.all() or (~mask).all():
        raise ValueError("need at least two distinct mentions to hold some out for the threshold")
    pick = lambda seq, m: [s for s, keep in zip(seq, m, strict=True) if keep]
    return (
        pick(records, ~mask), pick(iris, ~mask), labels[~mask],
        (pick(records, mask), pick(iris, mask), labels[mask]),
    )  # fmt: skip


def load_pairs(linker: Linker, mentions: dict[str, dict], pairs_csv, base=None, **cols):
    """``(records, iris, labels)`` of a pairs CSV, mentions looked up in ``mentions``."""
    pairs = read_pairs(pairs_csv, **cols)
    iri_of = resolve_ids(linker, [p[0] for p in pairs], base)
    missing = [p[1] for p in pairs if p[1] not in mentions]
    if missing:
        raise LinkerError(
            f"{pairs_csv}: mention id {missing[0]!r} is not in the mentions table "
            f"({len(missing)} such pair(s))"
        )
    return (
        [mentions[p[1]] for p in pairs],
        [iri_of[p[0]] for p in pairs],
        np.array([p[2] for p in pairs], np.int64),
    )


def train_linker(
    workspace,
    mentions_csv,
    pairs_csv,
    valid_csv=None,
    *,
    id_col: str = "id",
    text_cols: list[str] | None = None,
    title_col: str | None = None,
    price_col: str | None = None,
    base: str | None = None,
    left_col: str = "ltable_id",
    right_col: str = "rtable_id",
    label_col: str = "label",
    hidden: int = 32,
    projection: bool = True,
    mine_negatives: int = 5,
    epochs: int = 400,
    seed: int = 0,
    save: bool = True,
    linker: Linker | None = None,
    progress: bool = False,
) -> TrainReport:
    """Train and save the workspace's linker from a DeepMatcher-layout mentions table and
    labelled pairs (see the module docstring). Returns a :class:`TrainReport`.

    ``text_cols``: the mention columns joined into the mention text (default: all but the
    id and the price column). ``base``: the catalogue's IRI base (default: from the mapping
    recorded in the workspace, else IRI suffixes). ``progress``: report each step on stderr.
    """
    if linker is None:
        stage(f"link-train: loading the entities of {workspace} and the text model", progress)
        linker = Linker(workspace, fresh=True)
    table = read_table(mentions_csv, id_col)
    config = linker.config
    config.id_col, config.text_cols = id_col, list(text_cols) if text_cols else None
    config.title_col, config.price_col = title_col, price_col
    cols = dict(left_col=left_col, right_col=right_col, label_col=label_col)
    train = load_pairs(linker, table, pairs_csv, base, **cols)
    valid = load_pairs(linker, table, valid_csv, base, **cols) if valid_csv else None
    metrics = fit_linker(
        linker, *train, valid, hidden=hidden, projection=projection,
        mine_negatives=mine_negatives, epochs=epochs, seed=seed, progress=progress,
    )  # fmt: skip
    path = linker.save() if save else None
    return TrainReport(linker.config, metrics, path)

"""Evaluating a workspace's linker on a labelled pair file (``kgf link-evaluate``).

The pair file is in the DeepMatcher layout (``ltable_id, rtable_id, label``: catalogue id,
mention id, 1 = same product), the mentions come from a table of records (``tableB.csv``
beside the pair file by default). :func:`evaluate_pairs` reports

- **pair decisions**, Ditto's protocol: each pair is a match when its calibrated probability
  is at least the linker's pair threshold (:attr:`align.Linker.pair_threshold`: 0.5 on
  calibrated probabilities; the workspace's cross-encoder reranker decides when it has
  one); precision, recall and F1 of the match class;
- **linking** for the mentions that have a label-1 pair, against the whole catalogue:
  ``acc@1`` (the top-ranked candidate is one of its matches, whatever the NIL decision),
  ``recall@k`` (one of them is in the top k), ``linked_right`` (linked, not NIL, to a
  match: what a user sees) and ``nil_rate`` (how many of these true matches were NIL).

Bad input is reported and skipped where the rest can still be evaluated: pairs naming
catalogue ids that are no entity of the workspace, or mention ids not in the table, are
counted, with examples, and dropped (an error when none remain); a file with one class only
is evaluated as far as it can be (a note says which figures are undefined).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np

from .base import LinkerError
from .scorer import prf
from .tables import read_pairs, read_table

EXAMPLES = 3


@dataclass
class Evaluation:
    """What :func:`evaluate_pairs` measured (``metrics``) and what it had to say (``notes``)."""

    metrics: dict
    notes: list[str] = field(default_factory=list)


def entity_iris(linker, ids, base: str | None = None) -> dict[str, str | None]:
    """Catalogue ids -> entity IRIs (None for an id with no entity): ``base + quote(id)``
    when the mapping's base is known, else the IRI itself, else a unique IRI whose last path
    segment is the id (as :func:`align.train.resolve_ids`, but tolerant)."""
    from .train import _mapping_base

    rows = linker.entities.row_of
    base = base if base is not None else _mapping_base(linker.graph)
    by_suffix: dict[str, list[str]] | None = None
    out: dict[str, str | None] = {}
    for i in dict.fromkeys(ids):
        if base is not None and base + quote(i, safe="") in rows:
            out[i] = base + quote(i, safe="")
            continue
        if i in rows:
            out[i] = i
            continue
        if by_suffix is None:
            by_suffix = {}
            for iri in rows:
                suffix = unquote(iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
                by_suffix.setdefault(suffix, []).append(iri)
        hits = by_suffix.get(i, [])
        out[i] = hits[0] if len(hits) == 1 else None
    return out


def _examples(values) -> str:
    values = list(dict.fromkeys(values))
    shown = ", ".join(repr(v) for v in values[:EXAMPLES])
    return shown + (", ..." if len(values) > EXAMPLES else "")


def evaluate_pairs(linker, pairs_csv, mentions_csv=None, *, id_col: str = "id",
                   base: str | None = None, k: int = 10) -> Evaluation:  # fmt: skip
    """P / R / F1 of the pair decisions and acc@1 / recall@k of linking (module docstring)."""
    pairs_csv = Path(pairs_csv)
    mentions_csv = Path(mentions_csv) if mentions_csv else pairs_csv.parent / "tableB.csv"
    if not mentions_csv.is_file():
        raise LinkerError(
            f"{mentions_csv}: no mentions table; pass --mentions TABLE (the records the "
            f"pair file's rtable_id column names)"
        )
    pairs = read_pairs(pairs_csv)
    if not pairs:
        raise LinkerError(f"{pairs_csv}: no pairs to evaluate")
    table = read_table(mentions_csv, id_col)
    iri_of = entity_iris(linker, [p[0] for p in pairs], base)
    notes: list[str] = []
    bad_left = [p[0] for p in pairs if iri_of[p[0]] is None]
    bad_right = [p[1] for p in pairs if p[1] not in table]
    if bad_left:
        notes.append(
            f"{sum(iri_of[p[0]] is None for p in pairs)} pair(s) name catalogue ids that are no "
            f"entity of {linker.workspace} (e.g. {_examples(bad_left)}): skipped; was the "
            "workspace built from this catalogue (pass --base for its IRI prefix)?"
        )
    if bad_right:
        notes.append(
            f"{sum(p[1] not in table for p in pairs)} pair(s) name mention ids not in "
            f"{mentions_csv} (e.g. {_examples(bad_right)}): skipped"
        )
    kept = [p for p in pairs if iri_of[p[0]] is not None and p[1] in table]
    empty = [p[1] for p in kept if not linker.mention(table[p[1]]).text.strip()]
    if empty:
        notes.append(
            f"{len(empty)} pair(s) name mentions with no text in their columns (e.g. "
            f"{_examples(empty)}): skipped"
        )
        kept = [p for p in kept if p[1] not in set(empty)]
    if not kept:
        raise LinkerError(
            f"{pairs_csv}: none of its {len(pairs)} pairs can be evaluated: "
            + " ".join(notes)
        )
    records = [table[p[1]] for p in kept]
    iris = [iri_of[p[0]] for p in kept]
    labels = np.array([p[2] for p in kept], bool)
    probs = linker.score_pairs(records, iris)
    metrics: dict = {"pairs": len(kept), "skipped_pairs": len(pairs) - len(kept),
                     "matches": int(labels.sum()),
                     "pair_threshold": linker.pair_threshold,
                     "nil_threshold": linker.nil_threshold,
                     "reranked": linker.reranker is not None}  # fmt: skip
    if labels.all() or not labels.any():
        which = "matches (label 1)" if labels.all() else "non-matches (label 0)"
        notes.append(
            f"{pairs_csv} holds only {which}: precision"
            + (" is 1 by construction and F1 says little" if labels.all() else ", recall and F1 are undefined")
            + "; evaluate on a file with both classes"
        )
    if labels.any():
        metrics.update(prf(probs >= linker.pair_threshold, labels))
    else:
        metrics.update(precision=None, recall=None, f1=None)
        metrics["false_match_rate"] = float((probs >= linker.pair_threshold).mean())
    metrics.update(_linking(linker, table, kept, iri_of, k))
    return Evaluation(metrics, notes)


def _linking(linker, table, kept, iri_of, k: int) -> dict:
    gold: dict[str, set[str]] = {}
    for left, right, label in kept:
        if label:
            gold.setdefault(right, set()).add(iri_of[left])
    if not gold:
        return {"mentions": 0, "acc@1": None, f"recall@{k}": None, "linked_right": None,
                "nil_rate": None}  # fmt: skip
    ids = list(gold)
    links = linker.link_records([table[i] for i in ids], k=k)
    top1 = [bool(x.alternatives) and x.alternatives[0][0] in gold[i] for i, x in zip(ids, links, strict=True)]
    topk = [any(iri in gold[i] for iri, _ in x.alternatives) for i, x in zip(ids, links, strict=True)]
    right = [not x.nil and x.iri in gold[i] for i, x in zip(ids, links, strict=True)]
    return {
        "mentions": len(ids), "acc@1": float(np.mean(top1)), f"recall@{k}": float(np.mean(topk)),
        "linked_right": float(np.mean(right)), "nil_rate": float(np.mean([x.nil for x in links])),
    }  # fmt: skip


__all__ = ["Evaluation", "entity_iris", "evaluate_pairs"]

"""Known matches as evidence: an entity is also the records already known to match it.

In a catalogue of offers one product is often known through several records (the WDC
computers offers: a product clusters offers from many shops, and the catalogue holds several
of them). The labelled training pairs say which records match which catalogue entity; a new
pair ``(record, entity)`` is then also compared, by the reranker's own cross-encoder, with
the records known to match that entity. Two inputs join the pair decision's calibrator
(:data:`KNOWN_INPUTS`, next to the pair's cross-encoder and feature-scorer logits):

- ``view_logit``: the best of those comparisons, ``max_m CE(record, m)`` over the entity's
  known records ``m`` (the maximum, as ColBERT's MaxSim keeps each query token's best match:
  Khattab & Zaharia, SIGIR 2020); 0 where the entity has none;
- ``has_view``: 1 where the entity has a known record.

Known matches used as evidence for new decisions are the idea of collective entity
resolution (Bhattacharya & Getoor, "Collective Entity Resolution in Relational Data", TKDD
2007); here the evidence is read by the same pair model, so no rule is tuned per data set.

**When.** ``known_matches="auto"`` (the default of :func:`align.rerank_train.fit_reranker`)
uses them when the training pairs show a catalogue with several entries per product: at
least :data:`DUPLICATE_SHARE` of the matched records match two or more entities
(:func:`duplicate_share`; WDC computers medium 15.0 %, Amazon-Google 0.9 %, Abt-Buy 0.5 %).
In a one-to-one set (each product once per side) an entity with a known match has no other
match, by construction of the set: the calibrator would learn that artefact of the split,
which does not transfer. ``"on"`` / ``"off"`` force it.

Saved with the reranker as ``known_matches.json`` (``{entity IRI: [serialised records]}``,
at most :data:`MAX_VIEWS` per entity, in training order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import LinkerError

KNOWN_FILE = "known_matches.json"
KNOWN_INPUTS = ["view_logit", "has_view"]
SETTINGS = ("auto", "on", "off")
DUPLICATE_SHARE = 0.05  # matched records matching >= 2 entities: a catalogue with duplicates
MAX_VIEWS = 8  # known records compared per entity


def duplicate_share(texts, iris, labels) -> float:
    """Share of the matched records (``texts``: serialised, one per pair) that match two or
    more entities in the pairs ``(texts[i], iris[i], labels[i])``; 0 without matches."""
    entities: dict[str, set] = {}
    for text, iri, label in zip(texts, iris, labels, strict=True):
        if label:
            entities.setdefault(text, set()).add(iri)
    if not entities:
        return 0.0
    return sum(len(e) >= 2 for e in entities.values()) / len(entities)


def use_known_matches(setting: str, texts, iris, labels) -> tuple[bool, str]:
    """Whether to use known matches under ``setting`` (:data:`SETTINGS`), and why."""
    if setting not in SETTINGS:
        raise ValueError(f"known_matches={setting!r}; expected one of {SETTINGS}")
    if setting != "auto":
        return setting == "on", f"known_matches={setting!r}"
    share = duplicate_share(texts, iris, labels)
    used = share >= DUPLICATE_SHARE
    return used, (f"{100 * share:.1f} % of the matched training records match several "
                  f"entities ({'>=' if used else '<'} {100 * DUPLICATE_SHARE:.0f} %)")  # fmt: skip


@dataclass
class KnownMatches:
    """``records``: entity IRI -> the serialised records known to match it."""

    records: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, texts, iris, labels, limit: int = MAX_VIEWS) -> KnownMatches:
        """From labelled pairs (serialised record, entity IRI, 0/1): the matches, the first
        ``limit`` distinct records of each entity."""
        records: dict[str, list[str]] = {}
        for text, iri, label in zip(texts, iris, labels, strict=True):
            known = records.setdefault(iri, []) if label else None
            if known is not None and text not in known and len(known) < limit:
                known.append(text)
        return cls(records)

    def __len__(self) -> int:
        return len(self.records)

    def view_logits(self, encoder, texts: list[str], iris: list[str]) -> np.ndarray:
        """``[P]`` the best cross-encoder logit of ``texts[i]`` against the records known to
        match ``iris[i]`` (``encoder``: :class:`align.rerank.CrossEncoder`); NaN where the
        entity has none. One batched pass over every comparison."""
        lefts, rights, owner = [], [], []
        for i, (text, iri) in enumerate(zip(texts, iris, strict=True)):
            for known in self.records.get(iri, ()):
                lefts.append(text)
                rights.append(known)
                owner.append(i)
        out = np.full(len(texts), -np.inf)
        if lefts:
            np.maximum.at(out, np.asarray(owner), encoder.logits(lefts, rights).astype(np.float64))
        out[np.isneginf(out)] = np.nan
        return out

    def save(self, folder) -> Path:
        path = Path(folder) / KNOWN_FILE
        path.write_text(json.dumps(self.records, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder) -> KnownMatches | None:
        """The known matches saved in ``folder``; None when it has none."""
        path = Path(folder) / KNOWN_FILE
        if not path.is_file():
            return None
        records = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(records, dict) or not all(
            isinstance(v, list) and all(isinstance(t, str) for t in v) for v in records.values()
        ):
            raise LinkerError(f"{path}: expected {{entity IRI: [record text, ...]}}; retrain "
                             "the reranker to rewrite it")  # fmt: skip
        return cls(records)


def attach_known_matches(reranker, setting: str, train, valid):
    """Known matches of the training pairs ``train = (records, iris, labels)`` when
    ``setting`` says so (:func:`use_known_matches`): sets ``reranker.known``
    (:class:`align.rerank.Reranker`). Returns (the view logits [V] of the validation pairs
    ``valid = (serialised records, iris)``, or None; metrics saying what was used and why)."""
    if setting == "off":
        return None, {"used": False, "why": "known_matches='off'"}
    texts = [reranker.mention_text(r) for r in train[0]]
    used, why = use_known_matches(setting, texts, train[1], train[2])
    if not used:
        return None, {"used": False, "why": why}
    reranker.known = KnownMatches.from_pairs(texts, train[1], train[2])
    views = reranker.known.view_logits(reranker.encoder, list(valid[0]), list(valid[1]))
    return views, {"used": True, "why": why, "entities": len(reranker.known),
                   "valid_pairs_with_view": float(np.mean(~np.isnan(views)))}  # fmt: skip


def view_inputs(views) -> np.ndarray:
    """The calibrator's :data:`KNOWN_INPUTS` ``[P, 2]`` from view logits ``[P]`` (NaN: none)."""
    views = np.asarray(views, np.float64)
    has = ~np.isnan(views)
    return np.stack([np.where(has, views, 0.0), has.astype(np.float64)], axis=1)

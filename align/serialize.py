"""Ditto-style serialisation of records and entities, and its data augmentation.

A cross-encoder reads a (mention, entity) pair as two token sequences. Each side is its
attributes serialised as Ditto does (Li et al., "Deep Entity Matching with Pre-Trained
Language Models", VLDB 2021 / arXiv 2020, section 3.1)::

    COL title VAL sony bravia kdl-40 COL brand VAL sony COL price VAL 499.0

- a **record** (an offer / a table row, :func:`serialize_record`) gives its non-empty cells,
  the title column first, the id column left out;
- an **entity** of the graph (:func:`entity_attributes`, :func:`serialize_entity`) gives its
  name, its brand(s) (the names of the nodes it reaches by a brand-like relation, as
  :class:`align.entities.EntityTable` finds them), its price and its other text literals;
- a **free-text mention** is ``COL title VAL <text>``.

Long values are cut to ``max_words`` words (the title is kept whole) so that every attribute
gets a share of the model's window; the tokenizer then truncates the pair to ``max_length``.

Augmentation (Ditto section 4, "span deletion" and "attribute shuffle"):
:func:`delete_span` drops a random run of 1-4 words from one value, :func:`shuffle_attributes`
permutes the ``COL ... VAL ...`` blocks; :func:`augment` applies one of them at random.
"""

from __future__ import annotations

import re

import numpy as np

from .mentions import PRICE_COLUMN, TITLE_COLUMNS

COL, VAL = "COL", "VAL"
MAX_WORDS = 32  # words kept of each value but the title
_BLOCK = re.compile(r"(?=\bCOL )")
_SPACE = re.compile(r"\s+")


def _clean(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = _SPACE.sub(" ", str(value)).strip()
    return "" if text.lower() in ("null", "none", "nan") else text


def _cut(text: str, max_words: int | None) -> str:
    if max_words is None:
        return text
    words = text.split(" ")
    return text if len(words) <= max_words else " ".join(words[:max_words])


def serialize_pairs(items: list[tuple[str, str]], max_words: int | None = MAX_WORDS) -> str:
    """``[(column, value)]`` -> ``"COL column VAL value ..."``; empty values are skipped and
    every value but the first (the title) is cut to ``max_words`` words."""
    out = []
    for i, (column, value) in enumerate(items):
        text = _clean(value)
        if not text:
            continue
        out.append(f"{COL} {column} {VAL} {text if i == 0 else _cut(text, max_words)}")
    return " ".join(out)


def title_column(columns, title_col: str | None = None) -> str | None:
    """``title_col`` if given, else the first column named like a title (``name``,
    ``title``...), else None."""
    if title_col:
        return title_col
    lowered = {c.lower(): c for c in columns}
    return next((lowered[t] for t in TITLE_COLUMNS if t in lowered), None)


def serialize_record(record: dict, *, id_col: str | None = "id", text_cols=None,
                     title_col: str | None = None, max_words: int | None = MAX_WORDS) -> str:  # fmt: skip
    """A record (dict of cells) as ``COL c VAL v ...``: title column first, then the other
    columns in order (``text_cols`` if given, plus a price column); ``id_col`` is left out.
    A string is a free-text mention: ``COL title VAL text``."""
    if isinstance(record, str):
        return serialize_pairs([("title", record)], max_words)
    columns = [c for c in record if c != id_col]
    if text_cols:
        price = [c for c in columns if PRICE_COLUMN.search(c) and c not in text_cols]
        columns = [c for c in text_cols if c in record] + price[:1]
    title = title_column(columns, title_col)
    ordered = ([title] if title in columns else []) + [c for c in columns if c != title]
    return serialize_pairs([("title" if c == title else c, record.get(c)) for c in ordered],
                           max_words)  # fmt: skip


def entity_attributes(entities) -> list[dict[str, str]]:
    """Per entity row of an :class:`~align.entities.EntityTable`: ``{column: value}`` of its
    text literals (first value per column, in the graph's column order), without names."""
    graph = entities.graph
    by_gid: dict[int, dict[str, str]] = {}
    wanted = set(entities.gids.tolist())
    for column in graph.literal_columns():
        if column.kind != "text":
            continue
        data = graph.column(column.node_type, column.predicate, "text")
        gids = graph.global_ids(column.node_type)[data.index]
        name = column.name.rsplit("/", 1)[-1].rsplit("#", 1)[-1].rsplit(":", 1)[-1]
        for gid, value in zip(gids.tolist(), data.values, strict=True):
            if gid in wanted:
                by_gid.setdefault(gid, {}).setdefault(name, value)
    return [by_gid.get(int(g), {}) for g in entities.gids]


def serialize_entity(entities, row: int, attributes: list[dict[str, str]] | None = None,
                     max_words: int | None = MAX_WORDS) -> str:  # fmt: skip
    """Entity ``row`` as ``COL title VAL name COL brand VAL ... COL price VAL ... COL <literal>
    VAL ...``; ``attributes`` is :func:`entity_attributes` (computed when None; pass it
    when serialising many rows)."""
    if attributes is None:
        attributes = entity_attributes(entities)
    name = entities.names[row]
    items = [("title", name)]
    if entities.brands[row]:
        items.append(("brand", " ".join(entities.brands[row])))
    price = entities.prices[row]
    if price == price:
        items.append(("price", f"{price:g}"))
    for column, value in attributes[row].items():
        if _clean(value) and _clean(value) != _clean(name) and column.lower() not in (
            "name", "title", "label", "preflabel"
        ):  # fmt: skip
            items.append((column, value))
    return serialize_pairs(items, max_words)


# ---------------------------------------------------------------------- augmentation
def blocks(text: str) -> list[str]:
    """The ``COL ... VAL ...`` blocks of a serialised text."""
    return [b.strip() for b in _BLOCK.split(text) if b.strip()]


def shuffle_attributes(text: str, rng: np.random.Generator) -> str:
    """The same blocks in a random order (Ditto's attribute shuffle)."""
    parts = blocks(text)
    order = rng.permutation(len(parts))
    return " ".join(parts[i] for i in order)


def delete_span(text: str, rng: np.random.Generator, max_span: int = 4) -> str:
    """One random run of 1..``max_span`` value words removed (never ``COL``/``VAL`` or a
    column name), the rest unchanged (Ditto's span deletion)."""
    words = text.split(" ")
    value_words = [
        i for i, w in enumerate(words)
        if w not in (COL, VAL) and (i == 0 or words[i - 1] != COL)
    ]  # fmt: skip
    if len(value_words) < 2:
        return text
    span = int(rng.integers(1, max_span + 1))
    start = int(rng.integers(0, len(value_words)))
    drop = set(value_words[start : start + span])
    if len(drop) >= len(value_words):
        return text
    return " ".join(w for i, w in enumerate(words) if i not in drop)


AUGMENTATIONS = {"span_del": delete_span, "attr_shuffle": shuffle_attributes}


def augment(text: str, rng: np.random.Generator, ops=("span_del", "attr_shuffle")) -> str:
    """One augmentation of :data:`AUGMENTATIONS` (chosen at random among ``ops``)."""
    op = ops[int(rng.integers(0, len(ops)))]
    return AUGMENTATIONS[op](text, rng)

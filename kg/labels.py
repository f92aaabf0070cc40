"""Entity labels: which literals name an entity, its display name, and finding it by name.

A *name column* is a text literal column whose local name (the part after the last ``_`` of
the column name: ``schema_name`` -> ``name``) is one of :data:`NAME_COLUMNS` or ends with
``name``, ``title`` or ``label``. :data:`NAME_COLUMNS` also gives the preference order when
an entity has several (``name`` before ``title`` before ``label``...).

- :func:`normalise` and :func:`tokens` are the one text normaliser of the project (case and
  accents folded; word tokens of letters and digits in any script); :mod:`align.text` builds
  its mention and model-number views on them.
- :func:`display_name` picks the name shown for an entity.
- :func:`lexical_lookup` finds entities by name without embeddings (token overlap and
  character-trigram similarity over name columns), for ``--name "..."`` and ``/related?name=``.

Not to be confused with :mod:`kg.naming`, which turns IRIs into identifier-safe names for
node types and relations.
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from typing import NamedTuple

import numpy as np

#: Local names of the name-like literal columns, in order of preference.
NAME_COLUMNS = ("name", "title", "label", "preflabel", "altlabel", "alternatename")
#: A word token: a run of letters and digits (any script); ``_`` separates.
WORD = re.compile(r"[^\W_]+")


# ---------------------------------------------------------------------- text
def normalise(text: str) -> str:
    """Case- and accent-folded text (NFKD, combining marks dropped, ``casefold``)."""
    if text.isascii():  # NFKD leaves ASCII as it is and it has no combining marks
        return text.casefold()
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()


def tokens(text: str) -> list[str]:
    """Normalised word tokens (letters and digits, any script): ``"Café-Crème 2"`` ->
    ``["cafe", "creme", "2"]``."""
    return WORD.findall(normalise(text))


# ---------------------------------------------------------------------- name columns
def _local(column: str) -> str:
    return column.rsplit("_", 1)[-1].lower()


def is_name_column(column: str) -> bool:
    """True for a name-like literal column (see the module docstring)."""
    local = _local(column)
    return local in NAME_COLUMNS or local.endswith(("name", "title", "label"))


def name_column_priority(column: str) -> int:
    """The column's rank in :data:`NAME_COLUMNS` (0 = ``name``); other name columns come
    last (``len(NAME_COLUMNS)``)."""
    local = _local(column)
    return NAME_COLUMNS.index(local) if local in NAME_COLUMNS else len(NAME_COLUMNS)


def language_priority(language: str | None, languages: tuple[str, ...] = ("en",)) -> int:
    """0 for a tag starting with one of ``languages``, 1 for no tag, 2 for another tag."""
    lang = (language or "").lower()
    if any(lang.startswith(wanted) for wanted in languages):
        return 0
    return 1 if not language else 2


def display_name(graph, iri: str) -> str | None:
    """The node's name-like literal: the most preferred column (``name``, ``title``,
    ``label``...), within it English first, then untagged, then any language; None when it
    has none."""
    best, rank = None, None
    for lit in graph.literals(iri):
        if lit.kind != "text" or not is_name_column(lit.name):
            continue
        r = (name_column_priority(lit.name), language_priority(lit.language))
        if rank is None or r < rank:
            best, rank = lit.value, r
    return best


# ---------------------------------------------------------------------- lexical lookup
class LexicalMatch(NamedTuple):
    """One :func:`lexical_lookup` answer: the entity, its score in [0, 1], the matched text."""

    iri: str
    score: float
    text: str


def _trigrams(token: str) -> set[str]:
    padded = f" {token} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


class _LexicalIndex:
    """Name-like text literals with an inverted index of their character trigrams."""

    def __init__(self, graph):
        self.gids, self.texts = [], []
        for col in graph.literal_columns():
            if col.kind == "text" and is_name_column(col.name):
                data = graph.column(col.node_type, col.predicate, "text")
                self.gids += graph.global_ids(col.node_type)[data.index].tolist()
                self.texts += data.values
        vocab: dict[str, int] = {}
        tri_ids, rows = [], []
        for row, text in enumerate(self.texts):
            grams = set().union(*map(_trigrams, tokens(text))) if text else set()
            for g in grams:
                tri_ids.append(vocab.setdefault(g, len(vocab)))
                rows.append(row)
        order = np.argsort(np.asarray(tri_ids, np.int64), kind="stable")
        self.rows = np.asarray(rows, np.int64)[order]
        self.ptr = np.searchsorted(np.asarray(tri_ids, np.int64)[order], np.arange(len(vocab) + 1))
        self.vocab, self.literals = vocab, graph.num_literals
        self.types = graph.node_type_id[np.asarray(self.gids, np.int64)] if self.gids else np.zeros(0, np.int32)  # fmt: skip


_LEXICAL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lexical_lookup(graph, name: str, node_type: str | None = None, k: int = 5,
                   shortlist: int = 200) -> list[LexicalMatch]:  # fmt: skip
    """Entities whose name-like literal (columns named ``name``, ``title``, ``label``...)
    best matches ``name``: partial, reordered and misspelt names still match.

    score = 0.6 * token coverage + 0.4 * trigram Dice, in [0, 1]: *token coverage* is the
    mean, over the query's tokens, of the best character-trigram Jaccard with a token of the
    text (1 for an exact token); *trigram Dice* compares the two trigram sets (tokens padded
    with spaces, so word order does not matter). An inverted trigram index picks the
    ``shortlist`` texts sharing most trigrams before exact scoring. One answer per entity:
    ``(iri, score, matched text)``, best first.

    Raises:
        ValueError: bad ``k``, or a name without letters or digits.
        GraphLookupError: unknown ``node_type`` (with the closest names).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"k={k!r}: ask for at least one match (k >= 1)")
    query = tokens(name)
    if not query:
        raise ValueError(f"name={name!r} has no letters or digits to match")
    lex = _LEXICAL.get(graph)
    if lex is None or lex.literals != graph.num_literals:
        lex = _LEXICAL[graph] = _LexicalIndex(graph)
    grams = set().union(*map(_trigrams, query))
    ids = [lex.vocab[g] for g in grams if g in lex.vocab]
    if not ids or not lex.texts:
        return []
    hits = np.bincount(
        np.concatenate([lex.rows[lex.ptr[i] : lex.ptr[i + 1]] for i in ids]), minlength=len(lex.texts)
    )  # fmt: skip
    if node_type is not None:
        hits[lex.types != graph.type_id(node_type)] = 0
    top = np.argsort(-hits, kind="stable")[:shortlist]
    best: dict[int, LexicalMatch] = {}
    query_tokens = [(t, _trigrams(t)) for t in query]
    for row in top[hits[top] > 0].tolist():
        text_tokens = tokens(lex.texts[row])
        text_grams = [_trigrams(t) for t in text_tokens]
        coverage = np.mean([
            max((1.0 if t == u else len(g & h) / len(g | h)
                 for u, h in zip(text_tokens, text_grams, strict=True)), default=0.0)
            for t, g in query_tokens
        ])  # fmt: skip
        all_text = set().union(*text_grams) if text_grams else set()
        dice = 2 * len(grams & all_text) / (len(grams) + len(all_text))
        score = round(float(0.6 * coverage + 0.4 * dice), 4)
        gid = lex.gids[row]
        if gid not in best or score > best[gid].score:
            best[gid] = LexicalMatch(graph.nodes[gid], score, lex.texts[row])
    return sorted(best.values(), key=lambda m: (-m.score, m.iri))[:k]

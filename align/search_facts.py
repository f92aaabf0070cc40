"""What a search query says: checked text, and the graph facts (attribute nodes) it names.

:func:`check_query` refuses an empty query, text without letters or digits and letters of
a script no text encoder here was trained on (a clear :class:`SearchError` each).

:class:`FactMatcher` finds the attribute and category nodes a query names: "red summer
dress for women" -> the ``Red`` colour node, the ``Summer`` season node, the ``Dresses``
article type, the ``Women`` gender node. The attribute nodes are the named nodes of other
types that the products link to, and the nodes above them (``skos:broader`` and any other
edge between attribute nodes, up to ``MAX_DEPTH`` hops): a product *has* a fact when it
links to the node or to a node below it (a "shoes" sub-category covers "Sports Shoes"
products). Names and query words are compared by a key: tokens (:func:`kg.labels.tokens`,
hyphens joined: "T-shirt" = "tshirt"), each singularised by English plural rules
("dresses" -> "dress", "Tshirts" -> "tshirt"), joined without spaces ("off white" =
"off-white"). The query is read left to right, the longest n-gram (up to ``MAX_WORDS``
words) that is some node's key matching first; nodes with the same key (a sub-category and
an article type both named "Watches") form one fact, which a product has through any.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from kg.labels import display_name, tokens

MAX_WORDS = 4
MAX_DEPTH = 3

#: scripts of the ~100 languages of multilingual-e5 (XLM-R's), by the first word of the
#: Unicode character names of their letters
_SCRIPT_NAMES = (
    "LATIN CYRILLIC GREEK ARABIC HEBREW CJK HIRAGANA KATAKANA HANGUL DEVANAGARI BENGALI THAI "
    "GEORGIAN ARMENIAN ETHIOPIC TAMIL TELUGU KANNADA MALAYALAM GUJARATI GURMUKHI ORIYA SINHALA "
    "KHMER LAO MYANMAR TIBETAN SYRIAC THAANA MONGOLIAN FULLWIDTH HALFWIDTH IDEOGRAPHIC "
    "BOPOMOFO MODIFIER"
)
KNOWN_SCRIPTS = frozenset(_SCRIPT_NAMES.split())


class SearchError(ValueError):
    """A query or request the search cannot answer; the message says what to do."""


def scripts(text: str) -> set[str]:
    """The scripts of the letters of ``text`` (``"LATIN"``, ``"CJK"``, ``"CYRILLIC"``...)."""
    out = set()
    for ch in text:
        if unicodedata.category(ch).startswith("L"):
            out.add(unicodedata.name(ch, "UNKNOWN").split(" ")[0].split("-")[0])
    return out


def check_query(text) -> str:
    """``text`` stripped, or :class:`SearchError` for an empty query, one without letters
    or digits, or one with unassigned / private-use characters or an unknown script."""
    if not isinstance(text, str) or not text.strip():
        raise SearchError("empty query: give some words to search for (or --image PHOTO)")
    text = text.strip()
    odd = [ch for ch in text if unicodedata.category(ch) in ("Co", "Cn", "Cs")]
    if odd:
        raise SearchError(
            f"query {text!r} holds characters of no known script ({', '.join(map(ascii, odd[:3]))}:"
            " private-use or unassigned code points); type the query in a written language"
        )
    if not any(ch.isalnum() for ch in text):
        raise SearchError(f"query {text!r} has no letters or digits to search for")
    unknown = sorted(scripts(text) - KNOWN_SCRIPTS)
    if unknown:
        raise SearchError(
            f"query {text!r} is written in a script the text encoders do not know "
            f"({', '.join(unknown)}); use a language of multilingual-e5 (about 100 languages:"
            " Latin, Cyrillic, Greek, Arabic, CJK, Devanagari... scripts)"
        )
    return text


def singular(token: str) -> str:
    """English plural -> singular, by rule (enough to match names and query words)."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith(("sses", "xes", "ches", "shes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def words(text: str) -> list[str]:
    """Query or name words: :func:`kg.labels.tokens` with hyphens joined, singularised."""
    return [singular(t) for t in tokens(text.replace("-", ""))]


@dataclass(frozen=True)
class Fact:
    """A graph fact a query names: the query words, the node(s) and their name and type."""

    words: str
    iris: tuple[str, ...]
    name: str
    node_type: str


class FactMatcher:
    """The attribute nodes of the products of ``product_type`` and the query words that
    name them (module docstring).

    Args:
        graph: the :class:`kg.ProductGraph`.
        product_type: the node type searched.
    """

    def __init__(self, graph, product_type: str):
        self.graph = graph
        ids = graph.global_ids(product_type)
        n = graph.num_nodes
        local = np.full(n, -1, np.int64)
        local[ids] = np.arange(len(ids))
        self.num_products = len(ids)
        is_product = local >= 0
        src, dst = graph.src, graph.dst
        direct = is_product[src] & ~is_product[dst]
        self._prod_src, self._prod_dst = local[src[direct]], dst[direct]
        between = ~is_product[src] & ~is_product[dst]
        self._up_src, self._up_dst = src[between], dst[between]  # attribute -> broader node
        attributes = set(np.unique(self._prod_dst).tolist())
        frontier = set(attributes)
        for _ in range(MAX_DEPTH):
            mask = np.isin(self._up_src, list(frontier))
            frontier = set(self._up_dst[mask].tolist()) - attributes
            attributes |= frontier
        self.keys: dict[str, list[int]] = {}
        self.names: dict[int, str] = {}
        for gid in sorted(attributes):
            name = display_name(graph, graph.nodes[gid])
            key = "".join(words(name)) if name else ""
            if key:
                self.keys.setdefault(key, []).append(gid)
                self.names[gid] = name
        self.max_words = MAX_WORDS

    def match(self, query: str) -> list[Fact]:
        """The facts ``query`` names, in query order (longest n-gram first at each word)."""
        found, toks, i = [], words(query), 0
        while i < len(toks):
            for n in range(min(self.max_words, len(toks) - i), 0, -1):
                key = "".join(toks[i : i + n])
                if key in self.keys:
                    gids = self.keys[key]
                    node_type = self.graph.node_types[self.graph.node_type_id[gids[0]]]
                    found.append(Fact(" ".join(toks[i : i + n]),
                                      tuple(self.graph.nodes[g] for g in gids),
                                      self.names[gids[0]], node_type))  # fmt: skip
                    i += n
                    break
            else:
                i += 1
        unique = {fact.iris: fact for fact in found}
        return list(unique.values())

    def below(self, gids) -> np.ndarray:
        """``gids`` and every attribute node below them (reaching them by edges between
        attribute nodes), global ids."""
        out = set(gids)
        frontier = set(gids)
        for _ in range(MAX_DEPTH):
            frontier = set(self._up_src[np.isin(self._up_dst, list(frontier))].tolist()) - out
            if not frontier:
                break
            out |= frontier
        return np.fromiter(out, np.int64)

    def has(self, fact: Fact) -> np.ndarray:
        """bool [num_products]: the products that have ``fact``."""
        gids = []
        for iri in fact.iris:
            node_type, local = self.graph.node(iri)
            gids.append(int(self.graph.global_ids(node_type)[local]))
        mask = np.zeros(self.num_products, bool)
        mask[self._prod_src[np.isin(self._prod_dst, self.below(gids))]] = True
        return mask

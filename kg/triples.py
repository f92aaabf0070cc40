"""Triples in memory: :class:`RawTriples` (integer arrays and the vocabularies they index)
and :class:`TripleSink`, the one place quads are interned into them.

Below :mod:`kg.graph` (a :class:`kg.ProductGraph` is built from ``RawTriples``) and
:mod:`kg.rdf` (which streams files through a sink); :mod:`kg.workspace` reads a saved
graph back into ``RawTriples``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyoxigraph as ox

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
DEFAULT_IMAGE_PREDICATES = (
    "http://schema.org/image",
    "https://schema.org/image",
    "http://schema.org/thumbnailUrl",
    "http://xmlns.com/foaf/0.1/depiction",
    "http://xmlns.com/foaf/0.1/img",
)


@dataclass
class RawTriples:
    """All triples of a build as integer arrays plus the vocabularies they index.

    ``nodes`` holds IRIs and blank nodes (``_:label``); edges are ``(src, pred, dst)`` node
    / predicate ids; ``type_node``/``type_class`` the ``rdf:type`` pairs; literals are
    ``(lit_node, lit_pred, lit_value, lit_dtype, lit_lang, lit_source)``. A literal whose
    ``datatypes`` entry is ``""`` is an IRI-valued image reference.
    """

    nodes: list[str] = field(default_factory=list)
    predicates: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    datatypes: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    src: array = field(default_factory=lambda: array("q"))
    pred: array = field(default_factory=lambda: array("i"))
    dst: array = field(default_factory=lambda: array("q"))
    type_node: array = field(default_factory=lambda: array("q"))
    type_class: array = field(default_factory=lambda: array("i"))
    lit_node: array = field(default_factory=lambda: array("q"))
    lit_pred: array = field(default_factory=lambda: array("i"))
    lit_dtype: array = field(default_factory=lambda: array("i"))
    lit_lang: array = field(default_factory=lambda: array("i"))
    lit_source: array = field(default_factory=lambda: array("i"))
    lit_value: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    skipped: int = 0


class TripleSink:
    """Streams quads into :class:`RawTriples` (the one place triples are interned)."""

    def __init__(self, image_predicates: Iterable[str] = DEFAULT_IMAGE_PREDICATES):
        self.raw = RawTriples()
        self._node_ids: dict[str, int] = {}
        self._pred_ids: dict[str, int] = {}
        self._class_ids: dict[str, int] = {}
        self._dtype_ids: dict[str, int] = {"": 0}
        self._lang_ids: dict[str, int] = {}  # tag as read -> id (-1: dropped)
        self._languages: dict[str, int] = {}  # valid tag -> id
        self.odd_languages: list[str] = []  # tags fixed or dropped (lenient reading)
        self.raw.datatypes.append("")
        self._image_predicates = set(image_predicates)

    @staticmethod
    def _intern(table: dict[str, int], values: list[str], key: str) -> int:
        ident = table.get(key)
        if ident is None:
            ident = table[key] = len(values)
            values.append(key)
        return ident

    def add_quads(self, quads: Iterable, source: int, scope: str) -> int:
        """Add quads from one source; ``scope`` keeps its blank nodes apart. Returns count."""
        raw, nodes, node_ids = self.raw, self.raw.nodes, self._node_ids
        intern = self._intern
        named, blank, literal = ox.NamedNode, ox.BlankNode, ox.Literal
        src_add, pred_add, dst_add = raw.src.append, raw.pred.append, raw.dst.append
        pred_cache: dict[str, tuple[int, str]] = {}
        lang_ids, dtype_ids = self._lang_ids, self._dtype_ids
        lang_string = intern(dtype_ids, raw.datatypes, RDF_LANG_STRING)
        ln_add, lp_add, lv_add = raw.lit_node.append, raw.lit_pred.append, raw.lit_value.append
        ld_add, ll_add, ls_add = raw.lit_dtype.append, raw.lit_lang.append, raw.lit_source.append
        count = 0
        for quad in quads:
            count += 1
            s = quad.subject
            if type(s) is named:
                s_key = s.value
            elif type(s) is blank:
                s_key = f"_:{scope}{s.value}"
            else:  # RDF-star quoted triple as subject
                raw.skipped += 1
                continue
            sid = node_ids.get(s_key)
            if sid is None:
                sid = node_ids[s_key] = len(nodes)
                nodes.append(s_key)
            p = quad.predicate.value
            cached = pred_cache.get(p)
            if cached is None:
                role = "type" if p == RDF_TYPE else "image" if p in self._image_predicates else ""
                cached = pred_cache[p] = (intern(self._pred_ids, raw.predicates, p), role)
            pid, role = cached
            o = quad.object
            to = type(o)
            if to is literal:
                lang = o.language
                if lang is None:
                    lang_id = -1
                    dt = o.datatype.value
                    dtype_id = dtype_ids.get(dt)
                    if dtype_id is None:
                        dtype_id = intern(dtype_ids, raw.datatypes, dt)
                else:
                    lang_id = lang_ids.get(lang)
                    if lang_id is None:
                        lang_id = lang_ids[lang] = self._language_id(lang)
                    dtype_id = lang_string if lang_id >= 0 else self._plain_string()
                ln_add(sid)
                lp_add(pid)
                lv_add(o.value)
                ld_add(dtype_id)
                ll_add(lang_id)
                ls_add(source)
            elif role == "type" and to is named:
                raw.type_node.append(sid)
                raw.type_class.append(intern(self._class_ids, raw.classes, o.value))
            elif role == "image" and to is named:
                self._add_value(sid, pid, o.value, 0, -1, source)
            elif to is named or to is blank:
                o_key = o.value if to is named else f"_:{scope}{o.value}"
                oid = node_ids.get(o_key)
                if oid is None:
                    oid = node_ids[o_key] = len(nodes)
                    nodes.append(o_key)
                src_add(sid)
                pred_add(pid)
                dst_add(oid)
            else:
                raw.skipped += 1
        return count

    def _language_id(self, tag: str) -> int:
        """Id of a language tag; one that ``lenient`` let through invalid (``en_US``) is
        fixed (``en-us``) or, failing that, dropped (-1: the literal becomes a plain string)."""
        for candidate in (tag, tag.replace("_", "-")):
            try:
                ox.Literal("", language=candidate)
            except ValueError:
                continue
            if candidate != tag:
                self.odd_languages.append(f"{tag!r} -> {candidate!r}")
            return self._intern(self._languages, self.raw.languages, candidate)
        self.odd_languages.append(f"{tag!r} dropped")
        return -1

    def _plain_string(self) -> int:
        return self._intern(self._dtype_ids, self.raw.datatypes, XSD_STRING)

    def _add_value(self, sid, pid, value, dtype_id, lang_id, source) -> None:
        raw = self.raw
        raw.lit_node.append(sid)
        raw.lit_pred.append(pid)
        raw.lit_value.append(value)
        raw.lit_dtype.append(dtype_id)
        raw.lit_lang.append(lang_id)
        raw.lit_source.append(source)

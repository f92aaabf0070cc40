"""One chunk of N-Triples / N-Quads lines -> local integer ids, vectorised.

:func:`parse_chunk` turns a block of whole lines into a :class:`Chunk`: the chunk's own
vocabularies (nodes, predicates, classes, literal kinds, each in order of first
appearance) and integer arrays indexing them, with the same meaning as
:class:`kg.triples.RawTriples`. :mod:`kg.nt_parallel` runs it in worker processes and
merges the chunks into a :class:`kg.triples.TripleSink`.

**Fast path** (the lines serialisers write: ``S P O .`` or ``S P O G .``, single spaces,
``\\n`` or ``\\r\\n`` line ends, comment and blank lines): the term boundaries of every line
come from numpy searches over the positions of spaces, ``>`` and ``"`` bytes; the terms are
gathered into one buffer, decoded once and split once (C loops), and interned with
``dict.fromkeys`` and ``map`` (no Python bytecode per triple). What the fast path does not
check itself it hands to pyoxigraph, once per *distinct* term: every distinct IRI and blank
node label, every distinct literal suffix (``@lang``, ``^^<datatype>``) and every literal
with an escape or a quote is re-parsed from a small synthetic N-Triples document, and the
values pyoxigraph reads must equal the tokens, so the result is the one pyoxigraph gives
(IRI validation, lower-cased language tags, unescaping).

**Slow path**: a chunk with any other line (tabs, a comment after a triple, RDF-star, a
syntax error...) is parsed by pyoxigraph through a :class:`~kg.triples.TripleSink`; its
syntax error comes back with the line relative to the chunk.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from itertools import filterfalse
from operator import attrgetter, itemgetter, methodcaller

import numpy as np
import pyoxigraph as ox

from .triples import RDF_TYPE, TripleSink

#: pyoxigraph refuses a token (a literal, an IRI) longer than this with a MemoryError.
MAX_TOKEN_BYTES = 16 << 20
_SPACE, _GT, _QUOTE, _LT, _USCORE, _COLON = 32, 62, 34, 60, 95, 58


def _empty() -> np.ndarray:
    return np.zeros(0, np.int64)


@dataclass
class Chunk:
    """A chunk's triples with chunk-local ids (see :class:`kg.triples.RawTriples`).

    ``lit_kinds`` lists ``(datatype IRI, language tag as read or None)`` (the datatype of a
    tagged literal is ``rdf:langString``); ``("", None)`` is an IRI-valued image reference. ``error`` is ``(line in chunk, column, message, kind)``
    with kind ``"syntax"`` or ``"token"`` (a term over :data:`MAX_TOKEN_BYTES`).
    """

    nodes: list[str] = field(default_factory=list)
    predicates: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    lit_kinds: list[tuple[str, str | None]] = field(default_factory=list)
    src: np.ndarray = field(default_factory=_empty)
    pred: np.ndarray = field(default_factory=_empty)
    dst: np.ndarray = field(default_factory=_empty)
    type_node: np.ndarray = field(default_factory=_empty)
    type_class: np.ndarray = field(default_factory=_empty)
    lit_node: np.ndarray = field(default_factory=_empty)
    lit_pred: np.ndarray = field(default_factory=_empty)
    lit_kind: np.ndarray = field(default_factory=_empty)
    lit_value: list[str] = field(default_factory=list)
    count: int = 0
    skipped: int = 0
    lines: int = 0
    odd_languages: list[str] = field(default_factory=list)
    error: tuple | None = None
    fast: bool = True


def parse_chunk(
    data: bytes, image_predicates, scope: str, lenient: bool = False, quads: bool = False
) -> Chunk:
    """Parse whole lines ``data`` (fast path, else pyoxigraph); never raises on bad input."""
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    too_long = _first_long_line(data)
    if too_long is not None:
        return Chunk(lines=lines, error=(too_long, None, "", "token"), fast=False)
    chunk = None
    try:
        chunk = _fast(data, frozenset(image_predicates), scope, lenient, quads)
    except _NotCanonical:
        chunk = None
    if chunk is None:
        chunk = _slow(data, image_predicates, scope, lenient, quads)
    chunk.lines = lines
    return chunk


class _NotCanonical(Exception):
    """A line the fast path does not take: the chunk goes to pyoxigraph."""


def _first_long_line(data: bytes) -> int | None:
    """1-based line (in ``data``) of the first line longer than :data:`MAX_TOKEN_BYTES`."""
    if len(data) <= MAX_TOKEN_BYTES:
        return None
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    bounds = np.concatenate([[-1], ends, [len(data)]])
    long = np.flatnonzero(np.diff(bounds) > MAX_TOKEN_BYTES)
    return int(long[0]) + 1 if len(long) else None


def _require(condition) -> None:
    if not np.all(condition):
        raise _NotCanonical


def _next(positions: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each ``at``, the first position >= it (len(buffer) sentinel at the end)."""
    return positions[np.searchsorted(positions, at)]


def _fast(data: bytes, image_predicates, scope, lenient, quads) -> Chunk | None:
    buf = np.frombuffer(data, np.uint8)
    end = len(buf)
    sentinel = [end]
    newlines = np.flatnonzero(buf == 10)
    ends = np.concatenate([newlines, sentinel]) if end and buf[-1] != 10 else newlines
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13))
    first = np.where(ends > starts, buf[np.minimum(starts, max(end - 1, 0))], 0)
    content = (ends > starts) & (first != ord("#"))
    ls, le = starts[content], ends[content]
    n = len(ls)
    if n == 0:
        return Chunk()
    _require(le - ls >= 7)
    _require((buf[le - 1] == ord(".")) & (buf[le - 2] == _SPACE))
    o_end = le - 2
    spaces = np.concatenate([np.flatnonzero(buf == _SPACE), sentinel])
    gts = np.concatenate([np.flatnonzero(buf == _GT), sentinel])
    s_end = _next(spaces, ls)
    p0 = s_end + 1
    _require(p0 < o_end)
    _require(buf[p0] == _LT)
    p_end = _next(spaces, p0)
    o0 = p_end + 1
    _require(o0 < o_end)
    _require(_next(gts, p0) == p_end - 1)
    s_iri = buf[ls] == _LT
    _require(s_iri | ((buf[ls] == _USCORE) & (buf[ls + 1] == _COLON)))
    _require(~s_iri | (_next(gts, ls) == s_end - 1))
    g0 = None
    if quads:
        last = spaces[np.searchsorted(spaces, o_end) - 1]
        cand = (last > o0) & (
            ((buf[last + 1] == _LT) & (_next(gts, last + 1) == o_end - 1))
            | ((buf[last + 1] == _USCORE) & (buf[np.minimum(last + 2, end - 1)] == _COLON))
        )
        g0, g_end = np.where(cand, last + 1, o_end), o_end.copy()
        _require(~cand | (last > o0 + 1))
        o_end = np.where(cand, last, o_end)
    ob = buf[o0]
    o_iri, o_blank, o_lit = ob == _LT, ob == _USCORE, ob == _QUOTE
    _require(o_iri | o_lit | (o_blank & (buf[o0 + 1] == _COLON)))
    _require(~o_iri | (_next(gts, o0) == o_end - 1))
    quotes = np.concatenate([np.flatnonzero(buf == _QUOTE), sentinel])
    q = np.where(o_lit, quotes[np.searchsorted(quotes, o_end) - 1], o_end)
    _require(~o_lit | (q > o0))
    special_pos = np.flatnonzero((buf == _QUOTE) | (buf == 92) | (buf == 13))
    special = o_lit & (np.searchsorted(special_pos, q) > np.searchsorted(special_pos, o0 + 1))
    # Separators at term ends; a literal's quotes become separators too (an empty token
    # before its body). Tokens per line: S, <P>, O, ".", plus "" and suffix for a literal,
    # plus G for a quad: blank and comment lines give one token each.
    marked = buf.copy()
    has_graph = np.zeros(n, bool) if g0 is None else g0 < g_end
    for at in (s_end, p_end, o_end, o0[o_lit], q[o_lit], g_end[has_graph] if quads else []):
        marked[at] = 10
    try:
        tokens = marked.tobytes().decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise _NotCanonical from None
    per_line = np.ones(len(starts), np.int64)
    per_line[content] = 4 + 2 * o_lit + has_graph
    offset = (np.cumsum(per_line) - per_line)[content]
    tokens = np.array(tokens, dtype=object)
    where = {"subject": offset, "object": offset + 2 + o_lit, "suffix": offset + 4}
    graphs = tokens[(offset + 3 + 2 * o_lit)[has_graph]].tolist()
    return _assemble(
        n, tokens, where, graphs, o_iri, o_blank, o_lit, special, image_predicates, scope,
        lenient,
    )  # fmt: skip


def _intern(values) -> tuple[list[str], np.ndarray]:
    """Distinct values in order of first appearance and the id of each value (int64)."""
    table = dict.fromkeys(values)
    unique = list(table)
    table.update(zip(unique, range(len(unique)), strict=True))
    return unique, np.fromiter(map(table.__getitem__, values), np.int64, len(values))


def _intern_ints(values: np.ndarray) -> tuple[list[int], np.ndarray]:
    """:func:`_intern` for integers, in numpy."""
    unique, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return unique[order].tolist(), rank[inverse.reshape(-1)]


def _synthetic(lines: list[str], lenient: bool) -> list:
    """pyoxigraph's reading of ``lines`` (one triple each), or :class:`_NotCanonical`."""
    if not lines:
        return []
    doc = ("\n".join(lines) + "\n").encode("utf-8")
    try:
        parsed = list(ox.parse(doc, ox.RdfFormat.N_TRIPLES, lenient=lenient))
    except (SyntaxError, ValueError, MemoryError):
        raise _NotCanonical from None
    if len(parsed) != len(lines):
        raise _NotCanonical
    return parsed


#: Tokens this process has already checked (per ``lenient``), bounded.
_CHECKED: dict[bool, set[str]] = {False: set(), True: set()}
_CHECKED_MAX = 1 << 20


def _check_terms(raw_terms: list[str], lenient: bool) -> None:
    """Every distinct ``<iri>`` / ``_:label`` token reads back as exactly itself."""
    checked = _CHECKED[lenient]
    raw_terms = list(filterfalse(checked.__contains__, raw_terms))
    if len(checked) + len(raw_terms) > _CHECKED_MAX:
        checked.clear()
    iris = [t for t in raw_terms if t[:1] == "<"]
    blanks = [t for t in raw_terms if t[:1] != "<"]
    got = _synthetic([f"{t} <a:a> <a:a> ." for t in iris], lenient)
    if list(map(attrgetter("subject.value"), got)) != [t[1:-1] for t in iris]:
        raise _NotCanonical
    got = _synthetic([f"{t} <a:a> <a:a> ." for t in blanks], lenient)
    if list(map(attrgetter("subject.value"), got)) != [t[2:] for t in blanks]:
        raise _NotCanonical
    checked.update(raw_terms)


def _literal_kind(obj) -> tuple[str, str | None]:
    return obj.datatype.value, obj.language


_OBJECT, _VALUE = attrgetter("object"), attrgetter("value")
_DATATYPE, _LANGUAGE = attrgetter("datatype.value"), attrgetter("language")


def _assemble(
    n, tokens, where, graphs, o_iri, o_blank, o_lit, special, image_predicates, scope, lenient,
) -> Chunk:  # fmt: skip
    """``tokens`` (object array) indexed by ``where[subject|object|suffix]`` per triple."""
    preds, pred_id = _intern(tokens[where["subject"] + 1].tolist())
    _check_terms(preds + list(dict.fromkeys(graphs)), lenient)
    preds = [p[1:-1] for p in preds]
    role = np.array(
        [1 if p == RDF_TYPE else 2 if p in image_predicates else 0 for p in preds], np.int8
    )[pred_id]
    is_type = (role == 1) & o_iri
    is_image = (role == 2) & o_iri
    is_edge = (o_iri | o_blank) & ~is_type & ~is_image
    # nodes, first appearance over subject, object, subject, object... (objects of edges)
    sequence = np.empty(2 * n, dtype=np.int64)
    sequence[0::2], sequence[1::2] = where["subject"], where["object"]
    keep = np.ones(2 * n, dtype=bool)
    keep[1::2] = is_edge
    raw_nodes, node_seq = _intern(tokens[sequence[keep]].tolist())
    _check_terms(raw_nodes, lenient)
    prefix = "_:" + scope
    nodes = [t[1:-1] if t[:1] == "<" else prefix + t[2:] for t in raw_nodes]
    position = np.cumsum(keep) - 1
    subject_id = node_seq[position[0::2]]
    chunk = Chunk(nodes=nodes, predicates=preds, count=n)
    chunk.src = subject_id[is_edge]
    chunk.pred = pred_id[is_edge]
    chunk.dst = node_seq[position[1::2][is_edge]]
    objects = tokens[where["object"]]
    classes, class_id = _intern(objects[is_type].tolist())
    _check_terms(classes, lenient)
    chunk.classes = [c[1:-1] for c in classes]
    chunk.type_node, chunk.type_class = subject_id[is_type], class_id
    suffixes = np.where(o_lit, where["suffix"], 0)
    _literals(
        chunk, objects, tokens, suffixes, o_lit, is_image, special, subject_id, pred_id, lenient
    )
    return chunk


def _literals(
    chunk, values, tokens, suffixes, o_lit, is_image, special, subject_id, pred_id, lenient
):  # fmt: skip
    """Literal rows (literals and IRI image references) in input order; ``values`` (the
    object tokens, an object array) is changed in place."""
    rows = o_lit | is_image
    objects = values.copy()
    unescaped = _unescape(values[special].tolist())
    if unescaped is not None:  # escapes Python reads exactly as pyoxigraph does
        values[special] = unescaped
        special = np.zeros_like(special)
    plain_suffixes = tokens[suffixes[o_lit & ~special]].tolist()
    unique, suffix_id = _intern(plain_suffixes)
    kinds = [_literal_kind(t.object) for t in _synthetic([f'<a:a> <a:a> ""{s} .' for s in unique], lenient)]  # fmt: skip
    image_refs = objects[is_image].tolist()
    _check_terms(list(dict.fromkeys(image_refs)), lenient)
    values[is_image] = [t[1:-1] for t in image_refs]
    kind = np.full(len(objects), -1, np.int64)
    kind[o_lit & ~special] = suffix_id
    kind[is_image] = len(kinds)
    kinds.append(("", None))
    escaped = zip(objects[special].tolist(), tokens[suffixes[special]].tolist(), strict=True)
    parsed = list(
        map(_OBJECT, _synthetic([f'<a:a> <a:a> "{v}"{s} .' for v, s in escaped], lenient))
    )
    if parsed:
        values[special] = list(map(_VALUE, parsed))
        table = {k: i for i, k in enumerate(kinds)}
        pairs, pair_id = _intern(
            list(zip(map(_DATATYPE, parsed), map(_LANGUAGE, parsed), strict=True))
        )
        kind[special] = np.array([table.setdefault(p, len(table)) for p in pairs])[pair_id]
        kinds = list(table)
    # kinds must come in first-appearance order, as the sink interns datatypes
    order, kind_rows = _intern_ints(kind[rows])
    chunk.lit_kinds = [kinds[k] for k in order]
    chunk.lit_kind = kind_rows
    chunk.lit_node, chunk.lit_pred = subject_id[rows], pred_id[rows]
    chunk.lit_value = values[rows].tolist()


#: A literal body whose escapes are N-Triples' own (ECHAR, UCHAR) and no raw quote.
_BODY = re.compile(r'(?:[^"\\\r\n]|\\[tbnrf"\'\\]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*')
_TO_ASCII = methodcaller("encode", "ascii", "backslashreplace")


def _unescape(bodies: list[str]) -> list[str] | None:
    """The bodies with their escapes read (``unicode_escape`` means the same as N-Triples'
    ECHAR / UCHAR), or None when one is not plain (a raw quote, a surrogate, a code point
    past U+10FFFF...): pyoxigraph reads those."""
    if not bodies:
        return []
    if not all(map(_BODY.fullmatch, bodies)):
        return None
    try:
        decoded = list(
            map(itemgetter(0), map(codecs.unicode_escape_decode, map(_TO_ASCII, bodies)))
        )
        "".join(decoded).encode("utf-8")  # a lone surrogate (\uD800) is refused here
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None
    return decoded


def _slow(data: bytes, image_predicates, scope, lenient, quads) -> Chunk:
    """pyoxigraph through a :class:`TripleSink`: any valid input, located errors."""
    sink = TripleSink(image_predicates)
    fmt = ox.RdfFormat.N_QUADS if quads else ox.RdfFormat.N_TRIPLES
    try:
        count = sink.add_quads(ox.parse(data, fmt, lenient=lenient), 0, scope=scope)
    except SyntaxError as err:
        return Chunk(error=(err.lineno, err.offset, err.msg, "syntax"), fast=False)
    raw = sink.raw
    lit_dtype = np.asarray(raw.lit_dtype, np.int64)
    lit_lang = np.asarray(raw.lit_lang, np.int64)
    pairs = [
        (raw.datatypes[d], raw.languages[g] if g >= 0 else None)
        for d, g in zip(lit_dtype.tolist(), lit_lang.tolist(), strict=True)
    ]
    kinds, kind_id = _intern(pairs)
    return Chunk(
        nodes=raw.nodes, predicates=raw.predicates, classes=raw.classes, lit_kinds=kinds,
        src=np.asarray(raw.src, np.int64), pred=np.asarray(raw.pred, np.int64),
        dst=np.asarray(raw.dst, np.int64), type_node=np.asarray(raw.type_node, np.int64),
        type_class=np.asarray(raw.type_class, np.int64),
        lit_node=np.asarray(raw.lit_node, np.int64), lit_pred=np.asarray(raw.lit_pred, np.int64),
        lit_kind=kind_id, lit_value=raw.lit_value, count=count, skipped=raw.skipped,
        odd_languages=sink.odd_languages, fast=False,
    )  # fmt: skip

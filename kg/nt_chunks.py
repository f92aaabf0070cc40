"""One chunk of N-Triples / N-Quads lines -> local integer ids, vectorised.

:func:`parse_chunk` turns a block of whole lines into a :class:`Chunk`: the chunk's own
vocabularies (nodes, predicates, classes, literal kinds, each in order of first
appearance) and integer arrays indexing them, with the same meaning as
:class:`kg.triples.RawTriples`. :mod:`kg.nt_parallel` runs it in worker processes and
merges the chunks into a :class:`kg.triples.TripleSink`.

**Fast path** (the lines serialisers write: ``S P O .`` or ``S P O G .``, single spaces,
``\n`` or ``\r\n`` line ends, comment and blank lines): the term boundaries of every line
come from numpy searches over the positions of spaces and ``"`` bytes; the terms are
interned on 64-bit hashes of their bytes (:mod:`kg.nt_hash`, checked exactly: a collision
sends the chunk to the slow path), so Python strings are made only for distinct terms and
for literal values (one gather, one decode and one split for all of them), with no Python
bytecode per triple. What the fast path does
not check itself it hands to pyoxigraph (:mod:`kg.nt_check`), once per *distinct* term:
every distinct IRI and blank node label, every distinct literal suffix (``@lang``,
``^^<datatype>``) and every literal with an escape Python cannot read as pyoxigraph does,
so the result is the one pyoxigraph gives (IRI validation, lower-cased language tags,
unescaping).

**Slow path**: a chunk with any other line (tabs, a comment after a triple, RDF-star, a
syntax error...), a term over :data:`kg.nt_hash.LONGEST` bytes or a hash collision is parsed by pyoxigraph through a :class:`~kg.triples.TripleSink`; its
syntax error comes back with the line relative to the chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import pyoxigraph as ox

from .nt_check import NotCanonical, check_terms, literal_kinds, synthetic, unescape
from .nt_hash import PADDING, decode_slices, decode_spans, first_order, group_slices, padded
from .triples import RDF_TYPE, TripleSink

#: pyoxigraph refuses a token (a literal, an IRI) longer than this with a MemoryError.
MAX_TOKEN_BYTES = 16 << 20
_SPACE, _GT, _QUOTE, _LT, _USCORE, _COLON = 32, 62, 34, 60, 95, 58
_INNER = itemgetter(slice(1, -1))


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

    def __getstate__(self) -> dict:
        """Pickled (worker -> parent) with each list of strings that holds no newline as
        one newline-joined string: one object to copy, not tens of thousands (a chunk's
        transfer costs ~2x less on both sides)."""
        state = dict(self.__dict__)
        for name in _JOINED:
            values = state[name]
            joined = "\n".join(values)
            if values and joined.count("\n") == len(values) - 1:
                state[name] = (joined,)  # a tuple: joined; a list: as it was
        return state

    def __setstate__(self, state: dict) -> None:
        for name in _JOINED:
            if isinstance(state[name], tuple):
                state[name] = state[name][0].split("\n")
        self.__dict__.update(state)


_JOINED = ("nodes", "lit_value")


def parse_chunk(
    data: bytes,
    image_predicates,
    scope: str,
    lenient: bool = False,
    quads: bool = False,
    hash_bits: int = 64,
) -> Chunk:
    """Parse whole lines ``data`` (fast path, else pyoxigraph); never raises on bad input.

    ``hash_bits`` narrows the term hashes (tests force collisions with it: a collision
    sends the chunk to pyoxigraph)."""
    buf = padded(data)
    newlines = np.flatnonzero(buf[: len(data)] == 10)
    lines = len(newlines) + (1 if data and data[-1] != 10 else 0)
    too_long = _first_long_line(newlines, len(data))
    if too_long is not None:
        return Chunk(lines=lines, error=(too_long, None, "", "token"), fast=False)
    chunk = None
    try:
        layout = _layout(buf, newlines, quads)
        chunk = Chunk() if layout is None else _assemble(layout, frozenset(image_predicates), scope, lenient, hash_bits)  # fmt: skip
    except NotCanonical:
        chunk = None
    if chunk is None:
        chunk = _slow(data, image_predicates, scope, lenient, quads)
    chunk.lines = lines
    return chunk


def _first_long_line(newlines: np.ndarray, size: int) -> int | None:
    """1-based line of the first line longer than :data:`MAX_TOKEN_BYTES` (``newlines``:
    the positions of the chunk's ``\n`` bytes, ``size``: its length)."""
    if size <= MAX_TOKEN_BYTES:
        return None
    bounds = np.concatenate([[-1], newlines, [size]])
    long = np.flatnonzero(np.diff(bounds) > MAX_TOKEN_BYTES)
    return int(long[0]) + 1 if len(long) else None


def _require(condition) -> None:
    if not np.all(condition):
        raise NotCanonical


@dataclass
class _Layout:
    """Byte offsets of each triple line's terms (int64, shape ``(n,)``; ends exclusive):
    subject ``[s0, s_end)``, predicate ``[p0, p_end)``, object ``[o0, o_end)`` (a
    literal's body is ``[o0 + 1, q)``, its suffix ``[q + 1, o_end)``), graph ``[g0, g_end)``
    where ``has_graph``; ``special``: a literal with a quote, backslash or CR in its body.
    ``newlines``: the positions of the chunk's ``\n`` bytes."""

    buf: np.ndarray  # the data plus zero padding (kg.nt_hash.padded)
    newlines: np.ndarray
    s0: np.ndarray
    s_end: np.ndarray
    p0: np.ndarray
    p_end: np.ndarray
    o0: np.ndarray
    o_end: np.ndarray
    q: np.ndarray
    g0: np.ndarray
    g_end: np.ndarray
    has_graph: np.ndarray
    o_iri: np.ndarray
    o_blank: np.ndarray
    o_lit: np.ndarray
    special: np.ndarray


def _layout(buf: np.ndarray, newlines: np.ndarray, quads: bool) -> _Layout | None:
    """Term offsets of canonical lines (``S P O .`` / ``S P O G .``, single spaces, comment
    and blank lines) by numpy searches; None without triples; else :class:`NotCanonical`.

    Only the shape is checked here: every IRI and blank node token goes to pyoxigraph
    (:func:`kg.nt_check.check_terms`), which refuses one that is not exactly one term, and
    every byte of a triple line is decoded as part of a term or a literal (so is a comment
    line here): the fast path takes valid UTF-8 only."""
    end = len(buf) - PADDING
    body, sentinel = buf[:end], [end]
    ends = np.concatenate([newlines, sentinel]) if end and buf[end - 1] != 10 else newlines
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13))
    content = (ends > starts) & (buf[starts] != ord("#"))
    comments = ~content & (ends > starts)
    if comments.any():  # the rest is decoded term by term; pyoxigraph judges bad UTF-8
        try:
            decode_slices(buf, starts[comments], (ends - starts)[comments])
        except UnicodeDecodeError:
            raise NotCanonical from None
    ls, le = starts[content], ends[content]
    if len(ls) == 0:
        return None
    _require(le - ls >= 7)
    _require((buf[le - 1] == ord(".")) & (buf[le - 2] == _SPACE))
    o_end = le - 2
    spaces = np.concatenate([np.flatnonzero(body == _SPACE), sentinel, sentinel])
    at = np.searchsorted(spaces, ls)
    s_end, p_end = spaces[at], spaces[at + 1]  # the first two spaces of each line
    p0, o0 = s_end + 1, p_end + 1
    _require(o0 < o_end)
    _require((buf[p0] == _LT) & (buf[p_end - 1] == _GT))
    s_iri = buf[ls] == _LT
    _require(np.where(s_iri, buf[s_end - 1] == _GT, (buf[ls] == _USCORE) & (buf[ls + 1] == _COLON)))  # fmt: skip
    g0 = g_end = o_end
    if quads:  # a last token <...> or _:... after the object is the graph
        last = spaces[np.searchsorted(spaces, o_end) - 1]
        after = buf[last + 1]
        cand = (last > o0 + 1) & (
            ((after == _LT) & (buf[o_end - 1] == _GT))
            | ((after == _USCORE) & (buf[last + 2] == _COLON))
        )
        g0, o_end = np.where(cand, last + 1, o_end), np.where(cand, last, o_end)
    ob = buf[o0]
    o_iri, o_blank, o_lit = ob == _LT, ob == _USCORE, ob == _QUOTE
    _require(np.where(o_iri, buf[o_end - 1] == _GT, o_lit | (o_blank & (buf[o0 + 1] == _COLON))))  # fmt: skip
    quotes = np.concatenate([np.flatnonzero(body == _QUOTE), sentinel])
    q = np.where(o_lit, quotes[np.searchsorted(quotes, o_end) - 1], o_end)
    _require(~o_lit | (q > o0))
    inner = quotes[np.searchsorted(quotes, o0 + 1)] < q  # a quote inside the body
    escapes = np.concatenate([np.flatnonzero((body == 92) | (body == 13)), sentinel])
    special = o_lit & (inner | (escapes[np.searchsorted(escapes, o0 + 1)] < q))
    return _Layout(
        buf, newlines, ls, s_end, p0, p_end, o0, o_end, q, g0, g_end, g0 < g_end, o_iri,
        o_blank, o_lit, special,
    )  # fmt: skip


def _intern(values) -> tuple[list, np.ndarray]:
    """Distinct values in order of first appearance and the id of each value (int64)."""
    table = dict.fromkeys(values)
    unique = list(table)
    table.update(zip(unique, range(len(unique)), strict=True))
    return unique, np.fromiter(map(table.__getitem__, values), np.int64, len(values))


def _assemble(lay: _Layout, image_predicates, scope, lenient, bits) -> Chunk | None:
    """The chunk from its term offsets, interned on byte hashes (None on a collision):
    Python strings are made for distinct terms and literal values only."""
    n = len(lay.s0)
    obj0 = np.where(lay.o_lit, lay.q + 1, lay.o0)  # a literal's suffix stands for it
    has_graph = lay.has_graph
    starts = np.concatenate([lay.s0, lay.p0, obj0, lay.g0[has_graph]])
    lengths = np.concatenate(
        [lay.s_end - lay.s0, lay.p_end - lay.p0, lay.o_end - obj0, (lay.g_end - lay.g0)[has_graph]]
    )
    grouped = group_slices(lay.buf, starts, lengths, bits)
    if grouped is None:
        return None
    group, leader = grouped
    groups = len(leader)
    try:
        tokens = np.array(decode_slices(lay.buf, starts[leader], lengths[leader]), object)
    except UnicodeDecodeError:
        raise NotCanonical from None
    g_subject, g_pred, g_object = group[:n], group[n : 2 * n], group[2 * n : 3 * n]
    is_term = np.zeros(groups, bool)  # what is no literal suffix
    for used in (g_subject, g_pred, g_object[~lay.o_lit], group[3 * n :]):
        is_term[used] = True
    check_terms(tokens[is_term].tolist(), lenient)
    pred_groups, pred_id = first_order(g_pred, groups)
    preds = [p[1:-1] for p in tokens[pred_groups].tolist()]
    role = np.array(
        [1 if p == RDF_TYPE else 2 if p in image_predicates else 0 for p in preds], np.int8
    )[pred_id]
    is_type = (role == 1) & lay.o_iri
    is_image = (role == 2) & lay.o_iri
    is_edge = (lay.o_iri | lay.o_blank) & ~is_type & ~is_image
    # nodes, first appearance over subject, object, subject, object... (objects of edges)
    sequence = np.empty(2 * n, dtype=np.int64)
    sequence[0::2], sequence[1::2] = g_subject, g_object
    keep = np.ones(2 * n, dtype=bool)
    keep[1::2] = is_edge
    node_groups, node_seq = first_order(sequence[keep], groups)
    prefix = "_:" + scope
    raw_nodes = tokens[node_groups].tolist()
    if (lay.buf[starts[leader[node_groups]]] == _LT).all():  # IRIs only
        nodes = list(map(_INNER, raw_nodes))
    else:
        nodes = [t[1:-1] if t[:1] == "<" else prefix + t[2:] for t in raw_nodes]
    if len(set(nodes)) < len(nodes):  # lenient: an IRI that reads as a scoped blank node
        nodes, distinct = _intern(nodes)
        node_seq = distinct[node_seq]
    position = np.cumsum(keep) - 1
    subject_id = node_seq[position[0::2]]
    chunk = Chunk(nodes=nodes, predicates=preds, count=n)
    chunk.src = subject_id[is_edge]
    chunk.pred = pred_id[is_edge]
    chunk.dst = node_seq[position[1::2][is_edge]]
    class_groups, chunk.type_class = first_order(g_object[is_type], groups)
    chunk.classes = [c[1:-1] for c in tokens[class_groups].tolist()]
    chunk.type_node = subject_id[is_type]
    _literals(chunk, lay, tokens, g_object, is_image, subject_id, pred_id, lenient)
    return chunk


def _bodies(lay: _Layout) -> list[str]:
    """The literal bodies, undecoded escapes kept (one mask, one decode, one split)."""
    body0 = lay.o0[lay.o_lit] + 1
    try:
        return decode_spans(lay.buf, body0, lay.q[lay.o_lit] - body0)
    except UnicodeDecodeError:
        raise NotCanonical from None


def _literals(chunk, lay, tokens, g_object, is_image, subject_id, pred_id, lenient) -> None:
    """Literal rows (literals and IRI image references) in input order."""
    o_lit, special = lay.o_lit, lay.special
    values = np.empty(len(o_lit), object)
    values[o_lit] = _bodies(lay)
    unescaped = unescape(values[special].tolist())
    if unescaped is not None:  # escapes Python reads exactly as pyoxigraph does
        values[special] = unescaped
        special = np.zeros_like(special)
    plain = o_lit & ~special
    suffix_groups, suffix_id = first_order(g_object[plain], len(tokens))
    kinds = literal_kinds(tokens[suffix_groups].tolist(), lenient)
    image_groups, image_id = first_order(g_object[is_image], len(tokens))
    values[is_image] = np.array([t[1:-1] for t in tokens[image_groups].tolist()], object)[image_id]  # fmt: skip
    kind = np.full(len(o_lit), -1, np.int64)
    kind[plain] = suffix_id
    kind[is_image] = len(kinds)
    kinds.append(("", None))
    if special.any():
        escaped = zip(values[special].tolist(), tokens[g_object[special]].tolist(), strict=True)
        parsed = [t.object for t in synthetic([f'<a:a> <a:a> "{v}"{s} .' for v, s in escaped], lenient)]  # fmt: skip
        values[special] = np.array([o.value for o in parsed], object)
        table = {k: i for i, k in enumerate(kinds)}
        pairs, pair_id = _intern([(o.datatype.value, o.language) for o in parsed])
        kind[special] = np.array([table.setdefault(p, len(table)) for p in pairs])[pair_id]
        kinds = list(table)
    rows = o_lit | is_image
    # kinds must come in first-appearance order, as the sink interns datatypes
    order, chunk.lit_kind = first_order(kind[rows], len(kinds))
    chunk.lit_kinds = [kinds[k] for k in order.tolist()]
    chunk.lit_node, chunk.lit_pred = subject_id[rows], pred_id[rows]
    chunk.lit_value = values[rows].tolist()


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

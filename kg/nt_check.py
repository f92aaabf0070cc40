"""pyoxigraph's reading of the distinct terms a chunk's fast path found (:mod:`kg.nt_chunks`).

The fast path decides nothing about validity itself: each distinct IRI / blank node token,
each distinct literal suffix and each literal with an escape is handed to pyoxigraph in a
small synthetic document, so the graph is the one pyoxigraph gives (IRI validation,
lower-cased language tags, unescaping). What pyoxigraph refuses, or reads differently from
the token, raises :class:`NotCanonical` and the chunk is parsed by pyoxigraph directly.
"""

from __future__ import annotations

import codecs
import re
from itertools import filterfalse, repeat

import pyoxigraph as ox


class NotCanonical(Exception):
    """A line the fast path does not take: the chunk goes to pyoxigraph."""


def synthetic(lines: list[str], lenient: bool) -> list:
    """pyoxigraph's reading of ``lines`` (one triple each), or :class:`NotCanonical`."""
    if not lines:
        return []
    doc = ("\n".join(lines) + "\n").encode("utf-8")
    try:
        parsed = list(ox.parse(doc, ox.RdfFormat.N_TRIPLES, lenient=lenient))
    except (SyntaxError, ValueError, MemoryError):
        raise NotCanonical from None
    if len(parsed) != len(lines):
        raise NotCanonical
    return parsed


#: Tokens this process has already checked (per ``lenient``), bounded.
_CHECKED: dict[bool, set[str]] = {False: set(), True: set()}
_CHECKED_MAX = 1 << 20


def check_terms(raw_terms: list[str], lenient: bool) -> None:
    """Every distinct ``<iri>`` / ``_:label`` token reads back as exactly itself.

    The tokens go three to a line into an N-Quads document (subject, object, graph name);
    pyoxigraph parses it and serialises what it read: the document must come back byte for
    byte (a refused IRI, an escape, a token that is not one term all change it).
    """
    checked = _CHECKED[lenient]
    terms = list(filterfalse(checked.__contains__, raw_terms))
    if not terms:
        return
    if len(checked) + len(terms) > _CHECKED_MAX:
        checked.clear()
    lines = terms + ["<a:a>"] * (-len(terms) % 3)
    rows = zip(lines[0::3], repeat("<a:a>"), lines[1::3], lines[2::3], repeat(".\n"))
    doc = "".join(map(" ".join, rows)).encode("utf-8")
    try:
        back = ox.serialize(ox.parse(doc, ox.RdfFormat.N_QUADS, lenient=lenient), format=ox.RdfFormat.N_QUADS)  # fmt: skip
    except (SyntaxError, ValueError, MemoryError):
        raise NotCanonical from None
    if back != doc:
        raise NotCanonical
    checked.update(terms)


#: Literal bodies whose escapes are N-Triples' own (ECHAR, UCHAR) and no raw quote.
_BODIES = re.compile(
    r'[^"\\\r\n]*(?:\\(?:[tbnrf"\'\\]|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})[^"\\\r\n]*)*'
)
_SEPARATOR = "\x00"


def _decode(body: str) -> str | None:
    if not _BODIES.fullmatch(body):
        return None
    try:
        text = codecs.unicode_escape_decode(body.encode("ascii", "backslashreplace"))[0]
        text.encode("utf-8")  # a lone surrogate (\uD800) is refused here
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None
    return text


def unescape(bodies: list[str]) -> list[str] | None:
    """The bodies with their escapes read (``unicode_escape`` means the same as N-Triples'
    ECHAR / UCHAR), or None when one is not plain (a raw quote, a surrogate, a code point
    past U+10FFFF...): pyoxigraph reads those. All bodies in one pass, NUL-separated; when
    a body holds a NUL (raw or escaped) they are read one by one."""
    if not bodies:
        return []
    text = _decode(_SEPARATOR.join(bodies))
    if text is None:
        return None
    decoded = text.split(_SEPARATOR)
    if len(decoded) != len(bodies):
        decoded = list(map(_decode, bodies))
        if None in decoded:
            return None
    return decoded


def literal_kinds(suffixes: list[str], lenient: bool) -> list[tuple[str, str | None]]:
    """``(datatype IRI, language tag or None)`` of literals with each suffix (``""``,
    ``@lang``, ``^^<datatype>``)."""
    parsed = synthetic([f'<a:a> <a:a> ""{s} .' for s in suffixes], lenient)
    return [(t.object.datatype.value, t.object.language) for t in parsed]

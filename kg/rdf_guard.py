"""Cheap streaming pre-scans that bound what an RDF parser is asked to do.

pyoxigraph's parsers are fast but trust their input's shape: an RDF/XML file whose DTD
nests internal entities ("billion laughs", under 1 KB) expands to gigabytes, a JSON-LD
document nested a few thousand objects deep overflows the native stack (SIGSEGV), and
RDF/XML nested tens of thousands of elements deep takes minutes. Before such a file reaches
the parser, one pass over it refuses:

- **RDF/XML** (stdlib ``pyexpat``, which never fetches anything and has its own
  amplification limit): parameter entities, external entities (``SYSTEM`` / ``PUBLIC``),
  unparsed entities, internal entities that refer to themselves or expand to more than
  :data:`MAX_ENTITY_CHARS` characters, element nesting deeper than :data:`MAX_DEPTH`, and
  XML that is not well-formed (expat gives the line and column that pyoxigraph does not).
  Harmless internal entities (``<!ENTITY xsd "http://www.w3.org/2001/XMLSchema#">``, as
  in most OWL files) pass, as does a ``<!DOCTYPE ... PUBLIC ...>`` external subset, which
  neither parser reads.
- **JSON-LD**: array/object nesting deeper than :data:`MAX_DEPTH` and strings longer than
  :data:`MAX_STRING_BYTES` (strings are stripped with one regular expression per chunk and
  the nesting depth is a numpy cumulative sum, so the scan runs at C speed).

A refusal is a :class:`ScanError` with the message and, where known, the line and column;
:mod:`kg.rdf` turns it into an :class:`kg.rdf.RdfSyntaxError` naming the file.
"""

from __future__ import annotations

import re
from typing import BinaryIO

import numpy as np

#: Deepest element / array-object nesting accepted (real catalogues stay under ~30).
MAX_DEPTH = 512
#: Largest replacement text one internal XML entity may expand to, in characters.
MAX_ENTITY_CHARS = 1 << 16
#: Longest JSON string accepted (pyoxigraph's own token buffer limit is 16 MiB).
MAX_STRING_BYTES = 16 << 20
CHUNK = 1 << 20

_ENTITY_REF = re.compile(r"&([^;&\s]+);")
# A prefix made of non-string bytes and complete one-line strings (possessive: no backtracking).
_JSON_PREFIX = re.compile(rb'(?:[^"]++|"(?:[^"\\\n]++|\\.)*+")*+')
_JSON_STRING = re.compile(rb'"(?:[^"\\\n]++|\\.)*+"')
_OPEN = np.zeros(256, np.int32)
_OPEN[[ord("{"), ord("[")]] = 1
_OPEN[[ord("}"), ord("]")]] = -1


class ScanError(Exception):
    """Input refused before parsing: ``message``, ``line`` and ``column`` (or ``None``)."""

    def __init__(
        self, message: str, line: int | None = None, column: int | None = None, entity: str = ""
    ):
        super().__init__(message)
        self.message, self.line, self.column, self.entity = message, line, column, entity


# --------------------------------------------------------------------------- RDF/XML
def scan_xml(stream: BinaryIO) -> None:
    """Refuse dangerous DTDs, over-deep nesting and ill-formed XML (see module doc)."""
    import pyexpat

    parser = pyexpat.ParserCreate()
    entities: dict[str, str] = {}
    declared_at: dict[str, tuple[int, int]] = {}
    depth = [0]

    def where() -> tuple[int, int]:
        return parser.CurrentLineNumber, parser.CurrentColumnNumber + 1

    def entity_decl(name, is_parameter, value, base, system_id, public_id, notation):
        if is_parameter:
            raise ScanError(
                f"the DTD declares a parameter entity %{name}; parameter entities are not "
                "supported: remove the <!ENTITY % ...> declaration",
                *where(),
            )
        if system_id is not None or public_id is not None or value is None:
            raise ScanError(
                f"the DTD declares an external entity &{name}; (<!ENTITY {name} SYSTEM/PUBLIC "
                "...>); external entities are never resolved: remove the declaration or "
                'replace it by an internal one (<!ENTITY name "text">)',
                *where(),
            )
        entities[name] = value
        declared_at[name] = where()

    def end_doctype():
        sizes: dict[str, int] = {}
        for name in entities:
            try:
                _entity_size(name, entities, sizes, ())
            except ScanError as err:
                line, column = declared_at[err.entity]
                raise ScanError(err.message, line, column) from None

    def start(name, attrs):
        depth[0] += 1
        if depth[0] > MAX_DEPTH:
            raise ScanError(
                f"elements are nested more than {MAX_DEPTH} levels deep (<{name}>); "
                "flatten the document (refer to nodes by rdf:about / rdf:resource)",
                *where(),
            )

    def end(name):
        depth[0] -= 1

    parser.EntityDeclHandler = entity_decl
    parser.EndDoctypeDeclHandler = end_doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        # Fed in growing chunks, not ParseFile's 2 KiB: expat rescans a token that spans
        # chunks (a huge attribute) from its start at every chunk, quadratic in small ones.
        size = CHUNK
        while chunk := stream.read(size):
            parser.Parse(chunk, False)
            size = min(size * 2, 64 * CHUNK)
        parser.Parse(b"", True)
    except LookupError as err:  # <?xml encoding="..."?> that Python does not know
        raise ScanError(f"unknown character encoding ({err}); save the file as UTF-8", 1) from None
    except pyexpat.ExpatError as err:
        message = pyexpat.ErrorString(err.code)
        if "amplification" in message:
            message += " (entity references expand the input too much)"
        raise ScanError(f"ill-formed XML: {message}", err.lineno, err.offset + 1) from None


def _entity_size(name: str, entities: dict, sizes: dict, stack: tuple) -> int:
    """Characters that ``&name;`` expands to; raises past :data:`MAX_ENTITY_CHARS`."""
    if name in sizes:
        return sizes[name]
    if name in stack:
        raise ScanError(
            f"entity &{name}; refers to itself (through {' -> '.join(stack)}); remove the loop",
            entity=name,
        )
    value = entities.get(name)
    if value is None:  # predefined (&amp;...) or undeclared: the parser decides
        return 1
    size = len(_ENTITY_REF.sub("", value))
    for ref in [None, *_ENTITY_REF.findall(value)]:
        size += 0 if ref is None else _entity_size(ref, entities, sizes, (*stack, name))
        if size > MAX_ENTITY_CHARS:
            raise ScanError(
                f"entity &{name}; expands to more than {MAX_ENTITY_CHARS:,} characters "
                "(nested entity references, as in a 'billion laughs' attack); remove the "
                "entity or inline a short value",
                entity=name,
            )
    sizes[name] = size
    return size


# --------------------------------------------------------------------------- JSON-LD
def scan_json(stream: BinaryIO) -> None:
    """Refuse JSON nested deeper than :data:`MAX_DEPTH` or with an over-long string.

    Exact for valid JSON (whose strings never hold a raw line break); on invalid JSON it
    stops at the first string left open at a line end, where the parser itself fails.
    """
    depth, line, carry = 0, 1, b""
    while True:
        chunk = stream.read(CHUNK)
        buffer = carry + chunk if carry else chunk
        if not chunk:
            _json_depth(_JSON_STRING.sub(b"", buffer), depth, line)
            return
        end = _JSON_PREFIX.match(buffer).end()
        head, carry = buffer[:end], buffer[end:]
        depth = _json_depth(_JSON_STRING.sub(b"", head), depth, line)
        line += head.count(b"\n")
        if b"\n" in carry:  # a string open at a line end: a syntax error for the parser
            return
        if len(carry) > MAX_STRING_BYTES:
            raise ScanError(
                f"a string longer than {MAX_STRING_BYTES >> 20} MiB; store such data in a "
                "file and refer to it",
                line,
            )


def _json_depth(structure: bytes, depth: int, line: int) -> int:
    """Depth after ``structure`` (JSON with strings removed) starting at ``depth``."""
    if not structure:
        return depth
    depths = np.cumsum(_OPEN[np.frombuffer(structure, np.uint8)]) + depth
    deep = np.flatnonzero(depths > MAX_DEPTH)
    if len(deep):
        at = line + structure[: int(deep[0])].count(b"\n")
        raise ScanError(
            f"arrays/objects are nested more than {MAX_DEPTH} levels deep; flatten the "
            "document (refer to nodes by @id)",
            at,
        )
    return int(depths[-1])


#: pyoxigraph format name -> pre-scan (formats without an entry need none).
SCANS = {"RDF/XML": scan_xml, "JSON-LD": scan_json}

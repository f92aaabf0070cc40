"""Turtle output: escaped literals and IRIs, and a writer of subject blocks.

:func:`turtle_string` and :func:`turtle_iri` render one term; :class:`TurtleWriter` writes
``subject p1 o1 ; p2 o2 .`` blocks to a text stream, compacting IRIs with the prefixes
(only local names in a safe subset of Turtle's ``PN_LOCAL``; anything else is ``<...>``).
"""

from __future__ import annotations

import re

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
#: Characters Turtle forbids in an ``IRIREF`` (also refused in mapping IRIs).
IRI_ILLEGAL = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_LOCAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # a safe subset of Turtle's PN_LOCAL
_LITERAL_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)} | {
    0x7F: "\\u007F",
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord("\b"): "\\b",
    ord("\f"): "\\f",
}


def turtle_string(value: str) -> str:
    """A Turtle string literal (double quotes; backslash, quote, control characters
    escaped)."""
    return '"' + value.translate(_LITERAL_ESCAPES) + '"'


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group().encode("utf-8"))


def turtle_iri(iri: str) -> str:
    """``<iri>`` with the characters Turtle forbids in an IRIREF percent-encoded."""
    return "<" + IRI_ILLEGAL.sub(_percent, iri) + ">"


class TurtleWriter:
    """Writes subject blocks to a text stream, compacting IRIs with the prefixes."""

    def __init__(self, fh, prefixes: dict[str, str]):
        self.fh = fh
        self.prefixes = prefixes
        self.by_namespace: dict[str, str] = {}
        for name, ns in sorted(prefixes.items()):
            self.by_namespace.setdefault(ns, name)
        self.triples = 0
        self._cache: dict[str, str] = {RDF_TYPE: "a"}

    def header(self, comment: str):
        for line in comment.splitlines():
            self.fh.write(f"# {line}\n")
        for name, ns in sorted(self.prefixes.items()):
            self.fh.write(f"@prefix {name}: {turtle_iri(ns)} .\n")
        self.fh.write("\n")

    def iri(self, iri: str) -> str:
        for sep in ("#", "/"):
            cut = iri.rfind(sep)
            if cut >= 0:
                name = self.by_namespace.get(iri[: cut + 1])
                local = iri[cut + 1 :]
                if name is not None and _LOCAL_NAME.fullmatch(local):
                    return f"{name}:{local}"
                break
        return turtle_iri(iri)

    def term(self, iri: str) -> str:
        """A cached rendering for the few IRIs used over and over (predicates, types)."""
        out = self._cache.get(iri)
        if out is None:
            out = self._cache[iri] = self.iri(iri)
        return out

    def literal(self, value: str, language: str | None = None, datatype: str | None = None):
        text = turtle_string(value)
        if language:
            return f"{text}@{language}"
        if datatype:
            return f"{text}^^{self.term(datatype)}"
        return text

    def block(self, subject: str, pairs: list[tuple[str, str]]):
        if not pairs:
            return
        body = " ;\n    ".join(f"{p} {o}" for p, o in pairs)
        self.fh.write(f"{subject} {body} .\n\n")
        self.triples += len(pairs)

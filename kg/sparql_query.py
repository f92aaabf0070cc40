"""One SPARQL query: the read-only check, running it on a pyoxigraph store, its result.

Only local, read-only queries (SELECT, ASK, CONSTRUCT, DESCRIBE) run.
:func:`check_read_only` refuses before the store sees the query:

- updates (``INSERT``, ``DELETE``, ``LOAD``, ``CLEAR``, ...): ``Store.query`` would not run
  them anyway, but the error says why;
- ``SERVICE`` (federated query): pyoxigraph would send the inner pattern to any IRI, ``http``
  or ``file``, and return the answer -- a server-side request forgery and port scanner.
  pyoxigraph's Python API (0.5) has no option to turn its service handler off, so the
  query is refused by keyword.

The check reads the query with a SPARQL tokenizer (strings, IRIs, comments, variables,
prefixed names and language tags are skipped; keywords are case-insensitive), not a
substring test: ``"SERVICE"`` in a string, ``ex:service`` or ``?service`` pass. Where the
tokenizer and the grammar could disagree it reads more text as keywords, never less.

This module is below :mod:`kg.sparql` (queries over a graph) and :mod:`kg.sparql_process`
(killable worker processes), which both run queries through :func:`execute`. It also holds
the prefixes a query may leave undeclared (:data:`COMMON_PREFIXES`, :func:`with_prefixes`) and
the located syntax errors (:func:`syntax_error`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

UPDATE_KEYWORDS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH"}
)
FEDERATION_KEYWORDS = frozenset({"SERVICE"})


class SparqlError(ValueError):
    """A query that does not parse or is not a local read-only query."""


class SparqlTimeout(SparqlError):
    """A query still running at its time limit (it was stopped)."""


class SparqlBusy(SparqlError):
    """Every query slot is taken; ``retry_after`` seconds is a fair wait."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class QueryResult:
    """``kind`` is ``select`` (``variables`` + ``rows`` of strings or None), ``ask``
    (``boolean``) or ``graph`` (``rows`` of subject, predicate, object); ``truncated``:
    rows were cut at the ``max_rows`` asked for."""

    kind: str
    variables: list[str]
    rows: list[list[str | None]]
    boolean: bool | None = None
    truncated: bool = False

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if self.kind == "ask":
            writer.writerows([["boolean"], [str(self.boolean).lower()]])
        else:
            writer.writerow(self.variables)
            writer.writerows([["" if v is None else v for v in row] for row in self.rows])
        return out.getvalue()

    def to_json(self) -> str:
        if self.kind == "ask":
            return json.dumps({"boolean": self.boolean})
        return json.dumps(
            {
                "variables": self.variables,
                "rows": [dict(zip(self.variables, row, strict=True)) for row in self.rows],
            },
            ensure_ascii=False,
            indent=1,
        )

    def to_table(self, max_width: int = 60) -> str:
        from .report import format_table

        if self.kind == "ask":
            return str(self.boolean).lower()
        cells = [[("" if v is None else v)[:max_width] for v in row] for row in self.rows]
        return "\n".join([*format_table(self.variables, cells), f"({len(cells)} rows)"])


# ---------------------------------------------------------------------- the check
# Tokens the keyword scan skips (SPARQL 1.1 grammar, section 19.8). Strings follow the
# grammar exactly (a short string holds no line break; three quotes open a long one), and a
# quote that opens no valid string is a syntax error, as it is for the store. Other tokens
# are tried in this order; an IRI is read more leniently than IRIREF but never across white
# space, braces, angle brackets or quotes, so it cannot hide a pattern. A `<` that starts no
# IRI is one punctuation character, and the scan goes on after it.
_STRING = {
    '"""': re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""', re.DOTALL),
    "'''": re.compile(r"'''(?:[^'\\]|\\.|'(?!''))*'''", re.DOTALL),
    '"': re.compile(r'"(?:[^"\\\n\r]|\\[^\n\r])*"'),
    "'": re.compile(r"'(?:[^'\\\n\r]|\\[^\n\r])*'"),
}
_SKIP = re.compile(
    r"<[^\s<>{}\"']*>"
    r"|#[^\n\r]*"
    r"|[?$][\w\u00b7\u0300-\u036f\u203f-\u2040\u00c0-\uffff]*"  # variables
    r"|@[A-Za-z]+(?:-[A-Za-z0-9]+)*"  # language tags
    r"|(?:[A-Za-z_\u00c0-\uffff][\w.\-\u00b7\u00c0-\uffff]*)?:"  # prefixed names, blank nodes
    r"(?:[\w\-.:%\u00b7\u00c0-\uffff]|\\.)*",
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def keywords(query: str, prefixes: set[str] | None = None) -> list[str]:
    """The bare words of ``query`` (keywords and function names), upper-cased, in order;
    strings, IRIs, comments, variables, prefixed names and language tags are skipped.
    Raises :class:`SparqlError` for a quote that opens no valid string. ``prefixes``: a set
    that receives the prefix of each prefixed name (not of blank nodes)."""
    words, pos, end = [], 0, len(query)
    while pos < end:
        if query[pos] in "\"'":
            opening = query[pos : pos + 3]
            string = _STRING.get(opening, _STRING[query[pos]]).match(query, pos)
            if string is None:
                line = query.count("\n", 0, pos) + 1
                column = pos - (query.rfind("\n", 0, pos) + 1) + 1
                where = "anywhere after it" if opening in _STRING else "on its line"
                raise SparqlError(
                    f"SPARQL syntax error: the string opened at line {line}, column {column} "
                    f"is not closed {where}"
                )
            pos = string.end()
            continue
        skipped = _SKIP.match(query, pos)
        if skipped and skipped.end() > pos:
            token = skipped.group()
            if prefixes is not None and token[0] not in "<#?$@" and ":" in token:
                name = token.split(":", 1)[0]
                if name != "_":
                    prefixes.add(name)
            pos = skipped.end()
            continue
        word = _WORD.match(query, pos)
        if word:
            if not query.startswith(":", word.end()):  # `service:` is a prefix, not a word
                words.append(word.group().upper())
            pos = word.end()
        else:
            pos += 1
    return words


def check_read_only(query: str) -> None:
    """Raise :class:`SparqlError` unless ``query`` is a local read-only query: updates and
    ``SERVICE`` (federation: the store would fetch any IRI) are refused, by keyword."""
    words = set(keywords(query))
    if words & FEDERATION_KEYWORDS:
        raise SparqlError(
            "SPARQL SERVICE (federated query) is refused: this store answers only from its "
            "own triples and never fetches other IRIs; remove the SERVICE clause"
        )
    if words & UPDATE_KEYWORDS:
        found = ", ".join(sorted(words & UPDATE_KEYWORDS))
        raise SparqlError(
            f"SPARQL updates are refused ({found}): the workspace is read-only "
            "(use SELECT, ASK, CONSTRUCT or DESCRIBE)"
        )


# ---------------------------------------------------------------------- prefixes
COMMON_PREFIXES: dict[str, str] = {
    "schema": "http://schema.org/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "gr": "http://purl.org/goodrelations/v1#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "dcterms": "http://purl.org/dc/terms/",
}
_DECLARED = re.compile(r"\bPREFIX\s+([A-Za-z_\u00c0-\uffff][\w.\-\u00b7\u00c0-\uffff]*)?:", re.I)


def prefixes_used(query: str) -> set[str]:
    """The prefixes of the prefixed names in ``query`` (``schema`` of ``schema:name``;
    strings, IRIs, comments and blank nodes ``_:b`` are skipped)."""
    used: set[str] = set()
    keywords(query, prefixes=used)
    return used


def _declared(query: str) -> set[str]:
    return {m.group(1) or "" for m in _DECLARED.finditer(query)}


def with_prefixes(query: str, prefixes: dict[str, str] | None = None) -> tuple[str, int]:
    """``(query with PREFIX declarations prepended, characters added)``: one declaration
    for each prefix of :data:`COMMON_PREFIXES` (and ``prefixes``, which win) that the query
    uses but does not declare, all on the query's first line (so line numbers stay)."""
    known = {**COMMON_PREFIXES, **(prefixes or {})}
    missing = sorted(p for p in prefixes_used(query) - _declared(query) if p in known)
    if not missing:
        return query, 0
    head = "".join(f"PREFIX {p}: <{known[p]}> " for p in missing)
    return head + query, len(head)


def graph_prefixes(graph) -> dict[str, str]:
    """The ``[prefixes]`` of the table mappings a graph was built from (recorded in its
    sources by ``kgf build --mapping``; a mapping file no longer there is skipped)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from pathlib import Path

    found: dict[str, str] = {}
    for source in getattr(graph, "sources", ()):
        mapping = source.get("mapping") if isinstance(source, dict) else None
        if not mapping or not Path(mapping).is_file():
            continue
        try:
            table = tomllib.loads(Path(mapping).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        declared = table.get("prefixes", {})
        if isinstance(declared, dict):
            found.update({k: v for k, v in declared.items() if isinstance(v, str)})
    return found


_AT = re.compile(r"error at (\d+):(\d+): (.*)", re.S)
_TOKEN = re.compile(r'"[^"]+"|\b[A-Za-z][A-Za-z0-9_]*\b')


def syntax_error(query: str, message: str, added: int = 0, known=None) -> SparqlError:
    """A :class:`SparqlError` for the parser's ``message`` (``error at L:C: expected ...``):
    the line and column in ``query`` as written (``added``: characters of declarations
    :func:`with_prefixes` put before its first line), the line
    with a caret under the column, and the expected tokens (keywords and punctuation; the
    parser's character classes are left out)."""
    found = _AT.match(message.strip())
    if found is None:
        return SparqlError(f"SPARQL syntax error: {message.splitlines()[0]}")
    line, column, rest = int(found.group(1)), int(found.group(2)), found.group(3)
    if line == 1:
        column = max(1, column - added)
    lines = query.splitlines() or [""]
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    where = f"SPARQL syntax error at line {line}, column {column}"
    known = known or COMMON_PREFIXES
    undeclared = sorted(prefixes_used(query) - set(known) - _declared(query))
    if "Prefix not found" in rest and undeclared:
        what = (
            f"unknown prefix {undeclared[0]!r}: declare it (PREFIX {undeclared[0]}: <...>) "
            f"or use one of {', '.join(sorted(known))}"
        )
    else:
        expected = rest.split("expected", 1)[-1]
        tokens = [t for t in _TOKEN.findall(expected) if t not in ("one", "of")]
        tokens = list(dict.fromkeys(tokens))
        shown = ", ".join(tokens[:12]) + (", ..." if len(tokens) > 12 else "")
        if tokens:
            what = f"expected {'one of ' if len(tokens) > 1 else ''}{shown}"
        else:
            what = "unexpected text here"
    caret = " " * (max(column, 1) - 1) + "^"
    return SparqlError(f"{where}: {what}\n  {text}\n  {caret}")


# ---------------------------------------------------------------------- running
def term_text(term) -> str | None:
    """A result term as text: IRI, blank node label or literal lexical form."""
    return None if term is None else str(getattr(term, "value", term))


def execute(store, query: str, max_rows: int | None = None,
            prefixes: dict[str, str] | None = None) -> QueryResult:  # fmt: skip
    """Check ``query`` (:func:`check_read_only`) and run it on a pyoxigraph ``store`` in
    this thread, keeping at most ``max_rows`` rows (``truncated`` says so). Undeclared
    common prefixes (and ``prefixes``) are declared (:func:`with_prefixes`)."""
    import pyoxigraph as ox

    check_read_only(query)
    full, added = with_prefixes(query, prefixes)
    try:
        result = store.query(full, use_default_graph_as_union=True)
    except SyntaxError as err:
        known = {**COMMON_PREFIXES, **(prefixes or {})}
        raise syntax_error(query, str(err), added, known) from None
    if isinstance(result, ox.QueryBoolean):
        return QueryResult("ask", [], [], bool(result))
    if isinstance(result, ox.QuerySolutions):
        kind, names = "select", [v.value for v in result.variables]
        convert = lambda s: [term_text(s[name]) for name in names]  # noqa: E731
    else:
        kind, names = "graph", ["subject", "predicate", "object"]
        convert = lambda t: [term_text(t.subject), term_text(t.predicate), term_text(t.object)]  # noqa: E731
    rows, truncated = [], False
    for item in result:
        if max_rows is not None and len(rows) == max_rows:
            truncated = True
            break
        rows.append(convert(item))
    return QueryResult(kind, names, rows, truncated=truncated)

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
(killable worker processes), which both run queries through :func:`execute`.
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


def keywords(query: str) -> list[str]:
    """The bare words of ``query`` (keywords and function names), upper-cased, in order;
    strings, IRIs, comments, variables, prefixed names and language tags are skipped.
    Raises :class:`SparqlError` for a quote that opens no valid string."""
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


# ---------------------------------------------------------------------- running
def term_text(term) -> str | None:
    """A result term as text: IRI, blank node label or literal lexical form."""
    return None if term is None else str(getattr(term, "value", term))


def execute(store, query: str, max_rows: int | None = None) -> QueryResult:
    """Check ``query`` (:func:`check_read_only`) and run it on a pyoxigraph ``store`` in
    this thread, keeping at most ``max_rows`` rows (``truncated`` says so)."""
    import pyoxigraph as ox

    check_read_only(query)
    try:
        result = store.query(query, use_default_graph_as_union=True)
    except SyntaxError as err:
        raise SparqlError(f"SPARQL syntax error: {err}") from None
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

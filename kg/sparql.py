"""Read-only SPARQL over a graph's triples (pyoxigraph).

A saved workspace keeps a pyoxigraph store in ``sparql/`` and opens it read-only; an
in-memory graph gets an in-memory store, built once on the first query. Only queries
(SELECT, ASK, CONSTRUCT, DESCRIBE) run: ``Store.query`` does not execute updates, so an
``INSERT``/``DELETE`` is a syntax error and the stored triples never change.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass


class SparqlError(ValueError):
    """A query that does not parse or is not read-only."""


@dataclass
class QueryResult:
    """``kind`` is ``select`` (``variables`` + ``rows`` of strings or None), ``ask``
    (``boolean``) or ``graph`` (``rows`` of subject, predicate, object)."""

    kind: str
    variables: list[str]
    rows: list[list[str | None]]
    boolean: bool | None = None

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


def _term(term) -> str | None:
    if term is None:
        return None
    return (
        term.value if hasattr(term, "value") and not hasattr(term, "datatype") else str(term.value)
    )


def _store(graph):
    import pyoxigraph as ox

    if graph._store_path is not None:
        return ox.Store.read_only(str(graph._store_path))
    if graph._memory_store is None:
        store = ox.Store()
        store.bulk_extend(ox.Quad(t.subject, t.predicate, t.object) for t in graph.triples())
        graph._memory_store = store
    return graph._memory_store


def run_query(graph, query: str) -> QueryResult:
    """Run a read-only SPARQL query over ``graph``; errors name the problem."""
    import pyoxigraph as ox

    try:
        result = _store(graph).query(query, use_default_graph_as_union=True)
    except SyntaxError as err:
        head = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
        if head in (
            "INSERT",
            "DELETE",
            "LOAD",
            "CLEAR",
            "DROP",
            "CREATE",
            "ADD",
            "MOVE",
            "COPY",
            "WITH",
        ):
            raise SparqlError("SPARQL updates are refused: the workspace is read-only") from None
        raise SparqlError(f"SPARQL syntax error: {err}") from None
    if isinstance(result, ox.QueryBoolean):
        return QueryResult("ask", [], [], bool(result))
    if isinstance(result, ox.QuerySolutions):
        names = [v.value for v in result.variables]
        rows = [[_term(solution[name]) for name in names] for solution in result]
        return QueryResult("select", names, rows)
    rows = [[_term(t.subject), _term(t.predicate), _term(t.object)] for t in result]
    return QueryResult("graph", ["subject", "predicate", "object"], rows)

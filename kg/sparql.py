"""Read-only SPARQL over a graph's triples (pyoxigraph).

A saved workspace keeps a pyoxigraph store in ``sparql/`` and opens it read-only; an
in-memory graph gets an in-memory store, built once on the first query. Only local,
read-only queries (SELECT, ASK, CONSTRUCT, DESCRIBE) run: :func:`check_read_only`
(:mod:`kg.sparql_query`, re-exported here) refuses updates and ``SERVICE`` before the
store sees the query.

:func:`run_query` runs a query in this process; with ``timeout=`` it runs it in a worker
process that is killed past the time (:class:`kg.sparql_process.QueryRunner`), since a
query computes its first row (a large join or aggregate) without any point to cancel at.

Prefixes: a query may use the common prefixes (:data:`COMMON_PREFIXES`: schema, rdf, rdfs,
xsd, skos, foaf, gr, owl, dcterms) and those of the table mapping a workspace was built
with without declaring them; :func:`with_prefixes` adds a ``PREFIX`` line for each one the
query uses but does not declare (a declaration in the query wins). A syntax error names the
line and column in the query as written, shows the line, and says what was expected
(:func:`syntax_error`), not the parser's character classes.
"""

from __future__ import annotations

from .sparql_query import COMMON_PREFIXES as COMMON_PREFIXES
from .sparql_query import FEDERATION_KEYWORDS as FEDERATION_KEYWORDS
from .sparql_query import UPDATE_KEYWORDS as UPDATE_KEYWORDS
from .sparql_query import QueryResult as QueryResult
from .sparql_query import SparqlBusy as SparqlBusy
from .sparql_query import SparqlError as SparqlError
from .sparql_query import SparqlTimeout as SparqlTimeout
from .sparql_query import check_read_only as check_read_only
from .sparql_query import execute as execute
from .sparql_query import graph_prefixes as graph_prefixes
from .sparql_query import keywords as keywords
from .sparql_query import prefixes_used as prefixes_used
from .sparql_query import syntax_error as syntax_error
from .sparql_query import term_text as term_text
from .sparql_query import with_prefixes as with_prefixes


def graph_store(graph):
    """The pyoxigraph store of ``graph``: its workspace's, read-only, or an in-memory one
    built on first use."""
    import pyoxigraph as ox

    if graph._store_path is not None:
        return ox.Store.read_only(str(graph._store_path))
    if graph._memory_store is None:
        store = ox.Store()
        store.bulk_extend(ox.Quad(t.subject, t.predicate, t.object) for t in graph.triples())
        graph._memory_store = store
    return graph._memory_store


def run_query(graph, query: str, *, timeout: float | None = None,
              max_rows: int | None = None) -> QueryResult:  # fmt: skip
    """Run a read-only SPARQL query over ``graph``; errors name the problem.

    Args:
        timeout: seconds; past them the query is stopped (its worker process killed) and
            :class:`SparqlTimeout` raised. None: run in this process, without a limit.
        max_rows: keep at most this many rows (``truncated`` is set beyond).
    """
    if timeout is None:
        return execute(graph_store(graph), query, max_rows, graph_prefixes(graph))
    from .sparql_process import QueryRunner

    check_read_only(query)  # refuse before starting a process
    query = with_prefixes(query, graph_prefixes(graph))[0]
    with QueryRunner.for_graph(graph, max_concurrent=1) as runner:
        return runner.run(query, timeout=timeout, max_rows=max_rows)

"""SPARQL safety (issue 13): SERVICE never makes the store fetch an IRI (CLI, library and
HTTP), updates are refused by a tokenizer that skips strings, IRIs and comments, and a heavy
query is stopped inside its evaluation (its worker process killed) so the service keeps
answering; excess concurrent queries get 503 with Retry-After."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time

import pytest

import kg
from kg.samples import write_sample_catalogue
from kg.sparql import SparqlError, SparqlTimeout, check_read_only, keywords, run_query
from kgfusion.cli import main

# Four unconstrained triple patterns under COUNT: about 855^4 rows on the sample workspace;
# no first row until the whole join is counted (hours).
HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"


class Listener:
    """A TCP server on loopback that records every connection (an SSRF canary)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sparql"

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.connections.append(conn.recv(4096))
                except OSError:
                    self.connections.append(b"")

    def close(self):
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def listener():
    canary = Listener()
    yield canary
    canary.close()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sparqlsec")
    sample = write_sample_catalogue(tmp / "catalogue", n_products=40)
    return kg.load_rdf(sample.path).save(tmp / "ws")


@pytest.fixture(scope="module")
def graph(workspace):
    return kg.load_graph(workspace)


def service_queries(url: str) -> list[str]:
    """SERVICE in every spelling and place the grammar allows."""
    base, name = url.rsplit("/", 1)
    return [
        f"SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        f"select * where {{ service <{url}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ SeRvIcE SILENT <{url}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{SERVICE<{url}>{{?s ?p ?o}}}}",
        f"PREFIX e: <{base}/> SELECT * WHERE {{ SERVICE e:{name} {{ ?s ?p ?o }} }}",
        f"BASE <{base}/> SELECT * WHERE {{ SERVICE <{name}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ ?s ?p ?o FILTER EXISTS {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }}",
        f"ASK {{ OPTIONAL {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }}",
        f'SELECT * WHERE {{ ?s ?p "#" . SERVICE <{url}> {{ ?s ?p ?o }} }}',
        f"# SERVICE in a comment, then for real\nSELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ ?s ?p '''a\n''' SERVICE <{url}> {{ ?s ?p ?o }} }}",
        f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        "SELECT * WHERE { SERVICE <file:///etc/passwd> { ?s ?p ?o } }",
    ]


def test_service_is_refused_and_never_reaches_the_network(graph, listener):
    for query in service_queries(listener.url):
        with pytest.raises(SparqlError, match="SERVICE .*refused"):
            run_query(graph, query)
    assert listener.connections == []


def test_lookalikes_of_service_and_updates_still_run(graph):
    harmless = [
        'SELECT ?s WHERE { ?s ?p "SERVICE <http://127.0.0.1:1/> { }" } LIMIT 1',
        "SELECT ?s WHERE { ?s ?p '''INSERT\nSERVICE''' } LIMIT 1",
        "# SERVICE <http://127.0.0.1:1/> and DELETE in a comment\nASK { ?s ?p ?o }",
        "PREFIX service: <http://example.org/load/> ASK { ?s service:insert ?o }",
        "SELECT ?service ?load WHERE { ?service ?load ?o } LIMIT 1",
        'ASK { ?s ?p "x"@de-service }',
        "ASK { <http://example.org/SERVICE#delete> ?p ?o }",
        "ASK { _:service ?p ?o }",
    ]
    for query in harmless:
        check_read_only(query)
        run_query(graph, query)  # runs (no SparqlError)
    assert keywords('SELECT ?s WHERE { ?s <http://a#b> "c" } # d') == ["SELECT", "WHERE"]


def test_updates_are_refused_wherever_they_start(graph):
    updates = [
        "INSERT DATA { <http://a> <http://b> <http://c> }",
        "PREFIX e: <http://e/> # note\nDELETE WHERE { ?s e:p ?o }",
        "LOAD <http://127.0.0.1:1/data.ttl>",
        "BASE <http://e/> CLEAR ALL",
        "WITH <http://g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    ]
    for query in updates:
        with pytest.raises(SparqlError, match="updates are refused"):
            run_query(graph, query)


def test_no_query_that_passes_the_check_reaches_the_network(graph, listener):
    """Every combination of prefixes that could hide the keyword from a careless reader
    (strings, IRIs, comments, escapes, prefixed names): whatever the check lets through,
    the store runs, and the canary must stay silent."""
    import pyoxigraph as ox

    store = ox.Store()
    service = f"SERVICE <{listener.url}> {{ ?s ?p ?o }}"
    pieces = [
        "", "# c\n", '"x" ', "'x' ", '"""a\n""" ', "'''a'\n''' ", "<http://a#b> ", '"\\"" ',
        "?x ", "e:x ", "_:b ", '"#" ', "<a> ", "\"a'\" ", "'a\"' ", "e:a\\# ",
    ]  # fmt: skip
    passed = 0
    for before, after in itertools.product(pieces, repeat=2):
        for query in (
            f"PREFIX e: <http://e/> SELECT * WHERE {{ ?s ?p {before}. {service} {after}}}",
            f"PREFIX e: <http://e/> SELECT * WHERE {{ {before}{service} }} # {after}",
        ):
            try:
                check_read_only(query)
            except SparqlError:
                continue
            passed += 1
            with contextlib.suppress(SyntaxError, OSError, RuntimeError):
                list(store.query(query))
    assert listener.connections == [], f"{len(listener.connections)} requests left the store"
    assert passed == 0  # every one of these queries holds a real SERVICE clause


def test_cli_refuses_service_with_a_user_error(workspace, listener, capsys):
    query = f"SELECT * WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}"
    assert main(["sparql", str(workspace), query]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kgf sparql: error: SPARQL SERVICE") and "refused" in err
    assert listener.connections == []


def test_http_refuses_service_with_400(workspace, listener):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    with TestClient(create_app(workspace)) as client:
        for query in service_queries(listener.url):
            r = client.post("/sparql", content=query)
            assert r.status_code == 400 and "SERVICE" in r.json()["detail"], query
        r = client.get("/sparql", params={"query": service_queries(listener.url)[-1]})
        assert r.status_code == 400  # SERVICE <file:...> was a 500
    assert listener.connections == []


# ---------------------------------------------------------------------- time limits
def test_run_query_with_timeout_stops_a_heavy_query(graph):
    memory = kg.load_rdf(graph.sources[0]["path"])  # in-memory: copied to a temporary store
    with pytest.raises(SparqlTimeout, match="0.5 s"):
        run_query(memory, HEAVY, timeout=0.5)
    result = run_query(memory, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", timeout=60)
    assert result.rows == [[str(memory.num_triples)]]
    assert run_query(graph, "ASK { ?s ?p ?o }", timeout=60).boolean is True


def test_heavy_queries_are_stopped_and_the_service_keeps_serving(workspace):
    """Before: each heavy query held a worker thread for hours, and after two of them every
    query answered 504 until a restart."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    app = create_app(workspace, query_timeout_s=1.0, max_queries=2)
    runner = app.state.workspace.sparql_runner
    with TestClient(app) as client:
        assert client.post("/sparql", content="ASK { ?s ?p ?o }").json()["boolean"] is True
        (warm,) = runner.pids()
        for _ in range(3):  # more heavy queries than slots
            r = client.post("/sparql", content=HEAVY)
            assert r.status_code == 504 and "1 s" in r.json()["detail"]
        assert warm not in runner.pids() and runner.active == 0
        with pytest.raises(ProcessLookupError):
            os.kill(warm, 0)  # the worker that ran the heavy query is gone (killed, reaped)
        r = client.post("/sparql", content="SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        assert r.status_code == 200 and r.json()["rows"] == [[str(kg.load_graph(workspace).num_triples)]]  # fmt: skip
    assert runner.pids() == []  # shutdown kills the workers


def test_excess_concurrent_queries_get_503_with_retry_after(workspace):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    app = create_app(workspace, query_timeout_s=3.0, max_queries=1)
    runner = app.state.workspace.sparql_runner
    with TestClient(app) as client:
        answers = []
        heavy = threading.Thread(target=lambda: answers.append(client.post("/sparql", content=HEAVY)))  # fmt: skip
        heavy.start()
        deadline = time.monotonic() + 60
        while runner.active == 0 and time.monotonic() < deadline:  # wait for it to start
            time.sleep(0.01)
        assert runner.active == 1
        busy = client.get("/sparql", params={"query": "ASK { ?s ?p ?o }"})
        heavy.join()
        assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
        assert "retry" in busy.json()["detail"]
        assert answers[0].status_code == 504
        assert client.post("/sparql", content="ASK { ?s ?p ?o }").status_code == 200


def test_a_quote_that_opens_no_string_is_a_syntax_error_naming_its_place(graph):
    """The tokenizer does not guess past a broken string (where a guess could hide a
    keyword): it stops there, as the store would."""
    for query, place in [
        ('ASK {\n ?s ?p "open\n" }', "line 2, column 8 is not closed on its line"),
        ("ASK { ?s ?p '''never closed }", "line 1, column 13 is not closed anywhere"),
        ('ASK { ?s ?p "\\" }', "line 1, column 13"),
    ]:
        with pytest.raises(SparqlError, match=f"syntax error: the string opened at {place}"):
            run_query(graph, query)

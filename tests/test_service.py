"""The HTTP service (`kgf serve`): every endpoint through FastAPI's TestClient, the bad input
each gets, and one real uvicorn server on loopback queried with httpx."""

from __future__ import annotations

import shutil
import threading
import time
from urllib.parse import quote

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

import kg  # noqa: E402
from kg.index import EntityIndex  # noqa: E402
from kg.samples import write_sample_catalogue  # noqa: E402
from kgfusion.service import MAX_TEXT_CHARS, create_app  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A 40-product sample workspace with an entity index of random product vectors."""
    tmp = tmp_path_factory.mktemp("service")
    sample = write_sample_catalogue(tmp / "catalogue", n_products=40)
    graph = kg.load_rdf(sample.path)
    ws = graph.save(tmp / "ws")
    vectors = np.random.default_rng(0).standard_normal((graph.num_nodes_dict["Product"], 8))
    EntityIndex.from_embeddings(graph, {"Product": vectors}).save(ws / "index")
    return ws


@pytest.fixture(scope="module")
def graph(workspace):
    return kg.load_graph(workspace)


@pytest.fixture(scope="module")
def client(workspace):
    with TestClient(create_app(workspace, max_k=50)) as client:
        yield client


@pytest.fixture(scope="module")
def product(graph):
    return graph.iri("Product", 0)


def test_health_counts_and_index(client, graph):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["nodes"] == graph.num_nodes
    assert body["node_types"] == graph.num_nodes_dict
    assert body["index"] is True and body["index_entities"] == graph.num_nodes_dict["Product"]
    assert body["linker"] is False and body["index_problem"] is None


def test_entity_raw_and_percent_encoded_iri(client, graph, product):
    body = client.get(f"/entities/{product}").json()
    assert (body["type"], body["index"]) == ("Product", 0)
    names = [x for x in body["literals"] if x["name"] == "name"]
    assert {"en", "de"} <= {x["language"] for x in names} and names[0]["kind"] == "text"
    brand = next(n for n in body["neighbors"] if n["relation"] == "brand")
    assert brand["type"] == "Brand" and brand["direction"] == "out"
    assert body["neighbor_count"] == len(graph.neighbors(product))
    assert client.get("/entities/" + quote(product, safe="")).json() == body
    capped = client.get(f"/entities/{product}", params={"limit": 1}).json()
    assert len(capped["literals"]) == 1 and capped["truncated"] is True
    only = client.get(f"/entities/{product}", params={"relation": "brand"}).json()
    assert [n["relation"] for n in only["neighbors"]] == ["brand"]


def test_entity_unknown_iri_suggests_nearest(client, product):
    r = client.get(f"/entities/{product}x")
    assert r.status_code == 404
    assert "did you mean" in r.json()["detail"] and product in r.json()["detail"]
    r = client.get(f"/entities/{product}", params={"relation": "brnd"})
    assert r.status_code == 422 and "relations:" in r.json()["detail"]


def test_related_by_iri_and_by_name(client, graph, product):
    r = client.get("/related", params={"iri": product, "k": 3, "relation": "isSimilarTo"})
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "Product" and len(body["items"]) == 3
    assert all(item["iri"] != product and item["type"] == "Product" for item in body["items"])
    assert {"similarity", "relation", "evidence"} <= set(body["items"][0]["parts"])
    name = next(x.value for x in graph.literals(product) if x.name == "name")
    by_name = client.get("/related", params={"name": name, "k": 3, "explain": False}).json()
    assert by_name["resolved_from"]["iri"] == product and by_name["iri"] == product
    assert all(item["evidence"] == [] for item in by_name["items"])


def test_related_uses_the_newest_link_run_for_its_relation(workspace, tmp_path, product):
    from fusion.trainer import train

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    train(ws, task="link", relations=["isAccessoryOrSparePartFor"], run_name="lp",
          progress=False, overrides={"epochs": 2, "hidden": 8, "out_dim": 8})  # fmt: skip
    with TestClient(create_app(ws)) as client:
        params = {"iri": product, "k": 3, "relation": "rev_isAccessoryOrSparePartFor"}
        items = client.get("/related", params=params).json()["items"]
        assert items and all(0 < item["parts"]["scorer"] < 1 for item in items)
        params["relation"] = "isSimilarTo"  # no run predicts it: no scorer
        items = client.get("/related", params=params).json()["items"]
        assert items and not any("scorer" in item["parts"] for item in items)


@pytest.mark.parametrize("k", [0, 10**6, "ten"])
def test_related_k_out_of_bounds(client, product, k):
    r = client.get("/related", params={"iri": product, "k": k})
    assert r.status_code == 422 and r.json()["detail"].startswith("k: ")


def test_related_bad_input(client, product):
    assert client.get("/related").status_code == 422  # neither iri nor name
    both = client.get("/related", params={"iri": product, "name": "ring"})
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    unknown = client.get("/related", params={"iri": product + "x"})
    assert unknown.status_code == 404 and "did you mean" in unknown.json()["detail"]
    bad_type = client.get("/related", params={"iri": product, "node_type": "Prodct"})
    assert bad_type.status_code == 422 and "Product" in bad_type.json()["detail"]
    nothing = client.get("/related", params={"name": "qqqq"})
    assert nothing.status_code == 404 and "/link" in nothing.json()["detail"]


def test_link_matches_names_and_bounds_text(client, graph, product):
    name = next(x.value for x in graph.literals(product) if x.name == "name" and x.language == "en")
    reordered = " ".join(reversed(name.split()[:3]))
    body = client.get("/link", params={"text": reordered, "k": 3}).json()
    assert body["method"] == "lexical" and 0 < len(body["matches"]) <= 3
    assert product in [m["iri"] for m in body["matches"]]
    assert all(0 < m["score"] <= 1 and m["type"] for m in body["matches"])
    for empty in ("", "  ", "!?"):
        assert client.get("/link", params={"text": empty}).json()["matches"] == []
    long = client.get("/link", params={"text": "a" * (MAX_TEXT_CHARS + 1)})
    assert long.status_code == 422 and "at most" in long.json()["detail"]


def test_sparql_select_ask_and_truncation(client, workspace):
    query = "SELECT ?s WHERE { ?s a <http://schema.org/Brand> }"
    r = client.get("/sparql", params={"query": query})
    assert r.status_code == 200 and r.json()["kind"] == "select" and r.json()["rows"]
    as_json = client.post("/sparql", json={"query": query}).json()
    as_text = client.post("/sparql", content=query, headers={"content-type": "application/sparql-query"}).json()  # fmt: skip
    as_form = client.post("/sparql", data={"query": query}).json()
    assert as_json["rows"] == as_text["rows"] == as_form["rows"] == r.json()["rows"]
    assert client.post("/sparql", content="ASK { ?s ?p ?o }").json()["boolean"] is True
    with TestClient(create_app(workspace, max_rows=5)) as small:
        body = small.post("/sparql", content="SELECT * WHERE { ?s ?p ?o }").json()
    assert len(body["rows"]) == 5 and body["truncated"] is True


def test_sparql_refuses_updates_and_bad_input(client):
    update = "PREFIX s: <http://schema.org/>\nINSERT DATA { <http://x/a> s:name 'x' }"
    for r in (client.post("/sparql", content=update), client.get("/sparql", params={"query": update})):  # fmt: skip
        assert r.status_code == 400 and "read-only" in r.json()["detail"]
    syntax = client.post("/sparql", content="SELEC ?s")
    assert syntax.status_code == 400 and "syntax error" in syntax.json()["detail"]
    assert client.post("/sparql", content="  ").status_code == 422
    assert client.post("/sparql", json={"q": "ASK {}"}).status_code == 422
    long = "#" * 20_000 + "\nASK { ?s ?p ?o }"
    assert client.post("/sparql", content=long).status_code == 413
    assert client.get("/sparql", params={"query": long}).status_code == 422


def test_sparql_timeout_is_504_and_cancels(workspace):
    """A query past the time limit answers 504, and its worker process is killed (a real
    join of four unconstrained patterns: no row until it has counted them all)."""
    app = create_app(workspace, query_timeout_s=0.2)
    runner = app.state.workspace.sparql_runner
    heavy = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
    with TestClient(app) as client:
        assert client.post("/sparql", content="ASK { ?s ?p ?o }").status_code == 200
        (worker,) = runner.pids()
        r = client.post("/sparql", content=heavy)
        assert r.status_code == 504 and "0.2 s" in r.json()["detail"]
        assert worker not in runner.pids()  # it did not run to the end: it was stopped


def test_missing_and_stale_index_answer_409(workspace, tmp_path, product):
    bare = tmp_path / "ws"
    shutil.copytree(workspace, bare, ignore=shutil.ignore_patterns("index"))
    with TestClient(create_app(bare)) as client:
        assert client.get("/health").json()["index"] is False
        r = client.get("/related", params={"iri": product})
        assert r.status_code == 409 and f"kgf index {bare}" in r.json()["detail"]
        assert client.get(f"/entities/{product}").status_code == 200  # the rest still works
    EntityIndex.build([product], np.ones((1, 4)), graph_version="0123456789abcdef").save(
        bare / "index"
    )
    with TestClient(create_app(bare)) as client:
        detail = client.get("/related", params={"iri": product}).json()["detail"]
        assert "stale" in detail and f"kgf index {bare}" in detail
        assert "stale" in client.get("/health").json()["index_problem"]


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/entities/{iri}", "/related", "/link", "/sparql"} <= set(paths)
    assert paths["/related"]["get"]["description"] and set(paths["/sparql"]) == {"get", "post"}
    assert client.get("/docs").status_code == 200


def test_real_uvicorn_server_on_loopback(workspace, product):
    """One real server (port 0: the OS picks a free one), queried over TCP, then stopped."""
    import uvicorn

    config = uvicorn.Config(create_app(workspace), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start within 10 s"
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            assert http.get("/health").json()["status"] == "ok"
            related = http.get("/related", params={"iri": product, "k": 2})
            assert related.status_code == 200 and len(related.json()["items"]) == 2
            assert http.get("/related", params={"iri": product, "k": 0}).status_code == 422
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()

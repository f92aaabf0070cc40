"""/related for a name or IRI the entity index does not hold (issue 13, item 12): a
category answers a clear 422 that says what to ask instead, not 409 "rebuild the index";
a missing entity of an indexed type still answers 409 with the command to run."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

import kg  # noqa: E402
from kg.index import EntityIndex  # noqa: E402
from kg.samples import write_sample_catalogue  # noqa: E402
from kgfusion.service import create_app  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A sample workspace whose entity index holds its products (all but the last)."""
    tmp = tmp_path_factory.mktemp("related_errors")
    graph = kg.load_rdf(write_sample_catalogue(tmp / "catalogue", n_products=40).path)
    ws = graph.save(tmp / "ws")
    products = [graph.iri("Product", i) for i in range(graph.num_nodes_dict["Product"])]
    vectors = np.random.default_rng(0).standard_normal((len(products) - 1, 8))
    EntityIndex.build(products[:-1], vectors, graph_version=kg.graph_version(graph)).save(
        ws / "index"
    )
    with TestClient(create_app(ws)) as client:
        yield graph, ws, client, products[-1]


def test_name_of_a_category_answers_422_saying_what_to_ask(setup):
    graph, ws, client, _ = setup
    category = graph.iri("CategoryCode", 0)
    name = next(x.value for x in graph.literals(category) if x.name == "name")
    assert client.get("/link", params={"text": name, "k": 1}).json()["matches"][0]["iri"] == category  # fmt: skip
    r = client.get("/related", params={"name": name})
    detail = r.json()["detail"]
    assert r.status_code == 422, detail  # was 409 "rebuild the index"
    assert f"{name!r} names the CategoryCode {category}" in detail
    assert "holds no CategoryCode" in detail and "Product" in detail
    assert "node_type=Product" in detail and "kgf index" not in detail
    r = client.get("/related", params={"iri": category})
    assert r.status_code == 422 and "CategoryCode" in r.json()["detail"]


def test_missing_entity_of_an_indexed_type_still_asks_for_a_rebuild(setup):
    _, ws, client, unindexed = setup
    r = client.get("/related", params={"iri": unindexed})
    assert r.status_code == 409 and f"kgf index {ws}" in r.json()["detail"]

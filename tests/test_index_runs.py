"""`kgf index` over a trained run's embeddings: the default, staleness, structural vectors.

Every test drives the command line on a real small workspace (the sample catalogue, the
GoodRelations datasheets of ../shared/data)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import shared

from fusion.artifacts import read_weights
from kgfusion.cli import main

RELATION = "isAccessoryOrSparePartFor"


def _index_meta(ws) -> dict:
    return json.loads((ws / "index" / "index.json").read_text("utf-8"))


def _train(ws, run: str, *extra: str) -> None:
    args = ["train", str(ws), "--task", "link", "--relation", RELATION, "--run", run]
    assert (
        main([*args, "--set", "trainer.epochs=3", "--set", "trainer.progress=false", *extra]) == 0
    )


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory):
    from kg.samples import write_sample_catalogue

    root = tmp_path_factory.mktemp("runs")
    sample = write_sample_catalogue(root / "cat", n_products=30, seed=3)
    ws = root / "ws"
    assert main(["build", str(sample.path), "-o", str(ws), "--no-sparql"]) == 0
    assert main(["encode", str(ws), "--image", "none"]) == 0
    return ws


def test_index_defaults_to_the_newest_run_and_refuses_a_stale_one(sample_ws, tmp_path, capsys):
    ws = tmp_path / "ws"
    shutil.copytree(sample_ws, ws)
    assert main(["index", str(ws)]) == 0  # no run yet: the features, said so
    assert "encoded features (no trained run)" in capsys.readouterr().out
    assert _index_meta(ws)["source"]["kind"] == "features"
    _train(ws, "old")
    _train(ws, "new")
    capsys.readouterr()
    assert main(["index", str(ws)]) == 0
    assert "run new (the newest complete run)" in capsys.readouterr().out
    meta = _index_meta(ws)
    assert meta["source"]["run"] == "new" and meta["count"] > 30  # every node, not only products
    import kg
    from kg.index import EntityIndex

    stored = read_weights(ws / "models" / "new" / "embeddings.safetensors")
    index = EntityIndex.load(ws / "index")
    graph = kg.load_graph(ws)
    product = graph.node_iris("Product")[0]
    for iri in (product, graph.node_iris("Brand")[0]):  # the run's final embeddings
        node_type, local = graph.node(iri)
        expected = stored[node_type][local].numpy()
        assert np.allclose(index.vector(iri), expected / np.linalg.norm(expected), atol=1e-5)
    assert main(["related", str(ws), product, "-k", "3", "--json"]) == 0
    capsys.readouterr()

    assert main(["index", str(ws), "--run", "old"]) == 0  # a named run
    assert "run old" in capsys.readouterr().out and _index_meta(ws)["source"]["run"] == "old"
    _train(ws, "old", "--overwrite")  # retrained: the index built from it is stale
    capsys.readouterr()
    assert main(["related", str(ws), product, "-k", "3"]) == 2
    err = capsys.readouterr().err
    assert "retrained" in err and f"kgf index {ws} --run old" in err
    assert main(["index", str(ws), "--run", "old"]) == 0
    shutil.rmtree(ws / "models" / "old")  # deleted: stale too
    capsys.readouterr()
    assert main(["related", str(ws), product, "-k", "3"]) == 2
    assert "gone" in capsys.readouterr().err
    assert main(["index", str(ws), "--run", "missing"]) == 2
    assert "no complete run 'missing'" in capsys.readouterr().err
    assert main(["index", str(ws), "--features"]) == 0
    assert main(["related", str(ws), product, "-k", "3"]) == 0


def test_a_run_of_another_graph_version_is_refused(sample_ws, tmp_path, capsys):
    from kg.samples import write_sample_catalogue

    ws = tmp_path / "ws"
    shutil.copytree(sample_ws, ws)
    _train(ws, "lp")
    other = write_sample_catalogue(tmp_path / "cat2", n_products=30, seed=4)
    ws2 = tmp_path / "ws2"
    assert main(["build", str(other.path), "-o", str(ws2), "--no-sparql"]) == 0
    shutil.copytree(ws / "models", ws2 / "models")  # a run trained on another graph
    capsys.readouterr()
    assert main(["index", str(ws2)]) == 2
    err = capsys.readouterr().err
    assert "run 'lp' was trained on graph version" in err and "--features" in err


def test_nodes_without_text_or_image_are_indexed_and_answered(tmp_path, capsys):
    folder = shared("rdf/goodrelations")
    ws = tmp_path / "gr"
    files = [str(folder / "datasheets.rdf"), str(folder / "goodrelations-datasheets.rdf")]
    assert main(["build", *files, "-o", str(ws), "--no-sparql"]) == 0
    assert main(["encode", str(ws), "--image", "none"]) == 0
    import kg

    graph = kg.load_graph(ws)
    untyped = graph.node_iris("Entity")  # the untyped datasheet IRIs: no literal at all
    assert untyped and not any(graph.literals(iri) for iri in untyped)
    capsys.readouterr()
    assert main(["index", str(ws), "--features"]) == 0
    out = capsys.readouterr().out
    assert "without features get their neighbours' mean" in out
    assert _index_meta(ws)["count"] == graph.num_nodes  # every node reaches a described one
    for node_type in ("*", None):  # any type, and the query's own type (Entity)
        extra = ["--node-type", node_type] if node_type else []
        assert main(["related", str(ws), untyped[0], "-k", "3", "--json", *extra]) == 0
        items = json.loads(capsys.readouterr().out)
        assert len(items) == 3
    assert main(["train", str(ws), "--task", "link", "--relation", "seeAlso", "--run", "s",
                 "--set", "trainer.epochs=2", "--set", "trainer.progress=false"]) == 0  # fmt: skip
    assert main(["index", str(ws)]) == 0
    assert _index_meta(ws)["source"]["run"] == "s" and _index_meta(ws)["count"] == graph.num_nodes
    capsys.readouterr()
    assert main(["related", str(ws), untyped[0], "-k", "2", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["type"] for i in items] == ["Entity", "Entity"]
    # an index without the asked-for type: an error that says why, never an empty answer
    assert main(["index", str(ws), "--node-type", "Entity"]) == 0
    capsys.readouterr()
    assert main(["related", str(ws), untyped[0], "--node-type", "Address"]) == 2
    assert "no entity of Address" in capsys.readouterr().err


def test_the_service_answers_from_the_run_index_and_refuses_it_once_stale(sample_ws, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    ws = tmp_path / "ws"
    shutil.copytree(sample_ws, ws)
    _train(ws, "lp")
    assert main(["index", str(ws)]) == 0 and _index_meta(ws)["source"]["run"] == "lp"
    import kg

    brand = kg.load_graph(ws).node_iris("Brand")[0]  # no text, no image: a run vector only
    with TestClient(create_app(ws)) as client:
        assert client.get("/health").json()["index_problem"] is None
        body = client.get("/related", params={"iri": brand, "k": 2, "node_type": "*"})
        assert body.status_code == 200 and len(body.json()["items"]) == 2
    _train(ws, "lp", "--overwrite")  # retrained: what the service loads now is stale
    with TestClient(create_app(ws)) as client:
        assert "stale" in client.get("/health").json()["index_problem"]
        r = client.get("/related", params={"iri": brand, "k": 2})
        assert r.status_code == 409 and f"kgf index {ws} --run lp" in r.json()["detail"]


def test_a_link_run_carries_its_via_links_term_to_the_scorer(sample_ws, tmp_path):
    import kg
    from fusion.scoring import LinkScorer

    ws = tmp_path / "ws"
    shutil.copytree(sample_ws, ws)
    _train(ws, "lp", "--set", "trainer.epochs=20", "--set", "trainer.patience=0")
    heads = read_weights(ws / "models" / "lp" / "heads.safetensors")
    assert {"task.via.u", "task.via.v"} <= set(heads) and heads["task.via.u"].abs().sum() > 0
    graph = kg.load_graph(ws)
    scorer = LinkScorer.from_run(ws, "lp", graph)
    assert scorer.via is not None and torch.equal(scorer.via.u.detach(), heads["task.via.u"])
    accessory = next(p for p in graph.node_iris("Product") if graph.neighbors(p, RELATION))
    products = graph.node_iris("Product")
    with_via = scorer(accessory, products, RELATION)
    scorer.via = None  # the same run without the term: other probabilities
    assert not np.allclose(with_via, scorer(accessory, products, RELATION))

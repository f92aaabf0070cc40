"""The application layer (`kgfusion.session.Session`) on real sample workspaces: what it
loads once, name resolution, the link-prediction run it picks, related products, SPARQL, and
the errors that name what to do."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

import kg
from fusion.model import ConfigError
from fusion.scoring import LinkScorer
from kg.graph import GraphLookupError
from kg.index import EntityIndex, EntityIndexError, StaleIndexError
from kg.related import related as kg_related
from kg.samples import write_sample_catalogue
from kg.sparql import SparqlError
from kgfusion.session import Match, Session, SessionError

RELATION = "isAccessoryOrSparePartFor"
TINY = {"epochs": 2, "hidden": 8, "out_dim": 8}


def _build(folder, n_products: int, seed: int = 0):
    sample = write_sample_catalogue(folder / "catalogue", n_products=n_products, seed=seed)
    return kg.load_rdf(sample.path).save(folder / "ws")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A 40-product sample workspace with an entity index of random product vectors."""
    ws = _build(tmp_path_factory.mktemp("session"), 40)
    graph = kg.load_graph(ws)
    vectors = np.random.default_rng(0).standard_normal((graph.num_nodes_dict["Product"], 8))
    EntityIndex.from_embeddings(graph, {"Product": vectors}).save(ws / "index")
    return ws


@pytest.fixture(scope="module")
def session(workspace):
    return Session(workspace)


@pytest.fixture(scope="module")
def product(session):
    return session.graph.iri("Product", 0)


def _english_name(graph, iri: str) -> str:
    return next(x.value for x in graph.literals(iri) if x.name == "name" and x.language == "en")


def test_heavy_things_are_loaded_once(workspace):
    session = Session(workspace)
    assert "loaded: nothing" in repr(session)
    graph, index, runner = session.graph, session.index, session.sparql_runner
    assert session.graph is graph and session.index is index and session.sparql_runner is runner
    assert session.version == kg.index.graph_version(graph) and session.index_problem is None
    session.forget("graph")
    assert session.graph is not graph  # read again on demand
    given = kg.load_graph(workspace)
    assert Session(workspace, graph=given).graph is given  # an in-memory graph is not reread


def test_resolve_name_and_match_lexically(session, product):
    name = _english_name(session.graph, product)
    hit = session.resolve_name(name)
    assert isinstance(hit, Match) and hit.iri == product and hit.method == "lexical"
    assert 0 < hit.score <= 1 and hit.text == name
    assert session.match_method() == "lexical"  # no features: no text linker
    reordered = " ".join(reversed(name.split()[:3]))
    matches = session.match(reordered, k=3)
    assert product in [m.iri for m in matches] and len(matches) <= 3
    for nothing in ("", "  ", "!?"):
        assert session.match(nothing) == []
    with pytest.raises(SessionError, match="no entity matches the name 'qqqq'"):
        session.resolve_name("qqqq")
    with pytest.raises(GraphLookupError, match="Product"):
        session.match(name, node_type="Prodct")


def test_related_is_kg_related_over_the_loaded_index(session, product):
    items = session.related(product, k=4, relation="isSimilarTo")
    direct = kg_related(session.graph, session.index, product, 4, "isSimilarTo")
    assert [(i.iri, i.score) for i in items] == [(i.iri, i.score) for i in direct]
    assert len(items) == 4 and all(i.iri != product for i in items)
    assert all("scorer" not in i.parts for i in items)  # no link run in this workspace
    with pytest.raises(GraphLookupError, match="did you mean"):
        session.related(product + "x")


def test_missing_and_stale_index_name_the_command(workspace, tmp_path, product):
    bare = tmp_path / "ws"
    shutil.copytree(workspace, bare, ignore=shutil.ignore_patterns("index"))
    session = Session(bare)
    assert f"kgf index {bare}" in session.index_problem
    with pytest.raises(EntityIndexError, match=f"kgf index {bare}"):
        session.related(product)
    EntityIndex.build([product], np.ones((1, 4)), graph_version="0123456789abcdef").save(
        bare / "index"
    )
    session.forget("index")
    assert "stale" in session.index_problem
    with pytest.raises(StaleIndexError, match=f"kgf index {bare}"):
        session.index  # noqa: B018


def test_sparql_reads_and_refuses_updates(session):
    result = session.sparql("SELECT ?b WHERE { ?b a <http://schema.org/Brand> }")
    assert result.kind == "select" and result.rows
    assert session.sparql("ASK { ?s ?p ?o }").boolean is True
    with pytest.raises(SparqlError, match="read-only"):
        session.sparql("DELETE WHERE { ?s ?p ?o }")


def test_scorer_picks_the_newest_usable_link_run(workspace, tmp_path, product):
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    session = Session(ws)
    assert session.scorer("rev_" + RELATION) is None and session.link_runs == []
    session.train(task="link", relations=[RELATION], run_name="lp", progress=False,
                  overrides=TINY)  # fmt: skip
    first = session.scorer("rev_" + RELATION)
    assert isinstance(first, LinkScorer) and first.run == "lp"
    assert session.scorer(RELATION) is first  # one scorer per run, for both directions
    assert session.scorer("isSimilarTo") is None and session.scorer(None) is None
    with pytest.raises(ConfigError, match="no trained run 'nope'"):
        session.scorer(run="nope")
    items = session.related(product, k=3, relation="rev_" + RELATION)
    assert items and all(0 < i.parts["scorer"] < 1 for i in items)
    plain = session.related(product, k=3, relation="rev_" + RELATION, use_model=False)
    assert not any("scorer" in i.parts for i in plain)

    # a newer run trained on another graph (other node counts) is skipped with a warning
    other = _build(tmp_path / "other", 30, seed=3)
    Session(other).train(task="link", relations=[RELATION], run_name="foreign",
                         progress=False, overrides=TINY)  # fmt: skip
    shutil.copytree(other / "models" / "foreign", ws / "models" / "foreign")
    later = time.time() + 60
    os.utime(ws / "models" / "foreign" / "run.json", (later, later))
    session.forget("link_runs")
    assert [run for run, _ in session.link_runs] == ["lp", "foreign"]
    with pytest.warns(UserWarning, match="'foreign' is not used"):
        assert session.scorer(RELATION) is first
    with pytest.raises(ConfigError, match="another version of the graph"):
        session.scorer(run="foreign")


def test_build_index_needs_features(workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    with pytest.raises(FileNotFoundError, match=f"kgf encode {ws}"):
        Session(ws).build_index()


def test_text_linker_is_opened_once_and_resolves_names(workspace, tmp_path):
    from fusion.features import FeatureSpec

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, ignore=shutil.ignore_patterns("index"))
    session = Session(ws)
    assert session.text_linker is None
    session.encode(FeatureSpec(text_encoder="minilm", image_encoder=None))
    linker = session.text_linker
    assert linker is not None and session.text_linker is linker and session.linker is linker
    index, types = session.build_index()
    assert session.index is index and "Product" in types
    product = session.graph.iri("Product", 1)
    name = _english_name(session.graph, product)
    assert session.match_method() == "linker" and session.match_method("Product") == "lexical"
    matches = session.match(name, k=3)
    assert matches and all(m.method == "linker" and 0 <= m.score <= 1 for m in matches)
    assert session.resolve_name(name).iri == product
    assert session.related(product, k=2)
    assert Session(ws, text_linker=False).match_method() == "lexical"


def test_the_service_uses_the_session_it_is_given(session, product):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    graph = session.graph
    app = create_app(session)
    assert app.state.workspace is session and session.graph is graph
    with TestClient(app) as client:
        body = client.get("/related", params={"iri": product, "k": 2}).json()
    expected = session.related(product, k=2)
    assert [x["iri"] for x in body["items"]] == [x.iri for x in expected]

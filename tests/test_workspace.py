"""Workspace save/load, atomic writes, SPARQL, and the real-data graphs (AIFB, GoodRelations)."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import numpy as np
import pytest
import rdflib
from conftest import shared
from rdflib import RDF, BNode, Literal, URIRef

import kg
from kg.sparql import SparqlError, run_query
from kg.workspace import WorkspaceError, atomic_directory

TTL = """\
@prefix s: <http://schema.org/> .
<http://ex.org/p1> a s:Product ; s:name "Ring"@en, "Ring"@de ; s:price 120.5 ; s:brand <http://ex.org/b> .
<http://ex.org/p2> a s:Product ; s:name "Chain"@en ; s:isAccessoryOrSparePartFor <http://ex.org/p1> .
<http://ex.org/b> a s:Brand ; s:name "Aurum" .
"""


@pytest.fixture
def graph(tmp_path):
    path = tmp_path / "cat.ttl"
    path.write_text(TTL)
    return kg.load_rdf(path)


def test_save_load_round_trip(tmp_path, graph):
    ws = graph.save(tmp_path / "ws")
    manifest = json.loads((ws / "manifest.json").read_text())
    assert manifest["format"] == "kgfusion-workspace" and manifest["version"] == 1
    assert manifest["node_types"] == {"Brand": 1, "Product": 2}
    assert len(manifest["sources"][0]["sha256"]) == 64
    loaded = kg.load_graph(ws)
    assert loaded.nodes == graph.nodes and loaded.lit_value == graph.lit_value
    assert loaded.edge_types == graph.edge_types
    assert np.array_equal(loaded.node_local, graph.node_local)
    assert loaded.literal_columns() == graph.literal_columns()
    assert not list(ws.glob("*.pkl")) and not list(tmp_path.glob(".ws.*"))


def test_existing_workspace_refused_and_failed_build_leaves_it_intact(tmp_path, graph):
    ws = graph.save(tmp_path / "ws")
    before = (ws / "manifest.json").read_bytes()
    with pytest.raises(WorkspaceError, match="--overwrite"):
        graph.save(ws)
    with pytest.raises(RuntimeError, match="killed"), atomic_directory(ws, overwrite=True) as tmp:
        (tmp / "manifest.json").write_text("half")
        raise RuntimeError("killed midway")
    assert (ws / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.ttl", "ws"]
    graph.save(ws, overwrite=True)
    assert kg.load_graph(ws).num_nodes == 3


def test_not_a_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="kgf build"):
        kg.load_graph(tmp_path)


def test_sparql_in_memory_and_on_disk(tmp_path, graph):
    query = "SELECT ?n WHERE { ?p a <http://schema.org/Product> ; <http://schema.org/name> ?n FILTER(lang(?n)='en') } ORDER BY ?n"
    assert run_query(graph, query).rows == [["Chain"], ["Ring"]]
    loaded = kg.load_graph(graph.save(tmp_path / "ws"))
    result = run_query(loaded, query)
    assert result.rows == [["Chain"], ["Ring"]]
    assert result.to_csv() == "n\nChain\nRing\n"
    assert json.loads(result.to_json())["rows"][0] == {"n": "Chain"}
    assert "Ring" in result.to_table()
    assert run_query(
        loaded,
        "ASK { <http://ex.org/p2> <http://schema.org/isAccessoryOrSparePartFor> <http://ex.org/p1> }",
    ).boolean
    with pytest.raises(SparqlError, match="read-only"):
        run_query(loaded, "INSERT DATA { <http://a> <http://b> <http://c> }")
    with pytest.raises(SparqlError, match="syntax"):
        run_query(loaded, "SELECT WHERE")
    assert run_query(loaded, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }").rows == [
        [str(graph.num_triples)]
    ]


def test_aifb_counts_match_rdflib():
    path = shared("rdf/aifb/aifb_stripped.nt.gz")
    reference = rdflib.Graph()
    with gzip.open(path) as fh:
        reference.parse(fh, format="nt")
    graph = kg.load_rdf(path)
    assert graph.num_triples == len(reference)
    entities = {t for s, _, o in reference for t in (s, o) if isinstance(t, URIRef | BNode)}
    classes = {o for o in reference.objects(None, RDF.type)}
    type_only = {c for c in classes if not any(True for _ in reference.triples((c, None, None)))
                 and not any(p != RDF.type for _, p in reference.subject_predicates(c))}  # fmt: skip
    assert graph.num_nodes == len(entities - type_only)
    relation_edges = sum(1 for _, p, o in reference if p != RDF.type and not isinstance(o, Literal))
    assert graph.num_edges == relation_edges
    assert graph.num_literals == sum(1 for *_, o in reference if isinstance(o, Literal))
    # persons are typed swrc:Person (some have more specific types too)
    persons = set(reference.subjects(RDF.type, URIRef("http://swrc.ontoware.org/ontology#Person")))
    typed = Counter(graph.node(str(p))[0] for p in persons)
    assert typed["Person"] + typed["PhDStudent"] + typed["FullProfessor"] > 0.9 * len(persons)
    predicates = {str(p) for _, p, o in reference if p != RDF.type and not isinstance(o, Literal)}
    assert {r.predicate for r in graph.relations} == predicates
    data = graph.to_pyg()
    assert sum(data[et].edge_index.shape[1] for et in data.edge_types) == 2 * relation_edges
    assert sum(data[t].num_nodes for t in data.node_types) == graph.num_nodes


def test_goodrelations_related_product_relations():
    folder = shared("rdf/goodrelations")
    graph = kg.load_rdf([folder / "datasheets.rdf", folder / "goodrelations-datasheets.rdf"])
    names = {r.name for r in graph.relations}
    assert {"isAccessoryOrSparePartFor", "isSimilarTo", "isConsumableFor", "successorOf"} <= names
    # the ontology file has an IRI with a space: strict mode says so, lenient reads it
    with pytest.raises(kg.RdfSyntaxError, match="lenient"):
        kg.load_rdf(folder)
    assert kg.load_rdf(folder, lenient=True).num_triples > graph.num_triples


def test_to_pyg_rgcn_view_adds_literal_nodes_and_type_edges(tmp_path):
    (tmp_path / "g.ttl").write_text(
        "@prefix ex: <http://ex.org/> .\n"
        'ex:a a ex:Person ; ex:knows ex:b ; ex:name "Ann" ; ex:age 3 .\n'
        'ex:b a ex:Person ; ex:name "Ann" .\n'
        "ex:c a ex:Person .\nex:Person a ex:Class .\n",
        encoding="utf-8",
    )
    graph = kg.load_rdf(tmp_path / "g.ttl")
    plain = graph.to_pyg()
    data = graph.to_pyg(literal_nodes=True, type_edges=True)
    assert data["Literal"].num_nodes == 2  # "Ann" twice is one node, 3 the other
    literal = {k: v for k, v in data.edge_index_dict.items() if k[2] == "Literal"}
    assert sum(v.shape[1] for v in literal.values()) == graph.num_literals == 3
    typed = {k: v for k, v in data.edge_index_dict.items() if k[1] == "type"}
    assert sum(v.shape[1] for v in typed.values()) == len(graph.type_node)
    for (src, rel, dst), index in [*literal.items(), *typed.items()]:
        assert data[dst, "rev_" + rel, src].edge_index.flip(0).equal(index)
    assert list(data.edge_index_dict)[: len(plain.edge_index_dict)] == list(plain.edge_index_dict)
    bare = graph.to_pyg(inverse=False, literal_nodes=True)
    assert not any(k[1].startswith("rev_") for k in bare.edge_index_dict)

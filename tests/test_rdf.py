"""RDF ingestion: formats, gzip, folders, typing rules, literals, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import rdflib
from rdflib.compare import isomorphic

import kg
from kg.rdf import RdfError, RdfSyntaxError

TTL = """\
@prefix s: <http://schema.org/> .
@prefix gr: <http://purl.org/goodrelations/v1#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://ex.org/> .

ex:p1 a s:Product ; s:name "Red car"@en, "Rotes Auto"@de ; s:price "12.50"^^xsd:decimal ;
    s:brand ex:lumo ; s:image "img/p1.png" ; s:isAccessoryOrSparePartFor ex:p2 ;
    s:releaseDate "2024-05-01"^^xsd:date ; s:isFamilyFriendly true .
ex:p2 a s:Product, gr:ProductOrServiceModel ; s:name "Track"@en ; s:price "n/a"^^xsd:decimal ;
    gr:name "Track GR" ; s:brand ex:lumo ; s:additionalProperty [ s:value 3 ] .
ex:p3 a gr:ProductOrServiceModel ; s:brand ex:lumo .
ex:lumo a s:Brand ; s:name "Lumo" .
"""


@pytest.fixture
def ttl(tmp_path) -> Path:
    path = tmp_path / "cat.ttl"
    path.write_text(TTL, encoding="utf-8")
    return path


def test_types_relations_and_literal_columns(ttl):
    with pytest.warns(UserWarning, match="1 literal"):
        graph = kg.load_rdf(ttl)
    # p2 is Product and ProductOrServiceModel: the rarer class wins (PoSM has 2 vs Product 2 ->
    # tie -> lexically smaller IRI: gr:... < s:...); blank node is untyped -> Entity
    assert graph.num_nodes_dict == {
        "Brand": 1,
        "Entity": 1,
        "Product": 1,
        "ProductOrServiceModel": 2,
    }
    assert graph.node("http://ex.org/p1") == ("Product", 0)
    assert graph.node("http://ex.org/p2")[0] == "ProductOrServiceModel"
    names = {r.edge_type for r in graph.relations}
    assert ("Product", "brand", "Brand") in names
    assert ("Product", "isAccessoryOrSparePartFor", "ProductOrServiceModel") in names
    columns = {(c.node_type, c.name, c.kind): c for c in graph.literal_columns()}
    # schema:name and gr:name collide on the local name "name": both get a prefix
    assert ("Product", "schema_name", "text") in columns
    assert ("ProductOrServiceModel", "gr_name", "text") in columns
    assert columns[("Product", "schema_name", "text")].languages == {"de": 1, "en": 1}
    assert ("Product", "price", "number") in columns
    assert ("ProductOrServiceModel", "price", "text") in columns  # "n/a" kept as text
    assert ("Product", "image", "image") in columns
    assert ("Product", "releaseDate", "date") in columns
    assert ("Product", "isFamilyFriendly", "boolean") in columns
    price = graph.column("Product", "price", "number")
    assert price.numbers.tolist() == [12.5]
    date = graph.column("Product", "releaseDate")
    assert date.numbers[0] == (np.datetime64("2024-05-01") - np.datetime64("1970-01-01")).astype(
        int
    )
    image = graph.column("Product", "image")
    assert image.paths == [ttl.parent / "img" / "p1.png"]


def test_multi_type_rules(ttl):
    lexical = kg.load_rdf(ttl, multi_type="lexical")
    assert lexical.node("http://ex.org/p2")[0] == "ProductOrServiceModel"
    joined = kg.load_rdf(ttl, multi_type="join")
    assert joined.node("http://ex.org/p2")[0] == "Product+ProductOrServiceModel"
    prioritised = kg.load_rdf(ttl, type_priority=["Product"])
    assert prioritised.node("http://ex.org/p2")[0] == "Product"
    custom = kg.load_rdf(ttl, default_type="Thing")
    assert "Thing" in custom.num_nodes_dict
    with pytest.raises(ValueError, match="multi_type"):
        kg.load_rdf(ttl, multi_type="newest")


def test_neighbors_literals_and_lookup_errors(ttl):
    graph = kg.load_rdf(ttl)
    out = graph.neighbors("http://ex.org/p1", relation="brand")
    assert [(n.relation, n.iri, n.direction) for n in out] == [
        ("brand", "http://ex.org/lumo", "out")
    ]
    incoming = graph.neighbors("http://ex.org/lumo")
    assert {n.iri for n in incoming} == {"http://ex.org/p1", "http://ex.org/p2", "http://ex.org/p3"}
    assert all(n.relation == "rev_brand" for n in incoming)
    values = {(v.name, v.value, v.language) for v in graph.literals("http://ex.org/p1")}
    assert ("schema_name", "Rotes Auto", "de") in values
    with pytest.raises(kg.GraphLookupError, match="did you mean http://ex.org/p1"):
        graph.node("http://ex.org/p1x")
    with pytest.raises(kg.GraphLookupError, match="relations: .*brand"):
        graph.neighbors("http://ex.org/p1", relation="colour")


def test_all_formats_agree_with_rdflib(tmp_path, ttl):
    source = rdflib.Graph().parse(ttl)
    dataset = rdflib.Dataset()
    dataset.graph(rdflib.URIRef("http://ex.org/g")).parse(ttl)  # a named graph, merged on ingestion
    for ext, fmt in [
        ("nt", "nt"),
        ("nq", "nquads"),
        ("trig", "trig"),
        ("rdf", "xml"),
        ("jsonld", "json-ld"),
    ]:
        path = tmp_path / f"cat.{ext}"
        data = dataset if ext in ("nq", "trig") else source
        path.write_bytes(data.serialize(format=fmt, encoding="utf-8"))
        with pytest.warns(UserWarning):
            graph = kg.load_rdf(path)
        assert graph.num_triples == len(source), ext
        assert graph.num_nodes_dict["Product"] == 1
    gz = tmp_path / "cat.nt.gz"
    gz.write_bytes(gzip.compress((tmp_path / "cat.nt").read_bytes()))
    with pytest.warns(UserWarning):
        assert kg.load_rdf(gz).num_triples == len(source)


def test_folder_merge_and_blank_nodes_scoped_per_file(tmp_path):
    folder = tmp_path / "shop"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.ttl").write_text(
        '<http://ex.org/a> <http://ex.org/p> _:b . _:b <http://ex.org/q> "1" .'
    )
    (folder / "sub" / "b.nt").write_text("<http://ex.org/a> <http://ex.org/p> _:b .\n")
    (folder / "notes.txt").write_text("not rdf")
    graph = kg.load_rdf(folder)
    assert len(graph.sources) == 2
    blanks = [n for n in graph.nodes if n.startswith("_:")]
    assert len(blanks) == 2  # the same label in two files is two nodes
    assert graph.num_edges == 2
    # repeated triples are dropped: RDF graphs are sets
    assert kg.load_rdf([folder / "a.ttl", folder / "a.ttl"]).num_triples == 4


def test_round_trip_rdflib_networkx_pyg(ttl):
    with pytest.warns(UserWarning):
        graph = kg.load_rdf(ttl)
    as_rdflib = graph.to_rdflib()
    assert isomorphic(as_rdflib, rdflib.Graph().parse(ttl))
    with pytest.warns(UserWarning):
        again = kg.ProductGraph.from_rdflib(as_rdflib)
    assert again.num_nodes_dict == graph.num_nodes_dict
    nx_graph = graph.to_networkx()
    assert nx_graph.nodes["http://ex.org/p1"]["type"] == "Product"
    assert nx_graph.number_of_edges() == graph.num_edges
    assert nx_graph.has_edge("http://ex.org/p1", "http://ex.org/lumo", key="brand")
    data = graph.to_pyg()
    assert data["Brand"].num_nodes == 1
    edge = data["Product", "brand", "Brand"].edge_index
    assert edge.tolist() == [[0], [0]]
    assert data["Brand", "rev_brand", "Product"].edge_index.tolist() == [[0], [0]]
    data.validate()


def test_malformed_rdf_names_file_line_and_text(tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text('<http://a> <http://b> "x" .\n<http://a> <http://b> 12 12 .\n')
    with pytest.raises(RdfSyntaxError) as err:
        kg.load_rdf(bad)
    message = str(err.value)
    assert "bad.ttl, line 2" in message and "12 12" in message
    assert err.value.line == 2


def test_unknown_format_lists_supported(tmp_path):
    path = tmp_path / "cat.xlsx"
    path.write_text("x")
    with pytest.raises(RdfError, match=r"\.jsonld.*\.nt.*\.ttl"):
        kg.load_rdf(path)
    with pytest.raises(RdfError, match="unknown RDF format"):
        kg.load_rdf(path, format="excel")
    with pytest.raises(RdfError, match="no such file"):
        kg.load_rdf(tmp_path / "missing.ttl")


def test_xml_external_entity_is_never_read(tmp_path):
    xxe = tmp_path / "xxe.rdf"
    xxe.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:s="http://schema.org/">'
        '<rdf:Description rdf:about="http://ex.org/a"><s:name>&xxe;</s:name></rdf:Description></rdf:RDF>'
    )
    with pytest.raises(RdfError, match="external entit"):
        kg.load_rdf(xxe)
    # even past our own check, pyoxigraph does not resolve it
    from kg.rdf import TripleSink

    sink = TripleSink()
    with pytest.raises(SyntaxError):
        list(
            sink.add_quads(
                __import__("pyoxigraph").parse(
                    xxe.read_bytes(), __import__("pyoxigraph").RdfFormat.RDF_XML
                ),
                0,
                "",
            )
        )
    assert not any("root:" in v for v in sink.raw.lit_value)


def test_remote_jsonld_context_is_never_fetched(tmp_path):
    doc = tmp_path / "p.jsonld"
    doc.write_text(
        json.dumps({"@context": "https://schema.org/", "@id": "http://ex.org/a", "name": "x"})
    )
    with pytest.raises(RdfSyntaxError, match="never fetched"):
        kg.load_rdf(doc)


def test_empty_input_gives_empty_graph_and_warning(tmp_path):
    empty = tmp_path / "empty.nt"
    empty.write_text("")
    with pytest.warns(UserWarning, match="empty"):
        graph = kg.load_rdf(empty)
    assert graph.num_nodes == 0 and graph.relations == [] and graph.node_types == []
    assert graph.to_pyg().num_nodes == 0


def test_lenient_accepts_bad_iris_and_still_serialises(tmp_path):
    bad = tmp_path / "bad.nt"
    bad.write_text("<http://ex.org/a b> <http://ex.org/p> <http://ex.org/c> .\n")
    with pytest.raises(RdfSyntaxError, match="--lenient"):
        kg.load_rdf(bad)
    graph = kg.load_rdf(bad, lenient=True)
    assert graph.num_edges == 1
    assert b"a%20b" in graph.to_ntriples()


def test_repeated_triples_are_dropped_and_multi_valued_literals_kept(tmp_path):
    """A set of triples: repeats of a literal (one of several values of the same node and
    predicate), of an edge and of a type go, distinct values stay, first order kept; a graph
    read from two files drops what the second repeats."""
    first = tmp_path / "a.nt"
    first.write_text(
        '<http://ex.org/p> <http://schema.org/keywords> "red" .\n'
        '<http://ex.org/p> <http://schema.org/keywords> "blue" .\n'
        '<http://ex.org/p> <http://schema.org/keywords> "red" .\n'
        '<http://ex.org/p> <http://schema.org/keywords> "red"@en .\n'
        '<http://ex.org/p> <http://schema.org/brand> <http://ex.org/b> .\n'
        '<http://ex.org/p> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://schema.org/Product> .\n'
    )  # fmt: skip
    second = tmp_path / "b.nt"
    second.write_text(
        '<http://ex.org/p> <http://schema.org/keywords> "blue" .\n'
        '<http://ex.org/p> <http://schema.org/keywords> "green" .\n'
        '<http://ex.org/p> <http://schema.org/brand> <http://ex.org/b> .\n'
        '<http://ex.org/p> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://schema.org/Product> .\n'
    )  # fmt: skip
    graph = kg.load_rdf([first, second])
    assert graph.duplicates == 4
    assert graph.lit_value == ["red", "blue", "red", "green"]
    assert graph.lit_lang.tolist().count(-1) == 3  # "red"@en is another literal
    assert len(graph.src) == 1 and len(graph.type_node) == 1

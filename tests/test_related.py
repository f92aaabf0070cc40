"""related(): candidates from the index, relation boost / scorer hook, graph evidence;
lexical_lookup(): names found from partial, reordered, misspelt text."""

from __future__ import annotations

import numpy as np
import pytest

import kg
import kg.related
from kg.index import EntityIndex, EntityIndexError, StaleIndexError
from kg.labels import lexical_lookup
from kg.related import RELATION_BOOST, related

EX = "http://shop.example/"
TTL = """\
@prefix s: <http://schema.org/> .
@prefix ex: <http://shop.example/> .
ex:lego a s:Brand ; s:name "LEGO" .
ex:mattel a s:Brand ; s:name "Mattel" .
ex:acme a s:Brand ; s:name "Acme" .
ex:cars a s:CategoryCode ; s:name "Cars"@en, "Autos"@de .
ex:parts a s:CategoryCode ; s:name "Parts"@en .
ex:p1 a s:Product ; s:name "LEGO Technic Porsche 911 GT3 RS"@en ; s:brand ex:lego ; s:category ex:cars .
ex:p2 a s:Product ; s:name "LEGO Technic Bugatti Chiron"@en ; s:brand ex:lego ; s:category ex:cars .
ex:p3 a s:Product ; s:name "Hot Wheels Porsche 911"@en ; s:brand ex:mattel ; s:category ex:cars .
ex:p4 a s:Product ; s:name "LEGO City Police Station"@en ; s:brand ex:lego .
ex:p5 a s:Product ; s:name "Power Functions Motor Set"@en ; s:brand ex:lego ; s:category ex:parts ;
    s:isAccessoryOrSparePartFor ex:p1 .
ex:p6 a s:Product ; s:name "Acrylic display case"@en ; s:brand ex:acme ; s:category ex:parts ;
    s:isAccessoryOrSparePartFor ex:p1 .
"""
# hand-made vectors: p1 is the query; p2, p3 close; p4 middling; p5, p6 far
VECTORS = {
    "p1": [1.0, 0.0, 0.0, 0.0],
    "p2": [0.9, 0.3, 0.0, 0.0],
    "p3": [0.8, 0.0, 0.5, 0.0],
    "p4": [0.5, 0.0, 0.0, 0.8],
    "p5": [0.3, 0.9, 0.0, 0.3],
    "p6": [0.1, 0.0, 0.2, 0.9],
    "lego": [0.7, 0.7, 0.0, 0.0],
    "mattel": [0.6, 0.0, 0.8, 0.0],
    "acme": [0.0, 0.0, 0.1, 1.0],
    "cars": [0.5, 0.5, 0.5, 0.0],
    "parts": [0.0, 0.9, 0.0, 0.4],
}


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("cat") / "cat.ttl"
    path.write_text(TTL)
    return kg.load_rdf(path)


@pytest.fixture(scope="module")
def index(graph):
    iris = [EX + key for key in VECTORS]
    vectors = np.array(list(VECTORS.values()), "float32")
    return EntityIndex.build(
        iris, vectors, kind="torch", graph_version=kg.index.graph_version(graph)
    )


def test_related_products_are_ranked_and_explained(graph, index):
    items = related(graph, index, EX + "p1", k=3)
    assert [i.iri for i in items] == [EX + "p2", EX + "p3", EX + "p4"]
    top = items[0]
    assert top.node_type == "Product" and top.name == "LEGO Technic Bugatti Chiron"
    assert set(top.parts) == {"similarity", "evidence"}
    assert top.score == pytest.approx(sum(top.parts.values()))
    assert top.parts["evidence"] == pytest.approx(0.04)  # shared brand + shared category
    assert "shared brand: LEGO" in top.evidence and "shared category: Cars" in top.evidence
    paths = [e for e in top.evidence if e.startswith("path: ")]
    assert (
        "path: LEGO Technic Porsche 911 GT3 RS <-isAccessoryOrSparePartFor- "
        "Power Functions Motor Set -brand-> LEGO <-brand- LEGO Technic Bugatti Chiron"
    ) in paths
    assert items[1].evidence[0] == "shared category: Cars"
    assert all(i.iri != EX + "p1" for i in items)
    quiet = related(graph, index, EX + "p1", k=3, explain=False)
    assert [i.iri for i in quiet] == [i.iri for i in items] and quiet[0].evidence == []


@pytest.mark.parametrize("hub_degree", [1000, 2])
def test_paths_of_length_three_around_hubs(graph, index, monkeypatch, hub_degree):
    # with hub_degree=2 every neighbour of the query is a hub: the path is found by
    # expanding the candidate's side instead
    monkeypatch.setattr(kg.related, "HUB_DEGREE", hub_degree)
    items = related(graph, index, EX + "p1", k=5)
    case = next(i for i in items if i.iri == EX + "p6")
    assert (
        "path: LEGO Technic Porsche 911 GT3 RS <-isAccessoryOrSparePartFor- Acrylic display case"
    ) not in case.evidence  # a direct edge is not a path
    assert case.evidence[0].startswith("direct: ")
    assert (
        "path: LEGO Technic Porsche 911 GT3 RS <-isAccessoryOrSparePartFor- "
        "Power Functions Motor Set -category-> Parts <-category- Acrylic display case"
    ) in case.evidence
    assert len([e for e in case.evidence if e.startswith("path: ")]) <= 3


def test_relation_boosts_directly_linked_products(graph, index):
    plain = [i.iri for i in related(graph, index, EX + "p1", k=6)]
    assert plain.index(EX + "p5") > plain.index(EX + "p2")
    items = related(graph, index, EX + "p1", k=2, relation="isAccessoryOrSparePartFor")
    assert [i.iri for i in items] == [EX + "p5", EX + "p6"]
    assert items[0].parts["relation"] == RELATION_BOOST
    assert (
        "direct: LEGO Technic Porsche 911 GT3 RS <-isAccessoryOrSparePartFor- "
        "Power Functions Motor Set"
    ) in items[0].evidence
    # from the accessory's side, and by predicate IRI: the same edge, other direction
    back = related(
        graph, index, EX + "p6", k=1, relation="http://schema.org/isAccessoryOrSparePartFor"
    )
    assert back[0].iri == EX + "p1"
    # a relation to another type sets the answers' type: the query's brand
    brands = related(graph, index, EX + "p3", k=2, relation="brand")
    assert brands[0].iri == EX + "mattel" and {b.node_type for b in brands} == {"Brand"}
    assert [i.node_type for i in related(graph, index, EX + "p1", k=2, node_type="Brand")] == [
        "Brand",
        "Brand",
    ]
    with pytest.raises(kg.GraphLookupError, match="no relation 'colour'"):
        related(graph, index, EX + "p1", relation="colour")


def test_scorer_hook(graph, index):
    calls = []

    def scorer(query, candidates, relation):
        calls.append((query, list(candidates), relation))
        return [1.0 if c == EX + "p6" else 0.0 for c in candidates]

    items = related(
        graph, index, EX + "p1", k=2, relation="isAccessoryOrSparePartFor", scorer=scorer
    )
    # both are known accessories (relation boost); the scorer puts p6 first
    assert items[0].iri == EX + "p6" and items[0].parts["scorer"] == 1.0
    assert items[0].parts["relation"] == 1.0 and items[1].iri == EX + "p5"
    assert items[0].score == pytest.approx(sum(items[0].parts.values()))
    cosine = index.similarity(EX + "p1", [EX + "p6"])[0]
    assert items[0].parts["similarity"] == pytest.approx(cosine)
    query, candidates, relation = calls[0]
    assert query == EX + "p1" and relation == "isAccessoryOrSparePartFor"
    assert EX + "p5" in candidates and EX + "p1" not in candidates

    class Proposing:  # a scorer that proposes candidates the index would not rank high
        def __call__(self, query, candidates, relation):
            return [1.0 if c == EX + "p4" else 0.0 for c in candidates]

        def propose(self, query, relation, k):
            return [EX + "p4", query]

    items = related(graph, index, EX + "p1", k=1, node_type="Product", scorer=Proposing())
    assert items[0].iri == EX + "p4"
    with pytest.raises(ValueError, match="scorer returned shape"):
        related(graph, index, EX + "p1", scorer=lambda q, c, r: [0.0])


def test_bad_input(graph, index):
    with pytest.raises(EntityIndexError, match="k=0"):
        related(graph, index, EX + "p1", k=0)
    with pytest.raises(kg.GraphLookupError, match="did you mean"):
        related(graph, index, EX + "p11")
    with pytest.raises(kg.GraphLookupError, match="no node type 'Gadget'"):
        related(graph, index, EX + "p1", node_type="Gadget")
    stale = EntityIndex.build(index.iris, np.eye(11, 4, dtype="float32"), kind="torch", graph_version="old")  # fmt: skip
    with pytest.raises(StaleIndexError, match="kgf index"):
        related(graph, stale, EX + "p1")


def test_lexical_lookup(graph):
    hits = lexical_lookup(graph, "lego technic porsche")
    assert hits[0].iri == EX + "p1" and hits[0].text == "LEGO Technic Porsche 911 GT3 RS"
    iri, score, text = lexical_lookup(graph, "porshe tecnic lego", k=1)[0]  # reordered, misspelt
    assert iri == EX + "p1" and 0.5 < score < 1
    assert lexical_lookup(graph, "LEGO", node_type="Brand")[0] == (EX + "lego", 1.0, "LEGO")
    assert lexical_lookup(graph, "autos")[0].iri == EX + "cars"  # any language
    assert lexical_lookup(graph, "zzzz qqqq") == []
    with pytest.raises(ValueError, match="no letters"):
        lexical_lookup(graph, "  !! ")

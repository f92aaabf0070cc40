"""kg.samples: the synthetic multilingual toy and jewellery catalogue."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyoxigraph as ox
import pytest
import rdflib
from PIL import Image
from rdflib.namespace import RDF

from kg.samples import SAMPLE_BASE, SampleCatalogue, SampleSpec, write_sample_catalogue

S = rdflib.Namespace("http://schema.org/")
SKOS = rdflib.Namespace("http://www.w3.org/2004/02/skos/core#")
LANGS = {"en", "de", "es", "zh"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> SampleCatalogue:
    return write_sample_catalogue(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def graph(sample) -> rdflib.Graph:
    return rdflib.Graph().parse(sample.path, format="turtle")


def _products(graph: rdflib.Graph) -> list[rdflib.URIRef]:
    return sorted(graph.subjects(RDF.type, S.Product))


def _leaf(graph: rdflib.Graph, product) -> str:
    return str(graph.value(product, S.category)).rsplit("/", 1)[-1]


def test_deterministic_bytes(tmp_path):
    a = write_sample_catalogue(tmp_path / "a", n_products=40, seed=3, image_size=48)
    b = write_sample_catalogue(tmp_path / "b", n_products=40, seed=3, image_size=48)
    assert a.path.read_bytes() == b.path.read_bytes()
    pngs = sorted(p.name for p in a.image_dir.glob("*.png"))
    assert pngs == sorted(p.name for p in b.image_dir.glob("*.png"))
    assert pngs and all(
        (a.image_dir / n).read_bytes() == (b.image_dir / n).read_bytes() for n in pngs
    )
    c = write_sample_catalogue(tmp_path / "c", n_products=40, seed=4, image_size=48)
    assert c.path.read_bytes() != a.path.read_bytes()
    # the Turtle does not depend on the image size
    d = write_sample_catalogue(tmp_path / "d", n_products=40, seed=3, image_size=32)
    assert d.path.read_bytes() == a.path.read_bytes()


def test_result_and_spec(sample):
    assert sample.path.name == "catalogue.ttl" and sample.path.is_file()
    assert sample["path"] == sample.path and sample["products"] == 120
    assert sample.spec == SampleSpec(120, 0, 96)
    assert sample.counts["brands"] >= 8 and sample.counts["categories"] == 14
    with pytest.raises(ValueError, match="n_products"):
        SampleSpec(n_products=0)


def test_parses_with_pyoxigraph_and_rdflib(sample, graph):
    triples = list(ox.parse(path=str(sample.path), format=ox.RdfFormat.TURTLE))
    assert len(triples) == len(graph) == sample.counts["triples"]
    assert all(str(t.subject.value).startswith(SAMPLE_BASE) for t in triples)


def test_names_in_four_languages_and_gaps(sample, graph):
    products = _products(graph)
    assert len(products) == 120
    described = defaultdict(int)
    for p in products:
        names = list(graph.objects(p, S.name))
        assert {n.language for n in names} == LANGS and len(names) == 4
        assert str(graph.value(p, S.sku)) and graph.value(p, S.brand) is not None
        for d in graph.objects(p, S.description):
            described[d.language] += 1
    assert described["en"] == 120
    assert all(80 <= described[lang] < 120 for lang in ("de", "es", "zh"))
    assert 100 <= sample.counts["images"] < 120 and 110 <= sample.counts["prices"] <= 120
    assert any(str(graph.value(p, S.sku)) in str(graph.value(p, S.name)) for p in products)


def test_prices_decimal_and_jewellery_pricier(graph):
    by_root = defaultdict(list)
    for p in _products(graph):
        price = graph.value(p, S.price)
        if price is None or graph.value(p, S.isAccessoryOrSparePartFor) is not None:
            continue
        assert price.datatype == rdflib.XSD.decimal
        assert graph.value(p, S.priceCurrency) == rdflib.Literal("EUR")
        root = graph.value(graph.value(p, S.category), SKOS.broader)
        by_root[str(root).rsplit("/", 1)[-1]].append(float(price))
    assert np.median(by_root["jewellery"]) > 3 * np.median(by_root["toys"])


def test_categories_hierarchy(graph):
    cats = set(graph.subjects(RDF.type, S.CategoryCode))
    roots = {c for c in cats if graph.value(c, SKOS.broader) is None}
    assert {str(r).rsplit("/", 1)[-1] for r in roots} == {"toys", "jewellery"}
    for c in cats:
        assert {n.language for n in graph.objects(c, S.name)} == LANGS
        assert c in roots or graph.value(c, SKOS.broader) in roots


def test_relations_have_signal(sample, graph):
    products = set(_products(graph))
    accessory = {p for p in products if graph.value(p, S.isAccessoryOrSparePartFor) is not None}
    assert len(accessory) == sample.counts["accessories"] > 0
    for rel in ("isAccessoryOrSparePartFor", "isSimilarTo", "isRelatedTo"):
        edges = list(graph.subject_objects(S[rel]))
        assert len(edges) == sample.counts[rel] > 0
        assert all(s in products and o in products and s != o for s, o in edges)
    same_brand = 0
    for s, o in graph.subject_objects(S.isAccessoryOrSparePartFor):
        assert o not in accessory and s in accessory
        assert _leaf(graph, s).endswith("-accessories")
        same_brand += graph.value(s, S.brand) == graph.value(o, S.brand)
    assert same_brand > 0.6 * sample.counts["isAccessoryOrSparePartFor"]
    for s, o in graph.subject_objects(S.isSimilarTo):
        assert _leaf(graph, s) == _leaf(graph, o) and (o, S.isSimilarTo, s) in graph
    for s, o in graph.subject_objects(S.isRelatedTo):
        assert _leaf(graph, s) != _leaf(graph, o) and (o, S.isRelatedTo, s) in graph
    # sparse: far from every pair of the same leaf being similar
    n = len(products - accessory)
    assert sample.counts["isSimilarTo"] < 0.1 * n * n


def _pixels(sample: SampleCatalogue, graph: rdflib.Graph, product) -> np.ndarray | None:
    ref = graph.value(product, S.image)
    if ref is None:
        return None
    path = Path(sample.path).parent / str(ref)
    img = Image.open(path)
    assert img.mode == "RGB" and img.size == (96, 96)
    return np.asarray(img, dtype=np.float32)


def test_images_carry_colour_and_category(sample, graph):
    red, groups = [], defaultdict(list)
    for p in _products(graph):
        px = _pixels(sample, graph, p)
        if px is None:
            continue
        colour = str(graph.value(p, S.color))
        # foreground: pixels far from the (light, near-uniform) background
        border = np.concatenate([px[0], px[-1], px[:, 0], px[:, -1]])
        fg = np.abs(px - np.median(border, 0)).sum(-1) > 60
        assert 0.02 < fg.mean() < 0.8
        if colour == "red":
            red.append((px.reshape(-1, 3).mean(0), px[fg].mean(0)))
        # where the shape is, whatever its colour, on a 12x12 grid
        groups[_leaf(graph, p), colour].append(fg.reshape(12, 8, 12, 8).mean((1, 3)).ravel())
    assert red
    for whole, shape in red:  # the whole image is reddish, the shape clearly red
        assert whole[0] > whole[1] + 4 and whole[0] > whole[2] + 4
        assert shape[0] > shape[1] + 60 and shape[0] > shape[2] + 60

    within, across = [], []
    keys = sorted(k for k in groups if not k[0].endswith("-accessories"))
    for a, b in itertools.combinations_with_replacement(keys, 2):
        pairs = (
            itertools.combinations(groups[a], 2)
            if a == b
            else itertools.product(groups[a], groups[b])
        )
        dist = [float(np.abs(x - y).mean()) for x, y in pairs]
        if a == b:
            within += dist
        elif a[0] != b[0]:
            across += dist
    assert within and across and np.mean(within) < 0.7 * np.mean(across)


def test_counts_scale_with_n_products(tmp_path):
    small = write_sample_catalogue(tmp_path / "s", n_products=30, seed=0, image_size=24)
    large = write_sample_catalogue(tmp_path / "l", n_products=300, seed=0, image_size=24)
    assert small.counts["products"] == 30 and large.counts["products"] == 300
    assert large.counts["triples"] > 5 * small.counts["triples"]
    for rel in ("isAccessoryOrSparePartFor", "isSimilarTo", "isRelatedTo"):
        assert large.counts[rel] > 3 * small.counts[rel] > 0
    assert len(list(large.image_dir.glob("*.png"))) == large.counts["images"]
    tiny = write_sample_catalogue(tmp_path / "t", n_products=1, seed=0, image_size=16)
    assert tiny.counts["products"] == 1 and tiny.counts["accessories"] == 0


def test_product_lines_are_a_graph_fact(tmp_path):
    plain = write_sample_catalogue(tmp_path / "plain", n_products=200, seed=1, image_size=16)
    lined = write_sample_catalogue(
        tmp_path / "lined", n_products=200, seed=1, image_size=16, product_lines=True
    )
    assert lined.spec == SampleSpec(200, 1, 16, product_lines=True)
    assert plain.counts["lines"] == 0 < lined.counts["lines"]
    g = rdflib.Graph().parse(lined.path, format="turtle")
    lines = set(g.subjects(RDF.type, S.ProductGroup))
    assert len(lines) == lined.counts["lines"]
    line_of = dict(g.subject_objects(S.isVariantOf))
    main = [p for p in _products(g) if not _leaf(g, p).endswith("-accessories")]
    assert set(line_of) == set(main) and set(line_of.values()) == lines
    members = defaultdict(list)
    for product, line in line_of.items():
        members[line].append(product)
    assert max(len(m) for m in members.values()) == 3  # LINE_SIZE
    for m in members.values():  # a line never mixes brands or categories
        assert len({(g.value(p, S.brand), _leaf(g, p)) for p in m}) == 1
    # an accessory's products share one line when it has a same-brand target
    targets = defaultdict(set)
    for s, o in g.subject_objects(S.isAccessoryOrSparePartFor):
        targets[s].add(o)
    same_brand = [
        ts
        for a, ts in targets.items()
        if all(g.value(t, S.brand) == g.value(a, S.brand) for t in ts)
    ]
    assert same_brand and all(len({line_of[t] for t in ts}) == 1 for ts in same_brand)
    # the line is in the graph only: no name or description mentions it
    text = " ".join(str(o) for p in main for o in g.objects(p, S.name))
    text += " ".join(str(o) for p in main for o in g.objects(p, S.description))
    assert " line " not in f" {text.lower()} "
    # without lines the relations draw among the whole brand + category
    g0 = rdflib.Graph().parse(plain.path, format="turtle")
    assert not set(g0.subjects(RDF.type, S.ProductGroup))

"""align: mention detection, linking, NIL, bounds, errors, training and save/load."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import kg
from align import (
    Link,
    Linker,
    LinkerError,
    Mention,
    fit_linker,
    link_table,
    record_mention,
    train_linker,
)
from align import text as T
from align.scorer import best_threshold
from fusion.features import FeatureSpec, build_features

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TTL = """\
@prefix s: <http://schema.org/> .
@prefix ex: <http://ex.org/> .
ex:p1 a s:Product ; s:name "Sony PS-LX350H Belt Drive Turntable"@en ; s:brand ex:sony ; s:price 99.0 .
ex:p2 a s:Product ; s:name "Bose Acoustimass 5 Series III Speaker System AM53BK"@en ;
      s:brand ex:bose ; s:price 399.0 .
ex:p3 a s:Product ; s:name "Apple iPod nano 8GB MB598LL/A"@en ; s:brand ex:apple ; s:price 149.0 .
ex:p4 a s:Product ; s:name "Sony Bravia KDL-40V4100 40-inch LCD HDTV"@en ; s:brand ex:sony ;
      s:price 899.0 .
ex:p5 a s:Product ; s:name "Canon EOS 550D Digital SLR Camera"@en ; s:brand ex:canon ; s:price 749.0 .
ex:p6 a s:Product ; s:name "Sony Cyber-shot DSC-W120 Digital Camera"@en ; s:brand ex:sony ;
      s:price 179.0 .
ex:sony a s:Brand ; s:name "Sony" .
ex:bose a s:Brand ; s:name "Bose" .
ex:apple a s:Brand ; s:name "Apple" .
ex:canon a s:Brand ; s:name "Canon" .
"""
EX = "http://ex.org/"

# labelled offers for the tiny catalogue: (offer, product or None for no match)
OFFERS = [
    ("sony pslx350h turntable belt drive", "p1"),
    ("bose am53bk acoustimass 5 speakers", "p2"),
    ("ipod nano 8 gb mb598ll", "p3"),
    ("sony bravia 40 inch lcd tv kdl40v4100", "p4"),
    ("canon eos 550d dslr", "p5"),
    ("sony cybershot dsc-w120 camera", "p6"),
    ("garden hose 50 ft green", None),
    ("organic coffee beans 1kg", None),
    ("leather office chair black", None),
    ("wireless mouse logitech m325", None),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("align")
    (root / "cat.ttl").write_text(TTL)
    graph = kg.load_rdf(root / "cat.ttl")
    ws = graph.save(root / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(image_encoder=None))
    return ws


@pytest.fixture(scope="module")
def linker(workspace):
    return Linker(workspace)


def pairs(offers):
    records, iris, labels = [], [], []
    products = [f"{EX}p{i}" for i in range(1, 7)]
    for text, gold in offers:
        for iri in products:
            records.append({"name": text})
            iris.append(iri)
            labels.append(int(gold is not None and iri == EX + gold))
    return records, iris, np.array(labels)


@pytest.fixture(scope="module")
def trained(workspace, tmp_path_factory):
    linker = Linker(workspace)
    train = pairs(OFFERS[:4] + OFFERS[6:8])
    valid = pairs(OFFERS[4:6] + OFFERS[8:])
    metrics = fit_linker(linker, *train, valid=valid, hidden=0, projection=False, epochs=200)
    return linker, metrics


# ---------------------------------------------------------------------- text helpers
def test_model_tokens_and_prices():
    assert T.model_tokens("Sony PS-LX350H, KDL-40V4100 and MB598LL/A") == {
        "pslx350h", "kdl40v4100", "mb598ll",
    }  # fmt: skip
    assert T.model_tokens("released 2009, 3.5 inch, 8GB") == set()  # numbers, too short
    assert T.numbers("40-inch 2-1/2 and 3,5") == {"40", "2", "1", "3.5"}
    assert T.parse_price("$1,299.00") == 1299.0 and T.parse_price("") is None
    offsets = T.mention_tokens("Sony PS-LX350H!")
    assert [(s, e, t) for s, e, t in offsets] == [(0, 4, "sony"), (5, 14, "pslx350h")]


def test_record_mention_joins_fields():
    m = record_mention({"id": "7", "name": "sony tv", "description": "40 inch", "price": "$899"})
    assert m.text == "sony tv. 40 inch" and m.title == "sony tv" and m.price == 899.0
    assert (m.start, m.end) == (0, len(m.text))


# ---------------------------------------------------------------------- linking
def test_link_text_spans_and_offsets(linker):
    text = "I bought the Sony PS-LX350H turntable and a Bose Acoustimass speaker system."
    links = linker.link_text(text)
    assert [text[link.start : link.end] for link in links] == [
        "Sony PS-LX350H turntable",
        "Bose Acoustimass speaker system",
    ]
    assert all(link.mention == text[link.start : link.end] for link in links)
    assert [link.iri for link in links] == [EX + "p1", EX + "p2"]
    first = links[0]
    assert isinstance(first, Link) and not first.nil and first.type == "Product"
    assert first.alternatives[0] == (first.iri, pytest.approx(first.score))
    assert len(first.alternatives) <= linker.config.k
    d = linker.entities.text_vecs.shape[1]
    assert first.representation.shape == (d + linker.entities.graph_vecs.shape[1],)
    json.dumps(first.to_dict())


def test_model_number_mention(linker):
    text = "Looking for a cheap KDL-40V4100, any offers?"
    (link,) = linker.link_text(text)
    assert text[link.start : link.end] == "KDL-40V4100"
    assert link.iri == EX + "p4" and not link.nil


def test_graph_enriched_vectors(linker):
    entities = linker.entities
    assert entities.graph_source == "neighbour-mean"
    p1, sony = entities.row_of[EX + "p1"], entities.row_of[EX + "sony"]
    assert entities.brands[p1] == ("Sony",)
    expected = entities.text_vecs[p1] + entities.text_vecs[sony]
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(entities.graph_vecs[p1], expected, atol=1e-5)


def test_gnn_embeddings_are_the_graph_vectors(workspace, trained, tmp_path):
    import shutil

    import torch
    from safetensors.torch import save_file

    ws = shutil.copytree(workspace, tmp_path / "ws")
    (ws / "models" / "run1").mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    save_file(
        {
            "Product": torch.randn(6, 16, generator=generator),
            "Brand": torch.randn(4, 16, generator=generator),
        },
        str(ws / "models" / "run1" / "embeddings.safetensors"),
    )
    linker = Linker(ws)
    entities = linker.entities
    assert entities.graph_source == "gnn:run1" and entities.graph_map.shape == (384, 16)
    (link,) = linker.link_text("KDL-40V4100")
    assert link.iri == EX + "p4" and link.representation.shape == (384 + 16,)
    np.testing.assert_allclose(
        link.representation[384:], entities.graph_vecs[entities.row_of[link.iri]]
    )


def test_link_record_and_types(linker):
    link = linker.link_record({"id": "x", "name": "canon eos 550d", "price": "749"})
    assert link.iri == EX + "p5" and (link.start, link.end) == (0, len(link.mention))
    brand = linker.link_record({"name": "sony"}, types=["Brand"])
    assert brand.alternatives[0][0] == EX + "sony"
    with pytest.raises(ValueError, match="no linkable entities of type"):
        linker.link_record({"name": "sony"}, types=["Offer"])


def test_empty_and_unknown_script(linker):
    assert linker.link_text("") == [] and linker.link_text("   \n") == []
    links = linker.link_text("索尼电视机很好")  # no catalogue word: dense linking still tries
    assert len(links) == 1 and links[0].alternatives
    assert (links[0].start, links[0].end) == (0, 7)


def test_long_text_is_bounded(linker):
    filler = "lorem ipsum dolor sit amet consectetur adipiscing elit " * 40
    chunk = filler + "the Sony PS-LX350H turntable is great. "
    text = chunk * (1_000_000 // len(chunk) + 1)
    assert len(text) >= 1_000_000
    links = linker.link_text(text)  # bounded: windows, and at most max_mentions links
    assert 0 < len(links) <= linker.detector.max_mentions
    assert all(text[link.start : link.end] == link.mention for link in links)
    assert links[-1].start > len(chunk)  # found beyond the first window


def test_missing_features_names_encode_step(tmp_path):
    (tmp_path / "cat.ttl").write_text(TTL)
    ws = kg.load_rdf(tmp_path / "cat.ttl").save(tmp_path / "ws", sparql_store=False)
    with pytest.raises(LinkerError, match=r"kgf encode .*ws"):
        Linker(ws)


# ---------------------------------------------------------------------- training
def test_threshold_maximises_f1():
    cut = best_threshold(np.array([0.9, 0.8, 0.4, 0.3]), np.array([1, 1, 0, 1]))
    assert cut["f1"] == pytest.approx(0.857, abs=1e-3) and 0.0 < cut["threshold"] < 0.3
    cut = best_threshold(np.array([0.9, 0.8, 0.4, 0.3]), np.array([1, 1, 0, 0]))
    assert cut["f1"] == 1.0 and 0.4 < cut["threshold"] < 0.8


def test_nil_after_calibration(trained):
    linker, metrics = trained
    assert linker.config.trained and metrics["valid"]["f1"] > 0.5
    for text in ("the weather is lovely today", "garden hose 50 ft green"):
        assert all(link.nil and link.iri is None for link in linker.link_text(text))
        assert linker.link_record({"name": text}).nil
    assert linker.link_record({"name": "sony dsc-w120"}).iri == EX + "p6"


def test_save_load_round_trip(trained, tmp_path):
    linker, _ = trained
    folder = linker.save(tmp_path / "linker")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    again = Linker(linker.workspace, linker_dir=folder)
    assert again.config.trained and again.config.threshold == linker.config.threshold
    records, iris, _ = pairs(OFFERS)
    np.testing.assert_allclose(
        again.score_pairs(records, iris), linker.score_pairs(records, iris), atol=1e-6
    )
    untrained = Linker(linker.workspace, linker_dir=tmp_path / "none")
    assert not untrained.config.trained


def test_train_linker_from_csv(workspace, tmp_path):
    mentions = tmp_path / "tableB.csv"
    with open(mentions, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "name", "price"])
        for i, (text, _) in enumerate(OFFERS):
            writer.writerow([i, text, ""])

    def write_pairs(path, chosen):
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["ltable_id", "rtable_id", "label"])
            for i in chosen:
                for p in range(1, 7):
                    writer.writerow([f"p{p}", i, int(OFFERS[i][1] == f"p{p}")])

    write_pairs(tmp_path / "train.csv", [0, 1, 2, 3, 6, 7])
    write_pairs(tmp_path / "valid.csv", [4, 5, 8, 9])
    report = train_linker(
        workspace, mentions, tmp_path / "train.csv", tmp_path / "valid.csv",
        hidden=8, epochs=100, save=False,
    )  # fmt: skip
    assert report.config.record_types == ["Product"] and report.path is None
    assert report.metrics["train_pairs"] == 36 and report.metrics["valid_matches"] == 2
    held_out = train_linker(
        workspace, mentions, tmp_path / "train.csv", hidden=0, epochs=50, projection=False,
        save=False,
    )  # fmt: skip
    assert held_out.metrics["valid_pairs"] > 0  # no valid file: a fifth of mentions held out
    with pytest.raises(LinkerError, match="line 2.*empty id"):
        (tmp_path / "bad.csv").write_text("id,name\n,foo\n")
        train_linker(workspace, tmp_path / "bad.csv", tmp_path / "train.csv", save=False)


def test_abt_buy_smoke(tmp_path):
    """End to end on real data: the Abt-Buy products and offers of 100 training and 20
    validation pairs (names only), trained, saved, loaded, used."""
    data = DATA / "matching" / "abt_buy"
    if not data.is_dir():
        pytest.skip("needs ../shared/data/matching/abt_buy (real data not present)")
    from kg.tabular import Mapping, table_to_rdf

    with open(data / "train.csv", encoding="utf-8-sig") as fh:
        train = list(csv.DictReader(fh))[:100]
    with open(data / "valid.csv", encoding="utf-8-sig") as fh:
        valid = list(csv.DictReader(fh))[:20]
    left = {r["ltable_id"] for r in train + valid}
    right = {r["rtable_id"] for r in train + valid}
    for name, keep in (("tableA.csv", left), ("tableB.csv", right)):
        with open(data / name, encoding="utf-8-sig") as fh:
            rows = [r for r in csv.DictReader(fh) if r["id"] in keep]
        with open(tmp_path / name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["id", "name", "description", "price"])
            writer.writeheader()
            for row in rows:  # names only (descriptions blanked): keeps encoding short
                writer.writerow({**row, "description": ""})
    for name, rows in (("train.csv", train), ("valid.csv", valid)):
        with open(tmp_path / name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["ltable_id", "rtable_id", "label"])
            writer.writeheader()
            writer.writerows(rows)
    mapping = Mapping.from_toml(Path(__file__).resolve().parents[1] / "examples" / "abt_buy.toml")
    table_to_rdf(tmp_path / "tableA.csv", mapping, tmp_path / "catalogue.ttl")
    graph = kg.load_rdf(tmp_path / "catalogue.ttl")
    ws = graph.save(tmp_path / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(image_encoder=None))
    report = train_linker(
        ws, tmp_path / "tableB.csv", tmp_path / "train.csv", tmp_path / "valid.csv",
        base=mapping.base, epochs=60,
    )  # fmt: skip
    assert (ws / "linker" / "config.json").is_file() and (
        ws / "linker" / "model.safetensors"
    ).is_file()
    assert report.metrics["train_pairs"] == 100 and 0.0 <= report.metrics["valid"]["f1"] <= 1.0
    linker = Linker(ws)
    assert linker.config.trained and linker.config.record_types == ["Product"]
    record = {"name": "sony turntable pslx350h", "price": ""}
    link = linker.link_record(record)
    assert link.alternatives and isinstance(link.score, float)
    assert isinstance(Mention("x"), Mention)
    offers = tmp_path / "offers.csv"
    offers.write_text("id,name,price\n1,sony turntable pslx350h,\n2,,\n3,apple ipod nano 8gb,99\n")
    out = tmp_path / "links.csv"
    assert link_table(linker, offers, out) == 3
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {"id", "iri", "type", "score", "nil", "mention", "alternatives"}
    assert next(r for r in rows if r["id"] == "2")["nil"] == "1"  # no text: a NIL row

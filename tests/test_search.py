"""Multimodal product search (align.search, `kgf search`, `kgf align`, /search) on 200
Fashion products (skipped without ../shared/data/products/fashion)."""

from __future__ import annotations

import csv
import json
import warnings

import pytest
import torch
from conftest import ROOT, shared

from align.search import SearchError
from align.search_facts import check_query, words
from kgfusion.cli import main
from kgfusion.session import Session

ROWS = 200


def _build(tmp, name: str, text: str, image: str | None):
    folder = shared("products/fashion")
    data = tmp / f"{name}-data"
    data.mkdir()
    with open(folder / "styles.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:ROWS]
    with open(data / "styles.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (data / "images").symlink_to(folder / "images")
    ws = tmp / name
    assert main(["build", str(data / "styles.csv"), "--mapping", str(ROOT / "examples" / "fashion.toml"),
                 "-o", str(ws), "--data-root", str(folder.resolve())]) == 0  # fmt: skip
    encode = ["encode", str(ws), "--text", text, "--image", image or "none", "--no-numeric"]
    assert main(encode) == 0
    return ws, {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    torch.set_num_threads(1)
    ws, rows = _build(tmp_path_factory.mktemp("search"), "ws", "minilm", "efficientnet-lite0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["align", str(ws), "--epochs", "8"]) == 0
    assert not caught or all("fitted" not in str(w.message) for w in caught)
    return ws, rows


@pytest.fixture(scope="module")
def session(fashion):
    return Session(fashion[0])


def test_named_facts_rank_products_whose_names_lack_the_words(fashion, session):
    _, rows = fashion
    # a product whose name does not say its colour: found through the graph's colour edge
    row = next(r for r in rows.values()
               if r["baseColour"] and r["baseColour"].lower() not in r["productDisplayName"].lower()
               and r["season"] and r["season"].lower() not in r["productDisplayName"].lower())  # fmt: skip
    query = f"{row['baseColour'].lower()} {row['season'].lower()} {row['articleType'].lower()}"
    want = {i for i, r in rows.items()
            if (r["baseColour"], r["season"], r["articleType"]) ==
            (row["baseColour"], row["season"], row["articleType"])}  # fmt: skip
    results = session.search(query, k=len(want))
    assert {f.name for f in results.facts} >= {row["baseColour"], row["season"]}
    found = {h.iri.rsplit("/", 1)[-1] for h in results.hits}
    assert found == want  # every product with all three facts, and only those, first
    top = results.hits[0]
    assert set(top.parts) == {"text", "image", "graph"} and top.parts["graph"] == 3.0
    assert top.score == pytest.approx(sum(top.parts.values()), abs=1e-4)
    assert results.alignment == "infonce-graph"


def test_photo_query_finds_its_product(fashion, session):
    ws, rows = fashion
    product = next(iter(rows))
    photo = shared("products/fashion") / "images" / f"{product}.jpg"
    results = session.search(image=photo, k=3)
    assert results.hits[0].iri.endswith(f"/{product}")
    assert results.hits[0].parts["image"] == pytest.approx(1.0, abs=1e-3)


def test_cli_json_and_saved_alignment(fashion, capsys):
    ws, _ = fashion
    assert (ws / "alignment" / "infonce-graph" / "model.safetensors").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the saved alignment is loaded, not fitted again
        assert main(["search", str(ws), "blue tshirt for men", "-k", "4", "--format", "json",
                     "--filter", "type=Product"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["hits"]) == 4 and doc["alignment"] == "infonce-graph"
    assert [f["name"] for f in doc["facts"]] == ["Blue", "Tshirts", "Men"]
    assert all(set(h["parts"]) == {"text", "image", "graph"} for h in doc["hits"])


@pytest.mark.parametrize(("query", "message"), [
    ("", "empty query"), ("  ?! ", "no letters or digits"), ("\ue000 shoes", "no known script"),
    ("ⵜⴰⵎⴰⵣⵉⵖⵜ", r"script the text encoders do not know \(TIFINAGH\)"),
])  # fmt: skip
def test_bad_queries(session, query, message):
    with pytest.raises(SearchError, match=message):
        session.search(query)


def test_bad_photo_and_filters(fashion, session, tmp_path, capsys):
    ws, _ = fashion
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(SearchError, match="cannot read the photo .*photo.jpg"):
        session.search(image=bad)
    with pytest.raises(SearchError, match="did you mean 'Product'"):
        session.search("shoes", filters=["type=Prodcut"])
    with pytest.raises(SearchError, match="unknown filter 'colour'"):
        session.search("shoes", filters={"colour": "Red"})
    assert main(["search", str(ws), "   "]) == 2
    assert "empty query" in capsys.readouterr().err


def test_service_search(fashion, session):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    ws, rows = fashion
    with TestClient(create_app(session)) as client:
        answer = client.get("/search", params={"q": "men tshirt", "k": 3})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["hits"]) == 3 and body["hits"][0]["parts"]["graph"] == 2.0
        assert client.get("/search", params={"q": ""}).status_code == 422
        wrong = client.get("/search", params={"q": "shoes", "type": "Prodct"})
        assert wrong.status_code == 422 and "did you mean 'Product'" in wrong.json()["detail"]
        product = next(iter(rows))
        photo = (shared("products/fashion") / "images" / f"{product}.jpg").read_bytes()
        found = client.post("/search/image", params={"k": 2}, content=photo)
        assert found.status_code == 200 and found.json()["hits"][0]["iri"].endswith(f"/{product}")
        assert client.post("/search/image", content=b"junk").status_code == 422


def test_text_only_multilingual_workspace(tmp_path):
    ws, rows = _build(tmp_path, "text-only", "e5-multilingual", None)
    session = Session(ws)
    with pytest.warns(UserWarning, match="no image features: text and graph search only"):
        results = session.search("T-Shirt für Herren", k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        again = session.search("rotes Kleid", k=5)
    assert results.alignment is None and again.notes == []
    assert all(h.parts["image"] == 0.0 for h in results.hits)
    kinds = [rows[h.iri.rsplit("/", 1)[-1]]["articleType"] for h in results.hits]
    assert kinds.count("Tshirts") >= 3, kinds  # German words, English names
    with pytest.raises(SearchError, match="no image features"):
        session.search(image=shared("products/fashion") / "images" / f"{next(iter(rows))}.jpg")


def test_query_words():
    assert words("Men's T-Shirts") == ["men", "s", "tshirt"]
    assert words("dresses, watches & flip flops") == ["dress", "watch", "flip", "flop"]
    assert check_query("  красное платье ") == "красное платье"

"""Feature building: modalities and masks, the language rule, bad images, the cache."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import kg
from fusion.features import FeatureSpec, NodeFeatures, build_features, node_texts

TTL = """\
@prefix s: <http://schema.org/> .
@prefix ex: <http://ex.org/> .
ex:p1 a s:Product ; s:name "red toy car"@en, "rotes Spielzeugauto"@de ; s:price 10 ; s:image "p1.png" .
ex:p2 a s:Product ; s:name "Goldring"@de ; s:description "a ring"@en ; s:price 30 ; s:image "cmyk.jpg" .
ex:p3 a s:Product ; s:name "   "@en ; s:image "broken.png" .
ex:p4 a s:Product ; s:name "necklace" ; s:image "https://cdn.example/p4.png" .
ex:p5 a s:Product ; s:name "palette toy" ; s:image "palette.png" ; s:price 20 .
ex:b a s:Brand .
"""


@pytest.fixture
def workspace(tmp_path):
    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "p1.png")
    Image.new("CMYK", (40, 40), (0, 80, 200, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("P", (30, 30), 3).save(tmp_path / "palette.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (tmp_path / "cat.ttl").write_text(TTL)
    graph = kg.load_rdf(tmp_path / "cat.ttl")
    return graph, graph.save(tmp_path / "ws")


def test_language_rule_and_missing_text(workspace):
    graph, _ = workspace
    texts = node_texts(graph, "Product", FeatureSpec())
    by_iri = dict(zip(graph.node_iris("Product"), texts, strict=True))
    assert by_iri["http://ex.org/p1"] == "red toy car"  # en preferred over de
    assert by_iri["http://ex.org/p2"] == "Goldring. a ring"  # name (only de) + description
    assert by_iri["http://ex.org/p3"] is None  # whitespace-only is missing, not empty text
    german = node_texts(graph, "Product", FeatureSpec(languages=("de", "en")))
    assert german[graph.node("http://ex.org/p1")[1]] == "rotes Spielzeugauto"


def test_build_features_masks_and_reports(workspace):
    graph, ws = workspace
    features, report = build_features(graph, ws, FeatureSpec(batch_size=4))
    text_x, text_mask = features.features["Product"]["text"]
    image_x, image_mask = features.features["Product"]["image"]
    num_x, num_mask = features.features["Product"]["numeric"]
    index = {iri: graph.node(iri)[1] for iri in graph.node_iris("Product")}
    assert text_x.shape == (5, 384) and image_x.shape == (5, 1280)
    assert text_mask.tolist() == [True, True, False, True, True]
    assert not image_mask[index["http://ex.org/p3"]] and not image_mask[index["http://ex.org/p4"]]
    assert (
        image_mask[index["http://ex.org/p2"]] and image_mask[index["http://ex.org/p5"]]
    )  # CMYK, palette
    assert torch.allclose(text_x[text_mask].norm(dim=1), torch.ones(4), atol=1e-4)
    assert (text_x[~text_mask] == 0).all() and (image_x[~image_mask] == 0).all()
    assert num_mask.tolist() == [True, True, False, False, True]
    assert torch.allclose(num_x[num_mask, 0], torch.tensor([-1.2247, 1.2247, 0.0]), atol=1e-3)
    problems = "\n".join(report.problems)
    assert "http://ex.org/p3" in problems and "broken.png" in problems
    assert "http://ex.org/p4" in problems and "not downloaded" in problems
    assert "Brand" not in features.features  # no modality at all: no entry
    loaded = NodeFeatures.load(ws)
    assert torch.equal(loaded.features["Product"]["image"][0], image_x)
    assert loaded.spec == features.spec


def test_cache_second_run_encodes_nothing_and_a_change_only_itself(workspace, tmp_path):
    graph, ws = workspace
    spec = FeatureSpec(image_encoder=None)
    first, report = build_features(graph, ws, spec)
    assert report.encoded == 4 and report.cached == 0
    _, again = build_features(kg.load_graph(ws), ws, spec)
    assert again.encoded == 0 and again.cached == 4
    changed = tmp_path / "cat.ttl"
    changed.write_text(TTL.replace('"red toy car"@en', '"blue toy car"@en'))
    graph2 = kg.load_rdf(changed)
    second, report2 = build_features(graph2, ws, spec)
    assert report2.encoded == 1 and report2.cached == 3
    i = graph2.node("http://ex.org/p1")[1]
    j = graph2.node("http://ex.org/p5")[1]
    assert not torch.allclose(
        first.features["Product"]["text"][0][i], second.features["Product"]["text"][0][i]
    )
    assert torch.equal(
        first.features["Product"]["text"][0][j], second.features["Product"]["text"][0][j]
    )


def test_missing_features_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="kgf encode"):
        NodeFeatures.load(tmp_path)

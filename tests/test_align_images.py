"""align, images: photo lists, training, linking, NIL, save/load, errors, CLI, Grocery smoke."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared
from PIL import Image, ImageEnhance

import kg
from align import ImageLinker, Link, Linker, LinkerError, read_photo_list, train_image_linker
from align.image_train import _siblings, cluster_holdout, trunk_outputs
from align.images import IMAGE_LINKER_DIR, find_group_relation, image_files, windows
from fusion.encoders import ImageError
from fusion.features import FeatureSpec, build_features
from kg.samples import write_sample_catalogue
from kgfusion.cli import main

VARIANTS = (
    lambda im: im.rotate(12, fillcolor=(235, 235, 235)),
    lambda im: ImageEnhance.Brightness(im).enhance(1.25),
    lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((4, 4, 60, 60)),
    lambda im: ImageEnhance.Contrast(im).enhance(0.7),
)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Sample catalogue (16 products, 64 px images), encoded images only, and 4 "photos"
    (rotated, brighter, mirrored + cropped, lower contrast) of each product with an image."""
    root = tmp_path_factory.mktemp("images")
    cat = write_sample_catalogue(root / "cat", n_products=16, image_size=64)
    graph = kg.load_rdf(cat.path)
    ws = graph.save(root / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(text_encoder=None))
    photos = root / "photos"
    photos.mkdir()
    lines = ["path, product"]
    for iri in graph.node_iris("Product"):
        slug = iri.rsplit("/", 1)[1]
        source = cat.image_dir / f"{slug}.png"
        if not source.is_file():
            continue
        image = Image.open(source).convert("RGB")
        for j, variant in enumerate(VARIANTS):
            variant(image).save(photos / f"{slug}_{j}.jpg", quality=92)
            lines.append(f"{slug}_{j}.jpg, {slug}")
    (photos / "train.txt").write_text("\n".join(lines) + "\n")
    return {"ws": ws, "graph": graph, "photos": photos, "images": cat.image_dir}


@pytest.fixture(scope="module")
def trained(catalogue):
    report = train_image_linker(
        catalogue["ws"],
        catalogue["photos"] / "train.txt",
        epochs=6,
        holdout=0.25,
        holdout_min_photos=4,
        seed=0,
    )
    return report


# ---------------------------------------------------------------------- inputs
def test_read_photo_list(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "list.txt").write_text(
        "path,label\n# a comment\n\na.jpg, 7, 3\n/sub/b.jpg,x\n" + f"{tmp_path / 'a.jpg'},y\n"
    )
    rows = read_photo_list(tmp_path / "list.txt")
    assert rows == [
        (tmp_path / "a.jpg", "7"), (tmp_path / "sub" / "b.jpg", "x"), (tmp_path / "a.jpg", "y"),
    ]  # fmt: skip
    (tmp_path / "tabs.tsv").write_text("a.jpg\thttp://ex.org/p1\n")
    assert read_photo_list(tmp_path / "tabs.tsv") == [(tmp_path / "a.jpg", "http://ex.org/p1")]
    (tmp_path / "bad.txt").write_text("a.jpg, 1\nb.jpg\n")
    with pytest.raises(LinkerError, match=r"bad.txt, line 2"):
        read_photo_list(tmp_path / "bad.txt")
    with pytest.raises(LinkerError, match="no such photo list"):
        read_photo_list(tmp_path / "missing.txt")


def test_image_files_expands_folders(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("d/b.JPG", "d/e/a.png", "d/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert image_files([tmp_path / "d"]) == [tmp_path / "d" / "b.JPG", tmp_path / "d/e/a.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(LinkerError, match="no image files"):
        image_files([tmp_path / "empty"])


def test_cluster_holdout_takes_a_whole_cluster():
    """Two tight visual clusters per label (sizes 8 and 2): the hold-out is the small one."""
    generator = torch.Generator().manual_seed(0)
    rows, labels = [], []
    for label in range(3):
        for centre, count in ((label * 10.0, 8), (label * 10.0 + 5.0, 2)):
            base = torch.zeros(16)
            base[label] = 1.0
            base[8 + label] = centre
            rows += [base + 0.01 * torch.randn(16, generator=generator) for _ in range(count)]
            labels += [label] * count
    hold = cluster_holdout(torch.stack(rows), np.array(labels), fraction=0.2)
    assert hold.reshape(3, 10)[:, 8:].all() and not hold.reshape(3, 10)[:, :8].any()
    tiny = cluster_holdout(torch.randn(3, 4), np.array([0, 0, 1]), min_photos=5)
    assert not tiny.any()  # too few photos per label to hold any out


def test_group_relation_and_siblings(catalogue):
    graph = catalogue["graph"]
    assert find_group_relation(graph, ["Product"]) == "category"
    siblings = _siblings([("c1",), ("c1",), ("c2",), ()])
    assert [s.tolist() for s in siblings] == [[0, 1], [0, 1], [2], []]


# ---------------------------------------------------------------------- linking
def test_test_time_windows():
    x = torch.arange(2 * 14 * 14, dtype=torch.float32).view(1, 2, 14, 14)
    five = windows(x, 5, 12)
    assert len(five) == 5 and all(w.shape == (1, 2, 12, 12) for w in five)
    assert torch.equal(five[0], x[..., 1:13, 1:13]) and torch.equal(five[-1], x[..., 2:, 2:])
    assert [w.shape for w in windows(x, 0, 12)] == [x.shape]  # the whole map
    assert len(windows(x, 1, 12)) == 1 and windows(torch.ones(3, 8), 5, 12)[0].shape == (3, 8)


def test_untrained_links_a_catalogue_image_to_its_product(catalogue):
    linker = Linker(catalogue["ws"])
    path = sorted(catalogue["images"].glob("*.png"))[0]
    link = linker.link_image(path, untrained=True, k=3)
    assert isinstance(link, Link) and link.iri.endswith("/" + path.stem)
    assert link.start is None and link.end is None and link.mention == str(path)
    assert not link.nil and link.type == "Product" and len(link.alternatives) == 3
    assert link.alternatives[0] == (link.iri, link.score)
    from_pil = linker.link_image(Image.open(path), untrained=True)
    assert from_pil.iri == link.iri and from_pil.mention.endswith(path.name)


def test_train_then_link(trained, catalogue):
    metrics = trained.metrics
    assert trained.path == catalogue["ws"] / IMAGE_LINKER_DIR
    assert sorted(p.name for p in trained.path.iterdir()) == ["config.json", "model.safetensors"]
    assert metrics["photos"] == metrics["train_photos"] + metrics["holdout_photos"]
    assert metrics["holdout_photos"] > 0 and metrics["group_relation"] == "category"
    assert len(metrics["history"]) == 6 and 0.0 <= metrics["threshold"] <= 1.0
    config = json.loads((trained.path / "config.json").read_text())
    assert config["trained"] and config["entity_types"] == ["Product"]

    linker = Linker(catalogue["ws"])
    rows = read_photo_list(catalogue["photos"] / "train.txt")
    links = linker.link_images([p for p, _ in rows], k=4)
    assert all(len(ln.alternatives) == 4 for ln in links)
    scores = [s for ln in links for _, s in ln.alternatives]
    assert all(0.0 <= s <= 1.0 for s in scores)
    right = [
        ln.alternatives[0][0].endswith("/" + label)
        for ln, (_, label) in zip(links, rows, strict=True)
    ]
    assert np.mean(right) > 0.5  # the photos it was trained on: most are linked right
    dim = config["dim"]
    for ln in links:
        assert ln.representation.shape == (2 * dim,)
        np.testing.assert_allclose(np.linalg.norm(ln.representation[:dim]), 1.0, atol=1e-5)
        if ln.nil:
            assert ln.iri is None and not ln.representation[dim:].any()
        else:
            assert ln.iri == ln.alternatives[0][0]


def test_trunk_outputs_come_back_from_the_cache(trained, catalogue):
    linker = trained.linker
    photos = sorted(catalogue["photos"].glob("*.jpg"))[:3]
    cached = trunk_outputs(linker, photos)  # written by training: all found in the cache
    assert cached.dtype == torch.float16 and cached.shape == (3, 2, 112, 14, 14)
    fresh = linker.tower.trunk_inputs(photos, views=2)
    torch.testing.assert_close(cached.float(), fresh, atol=2e-2, rtol=1e-2)


def test_save_load_round_trip(trained, catalogue, tmp_path):
    linker = trained.linker
    folder = linker.save(tmp_path / "copy")
    again = ImageLinker(catalogue["ws"], directory=folder)
    photo = sorted(catalogue["photos"].glob("*.jpg"))[:3]
    z1, p1 = linker.embed(photo)
    z2, p2 = again.embed(photo)
    torch.testing.assert_close(p1, p2, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z1, z2, atol=1e-5, rtol=1e-4)
    assert again.config.threshold == linker.config.threshold


def test_nil_below_the_threshold(trained, catalogue):
    linker = Linker(catalogue["ws"])
    image_linker = linker.image_linker()
    photo = sorted(catalogue["photos"].glob("*.jpg"))[0]
    image_linker.config.threshold = 1.01  # nothing can reach it
    try:
        link = linker.link_image(photo)
    finally:
        image_linker.config.threshold = trained.linker.config.threshold
    assert link.nil and link.iri is None and link.alternatives


# ---------------------------------------------------------------------- errors
def test_errors_name_the_missing_step(catalogue, tmp_path):
    graph = catalogue["graph"]
    bare = graph.save(tmp_path / "bare", sparql_store=False)
    with pytest.raises(LinkerError, match=r"kgf encode .*bare"):
        Linker(bare)
    with pytest.raises(LinkerError, match=r"kgf encode .*bare"):
        train_image_linker(bare, catalogue["photos"] / "train.txt", save=False)
    numbers_only = graph.save(tmp_path / "numbers_only", sparql_store=False)
    build_features(graph, numbers_only, FeatureSpec(image_encoder=None, text_encoder=None))
    with pytest.raises(LinkerError, match=r"kgf encode .*--image efficientnet-lite0"):
        ImageLinker(numbers_only)
    images_only = graph.save(tmp_path / "images_only", sparql_store=False)
    build_features(graph, images_only, FeatureSpec(text_encoder=None))
    linker = Linker(images_only)
    with pytest.raises(LinkerError, match=r"kgf link-train .*--images"):
        linker.link_image(sorted(catalogue["photos"].glob("*.jpg"))[0])
    with pytest.raises(LinkerError, match=r"kgf encode .*--text minilm"):
        linker.link_text("a red toy car")


def test_unreadable_image_names_the_file(catalogue, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    linker = Linker(catalogue["ws"])
    with pytest.raises(ImageError, match="broken.jpg"):
        linker.link_image(bad, untrained=True)
    with pytest.raises(ImageError, match="missing.png"):
        linker.link_images([sorted(catalogue["images"].glob("*.png"))[0], tmp_path / "missing.png"],
                           untrained=True)  # fmt: skip


def test_unknown_entity_id(catalogue, tmp_path):
    photo = sorted(catalogue["photos"].glob("*.jpg"))[0]
    (tmp_path / "list.txt").write_text(f"{photo}, no-such-product\n")
    with pytest.raises(LinkerError, match="no-such-product"):
        train_image_linker(catalogue["ws"], tmp_path / "list.txt", save=False)


# ---------------------------------------------------------------------- CLI
def test_cli_link_images(trained, catalogue, tmp_path, capsys):
    ws = str(catalogue["ws"])
    photo = sorted(catalogue["photos"].glob("*.jpg"))[0]
    assert main(["link", ws, "--image", str(photo), "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert str(photo) in out and "https://example.org/kgf/product/" in out
    assert main(["link", ws, "--image", str(photo), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["start"] is None and record["mention"] == str(photo)
    target = tmp_path / "links.csv"
    assert main(["link", ws, "--image", str(catalogue["photos"]), "-o", str(target)]) == 0
    rows = list(csv.DictReader(target.open(encoding="utf-8")))  # a row per photo and candidate
    assert list(rows[0]) == ["image", "nil", "rank", "iri", "name", "type", "score", "linked"]
    assert len({r["image"] for r in rows}) == len(list(catalogue["photos"].glob("*.jpg")))
    assert not any(v.startswith("[") for r in rows for v in r.values())  # no JSON in a cell
    bad = tmp_path / "bad.jpg"
    bad.write_text("text")
    assert main(["link", ws, "--image", str(bad)]) == 2
    assert "bad.jpg" in capsys.readouterr().err
    assert main(["link", ws, "--image", str(photo), "--table", str(bad)]) == 2


def test_cli_link_train_images(catalogue, tmp_path, capsys):
    graph = catalogue["graph"]
    ws = graph.save(tmp_path / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(text_encoder=None))
    assert main(["link", str(ws), "--image", str(catalogue["photos"])]) == 2
    assert "kgf link-train" in capsys.readouterr().err
    train = str(catalogue["photos"] / "train.txt")
    assert main(["link-train", str(ws), "--images", train, "--epochs", "1"]) == 0
    assert "image linker saved to" in capsys.readouterr().out
    assert (ws / IMAGE_LINKER_DIR / "model.safetensors").is_file()
    assert main(["link-train", str(ws)]) == 2
    assert main(["link-train", str(ws), "--mentions", train]) == 2


# ---------------------------------------------------------------------- real data
def test_grocery_smoke(tmp_path):
    """The Grocery catalogue, 3 store photos of each of 12 products, 2 epochs; links two val
    photos (runs only where ../shared/data/images/grocery is present)."""
    folder = shared("images/grocery")
    from kg.tabular import Mapping, table_to_rdf

    root = Path(__file__).resolve().parents[1]
    mapping = root / "examples" / "grocery.toml"
    table_to_rdf(folder / "classes.csv", Mapping.from_toml(mapping), tmp_path / "catalogue.ttl")
    graph = kg.load_rdf(tmp_path / "catalogue.ttl")
    ws = graph.save(tmp_path / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(text_encoder=None))
    base = Mapping.from_toml(mapping).base
    picked: dict[str, list[str]] = {}
    for line in (folder / "train.txt").read_text().splitlines():
        path, fine, _ = (part.strip() for part in line.split(","))
        if int(fine) < 12 and len(picked.setdefault(fine, [])) < 3:
            picked[fine].append(path)
    photos = [(folder / p, base + fine) for fine, paths in picked.items() for p in paths]
    report = train_image_linker(ws, photos, epochs=2, save=True)
    assert report.metrics["entities"] == 81 and report.metrics["group_relation"] == "category"
    val = [line.split(",")[0] for line in (folder / "val.txt").read_text().splitlines()[:2]]
    links = Linker(ws).link_images([folder / v for v in val], k=3)
    assert [len(ln.alternatives) for ln in links] == [3, 3]
    assert all(ln.alternatives[0][0].startswith(base) for ln in links)

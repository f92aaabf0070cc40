"""Everyday use (issue 16): progress, Ctrl-C and --resume, quiet consoles, SPARQL prefixes
and syntax errors, offline service docs, notebook paths, mapping typos.

Each test runs the real command (``kgf`` in a subprocess, or ``main``) on real files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

import kg
from fusion.features import FeatureSpec, build_features
from kg.samples import write_sample_catalogue

ROOT = Path(__file__).resolve().parents[1]


def kgf(*args, env=None, **options) -> subprocess.CompletedProcess:
    """``kgf ARGS`` in a fresh process (output not on a terminal)."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kgfusion.cli", *map(str, args)], capture_output=True, text=True,
        env=environ, cwd=ROOT, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def photos_ws(tmp_path_factory):
    """A sample catalogue with image features, and 4 labelled photos per product."""
    root = tmp_path_factory.mktemp("ux-images")
    cat = write_sample_catalogue(root / "cat", n_products=12, image_size=64)
    graph = kg.load_rdf(cat.path)
    ws = graph.save(root / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(text_encoder=None))
    photos = root / "photos"
    photos.mkdir()
    lines = ["path, product"]
    variants = (
        lambda im: im.rotate(12, fillcolor=(235, 235, 235)),
        lambda im: ImageEnhance.Brightness(im).enhance(1.25),
        lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        lambda im: ImageEnhance.Contrast(im).enhance(0.7),
    )
    for iri in graph.node_iris("Product"):
        slug = iri.rsplit("/", 1)[1]
        source = cat.image_dir / f"{slug}.png"
        if source.is_file():
            image = Image.open(source).convert("RGB")
            for j, variant in enumerate(variants):
                variant(image).save(photos / f"{slug}_{j}.jpg", quality=92)
                lines.append(f"{slug}_{j}.jpg, {slug}")
    (photos / "train.txt").write_text("\n".join(lines) + "\n")
    return ws, photos / "train.txt"


# ---------------------------------------------------------------------- progress
def test_progress_lines_when_not_a_terminal(monkeypatch, capsys):
    from kg.progress import progress

    monkeypatch.delenv("KGF_PROGRESS", raising=False)
    monkeypatch.setenv("KGF_PROGRESS_INTERVAL", "0")
    for _ in progress(range(50), desc="chunks", unit="chunk"):
        pass
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[-1].startswith("chunks: 100% 50/50")
    assert len(lines) == len(set(lines))  # one line per count, never the same line twice
    monkeypatch.setenv("KGF_PROGRESS", "off")
    for _ in progress(range(5), desc="quiet"):
        pass
    assert capsys.readouterr().err == ""


def test_link_train_images_progress_interrupt_and_resume(photos_ws):
    """The real command: progress lines on stderr; Ctrl-C after the first epoch stops with
    `kgf: interrupted` (exit 130, no traceback) and keeps the photo features and the epoch;
    `--resume` continues from there and finishes."""
    ws, train = photos_ws
    env = {"KGF_PROGRESS_INTERVAL": "0"}
    checkpoint = ws / "image-linker.checkpoint" / "state.json"
    cache = ws / "features" / "cache"
    before = set(cache.glob("*views2*"))
    process = subprocess.Popen(
        [sys.executable, "-m", "kgfusion.cli", "link-train", str(ws), "--images", str(train),
         "--epochs", "40"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env},
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not checkpoint.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "kgf: interrupted" in err and "Traceback" not in err
    assert "photos: 100%" in err and "select:" in err and "\r" not in err
    assert set(cache.glob("*views2*")) - before  # the photo pass is kept
    done = json.loads(checkpoint.read_text())["phases"]["select"]["epoch"]
    assert done >= 1

    resumed = kgf("link-train", ws, "--images", train, "--epochs", "40", "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "photos:" not in resumed.stderr  # every photo came from the cache
    history = [line for line in resumed.stdout.splitlines() if line.strip().startswith("history")]
    assert history and history[0].count(":") == 40  # all 40 epochs, resumed ones too
    assert not checkpoint.parent.exists()  # finished: the checkpoint is gone
    assert (ws / "image-linker" / "model.safetensors").is_file()

    again = kgf("link-train", ws, "--images", train, "--epochs", "40", "--resume")
    assert again.returncode == 2 and "nothing to resume" in again.stderr

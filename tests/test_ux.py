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
    """A sample catalogue with image features, and 5 labelled photos per product."""
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
        lambda im: im.rotate(-8, fillcolor=(240, 240, 240)),
    )  # 5 photos a product: a hold-out cluster, then the refit on all photos
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
         "--epochs", "20"],
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

    resumed = kgf("link-train", ws, "--images", train, "--epochs", "20", "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "photos:" not in resumed.stderr  # every photo came from the cache
    history = [line for line in resumed.stdout.splitlines() if "history" in line]
    assert len(history) == 2  # the hold-out phase and the refit on all photos
    assert all(line.count(":") == 20 for line in history)  # all 20 epochs, resumed ones too
    assert "holdout_accuracy" in resumed.stdout
    assert not checkpoint.parent.exists()  # finished: the checkpoint is gone
    assert (ws / "image-linker" / "model.safetensors").is_file()

    again = kgf("link-train", ws, "--images", train, "--epochs", "20", "--resume")
    assert again.returncode == 2 and "nothing to resume" in again.stderr


# ---------------------------------------------------------------------- a text workspace
TTL = """\
@prefix s: <http://schema.org/> .
@prefix ex: <http://ex.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
ex:p1 a s:Product ; s:name "Sony PS-LX350H Belt Drive Turntable"@en ; s:brand ex:sony ;
      s:releaseDate "2009-03-01T10:00:00Z"^^xsd:dateTime ; s:price "n/a"^^xsd:decimal .
ex:p2 a s:Product ; s:name "Bose Acoustimass 5 Speaker System"@en ; s:brand ex:bose ;
      s:releaseDate "2010-05-02T08:00:00+02:00"^^xsd:dateTime .
ex:p3 a s:Product ; s:name "Canon EOS 550D Digital SLR Camera"@en ; s:brand ex:canon .
ex:sony a s:Brand ; s:name "Sony" .
ex:bose a s:Brand ; s:name "Bose" .
ex:canon a s:Brand ; s:name "Canon" .
"""


@pytest.fixture(scope="module")
def text_ws(tmp_path_factory):
    """`kgf build` + `kgf encode --image none` of a small catalogue with zoned date-times
    and one invalid decimal."""
    root = tmp_path_factory.mktemp("ux-text")
    (root / "cat.ttl").write_text(TTL)
    built = kgf("build", root / "cat.ttl", "-o", root / "ws")
    assert built.returncode == 0, built.stderr
    encoded = kgf("encode", root / "ws", "--image", "none")
    assert encoded.returncode == 0, encoded.stderr
    return root / "ws", built, encoded


# ---------------------------------------------------------------------- console noise
def test_literal_warnings_once_at_build_and_no_numpy_timezone_warning(text_ws):
    ws, built, encoded = text_ws
    assert "timezone" not in built.stderr + encoded.stderr
    assert built.stderr.count("do not parse as their datatype") == 1  # said at build
    assert "do not parse" not in encoded.stderr  # not again on load
    for args in (("info", ws), ("info", ws, "--json"), ("sparql", ws, "ASK { ?s ?p ?o }")):
        result = kgf(*args, env={"PYTHONDEVMODE": "1"})  # dev mode shows ResourceWarnings
        assert result.returncode == 0, result.stderr
        assert "do not parse" not in result.stderr and "timezone" not in result.stderr
        assert "unclosed" not in result.stderr and "ResourceWarning" not in result.stderr
    report = json.loads(kgf("info", ws, "--json").stdout)
    assert report["invalid_literals"] == 1  # still counted by `kgf info`


def test_name_lookup_has_no_loading_bars_and_keeps_the_model(text_ws):
    ws, _, _ = text_ws
    result = kgf("related", ws, "--name", "sony turntable")
    assert "Loading weights" not in result.stderr and "it/s]" not in result.stderr
    assert "http://ex.org/p1" in result.stdout + result.stderr
    # in one process, a second session reuses the text model (loaded once per process)
    script = (
        "from fusion.encoders import hf\nfrom kgfusion.session import Session\n"
        f"for _ in range(3): Session({str(ws)!r}).resolve_name('canon camera')\n"
        "print(hf.load_model.cache_info().misses)\n"
    )
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["1"] and "Loading weights" not in again.stderr


def test_train_and_evaluate_print_no_torch_jit_warning(tmp_path):
    cat = write_sample_catalogue(tmp_path / "cat", n_products=16, image_size=16)
    assert kgf("build", cat.path, "-o", tmp_path / "ws").returncode == 0
    (tmp_path / "c.toml").write_text("[trainer]\nepochs = 2\n")
    trained = kgf("train", tmp_path / "ws", "--task", "link", "--relation",
                  "isAccessoryOrSparePartFor", "--config", tmp_path / "c.toml", "--run", "r")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "jit" not in trained.stderr and "Deprecat" not in trained.stderr
    run = next((tmp_path / "ws" / "models").iterdir()).name
    evaluated = kgf("evaluate", tmp_path / "ws", run, "--split", "train")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "jit" not in evaluated.stderr and "Deprecat" not in evaluated.stderr


# ---------------------------------------------------------------------- SPARQL
def test_sparql_predeclares_common_prefixes_and_keeps_declared_ones(text_ws):
    ws, _, _ = text_ws
    result = kgf("sparql", ws, "SELECT ?n WHERE { ?p a schema:Brand ; schema:name ?n } "
                 "ORDER BY ?n", "--format", "csv")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["n", "Bose", "Canon", "Sony"]
    typed = kgf("sparql", ws, "ASK { ?p schema:releaseDate ?d FILTER(datatype(?d) = "
                "xsd:dateTime) }", "--format", "json")  # fmt: skip
    assert json.loads(typed.stdout) == {"boolean": True}
    own = kgf("sparql", ws, "PREFIX schema: <http://example.org/other/>\n"
              "ASK { ?p a schema:Brand }", "--format", "json")  # fmt: skip
    assert json.loads(own.stdout) == {"boolean": False}  # the query's declaration wins


def test_sparql_prefixes_of_the_mapping(tmp_path):
    (tmp_path / "t.csv").write_text("id,name\n1,Lamp\n2,Desk\n")
    (tmp_path / "m.toml").write_text(
        '[prefixes]\nshop = "http://shop.example/terms/"\n'
        '[entity]\nid = "id"\nbase = "http://shop.example/p/"\ntype = "shop:Item"\n'
        '[[literal]]\ncolumn = "name"\npredicate = "shop:label"\n'
    )
    built = kgf("build", tmp_path / "t.csv", "--mapping", tmp_path / "m.toml", "-o", tmp_path / "ws")
    assert built.returncode == 0, built.stderr
    result = kgf("sparql", tmp_path / "ws", "SELECT ?n WHERE { ?p a shop:Item ; shop:label ?n } "
                 "ORDER BY ?n", "--format", "csv")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["n", "Desk", "Lamp"]


def test_sparql_syntax_errors_name_line_column_and_expectation(text_ws):
    ws, _, _ = text_ws
    result = kgf("sparql", ws, "SELECT ?n WHERE {\n  ?p schema:name ?n .\n  FILTER(?n = ) }")
    assert result.returncode == 2
    err = result.stderr
    assert "line 3, column" in err and "expected one of" in err
    assert "FILTER(?n = ) }" in err and "^" in err
    assert "\\u{" not in err and "'A' ..= 'Z'" not in err  # no grammar dump
    unknown = kgf("sparql", ws, "SELECT ?p WHERE { ?p a ex:Product }")
    assert unknown.returncode == 2
    assert "line 1" in unknown.stderr and "unknown prefix 'ex'" in unknown.stderr
    assert "\\u{" not in unknown.stderr


# ---------------------------------------------------------------------- offline docs
def test_service_docs_are_served_offline(text_ws, monkeypatch):
    pytest.importorskip("fastapi")
    pytest.importorskip("swagger_ui_bundle")
    import re
    import socket

    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)  # no request may leave
    monkeypatch.setattr(socket, "create_connection", refuse)
    ws, _, _ = text_ws
    with TestClient(create_app(ws, text_linker=False)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
        assert urls and all(u.startswith("/") for u in urls), urls
        assert "http://" not in page.text and "https://" not in page.text
        for url in urls:
            assert client.get(url).status_code == 200, url
        assert client.get("/redoc").status_code == 404  # redoc would load from a CDN


# ---------------------------------------------------------------------- mapping typos
def test_mapping_typo_names_the_close_key(tmp_path):
    (tmp_path / "t.csv").write_text("id,name\n1,Lamp\n")
    (tmp_path / "m.toml").write_text(
        '[entity]\nid = "id"\nbase = "http://shop.example/p/"\ntype = "schema:Product"\n'
        '[[literal]]\ncolumn = "name"\npredicat = "schema:name"\n'
    )
    result = kgf("build", tmp_path / "t.csv", "--mapping", tmp_path / "m.toml", "-o", tmp_path / "ws")
    assert result.returncode == 2
    assert "missing required key 'predicate'" in result.stderr
    assert "'predicat' a misspelling of 'predicate'" in result.stderr


# ---------------------------------------------------------------------- notebooks
def _run_setup_cell(name: str, cwd: Path, env: dict, tmp_path: Path) -> dict:
    """Run the setup cell of notebook ``name`` in a fresh kernel started in ``cwd``;
    return ROOT and WORK as the notebook sees them."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    setup = notebook.cells[1]
    probe = nbformat.v4.new_code_cell("import json; print(json.dumps({'root': str(ROOT), "
                                      "'work': str(WORK)}))")  # fmt: skip
    notebook.cells = [setup, probe, notebook.cells[-1]]  # the last cell cleans up
    old = dict(os.environ)
    os.environ.update({"KGF_FAST": "1", "JUPYTER_RUNTIME_DIR": str(tmp_path),
                       "MPLBACKEND": "agg", "PYTHONPATH": str(ROOT), **env})  # fmt: skip
    try:
        manager = KernelManager(kernel_name="python3",
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))  # fmt: skip
        nbclient.NotebookClient(notebook, km=manager, timeout=300,
                                resources={"metadata": {"path": str(cwd)}}).execute()  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(old)
    text = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["01_product_graph", "03_alignment"])
def test_notebooks_find_the_project_from_any_folder_and_clean_up(name, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    seen = _run_setup_cell(name, elsewhere, {"KGF_ROOT": "", "KGF_WORK": ""}, tmp_path)
    assert Path(seen["root"]) == ROOT
    assert (Path(seen["root"]) / "examples" / "abt_buy.toml").is_file()
    assert not Path(seen["work"]).exists()  # the scratch folder is removed at the end
    kept = tmp_path / "kept"
    seen = _run_setup_cell(name, elsewhere, {"KGF_WORK": str(kept)}, tmp_path)
    assert Path(seen["work"]).parent == kept and Path(seen["work"]).is_dir()

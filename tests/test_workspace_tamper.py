"""Tampered workspace files: every loader turns corruption into a clean user error.

One small workspace (built, encoded, indexed) is corrupted file by file in several ways
(truncated, bytes flipped, wrong JSON, NaN tensors, shorter tensors, lines dropped) and
``kgf info``, ``kgf related`` and ``kgf serve``'s app creation (``kgf index`` for the
features) are run on it: each either
works (a flipped byte may hit a harmless place) or fails with a ``kgf: error`` naming the
problem -- never a traceback. Structural damage (truncation, wrong JSON, NaN, shorter
tensors) must always be refused.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from kgfusion.cli import main, user_errors


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from kg.samples import write_sample_catalogue

    root = tmp_path_factory.mktemp("tamper")
    sample = write_sample_catalogue(root / "cat", n_products=24, seed=3)
    ws = root / "ws"
    assert main(["build", str(sample.path), "-o", str(ws)]) == 0
    assert main(["encode", str(ws), "--image", "none", "--no-numeric"]) == 0
    assert main(["index", str(ws)]) == 0
    return ws


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path):
    data = bytearray(path.read_bytes())
    for k in range(1, 6):
        data[len(data) * k // 7] ^= 0xFF
    path.write_bytes(bytes(data))


def _wrong_json(path):
    path.write_text('{"format": "kgfusion-workspace", "version": 1, "counts": [1, 2')


def _json_list(path):
    path.write_text("[1, 2, 3]")


def _not_utf8(path):
    path.write_bytes(b"\xff\xfe" + path.read_bytes()[2:])


def _tensors(path, change):
    arrays = load_file(str(path))
    save_file({k: np.ascontiguousarray(change(k, v)) for k, v in arrays.items()}, str(path))


def _nan(path):
    _tensors(path, lambda k, v: np.full_like(v, np.nan) if v.dtype.kind == "f" else v)


def _shorter(path):
    _tensors(path, lambda k, v: v[: len(v) // 2] if v.ndim else v)


def _out_of_range(path):
    _tensors(path, lambda k, v: v + 10**6 if v.dtype.kind in "iu" and v.ndim == 1 else v)


def _drop_lines(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    path.write_text("\n".join(lines[: len(lines) // 2]), encoding="utf-8")


def _bad_line(path):
    path.write_text(path.read_text(encoding="utf-8") + "\n{not json", encoding="utf-8")


# (file, corruption, must_fail)
CASES = [
    ("manifest.json", _truncate, True),
    ("manifest.json", _wrong_json, True),
    ("manifest.json", _json_list, True),
    ("manifest.json", _not_utf8, True),
    ("vocab.json", _truncate, True),
    ("vocab.json", _json_list, True),
    ("vocab.json", _flip, False),
    ("nodes.txt", _drop_lines, True),
    ("nodes.txt", _not_utf8, False),
    ("literals.jsonl", _drop_lines, True),
    ("literals.jsonl", _bad_line, True),
    ("literals.jsonl", _not_utf8, True),
    ("graph.safetensors", _truncate, True),
    ("graph.safetensors", _flip, False),
    ("graph.safetensors", _shorter, True),
    ("graph.safetensors", _out_of_range, True),
    ("features/features.safetensors", _truncate, True),
    ("features/features.safetensors", _flip, False),
    ("features/features.safetensors", _nan, True),
    ("features/features.safetensors", _shorter, True),
    ("features/features.json", _wrong_json, True),
    ("features/features.json", _json_list, True),
    ("index/index.json", _wrong_json, True),
    ("index/index.json", _json_list, True),
    ("index/vectors.safetensors", _truncate, True),
    ("index/vectors.safetensors", _nan, True),
    ("index/vectors.safetensors", _shorter, True),
    ("index/vectors.safetensors", _flip, False),
    ("index/iris.txt", _drop_lines, True),
    ("index/iris.txt", _not_utf8, True),
]


def _cli(args, capsys) -> int:
    capsys.readouterr()
    rc = main(args)  # anything but a user error propagates: the test fails with it
    err = capsys.readouterr().err
    assert rc in (0, 2), rc
    if rc == 2:
        assert "error:" in err and "Traceback" not in err
    return rc


def _serve(ws) -> int:
    from kgfusion.service import create_app

    try:
        app = create_app(ws, text_linker=False)
    except user_errors():
        return 2
    app.state.workspace.close()
    return 0


@pytest.mark.parametrize(
    ("name", "corrupt", "must_fail"), CASES, ids=[f"{n}-{c.__name__[1:]}" for n, c, _ in CASES]
)
def test_tampered_workspace_file_is_a_clean_user_error(
    workspace, tmp_path, capsys, name, corrupt, must_fail
):
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    assert (ws / name).is_file(), sorted(p.name for p in ws.rglob("*"))
    corrupt(ws / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nodes = (workspace / "nodes.txt").read_text(encoding="utf-8").split("\n")
        iri = next(n for n in nodes if "/product/" in n)
        if name.startswith("features/"):  # read by `kgf index` (and training, linking)
            codes = [_cli(["index", str(ws)], capsys)] * 3
        else:
            codes = [
                _cli(["info", str(ws)], capsys),
                _cli(["related", str(ws), iri, "-k", "3"], capsys),
                _serve(ws),
            ]
    if must_fail:
        # graph files break every command; features / index files the ones that need them
        # (the service starts without its index: /health says what is wrong with it)
        needed = [1] if name.startswith("index/") else [0, 1, 2]
        assert all(codes[i] == 2 for i in needed), codes

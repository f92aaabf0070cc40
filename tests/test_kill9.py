"""kill -9 during `kgf build`, `kgf encode` and `kgf train`, at several moments.

After each kill the workspace is either the old one or the new complete one (it loads,
with the counts of one of the two catalogues; features and runs either absent or whole),
and a rerun (``--resume`` for train) succeeds. Moments: after a delay, or as soon as a
given file appears (the build's temporary folder, a cache part, a checkpoint)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from fusion.features import NodeFeatures
from kg.graph import load_graph
from kg.samples import write_sample_catalogue

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGKILL")]
ROOT = Path(__file__).resolve().parents[1]


def kgf(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "kgfusion.cli", *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def kill_at(proc: subprocess.Popen, delay: float | None, appears=None, limit: float = 60) -> None:
    """SIGKILL ``proc`` after ``delay`` seconds, or when ``appears()`` is true."""
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() - started < limit:
        if (delay is not None and time.monotonic() - started >= delay) or (
            appears is not None and appears()
        ):
            break
        time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def run_ok(*args: str) -> None:
    proc = kgf(*args)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]


@pytest.fixture(scope="module")
def catalogues(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill9")
    old = write_sample_catalogue(root / "old", n_products=24, seed=1)
    new = write_sample_catalogue(root / "new", n_products=36, seed=2)
    return root, old, new


def nodes_of(ws: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recovery warnings
        return load_graph(ws).num_nodes


@pytest.mark.parametrize("moment", [0.5, 1.5, "tmp folder"])
def test_kill_during_build_leaves_old_or_new(catalogues, tmp_path, moment):
    root, old, new = catalogues
    ws = tmp_path / "ws"
    run_ok("build", str(old.path), "-o", str(ws))
    before = nodes_of(ws)
    run_ok("build", str(new.path), "-o", str(tmp_path / "ref"))
    after = nodes_of(tmp_path / "ref")
    proc = kgf("build", str(new.path), "-o", str(ws), "--overwrite")
    tmp_appears = lambda: any(p.name.startswith(".ws.tmp-") for p in tmp_path.iterdir())  # noqa: E731
    kill_at(proc, moment if isinstance(moment, float) else None,
            tmp_appears if moment == "tmp folder" else None)  # fmt: skip
    assert nodes_of(ws) in (before, after)
    run_ok("build", str(new.path), "-o", str(ws), "--overwrite")
    assert nodes_of(ws) == after
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ws.")]


@pytest.fixture(scope="module")
def built(catalogues):
    root, old, _ = catalogues
    ws = root / "built"
    run_ok("build", str(old.path), "-o", str(ws))
    return ws


def _copy(ws: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(ws, to)
    return to


@pytest.mark.parametrize("moment", [1.0, 3.0, "cache part"])
def test_kill_during_encode_then_rerun(built, tmp_path, moment):
    ws = _copy(built, tmp_path / "ws")
    cache = ws / "features" / "cache"
    part = lambda: cache.is_dir() and any(cache.glob("*.part-*"))  # noqa: E731
    args = ("encode", str(ws), "--image", "none", "--batch-size", "2")
    kill_at(kgf(*args), moment if isinstance(moment, float) else None,
            part if moment == "cache part" else None)  # fmt: skip
    if (ws / "features" / "features.safetensors").is_file():
        NodeFeatures.load(ws)  # a features file present is a whole one
    run_ok(*args)
    features = NodeFeatures.load(ws)
    assert "text" in features.features["Product"]
    assert not [p for p in cache.iterdir() if ".part-" in p.name]  # parts and their temps


@pytest.mark.parametrize("moment", [2.0, "checkpoint"])
def test_kill_during_train_then_resume(built, tmp_path, moment):
    from fusion.runs import list_runs

    ws = _copy(built, tmp_path / "ws")
    args = ("train", str(ws), "--task", "link", "--relation", "isAccessoryOrSparePartFor",
            "--gnn", "sage", "--set", "trainer.epochs=6", "--run", "r")  # fmt: skip
    run_dir = ws / "models" / "r"
    ckpt = lambda: run_dir.is_dir() and any(run_dir.glob("checkpoint-*"))  # noqa: E731
    kill_at(kgf(*args), moment if isinstance(moment, float) else None,
            ckpt if moment == "checkpoint" else None)  # fmt: skip
    assert "r" not in list_runs(ws) or (run_dir / "model.safetensors").is_file()
    # killed before its first checkpoint, a run has nothing to resume: kgf says to overwrite
    run_ok(*args, "--resume" if ckpt() else "--overwrite")
    assert "r" in list_runs(ws)
    run_ok("info", str(ws))

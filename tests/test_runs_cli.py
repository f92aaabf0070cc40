"""`kgf runs`, `kgf runs --compare`, run names, train flags, --print-config, --list-keys,
the per-run plot and `kgf evaluate --json`: real commands on a small sample workspace."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import shutil

import pytest

import kg
from kg.samples import write_sample_catalogue
from kgfusion.cli import main

RELATION = "isAccessoryOrSparePartFor"
TINY = ["--epochs", "2", "--hidden", "8", "--set", "model.out_dim=8"]
NAME = re.compile(r"^link-(rgcn|sage)-attention-\d{4}-\d{2}-\d{2}-\d{4}(-\d+)?$")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 30-product sample workspace with three tiny link runs: two with the same
    settings (same minute: the second name gets a suffix) and one with other flags."""
    folder = tmp_path_factory.mktemp("runs")
    sample = write_sample_catalogue(folder / "catalogue", n_products=30, seed=3)
    ws = kg.load_rdf(sample.path).save(folder / "ws")
    base = ["train", str(ws), "--task", "link", "--relation", RELATION, *TINY]
    for extra in ([], [], ["--gnn", "sage", "--lr", "0.005", "--epochs", "3"]):
        assert main([*base, *extra]) == 0
    return ws


def _runs(ws) -> list[str]:
    return sorted(p.name for p in (ws / "models").iterdir())


def test_run_names_are_readable_and_unique(trained):
    names = _runs(trained)
    assert len(names) == 3 and all(NAME.match(n) for n in names), names
    rgcn = [n for n in names if n.startswith("link-rgcn")]
    assert len(rgcn) == 2
    stamps = {re.sub(r"-\d+$", "", n) if n.count("-") > 6 else n for n in rgcn}
    # the same settings in the same minute: the second name gets a suffix (a loaded
    # machine may cross a minute between the two runs: then the stamps differ)
    assert any(n.endswith("-2") for n in rgcn) or len(stamps) == 2, rgcn


def test_train_flags_reach_the_config(trained):
    sage = next(n for n in _runs(trained) if n.startswith("link-sage"))
    config = json.loads((trained / "models" / sage / "run.json").read_text())
    assert config["trainer"]["epochs"] == 3 and config["trainer"]["lr"] == 0.005
    assert config["model"]["hidden"] == 8 and config["model"]["gnn"] == "sage"


def test_runs_lists_task_relation_metric_date_complete(trained, capsys):
    capsys.readouterr()
    assert main(["runs", str(trained), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r["run"] for r in rows) == _runs(trained)
    for row in rows:
        assert row["task"] == "link" and row["predicts"] == RELATION
        assert row["metric"] == "mrr" and 0 <= float(row["test"]) <= 1
        assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}$", row["date"])
        assert row["complete"] == "true"
    assert main(["runs", str(trained)]) == 0  # the table
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["run", "task", "predicts", "model"]


def test_an_interrupted_run_is_listed_as_incomplete(trained, tmp_path, capsys):
    ws = tmp_path / "ws"
    shutil.copytree(trained, ws)
    name = _runs(ws)[0]
    run = ws / "models" / name
    (run / "complete.json").unlink()  # killed after its last checkpoint
    (run / "embeddings.safetensors").unlink()
    capsys.readouterr()
    assert main(["runs", str(ws), "--json"]) == 0
    listed = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed[name]["complete"] is False
    assert listed[name]["valid"] is not None  # the last logged epoch's metric
    assert sum(r["complete"] for r in listed.values()) == 2


def test_compare_shows_config_differences_and_metrics(trained, capsys):
    names = _runs(trained)
    rgcn, sage = names[0], names[-1]
    capsys.readouterr()
    assert main(["runs", str(trained), "--compare", rgcn, sage, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runs"] == [rgcn, sage] and report["complete"] == [True, True]
    assert report["config"]["model.gnn"] == ["rgcn", "sage"]
    assert report["config"]["trainer.lr"] == [0.001, 0.005]
    assert "model.hidden" not in report["config"]  # equal keys are not differences
    assert set(report["metrics"]) >= {"valid/mrr", "test/mrr"}
    assert main(["runs", str(trained), "--compare", rgcn, sage]) == 0
    table = capsys.readouterr().out
    assert re.search(r"config\s+model\.gnn\s+rgcn\s+sage", table)
    assert re.search(r"metric\s+test/mrr\s", table)
    assert main(["runs", str(trained), "--compare", rgcn, rgcn[:-3]]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_each_run_has_a_metrics_plot_and_tensorboard_only_when_installed(trained):
    for name in _runs(trained):
        run = trained / "models" / name
        if importlib.util.find_spec("matplotlib"):
            assert (run / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        has_board = importlib.util.find_spec("tensorboard") is not None
        assert (run / "tensorboard").is_dir() == has_board


def test_print_config_is_toml_that_config_reads_back(tmp_path, capsys):
    ws = tmp_path / "ws"  # --print-config trains nothing and needs no workspace
    args = ["train", str(ws), "--task", "link", "--relation", RELATION, "--epochs", "7",
            "--lr", "0.02", "--set", "model.layers=3"]  # fmt: skip
    assert main([*args, "--print-config"]) == 0
    text = capsys.readouterr().out
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    config = tomllib.loads(text)
    assert config["trainer"]["epochs"] == 7 and config["trainer"]["lr"] == 0.02
    assert config["model"]["layers"] == 3 and config["model"]["gnn"] == "rgcn"  # defaults shown
    assert config["task"]["relations"] == [RELATION] and "decoder" in config["task"]
    (tmp_path / "cfg.toml").write_text(text)
    assert main(["train", str(ws), "--config", str(tmp_path / "cfg.toml"), "--print-config"]) == 0
    assert capsys.readouterr().out == text
    assert not ws.exists()


def test_list_keys_names_every_key_with_its_default(capsys):
    assert main(["train", "ws", "--list-keys", "--task", "link", "--format", "csv"]) == 0
    keys = {r["key"]: r["default"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert keys["trainer.lr"] == "0.001"  # the link task's own default
    assert keys["trainer.epochs"] == "300" and keys["model.hidden"] == "64"
    assert "task.decoder" in keys and "data.features" in keys
    assert main(["train", "ws", "--list-keys"]) == 0
    out = capsys.readouterr().out
    assert "trainer.lr" in out and "0.01" in out and "--set" in out


def test_evaluate_json_and_csv(trained, capsys):
    name = _runs(trained)[0]
    capsys.readouterr()
    assert main(["evaluate", str(trained), name, "--split", "valid", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["valid/mrr"] <= 1 and all(k.startswith("valid/") for k in metrics)
    assert main(["evaluate", str(trained), name, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["metric"] for r in rows} >= {"test/mrr"}

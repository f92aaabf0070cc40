"""`kgf train` without a config picks settings that suit the graph (fusion.defaults)."""

from __future__ import annotations

import json

from conftest import shared

from fusion.defaults import node_defaults, suited_overrides
from kgfusion.cli import main


def test_aifb_with_the_defaults_gets_the_rgcn_setting(tmp_path, capsys):
    data = shared("rdf/aifb")
    ws = tmp_path / "aifb"
    assert main(["build", str(data / "aifb_stripped.nt.gz"), "-o", str(ws), "--no-sparql"]) == 0
    args = ["train", str(ws), "--task", "node", "--labels", str(data / "trainingSet.tsv"),
            "--test", str(data / "testSet.tsv"), "--entity-col", "person",
            "--label-col", "label_affiliation", "--run", "plain"]  # fmt: skip
    assert main([*args, "--set", "trainer.progress=false"]) == 0
    out = capsys.readouterr().out
    acc = float(next(line.split()[-1] for line in out.splitlines() if "test/acc" in line))
    assert acc >= 0.95  # the library's plain defaults gave 0.778
    saved = json.loads((ws / "models" / "plain" / "run.json").read_text("utf-8"))
    assert saved["model"]["hidden"] == 16 and saved["model"]["out_dim"] == 4
    assert saved["data"]["literal_nodes"] and saved["task"]["head"] is False
    # what the user sets still wins
    assert main([*args[:-1], "wide", "--set", "model.hidden=32", "--set", "trainer.epochs=1",
                 "--set", "trainer.progress=false"]) == 0  # fmt: skip
    saved = json.loads((ws / "models" / "wide" / "run.json").read_text("utf-8"))
    assert saved["model"]["hidden"] == 32 and saved["trainer"]["epochs"] == 1


def test_defaults_only_for_node_runs_without_a_config(tmp_path):
    import kg
    from kg.samples import write_sample_catalogue

    sample = write_sample_catalogue(tmp_path / "cat", n_products=12, seed=0)
    graph = kg.load_rdf(sample.path)
    link = {"task": "link", "relations": ["isSimilarTo"]}
    assert suited_overrides(tmp_path, graph, link) is link
    labels = tmp_path / "labels.tsv"
    products = graph.node_iris("Product")
    labels.write_text(
        "entity\tlabel\n" + "".join(f"{p}\t{i % 2}\n" for i, p in enumerate(products))
    )
    node = {"task": "node", "labels": labels}
    assert suited_overrides(tmp_path, graph, {**node, "config_path": "x.toml"})["labels"] == labels
    assert "overrides" not in suited_overrides(tmp_path, graph, {**node, "gnn": "sage"})
    settings = node_defaults(tmp_path, graph, labels=labels)
    assert settings["model.out_dim"] == 2 and settings["data.features"] is False
    from fusion.features import FEATURES_FILE

    (tmp_path / FEATURES_FILE).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / FEATURES_FILE).touch()
    settings = node_defaults(tmp_path, graph, labels=labels)
    assert settings["data.features"] and settings["model.gnn_kwargs"]["input_gate"] is True
    assert node_defaults(tmp_path, graph, labels=tmp_path / "missing.tsv") == {}

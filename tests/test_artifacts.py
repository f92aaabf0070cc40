"""fusion.artifacts: config + weights written once, read back safely; kg.workspace names."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import kg
from fusion.artifacts import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    ConfigError,
    load_pretrained,
    read_weights,
    save_pretrained,
    state_tensors,
)
from fusion.fuse import get_fusion
from fusion.model import FusionGNN, FusionGNNConfig
from kg import workspace as W


@dataclass
class TinyConfig:
    width: int = 3


def tiny(config: dict) -> nn.Module:
    return nn.Linear(config["width"], 2)


def test_save_and_load_pretrained_round_trip(tmp_path):
    torch.manual_seed(0)
    module = tiny({"width": 3})
    folder = save_pretrained(tmp_path / "m", TinyConfig(), module, metadata={"format": "tiny"})
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    assert json.loads((folder / CONFIG_FILE).read_text()) == {"width": 3}
    back = load_pretrained(folder, tiny)
    assert all(
        torch.equal(a, b) for a, b in zip(module.parameters(), back.parameters(), strict=True)
    )
    # replace=True swaps the whole folder as one set: other files go
    (folder / "stale.txt").write_text("old")
    save_pretrained(folder, {"width": 3}, module.state_dict(), replace=True)
    assert not (folder / "stale.txt").exists() and (folder / WEIGHTS_FILE).is_file()


def test_state_tensors_unshares_tied_weights(tmp_path):
    embedding = nn.Embedding(4, 2)
    tied = nn.ModuleDict({"a": embedding, "b": nn.Linear(2, 4, bias=False)})
    tied["b"].weight = embedding.weight
    state = state_tensors(tied)
    assert state["a.weight"].data_ptr() != state["b.weight"].data_ptr()
    save_pretrained(tmp_path / "t", {"name": "tied"}, tied)  # safetensors accepts it


def test_damaged_weights_are_refused_naming_the_file(tmp_path):
    folder = save_pretrained(tmp_path / "m", {"width": 3}, tiny({"width": 3}))
    with pytest.raises(ArtifactError, match=rf"{WEIGHTS_FILE}.*shapes differ.*weight"):
        load_pretrained(folder, lambda c: tiny({"width": 5}))
    save_file({"weight": torch.full((2, 3), float("nan")), "bias": torch.zeros(2)},
              str(folder / WEIGHTS_FILE))  # fmt: skip
    with pytest.raises(ArtifactError, match=rf"{WEIGHTS_FILE}: tensor 'weight' holds NaN"):
        load_pretrained(folder, tiny)
    (folder / WEIGHTS_FILE).write_bytes(b"\x80\x04 not safetensors (a pickle would start so)")
    with pytest.raises(ArtifactError, match="not a readable safetensors file"):
        read_weights(folder)
    (folder / CONFIG_FILE).write_text('{"width": 3,\n oops}')
    with pytest.raises(ArtifactError, match=rf"{CONFIG_FILE}:2: not valid JSON"):
        load_pretrained(folder, tiny)
    assert issubclass(ArtifactError, ConfigError)  # the CLI prints it without a traceback
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        load_pretrained(tmp_path / "nothing", tiny)


def test_every_artefact_uses_the_one_convention(tmp_path):
    """FusionGNN and a registered fusion module write the same two files."""
    config = FusionGNNConfig.for_graph((["A"], [("A", "r", "A")]), {"A": 3}, gnn="mlp",
                                       hidden=4, out_dim=4)  # fmt: skip
    FusionGNN(config).save(tmp_path / "gnn")
    get_fusion("mean", {"text": 4}, 4).save(tmp_path / "fuse")
    for name in ("gnn", "fuse"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    assert FusionGNN.load(tmp_path / "gnn").config == config


def test_workspace_names_and_graph_version_live_in_kg_workspace(tmp_path):
    assert (W.MODELS_DIR, W.INDEX_DIR, W.LINKER_DIR, W.IMAGE_LINKER_DIR, W.SPARQL_DIR) == (
        "models", "index", "linker", "image-linker", "sparql",
    )  # fmt: skip
    (tmp_path / "g.ttl").write_text('<http://ex.org/a> <http://ex.org/p> "x" .\n')
    graph = kg.load_rdf(tmp_path / "g.ttl")
    ws = graph.save(tmp_path / "ws")
    assert (ws / W.SPARQL_DIR).is_dir()
    assert W.graph_version(graph) == W.graph_version(ws) == kg.index.graph_version(graph)

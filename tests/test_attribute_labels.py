"""Label inputs of the attribute task (``task.label_inputs``, the UniMP label trick): the
known values enter as a ``labels`` modality read off each pass's message-passing edges, so
targets and held-out edges are never in it, and a 2-layer GNN learns a value that only the
sibling products' values tell (3 hops away without it)."""

from __future__ import annotations

import pytest
import torch

import kg
from fusion.config import DataConfig
from fusion.features import FeatureSpec, NodeFeatures
from fusion.model import ConfigError
from fusion.tasks import AttributeCompletionTask, AttributeTaskConfig
from fusion.tasks.attribute import LABEL_MODALITY
from fusion.trainer import graph_tensors, train


def family_graph(tmp_path, groups=16, size=10):
    """Products in groups (an article type); every product of a group has the group's usage
    (even groups ``A``, odd ``B``); every node has the same text: only the siblings' usages
    (product -> group -> sibling -> usage value) tell a product's usage."""
    lines = ["@prefix ex: <http://ex.org/> .",
             'ex:A a ex:Usage ; ex:name "u" .', 'ex:B a ex:Usage ; ex:name "u" .']  # fmt: skip
    for g in range(groups):
        lines.append(f'ex:g{g} a ex:Group ; ex:name "g" .')
        for i in range(size):
            usage = "A" if g % 2 == 0 else "B"
            lines.append(f'ex:p{g}_{i} a ex:Product ; ex:name "p" ; ex:group ex:g{g} ; '
                         f"ex:usage ex:{usage} .")  # fmt: skip
    path = tmp_path / "family.ttl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return kg.load_rdf(path)


def constant_features(graph):
    """The same 8-d text vector for every node: no node tells itself apart."""
    return NodeFeatures(
        {t: {"text": (torch.ones(n, 8), torch.ones(n, dtype=torch.bool))}
         for t, n in graph.num_nodes_dict.items()},
        FeatureSpec(),
    )  # fmt: skip


def test_label_inputs_come_from_the_pass_edges_never_targets_or_held_out(tmp_path):
    graph = family_graph(tmp_path)
    edges, _ = graph_tensors(graph, DataConfig())
    task = AttributeCompletionTask(
        AttributeTaskConfig(relations=["usage"], label_inputs=True), graph, edges
    )
    assert task.input_dims() == {"Product": {LABEL_MODALITY: graph.num_nodes_dict["Usage"]}}
    mp = task.message_passing(edges)
    x, mask = task.input_features(mp)["Product"][LABEL_MODALITY]
    assert x.shape == (graph.num_nodes_dict["Product"], 2)
    for p, v in task.split.of("train", 0).tolist():
        assert x[p, v] == 1 and mask[p]
    for split in ("valid", "test"):
        held = task.split.of(split, 0)
        assert x[held[:, 0]].sum() == 0 and not mask[held[:, 0]].any()
    batch = next(iter(task.batches(0)))
    xs, _ = task.input_features(task.step_edges(batch)(mp))["Product"][LABEL_MODALITY]
    targets, kept = batch["targets"][0], batch["kept"][0]
    assert xs[targets[:, 0]].sum() == 0 and xs[kept[:, 0], kept[:, 1]].eq(1).all()
    off = AttributeCompletionTask(AttributeTaskConfig(relations=["usage"]), graph, edges)
    assert off.input_dims() == {} and off.input_features(mp) == {}


def test_label_inputs_let_two_layers_read_the_siblings_values(tmp_path):
    """Without label inputs every product looks alike to a 2-layer R-GCN (chance level);
    with them it reads its group's usage off the siblings' inputs."""
    graph = family_graph(tmp_path)
    feats = constant_features(graph)
    acc = {}
    for labels in (False, True):
        result = train(
            tmp_path / "ws", task="attribute", relations=["usage"], gnn="rgcn", graph=graph,
            features=feats, run_name=f"labels-{labels}", progress=False,
            overrides={"task.label_inputs": labels, "trainer.epochs": 60, "model.hidden": 16,
                       "model.out_dim": 16, "trainer.patience": 0},
        )  # fmt: skip
        acc[labels] = result.metrics["test/acc.usage"]
    assert acc[False] < 0.7 and acc[True] > 0.9


def test_label_inputs_refuse_a_features_modality_of_that_name(tmp_path):
    graph = family_graph(tmp_path, groups=2, size=3)
    edges, _ = graph_tensors(graph, DataConfig())
    feats = constant_features(graph)
    feats.features["Product"][LABEL_MODALITY] = feats.features["Product"]["text"]
    with pytest.raises(ConfigError, match="already have one"):
        AttributeCompletionTask(
            AttributeTaskConfig(relations=["usage"], label_inputs=True), graph, edges, feats
        )


def test_benchmark_extra_variants_and_only(monkeypatch):
    """``benchmarks/fashion.py --extra`` adds the label-input and 3-layer R-GCN variants
    with their config keys (plain grid, ``--no-residual``); the default grid is a ``+res`` copy
    of each plain variant instead of it, plus the 3-layer R-GCN ``+res``; ``--only`` with an
    unknown name stops with a message."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import fashion

    base = {v["name"] for v in fashion.variants(False, residual=False)}
    extra = {v["name"]: v for v in fashion.variants(False, extra=True, residual=False)}
    assert set(extra) - base == {"rgcn/attention/early+labels", "rgcn/attention/early/3 layers"}
    assert extra["rgcn/attention/early+labels"]["task"] == {"label_inputs": True}
    assert extra["rgcn/attention/early/3 layers"]["model"] == {"layers": 3, "residual": False}
    res = {v["name"]: v for v in fashion.variants(False, residual=True)}
    assert set(res) == {f"{n} +res" for n in base} | {"rgcn/attention/early/3 layers +res"}
    assert res["text-only +res"]["model"] == {"residual": True}
    assert extra["text-only"]["model"] == {"residual": False}
    with pytest.raises(SystemExit, match="no such variant"):
        fashion.main(["--only", "rgcn/attention/erly"])


def colour_graph(tmp_path, n=160, seed=0):
    """Products whose usage follows their colour (red: A, blue: B); every node has the same
    text: only the product's own colour edge tells its usage."""
    import random

    rng = random.Random(seed)
    lines = ["@prefix ex: <http://ex.org/> .",
             'ex:A a ex:Usage ; ex:name "u" .', 'ex:B a ex:Usage ; ex:name "u" .',
             'ex:red a ex:Colour ; ex:name "c" .', 'ex:blue a ex:Colour ; ex:name "c" .']  # fmt: skip
    for i in range(n):
        colour = rng.choice(("red", "blue"))
        usage = "A" if colour == "red" else "B"
        lines.append(f'ex:p{i} a ex:Product ; ex:name "p" ; ex:colour ex:{colour} ; ex:usage ex:{usage} .')
    path = tmp_path / "colour.ttl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return kg.load_rdf(path)


def test_label_head_reads_the_products_other_values_without_propagation(tmp_path):
    """``task.label_head``: a linear term of the product's known values in the scores; with
    no message passing (``gnn = "mlp"``) it alone tells the usage from the colour."""
    graph = colour_graph(tmp_path)
    feats = constant_features(graph)
    acc = {}
    for head in (False, True):
        result = train(
            tmp_path / "ws", task="attribute", relations=["usage", "colour"], gnn="mlp",
            graph=graph, features=feats, run_name=f"head-{head}", progress=False,
            overrides={"task.label_head": head, "trainer.epochs": 60, "model.hidden": 16,
                       "model.out_dim": 16, "trainer.patience": 0},
        )  # fmt: skip
        acc[head] = result.metrics["test/acc.usage"]
    assert acc[False] < 0.7 and acc[True] > 0.85

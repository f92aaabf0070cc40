"""Attribute completion: leak-free splits (transductive / inductive), filtered metrics on a
hand-made example, training from Python and `kgf train`, and bad input."""

from __future__ import annotations

import math
import random
import warnings

import pytest
import torch

import kg
from fusion.config import DataConfig
from fusion.features import FeatureSpec, NodeFeatures
from fusion.model import ConfigError, FusionGNNConfig, FusionOutput
from fusion.tasks import TASKS, AttributeCompletionTask, AttributeTaskConfig
from fusion.tasks.attribute_split import (
    AttributeSplit,
    arrival_edges,
    split_attributes,
    training_edges,
)
from fusion.trainer import graph_tensors, train

SEASONS = ("Summer", "Winter", "Fall")
RELATIONS = ["season", "colour"]


def shop_graph(tmp_path, n=120, seed=0, extra=""):
    """Products with a year, a season (a function of the year: only the graph tells it)
    and a colour; ``extra``: more Turtle."""
    rng = random.Random(seed)
    lines = ["@prefix ex: <http://ex.org/> ."]
    for y in range(6):
        lines.append(f'ex:y{y} a ex:Year ; ex:name "{2010 + y}" .')
    for s in SEASONS:
        lines.append(f'ex:{s} a ex:Season ; ex:name "{s}" .')
    for c in ("red", "blue"):
        lines.append(f'ex:{c} a ex:Colour ; ex:name "{c}" .')
    for i in range(n):
        y = rng.randrange(6)
        season = SEASONS[y % 3]
        colour = rng.choice(("red", "blue"))
        lines.append(
            f'ex:p{i} a ex:Product ; ex:name "thing {i}" ; ex:year ex:y{y} ; '
            f"ex:season ex:{season} ; ex:colour ex:{colour} ."
        )
    path = tmp_path / "shop.ttl"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return kg.load_rdf(path)


def random_features(graph, seed=0, missing=()):
    """Random 8-d text and image features; the products in ``missing`` have neither."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for t, n in graph.num_nodes_dict.items():
        mask = torch.ones(n, dtype=torch.bool)
        if t == "Product":
            mask[list(missing)] = False
        out[t] = {m: (torch.randn(n, 8, generator=gen), mask.clone()) for m in ("text", "image")}
    return NodeFeatures(out, FeatureSpec())


def edges_of(graph):
    return graph_tensors(graph, DataConfig())


def pairs(t):
    return {tuple(x) for x in t.tolist()}


def test_registered():
    assert "attribute" in TASKS and TASKS["attribute"] is AttributeCompletionTask


def test_transductive_split_fixed_seed_disjoint_complete(tmp_path):
    graph = shop_graph(tmp_path)
    edges, num = edges_of(graph)
    etypes = [e for e in edges if e[1] in RELATIONS]
    a = split_attributes(edges, etypes, num, seed=3)
    b = split_attributes(edges, etypes, num, seed=3)
    c = split_attributes(edges, etypes, num, seed=4)
    assert all(torch.equal(a.triples[s], b.triples[s]) for s in a.triples)
    assert not torch.equal(a.triples["test"], c.triples["test"])
    for i, e in enumerate(etypes):
        parts = [pairs(a.of(s, i)) for s in ("train", "valid", "test")]
        assert sum(map(len, parts)) == edges[e].shape[1]
        assert set.union(*parts) == pairs(edges[e].T)
        assert not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert len(parts[2]) == round(0.2 * edges[e].shape[1])
    mp = training_edges(edges, a)
    for i, (s, r, d) in enumerate(etypes):
        held = pairs(a.of("valid", i)) | pairs(a.of("test", i))
        assert not held & pairs(mp[(s, r, d)].T)
        assert not held & pairs(mp[(d, "rev_" + r, s)].flip(0).T)
    assert torch.equal(mp[("Product", "year", "Year")], edges[("Product", "year", "Year")])


def test_inductive_products_absent_from_training_graph(tmp_path):
    graph = shop_graph(tmp_path)
    edges, num = edges_of(graph)
    etypes = [e for e in edges if e[1] in RELATIONS]
    split = split_attributes(edges, etypes, num, seed=1, inductive=True)
    test_p = split.withheld["test"]["Product"]
    valid_p = split.withheld["valid"]["Product"]
    assert int(test_p.sum()) == round(0.2 * num["Product"]) and not (test_p & valid_p).any()
    mp = training_edges(edges, split)
    gone = test_p | valid_p
    for (s, _, d), ei in mp.items():
        if s == "Product":
            assert not gone[ei[0]].any()
        if d == "Product":
            assert not gone[ei[1]].any()
    # every test edge of a relation belongs to a test product, and no product is in two splits
    heads = {s: set(split.triples[s][:, 1].tolist()) for s in ("train", "valid", "test")}
    assert heads["test"] == set(test_p.nonzero().squeeze(1).tolist()) & heads["test"]
    assert not heads["train"] & heads["test"]
    # at test time a product arrives with its other edges (year, colour), never the season
    arrive = arrival_edges(edges, split, "test", 0)
    assert all(r not in ("season", "rev_season") for _, r, _ in arrive)
    year = arrive[("Product", "year", "Year")]
    assert test_p[year[0]].all() and year.shape[1] == int(test_p.sum())


def test_filtered_mrr_on_hand_made_example(tmp_path):
    """p0's true test value v1 ranks 2nd raw but 1st filtered (its other known value v0,
    a training edge, outscores it); p1's true v2 ranks 3rd (v0 and v1 are not its values)."""
    edges = {("P", "has", "V"): torch.tensor([[0, 0, 1], [0, 1, 2]])}
    graph = type("G", (), {"num_nodes_dict": {"P": 2, "V": 3}})()
    cfg = AttributeTaskConfig(relations=["has"], decoder="dot", scorer="decoder", value_bias=False)
    task = AttributeCompletionTask(cfg, graph, edges)
    test = torch.tensor([[0, 0, 1], [0, 1, 2]])
    task.split = AttributeSplit(
        [("P", "has", "V")],
        {"train": torch.tensor([[0, 0, 0]]), "valid": torch.zeros(0, 3, dtype=torch.long),
         "test": test},
    )  # fmt: skip
    task.triples = task.split.triples
    task.build(FusionGNNConfig(node_types=["P", "V"], num_nodes={"P": 2, "V": 3}, out_dim=3))
    values = torch.eye(3)
    products = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    out = FusionOutput({"P": products, "V": values}, {})
    assert task.ranks(out, "test", 0).tolist() == [1.0, 3.0]
    m = task.evaluate(out, "test")
    assert m["acc.has"] == pytest.approx(0.5) and m["acc"] == pytest.approx(0.5)
    assert m["mrr.has"] == pytest.approx((1 + 1 / 3) / 2) and m["mrr"] == m["mrr.has"]
    # ties count as PyKEEN's realistic rank: (optimistic + pessimistic) / 2
    tied = FusionOutput({"P": torch.ones(2, 3), "V": values}, {})
    assert task.ranks(tied, "test", 0).tolist() == [1.5, 2.0]


@pytest.mark.parametrize("inductive", [False, True])
def test_training_learns_from_the_graph(tmp_path, inductive):
    """Season follows the year, which only the graph holds: R-GCN beats the MLP on it,
    transductively and with products it never saw in training."""
    graph = shop_graph(tmp_path, n=150)
    feats = random_features(graph)
    acc = {}
    for gnn in ("mlp", "rgcn"):
        result = train(
            tmp_path / "ws", task="attribute", relations=RELATIONS, gnn=gnn, graph=graph,
            features=feats, run_name=f"{gnn}-{inductive}", progress=False,
            overrides={"task.inductive": inductive, "trainer.epochs": 40, "model.hidden": 16,
                       "model.out_dim": 16, "trainer.patience": 0},
        )  # fmt: skip
        m = result.metrics
        assert set(m) >= {"test/acc", "test/mrr", "test/acc.season", "test/mrr.colour"}
        assert all(math.isfinite(v) for v in m.values())
        acc[gnn] = m["test/acc.season"]
    assert acc["rgcn"] > acc["mlp"] + 0.1


def test_bad_input_unknown_relation_and_bad_fractions(tmp_path):
    graph = shop_graph(tmp_path, n=20)
    edges, _ = edges_of(graph)
    with pytest.raises(ConfigError, match="no relation 'seasn'.*did you mean 'season'"):
        AttributeCompletionTask(AttributeTaskConfig(relations=["seasn"]), graph, edges)
    with pytest.raises(ConfigError, match="needs relations.*relations in this graph: .*season"):
        AttributeCompletionTask(AttributeTaskConfig(relations=[]), graph, edges)
    with pytest.raises(ConfigError, match="fractions"):
        AttributeTaskConfig(relations=["season"], test_fraction=0.7, valid_fraction=0.4)


def test_bad_input_no_held_out_edges_unseen_value_no_modality(tmp_path):
    """A relation with one edge (nothing to hold out), a value only test products carry
    (inductive), two products with neither text nor image: warnings, finite metrics."""
    extra = ('@prefix ex: <http://ex.org/> .\n'
             'ex:p0 ex:material ex:wool . ex:wool a ex:Material ; ex:name "wool" .\n')  # fmt: skip
    graph = shop_graph(tmp_path, n=60, extra=extra)
    feats = random_features(graph, missing=(1, 2))
    edges, num = edges_of(graph)
    # give one test product a colour nobody else has: the value is never seen in training
    split = split_attributes(edges, [("Product", "colour", "Colour")], num, seed=0, inductive=True)
    lone = int(split.withheld["test"]["Product"].nonzero()[0])
    graph2 = shop_graph(tmp_path, n=60, extra=extra + f"ex:p{lone} ex:colour ex:gold . "
                        'ex:gold a ex:Colour ; ex:name "gold" .\n')  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(
            tmp_path / "ws", task="attribute", relations=["season", "colour", "material"],
            gnn="rgcn", graph=graph2, features=random_features(graph2, missing=(1, 2)),
            run_name="bad", progress=False,
            overrides={"task.inductive": True, "trainer.epochs": 3, "model.hidden": 8,
                       "model.out_dim": 8},
        )  # fmt: skip
    said = " | ".join(str(w.message) for w in caught)
    assert "relation 'material' has no held-out test edge" in said
    assert "relation 'colour'" in said and "never seen in training" in said
    m = result.metrics
    assert "test/acc.material" not in m and "test/acc.colour" in m
    assert all(math.isfinite(v) for v in m.values())
    assert feats.features["Product"]["text"][1][1:3].sum() == 0


def test_kgf_train_attribute(tmp_path):
    from kgfusion.cli import main

    graph = shop_graph(tmp_path, n=40)
    from kg.workspace import save_graph

    ws = tmp_path / "ws"
    save_graph(graph, ws, sparql_store=False)
    code = main(["train", str(ws), "--task", "attribute", "--relation", "season",
                 "--relation", "colour", "--epochs", "2", "--run", "attr",
                 "--set", "task.inductive=true"])  # fmt: skip
    assert code in (0, None)
    import json

    info = json.loads((ws / "models" / "attr" / "task.json").read_text())
    assert info["task"]["inductive"] is True and info["task"]["relations"] == RELATIONS[:2]


def test_benchmark_skips_kge_without_pykeen(monkeypatch):
    """PyKEEN absent: the KG-embedding baselines are skipped with the reason, no crash."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import fashion_kge

    monkeypatch.setitem(sys.modules, "pykeen", None)
    monkeypatch.setitem(sys.modules, "pykeen.pipeline", None)
    reason = fashion_kge.pykeen_missing()
    assert reason and "PyKEEN is not installed" in reason and "benchmarks" in reason
    import fashion

    run = {"metrics": {"valid/acc": 0.9, "test/acc": 0.885}}
    every = {"transductive": {"rgcn": {"group": "graph", "runs": [run]},
                              "TransE": {"group": "kge", "runs": []}}}  # fmt: skip
    line = fashion.summary_line(every)  # the KGE rows skipped: "-", never "nan"
    assert line.startswith("summary: graph+fusion 88.5 | best single modality - |")
    assert "| best KGE - |" in line and "nan" not in line


def test_benchmark_standardises_features_and_keeps_absent_rows_zero(tmp_path, monkeypatch):
    """The Fashion benchmark scales each modality to unit std over its present rows; a
    product without any modality keeps zeros (no NaN from an empty or one-row type)."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import fashion

    graph = shop_graph(tmp_path, n=150)
    feats = random_features(graph, missing=(1, 2))
    x, mask = feats.features["Product"]["text"]
    feats.features["Product"]["text"] = (x * 0.05 + 3.0, mask)  # MiniLM-like scale, offset
    out = fashion.standardized(feats).features
    z, m = out["Product"]["text"]
    assert torch.allclose(z[m].std(), torch.tensor(1.0), atol=1e-4)
    assert z[m].mean(0).abs().max() < 1e-4 and z[~m].abs().sum() == 0
    assert all(torch.isfinite(v[0]).all() for mods in out.values() for v in mods.values())
    assert torch.equal(out["Season"]["text"][1], feats.features["Season"]["text"][1])


def test_predict_one_relation_keeps_the_others_edges_and_the_same_split(tmp_path):
    """``task.predict``: the split is made over every relation (the same held-out edges as
    a run for all), only the predicted relation's held-out edges leave the graph, and only
    it is trained and measured."""
    graph = shop_graph(tmp_path, n=60)
    edges, _ = edges_of(graph)
    both = AttributeCompletionTask(AttributeTaskConfig(relations=RELATIONS), graph, edges)
    one = AttributeCompletionTask(AttributeTaskConfig(relations=RELATIONS, predict=["season"]),
                                  graph, edges)  # fmt: skip
    for split in ("train", "valid", "test"):
        assert torch.equal(one.split.triples[split], both.split.triples[split])
    colour = ("Product", "colour", "Colour")
    assert pairs(one.message_passing(edges)[colour].T) == pairs(edges[colour].T)  # all kept
    assert len(both.message_passing(edges)[colour].T) < len(edges[colour].T)
    assert one.active == [0] and [b for b in one.batches(0)][0]["targets"].keys() == {0}
    out = FusionOutput({t: torch.randn(n, 4) for t, n in graph.num_nodes_dict.items()}, {})
    one.build(FusionGNNConfig.for_graph((list(graph.num_nodes_dict), list(edges)),
                                        graph.num_nodes_dict, None, out_dim=4))  # fmt: skip
    m = one.evaluate(out, "test")
    assert "acc.season" in m and "acc.colour" not in m and m["acc"] == m["acc.season"]
    with pytest.raises(ConfigError, match="task.predict names 'size'"):
        AttributeTaskConfig(relations=RELATIONS, predict=["size"])

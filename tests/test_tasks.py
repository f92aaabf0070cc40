"""Tasks: labels files, node classification data, link splits and ranking, contrastive."""

from __future__ import annotations

import math
import random

import pytest
import torch

import kg
from fusion.features import FeatureSpec, NodeFeatures
from fusion.labels import LabelError, read_labels, resolve_labels, stratified_split
from fusion.model import ConfigError, FusionGNNConfig, FusionOutput
from fusion.tasks import (
    TASKS,
    ContrastiveTask,
    ContrastiveTaskConfig,
    LinkPredictionTask,
    LinkTaskConfig,
    NodeClassificationTask,
    NodeTaskConfig,
    get_task_class,
)
from fusion.tasks.decoders import get_decoder
from fusion.tasks.ranking import KnownTriples, filter_scores_, rank_metrics, ranks_from_scores

EX = "http://ex.org/"


def toy_graph(tmp_path, n=30, seed=0):
    """People (typed Person or Student) working on projects of two groups; label = group."""
    rng = random.Random(seed)
    lines = ["@prefix ex: <http://ex.org/> ."]
    lines += [f'ex:proj{p} a ex:Project ; ex:name "project {p}" .' for p in range(4)]
    rows = []
    for i in range(n):
        p = rng.randrange(4)
        kind = "Student" if i % 3 == 0 else "Person"
        lines.append(f'ex:p{i} a ex:{kind} ; ex:worksOn ex:proj{p} ; ex:name "person {i}" .')
        if i:
            lines.append(f"ex:p{i} ex:knows ex:p{i - 1} .")
        rows.append((f"{EX}p{i}", "A" if p < 2 else "B"))
    (tmp_path / "g.ttl").write_text("\n".join(lines), encoding="utf-8")
    return kg.load_rdf(tmp_path / "g.ttl"), rows


def write_tsv(path, rows, header=("person", "id", "label_affiliation")):
    text = "\t".join(header) + "\n"
    text += "\n".join(f"{e}\t{k}.0\t{label}" for k, (e, label) in enumerate(rows))
    path.write_text(text, encoding="utf-8")
    return path


def edges_of(graph):
    return dict(graph.to_pyg().edge_index_dict)


# ---------------------------------------------------------------------- labels
def test_read_labels_defaults_and_csv(tmp_path):
    table = read_labels(write_tsv(tmp_path / "l.tsv", [(EX + "p1", "A"), (EX + "p2", "")]))
    assert table.entity_col == "person" and table.label_cols == ["label_affiliation"]
    assert table.labels["label_affiliation"] == ["A", None]
    (tmp_path / "l.csv").write_text("item,colour,size\n<http://ex.org/p1>,red,L\n", "utf-8")
    table = read_labels(tmp_path / "l.csv", label_cols=["colour", "size"])
    assert table.entities == [EX + "p1"] and table.labels["size"] == ["L"]
    with pytest.raises(LabelError, match="did you mean 'colour'"):
        read_labels(tmp_path / "l.csv", label_cols=["color"])


def test_unknown_entities_reported_then_skipped(tmp_path):
    graph, rows = toy_graph(tmp_path)
    rows = rows[:6] + [(EX + "nobody", "A"), (EX + "ghost", "B")]
    table = read_labels(write_tsv(tmp_path / "l.tsv", rows))
    with pytest.warns(UserWarning, match=r"2 of 8 entities are not in the graph \(e\.g\..*nobody"):
        resolved = resolve_labels(graph, table, {"label_affiliation": ["A", "B"]})
    assert len(resolved) == 6 and resolved.unknown == [EX + "nobody", EX + "ghost"]
    assert set(resolved.node_types) == {"Person", "Student"}  # labelled nodes of two types
    only_unknown = read_labels(write_tsv(tmp_path / "u.tsv", [(EX + "ghost", "A")]))
    with pytest.raises(LabelError, match="none is left"):
        resolve_labels(graph, only_unknown, {"label_affiliation": ["A"]})


def test_one_class_is_an_error(tmp_path):
    graph, rows = toy_graph(tmp_path)
    path = write_tsv(tmp_path / "l.tsv", [(e, "A") for e, _ in rows[:8]])
    with pytest.raises(LabelError, match="only one class"):
        NodeClassificationTask(NodeTaskConfig(labels=str(path)), graph, edges_of(graph))


def test_stratified_split_keeps_every_class():
    targets = torch.tensor([0] * 10 + [1] * 5 + [2] * 2 + [-1])
    keep, held = stratified_split(targets, 0.2, seed=0)
    assert sorted(keep.tolist() + held.tolist()) == list(range(18))
    assert sorted(targets[held].tolist()) == [0, 0, 1, 2]


def test_node_task_gathers_every_type(tmp_path):
    graph, rows = toy_graph(tmp_path)
    train = write_tsv(tmp_path / "train.tsv", rows[:20])
    test = write_tsv(tmp_path / "test.tsv", rows[20:])
    task = NodeClassificationTask(
        NodeTaskConfig(labels=str(train), test=str(test), valid_fraction=0.25),
        graph,
        edges_of(graph),
    )
    assert task.splits == ("train", "valid", "test")
    assert sum(task.info()["sizes"].values()) == 30
    cfg = FusionGNNConfig(out_dim=8, node_types=graph.node_types, num_nodes=graph.num_nodes_dict)
    task.build(cfg)
    out = FusionOutput({t: torch.randn(n, 8) for t, n in graph.num_nodes_dict.items()}, {})
    assert task.logits(out, "train")["label_affiliation"].shape == (len(task.data["train"]), 2)
    loss = task.loss(out)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    metrics = task.evaluate(out, "test")
    assert set(metrics) == {"acc", "macro_f1"} and 0 <= metrics["acc"] <= 1


def test_task_registry_suggests():
    assert {"node", "link", "contrastive"} <= set(TASKS)
    with pytest.raises(ConfigError, match="did you mean 'link'"):
        get_task_class("lnk")


# ---------------------------------------------------------------------- link prediction
def test_unknown_relation_lists_available(tmp_path):
    graph, _ = toy_graph(tmp_path)
    with pytest.raises(ConfigError, match=r"did you mean 'worksOn'.*relations: knows, worksOn"):
        LinkPredictionTask(LinkTaskConfig(relations=["workOn"]), graph, edges_of(graph))


def test_link_split_does_not_leak(tmp_path):
    graph, _ = toy_graph(tmp_path, n=40)
    edges = edges_of(graph)
    task = LinkPredictionTask(LinkTaskConfig(relations=["knows", "worksOn"]), graph, edges)
    sizes = task.info()["sizes"]
    assert sizes == {"train": 63, "valid": 8, "test": 8}  # 39 + 40 edges, 80/10/10 each
    mp = task.message_passing(edges)
    held = torch.cat([task.triples["valid"], task.triples["test"]])
    for i, (s, r, d) in enumerate(task.etypes):
        mine = held[held[:, 0] == i]
        forward = {tuple(p) for p in mp[(s, r, d)].T.tolist()}
        backward = {tuple(p) for p in mp[(d, "rev_" + r, s)].T.tolist()}
        for _, h, t in mine.tolist():
            assert (h, t) not in forward and (t, h) not in backward
        n_train = int((task.triples["train"][:, 0] == i).sum())
        assert mp[(s, r, d)].shape[1] == n_train == mp[(d, "rev_" + r, s)].shape[1]
    again = LinkPredictionTask(LinkTaskConfig(relations=["knows", "worksOn"]), graph, edges)
    assert torch.equal(again.triples["test"], task.triples["test"])  # seeded


def test_filtered_ranks_match_hand_computation():
    # 2 queries x 5 candidates; true candidates 1 and 3; candidate 2 of query 0 and
    # candidate 4 of query 1 are other known true triples (filtered out).
    scores = torch.tensor([[0.9, 0.5, 0.8, 0.5, 0.1], [0.2, 0.3, 0.3, 0.3, 0.9]])
    true = torch.tensor([1, 3])
    known = KnownTriples(torch.tensor([0, 0, 1, 1]), torch.tensor([1, 2, 3, 4]), 2)
    rows, cols = known.lookup(torch.tensor([0, 1]))
    filtered = filter_scores_(scores.clone(), rows, cols, true)
    ranks = ranks_from_scores(filtered[torch.arange(2), true], filtered)
    # query 0: scores 0.9, [0.5], nan, 0.5, 0.1 -> optimistic 2, pessimistic 3, realistic 2.5
    # query 1: scores 0.2, 0.3, 0.3, [0.3], nan -> optimistic 1, pessimistic 3, realistic 2
    assert ranks["optimistic"].tolist() == [2, 1]
    assert ranks["pessimistic"].tolist() == [3, 3]
    assert ranks["realistic"].tolist() == [2.5, 2.0]
    metrics = rank_metrics(ranks["realistic"])
    assert metrics["mrr"] == pytest.approx((1 / 2.5 + 1 / 2) / 2)
    assert metrics["hits@1"] == 0 and metrics["hits@3"] == 1
    unfiltered = ranks_from_scores(scores[torch.arange(2), true], scores)["realistic"]
    # unfiltered, 0.8 (query 0) and 0.9 (query 1) count against the truth too
    assert unfiltered.tolist() == [3.5, 3.0]


def test_link_ranks_filter_known_triples(tmp_path):
    graph, _ = toy_graph(tmp_path, n=40)
    task = LinkPredictionTask(
        LinkTaskConfig(relations=["worksOn"], decoder="dot"), graph, edges_of(graph)
    )
    cfg = FusionGNNConfig(out_dim=4, node_types=graph.node_types, num_nodes=graph.num_nodes_dict)
    task.build(cfg)
    out = FusionOutput({t: torch.zeros(n, 4) for t, n in graph.num_nodes_dict.items()}, {})
    ranks = task.ranks(out, "test")
    # all scores tie: the tail rank is the middle of the 4 projects; a head ranks among the
    # people minus those filtered (other known workers of the same project)
    assert torch.all(ranks["tail"] == 2.5)
    people = graph.num_nodes_dict["Person"]
    assert torch.all(ranks["head"] <= (people + 1) / 2)
    assert task.evaluate(out, "test")["mrr.tail"] == pytest.approx(0.4)


def test_decoders_score_all_candidates_like_pairs():
    torch.manual_seed(0)
    h, t, cands = torch.randn(3, 5), torch.randn(3, 5), torch.randn(7, 5)
    r = torch.tensor([0, 1, 1])
    for name in ("distmult", "dot", "bilinear"):
        dec = get_decoder(name, num_relations=2, dim=5)
        if name != "dot":
            torch.nn.init.normal_(dec.relation)
        all_tails = dec.score_tails(h, r, cands)
        assert all_tails.shape == (3, 7)
        assert torch.allclose(all_tails[:, 2], dec(h, r, cands[2].expand(3, 5)), atol=1e-6)
        assert torch.allclose(
            dec.score_heads(t, r, cands)[:, 4], dec(cands[4].expand(3, 5), r, t), atol=1e-6
        )
    bilinear = get_decoder("bilinear", 1, 5)
    torch.nn.init.normal_(bilinear.relation)
    r0 = torch.zeros(3, dtype=torch.long)
    assert not torch.allclose(bilinear(h, r0, t), bilinear(t, r0, h))  # roles differ
    with pytest.raises(ConfigError, match="did you mean 'distmult'"):
        get_decoder("distmul", 1, 2)


# ---------------------------------------------------------------------- contrastive
def two_modality_features(graph, aligned: bool):
    torch.manual_seed(0)
    feats = {}
    for t, n in graph.num_nodes_dict.items():
        text = torch.randn(n, 6)
        image = text.clone() if aligned else torch.randn(n, 6)
        mask = torch.ones(n, dtype=torch.bool)
        mask[0] = False  # one node without an image
        feats[t] = {"text": (text, torch.ones(n, dtype=torch.bool)), "image": (image, mask)}
    return NodeFeatures(feats, FeatureSpec())


def test_contrastive_infonce(tmp_path):
    graph, _ = toy_graph(tmp_path, n=40)
    features = two_modality_features(graph, aligned=True)
    task = ContrastiveTask(ContrastiveTaskConfig(temperature=0.1), graph, edges_of(graph), features)
    assert task.modalities == ["image", "text"]
    assert all(0 not in idx.tolist() for idx in task.nodes["train"].values())  # no image
    cfg = FusionGNNConfig.for_graph(
        (graph.node_types, []), graph.num_nodes_dict, features, input_proj=False
    )
    task.build(cfg)
    with torch.no_grad():  # identical projection heads: perfectly aligned pairs
        task.head_b.load_state_dict(task.head_a.state_dict())
    modal = {t: {m: (x, k) for m, (x, k) in mods.items()} for t, mods in features.features.items()}
    out = FusionOutput({}, modal)
    aligned_loss = task.loss(out).item()
    assert task.evaluate(out, "test")["top1"] == 1.0
    shuffled = {
        t: {
            "text": mods["text"],
            "image": (mods["image"][0][torch.randperm(len(mods["image"][0]))], mods["image"][1]),
        }
        for t, mods in modal.items()
    }
    assert task.loss(FusionOutput({}, shuffled)).item() > aligned_loss
    with pytest.raises(ConfigError, match="no node type has two modalities"):
        ContrastiveTask(ContrastiveTaskConfig(), graph, edges_of(graph), None)

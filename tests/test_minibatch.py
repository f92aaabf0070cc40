"""Mini-batch training: the samplers' neighbourhood distribution, the model on sampled
subgraphs, ``trainer.batch_size`` for the node and link tasks, bad input."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import pytest
import torch
from test_sampling import COUNTS, graph
from test_trainer import FAST, toy_workspace

from fusion.artifacts import ConfigError
from fusion.minibatch import check_fanout, make_sampler, pyg_sampling_available
from fusion.model import FusionGNN, FusionGNNConfig
from fusion.trainer import TrainingError, evaluate, train

BACKENDS = [
    "torch",
    pytest.param("pyg", marks=pytest.mark.skipif(
        not pyg_sampling_available(), reason="PyG's sampler needs pyg-lib or torch-sparse"
    )),
]  # fmt: skip


# ---------------------------------------------------------------------- the distribution
def tiny_graph():
    """One node type, 7 nodes; node 0's in-neighbours 1..4, theirs partly shared, a cycle."""
    edges = [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 1), (0, 1), (5, 2), (6, 3), (1, 3),
             (2, 3), (0, 4), (6, 4)]  # fmt: skip
    ei = torch.tensor(edges, dtype=torch.long).t()
    return {("n", "r", "n"): ei}, {"n": 7}


def exact_distribution(edge_index, seed: int, fanout) -> dict[frozenset, float]:
    """PyG's sampling semantics, enumerated exactly: hop i draws, for every node added at
    hop i-1, a uniform ``fanout[i]``-subset of its incoming edges (all of them when fewer);
    only sources not yet in the subgraph join the next frontier. Returns the probability of
    every set of sampled edge ids."""
    incoming = {}
    for e, (s, d) in enumerate(edge_index.t().tolist()):
        incoming.setdefault(d, []).append((e, s))

    def expand(frontier, seen, hop):
        if hop == len(fanout) or not frontier:
            yield frozenset(), 1.0
            return
        choices = []
        for node in frontier:
            cands = incoming.get(node, [])
            k = min(fanout[hop], len(cands))
            subsets = list(itertools.combinations(cands, k))
            choices.append([(sub, 1 / len(subsets)) for sub in subsets])
        for combo in itertools.product(*choices):
            picked = [x for sub, _ in combo for x in sub]
            p = math.prod(q for _, q in combo)
            new = sorted({s for _, s in picked} - seen)
            for rest, q in expand(new, seen | set(new), hop + 1):
                yield frozenset(e for e, _ in picked) | rest, p * q

    dist: dict[frozenset, float] = Counter()
    for edges, p in expand([seed], {seed}, 0):
        dist[edges] += p
    return dist


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampled_neighbourhoods_follow_pygs_distribution(backend):
    edges, counts = tiny_graph()
    ei, n, m = edges[("n", "r", "n")], counts["n"], edges[("n", "r", "n")].shape[1]
    fanout = [2, 1]
    exact = exact_distribution(ei, 0, fanout)
    assert abs(sum(exact.values()) - 1) < 1e-9 and len(exact) > 20
    # 400 disjoint copies of the graph, node 0 of each a seed: 400 independent draws a call
    copies = 400
    big = torch.cat([ei + c * n for c in range(copies)], 1)
    sampler = make_sampler({("n", "r", "n"): big}, {"n": n * copies}, fanout, seed=0,
                           backend=backend)  # fmt: skip
    seen: Counter = Counter()
    calls = 25
    for _ in range(calls):
        out = sampler.sample_dict({"n": torch.arange(copies) * n})
        e_id = out["n", "r", "n"].e_id
        assert torch.unique(e_id).numel() == e_id.numel()
        per_copy: dict[int, set] = {c: set() for c in range(copies)}
        for e in e_id.tolist():
            per_copy[e // m].add(e % m)
        seen.update(frozenset(v) for v in per_copy.values())
    trials = calls * copies
    assert set(seen) <= set(exact)  # nothing PyG's semantics cannot produce
    tv = 0.5 * sum(abs(seen[k] / trials - p) for k, p in exact.items())
    print(f"total variation {tv:.4f} over {len(exact)} outcomes, {trials} draws")
    assert tv < 0.04, tv  # total variation; a biased sampler (e.g. with replacement) fails


def test_seeds_of_several_types_come_first():
    data = graph()
    sampler = make_sampler(data.edge_index_dict, COUNTS, [3, 2], seed=0, backend="torch")
    out = sampler.sample_dict({"a": torch.tensor([5, 1]), "b": torch.tensor([7])})
    assert out["a"].n_id[:2].tolist() == [5, 1] and out["b"].n_id[:1].tolist() == [7]
    assert out["a"].batch_size == 2 and out["b"].batch_size == 1


# ---------------------------------------------------------------------- the model on subgraphs
@pytest.mark.parametrize("gnn,mode", [("rgcn", "early"), ("hgt", "early"), ("sage", "early"),
                                      ("gat", "early"), ("sage", "late")])  # fmt: skip
def test_full_fanout_subgraphs_give_the_full_graph_embeddings(gnn, mode):
    data = graph()
    x = {"a": {"text": (data["a"].x, torch.ones(COUNTS["a"], dtype=torch.bool))}}
    config = FusionGNNConfig.for_graph(
        data.metadata(), COUNTS, None, gnn=gnn, mode=mode, hidden=8, out_dim=4,
        node_embeddings=mode == "late",
    )  # fmt: skip
    config.modality_dims = {"a": {"text": 5}}
    torch.manual_seed(0)
    model = FusionGNN(config).eval()
    full = model(x, data.edge_index_dict).embeddings
    sampler = make_sampler(data.edge_index_dict, COUNTS, [-1, -1], seed=0, backend="torch")
    seeds = {"a": torch.tensor([3, 0, 41]), "b": torch.tensor([2, 9])}
    sub = sampler.sample_dict(seeds)
    n_id = {t: sub[t].n_id for t in COUNTS}
    xb = {"a": {"text": (data["a"].x[n_id["a"]], torch.ones(len(n_id["a"]), dtype=torch.bool))}}
    out = model(xb, sub.edge_index_dict, n_id=n_id).embeddings
    for t, ids in seeds.items():
        assert torch.allclose(out[t][: len(ids)], full[t][ids], atol=1e-5), (gnn, t)


# ---------------------------------------------------------------------- training
def test_node_task_trains_on_mini_batches(tmp_path):
    ws, tr, te = toy_workspace(tmp_path)
    overrides = {**FAST, "lr": 0.05, "epochs": 25, "batch_size": 8, "fanout": [5, 5]}
    result = train(ws, labels=tr, test=te, overrides=overrides, progress=False, run_name="mb")
    assert result.metrics["test/acc"] >= 0.8  # chance: 0.5
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = json.loads((result.run_dir / "task.json").read_text())["task"]["sizes"]["train"]
    assert lines[0]["step"] == math.ceil(train_rows / 8)  # one step per batch of 8 seeds
    assert (result.run_dir / "complete.json").is_file()
    # kgf evaluate samples as the run's final evaluation did
    assert evaluate(ws, "mb", split="test") == {
        k: v for k, v in result.metrics.items() if k.startswith("test/")
    }
    # same seed, same batches and samples: a rerun repeats the run
    overrides["epochs"] = 2
    runs = [train(ws, labels=tr, test=te, overrides=overrides, progress=False, run_name=name)
            for name in ("mb2", "mb3")]  # fmt: skip
    assert runs[0].metrics == runs[1].metrics


def test_link_task_trains_on_mini_batches(tmp_path):
    ws, _, _ = toy_workspace(tmp_path)
    result = train(
        ws, task="link", relations=["worksOn"], progress=False,
        overrides={**FAST, "epochs": 3, "trainer.batch_size": 16, "fanout": [4, 4]},
    )  # fmt: skip
    assert 0 < result.metrics["test/mrr"] <= 1
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] > 1 and math.isfinite(lines[-2]["loss"])


# ---------------------------------------------------------------------- bad input
def test_a_fanout_per_layer_is_required(tmp_path):
    with pytest.raises(ConfigError, match=r"--fanout .*3 value.*2 GNN layer"):
        check_fanout([15, 10, 5], 2)
    assert check_fanout([], 3) == [15, 10, 10]
    ws, tr, te = toy_workspace(tmp_path)
    with pytest.raises(ConfigError, match=r"--fanout.*1 value.*model.layers = 2"):
        train(ws, labels=tr, test=te, progress=False,
              overrides={**FAST, "batch_size": 8, "fanout": [10]})  # fmt: skip


def test_full_batch_out_of_memory_names_batch_size(tmp_path):
    ws, tr, te = toy_workspace(tmp_path)
    with pytest.raises(TrainingError, match=r"out of memory.*--batch-size") as err:
        # a hidden width no machine holds: the allocator refuses at once
        train(ws, labels=tr, test=te, progress=False, overrides={**FAST, "hidden": 10**12})
    assert "can't allocate memory" in str(err.value) or "out of memory" in str(err.value)

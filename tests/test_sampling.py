"""fusion.sampling: the torch-only neighbour sampler and loader (CPU; CUDA where present)."""

from __future__ import annotations

import pytest
import torch
from generic_cases import DEVICES
from torch_geometric.data import HeteroData

from fusion.gnn import get_gnn
from fusion.sampling import NeighborLoader, NeighborSampler

COUNTS = {"a": 60, "b": 40}
EDGE_TYPES = [("a", "r", "b"), ("b", "s", "a"), ("a", "t", "a")]


def graph(device: str = "cpu", seed: int = 0, edges: int = 400, dim: int = 5) -> HeteroData:
    """Random heterogeneous graph without duplicate edges, with features and labels."""
    gen = torch.Generator().manual_seed(seed)
    data = HeteroData()
    for t, n in COUNTS.items():
        data[t].x = torch.randn(n, dim, generator=gen)
        data[t].y = torch.arange(n)
    for s, r, d in EDGE_TYPES:
        pairs = torch.randperm(COUNTS[s] * COUNTS[d], generator=gen)[:edges]
        data[s, r, d].edge_index = torch.stack([pairs // COUNTS[d], pairs % COUNTS[d]])
        data[s, r, d].edge_attr = torch.randn(edges, 2, generator=gen)
    return data.to(device)


def sampler(data: HeteroData, fanouts, seed=0) -> NeighborSampler:
    return NeighborSampler(data.edge_index_dict, COUNTS, fanouts, seed=seed)


def in_degree(data: HeteroData, et, node: int) -> int:
    return int((data[et].edge_index[1] == node).sum())


@pytest.mark.parametrize("device", DEVICES)
def test_sampled_edges_are_real_distinct_and_capped(device):
    data = graph(device)
    fanouts = [4, 3]
    out = sampler(data, fanouts).sample("a", torch.tensor([3, 17, 0, 42], device=device))
    assert out["a"].batch_size == 4
    assert out["a"].n_id[:4].tolist() == [3, 17, 0, 42]
    for t in COUNTS:
        n_id = out[t].n_id
        assert torch.unique(n_id).numel() == n_id.numel(), t  # each node once
        assert sum(out[t].num_sampled_nodes) == n_id.numel() == out[t].num_nodes
        assert len(out[t].num_sampled_nodes) == len(fanouts) + 1
    assert_sampled_edges_capped(data, out, dict.fromkeys(EDGE_TYPES, fanouts))


def assert_sampled_edges_capped(data: HeteroData, out: HeteroData, fanouts: dict) -> None:
    """Every sampled edge is a real edge, drawn once; per hop, each destination keeps
    min(in-degree, fanout of the edge type at that hop) of its incoming edges."""
    for et in data.edge_types:
        s, _, d = et
        ei, e_id = out[et].edge_index, out[et].e_id
        assert torch.unique(e_id).numel() == e_id.numel(), et  # without replacement
        # local ids map back to the original edges
        assert torch.equal(out[s].n_id[ei[0]], data[et].edge_index[0, e_id])
        assert torch.equal(out[d].n_id[ei[1]], data[et].edge_index[1, e_id])
        assert sum(out[et].num_sampled_edges) == e_id.numel()
        start = 0
        for hop, count in enumerate(out[et].num_sampled_edges):
            dst = ei[1, start : start + count]
            start += count
            frontier = torch.arange(
                sum(out[d].num_sampled_nodes[:hop]), sum(out[d].num_sampled_nodes[: hop + 1])
            )
            got = torch.bincount(dst.cpu(), minlength=out[d].num_nodes)
            assert not bool(got[~torch.isin(torch.arange(out[d].num_nodes), frontier)].any())
            k = fanouts[et][hop]
            for local in frontier.tolist():
                degree = in_degree(data, et, int(out[d].n_id[local]))
                assert got[local] == (degree if k < 0 else min(degree, k)), (et, hop)


def test_graphs_with_many_edge_types_and_a_fanout_per_type():
    """Forty edge types between three node types (as RDF graphs have), each with its own
    fanouts, one never sampled (left out of the mapping), one taking all neighbours."""
    gen = torch.Generator().manual_seed(3)
    counts = {"a": 30, "b": 20, "c": 10}
    data = HeteroData()
    for t, n in counts.items():
        data[t].num_nodes = n
    types = list(counts)
    fanouts = {}
    for r in range(40):
        s, d = types[r % 3], types[(r // 3) % 3]
        pairs = torch.randperm(counts[s] * counts[d], generator=gen)[: 5 + 4 * r]
        data[s, f"r{r}", d].edge_index = torch.stack([pairs // counts[d], pairs % counts[d]])
        fanouts[s, f"r{r}", d] = [1 + r % 4, -1 if r == 7 else r % 3]
    left_out = ("b", "r1", "a")
    del fanouts[left_out]
    seeds = {"a": torch.tensor([0, 5, 9]), "c": torch.tensor([2])}
    out = NeighborSampler(data.edge_index_dict, counts, fanouts, seed=0).sample_dict(seeds)
    assert out["a"].n_id[:3].tolist() == [0, 5, 9] and out["c"].n_id[:1].tolist() == [2]
    assert out[left_out].e_id.numel() == 0 and out[left_out].num_sampled_edges == [0, 0]
    assert_sampled_edges_capped(data, out, {**fanouts, left_out: [0, 0]})


@pytest.mark.parametrize("device", DEVICES)
def test_seeded_samplers_repeat_and_seeds_differ(device):
    data = graph(device)
    seeds = torch.arange(10, device=device)

    def draws(seed):
        s = sampler(data, [2, 2], seed=seed)
        return [s.sample("a", seeds) for _ in range(3)]  # later calls: tables were reset

    first, again, other = draws(7), draws(7), draws(8)
    for x, y in zip(first, again, strict=True):
        for et in EDGE_TYPES:
            assert torch.equal(x[et].e_id, y[et].e_id)
    assert not all(
        torch.equal(x[et].e_id, y[et].e_id)
        for x, y in zip(first, other, strict=True)
        for et in EDGE_TYPES
    )
    assert not torch.equal(first[0][EDGE_TYPES[1]].e_id, first[1][EDGE_TYPES[1]].e_id)


def test_neighbours_are_drawn_uniformly_without_replacement():
    # node 0 of "b" has 20 incoming edges; fanout 5: each edge is drawn with p = 1/4
    src = torch.arange(20)
    data = HeteroData()
    data["a"].num_nodes, data["b"].num_nodes = 20, 1
    data["a", "r", "b"].edge_index = torch.stack([src, torch.zeros(20, dtype=torch.long)])
    s = NeighborSampler(data.edge_index_dict, {"a": 20, "b": 1}, [5], seed=0)
    hits = torch.zeros(20)
    trials = 4000
    for _ in range(trials):
        e_id = s.sample("b", torch.tensor([0]))["a", "r", "b"].e_id
        assert e_id.numel() == 5 and torch.unique(e_id).numel() == 5
        hits[e_id] += 1
    freq = hits / trials
    assert float((freq - 0.25).abs().max()) < 0.04, freq


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["rgcn", "sage"])
def test_full_fanout_gives_the_full_graph_outputs_of_the_seeds(device, name):
    data = graph(device)
    metadata = data.metadata()
    torch.manual_seed(0)
    gnn = get_gnn(name, metadata, in_dims={"a": 5, "b": 5}, hidden=8, out_dim=3).to(device)
    full = gnn(data.x_dict, data.edge_index_dict)["a"]
    loader = NeighborLoader(data, [-1, -1], ("a", None), batch_size=16, shuffle=True, seed=1)
    seen = []
    for batch in loader:
        bs = batch["a"].batch_size
        out = gnn(batch.x_dict, batch.edge_index_dict)["a"][:bs]
        seeds = batch["a"].n_id[:bs]
        assert torch.allclose(out, full[seeds], atol=1e-5), name
        assert torch.equal(seeds, loader.input_nodes[batch["a"].input_id])
        seen.append(seeds)
    assert sorted(torch.cat(seen).tolist()) == list(range(COUNTS["a"]))  # each seed once


def test_loader_slices_attributes_batches_and_masks():
    data = graph()
    mask = torch.zeros(COUNTS["b"], dtype=torch.bool)
    mask[::3] = True
    loader = NeighborLoader(data, [2], ("b", mask), batch_size=4, drop_last=True, seed=0)
    assert len(loader) == int(mask.sum()) // 4
    batches = list(loader)
    assert len(batches) == len(loader)
    assert torch.equal(batches[0]["b"].n_id[:4], mask.nonzero().flatten()[:4])  # no shuffle
    for batch in batches:
        for t in COUNTS:
            assert torch.equal(batch[t].x, data[t].x[batch[t].n_id])
            assert torch.equal(batch[t].y, batch[t].n_id)
        for et in EDGE_TYPES:
            assert torch.equal(batch[et].edge_attr, data[et].edge_attr[batch[et].e_id])
    by_type = NeighborLoader(data, {("a", "r", "b"): [3, 1]}, "b", batch_size=50)
    (only,) = list(by_type)
    assert only["b"].batch_size == COUNTS["b"]
    assert only["b", "s", "a"].edge_index.shape == (2, 0)  # fanout 0: never sampled
    assert only["a", "r", "b"].num_sampled_edges[1] == 0  # no new "b" nodes after hop 0


def test_bad_input_is_named():
    data = graph()
    s = sampler(data, [2])
    with pytest.raises(IndexError, match="'a'.*out of range"):
        s.sample("a", torch.tensor([0, 60]))
    with pytest.raises(ValueError, match="repeat"):
        s.sample("a", torch.tensor([1, 1]))
    with pytest.raises(KeyError, match="unknown input node type 'c'"):
        s.sample("c", torch.tensor([0]))
    # a refused call leaves the sampler usable and unchanged
    assert s.sample("a", torch.tensor([5]))["a"].n_id[0] == 5
    with pytest.raises(ValueError, match="differ in length"):
        NeighborSampler(data.edge_index_dict, COUNTS, {EDGE_TYPES[0]: [1], EDGE_TYPES[1]: [1, 2]})
    with pytest.raises(KeyError, match="unknown edge types"):
        NeighborSampler(data.edge_index_dict, COUNTS, {("a", "x", "b"): [1]})
    with pytest.raises(ValueError, match=">= 0 or -1"):
        NeighborSampler(data.edge_index_dict, COUNTS, [-2])
    with pytest.raises(IndexError, match="out of range"):
        NeighborSampler({EDGE_TYPES[0]: torch.tensor([[0], [40]])}, COUNTS, [1])
    with pytest.raises(ValueError, match="batch_size"):
        NeighborLoader(data, [1], "a", batch_size=0)

"""Heterogeneous GNNs: the generic cases for every registered variant, then specifics."""

from __future__ import annotations

import json

import pytest
import torch
from generic_cases import (
    CATEGORY,
    GNN_IN_DIMS,
    HIDDEN,
    METADATA,
    NUM_NODES,
    GNNCases,
    gnn_graph,
    one_thread,  # noqa: F401  (an autouse fixture)
)
from torch_geometric.nn import RGCNConv

from fusion.gnn import GNNS, RGCNInputLayer, RGCNLayer, build_from_config, get_gnn, list_gnns
from fusion.gnn.relational import relational_graph


class TestEveryGNN(GNNCases):
    """Shapes, embeddings, messages, gradients, save/load, seeds, devices for every GNN."""


def test_all_variants_registered():
    assert list_gnns() == ["gat", "hgt", "mlp", "rgcn", "sage"]


@pytest.mark.parametrize("kwargs", [{}, {"num_bases": 3}, {"num_blocks": 2}])
def test_rgcn_layer_matches_pyg_rgcnconv(kwargs):
    """Our CSR path computes what RGCNConv computes, with the same weights, gradients too."""
    torch.manual_seed(0)
    n, r = 40, 4
    edges = [torch.randint(0, n, (2, 150)) for _ in range(r)]
    edges[2] = edges[2][:, :0]  # a relation without edges
    graph = relational_graph(edges, [("n", str(i), "n") for i in range(r)], {"n": 0}, {"n": n})
    ours = RGCNLayer(8, 6, r, **kwargs)
    ref = RGCNConv(8, 6, r, **kwargs)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(n, 8, requires_grad=True)
    edge_index = torch.cat(edges, dim=1)
    edge_type = torch.cat([torch.full((e.shape[1],), i) for i, e in enumerate(edges)])
    a, b = ours(x, graph), ref(x, edge_index, edge_type)
    assert torch.allclose(a, b, atol=1e-5)
    ga = torch.autograd.grad(a.pow(2).sum(), [x, *ours.parameters()])
    gb = torch.autograd.grad(b.pow(2).sum(), [x, *ref.parameters()])
    for u, v in zip(ga, gb, strict=True):
        assert torch.allclose(u, v, atol=1e-4)


def test_rgcn_impls_agree_on_the_hetero_model():
    x, edges = gnn_graph()
    kw = dict(in_dims=GNN_IN_DIMS, hidden=HIDDEN, out_dim=4, num_nodes=NUM_NODES, num_bases=2)
    fast = get_gnn("rgcn", METADATA, **kw)
    slow = get_gnn("rgcn", METADATA, impl="pyg", **kw)
    slow.load_state_dict(fast.state_dict())
    a, b = fast(x, edges), slow(x, edges)
    for t in a:
        assert torch.allclose(a[t], b[t], atol=1e-5), t


def test_rgcn_caches_the_relational_graph():
    x, edges = gnn_graph()
    gnn = get_gnn("rgcn", METADATA, GNN_IN_DIMS, HIDDEN, 4, num_nodes=NUM_NODES)
    h = gnn.encode(x)
    g1 = gnn.prepare(h, gnn.check_edges(edges, h))
    g2 = gnn.prepare(h, gnn.check_edges(edges, h))
    assert g1 is g2
    edges[METADATA[1][0]][1, 0] = (edges[METADATA[1][0]][1, 0] + 1) % NUM_NODES["brand"]
    g3 = gnn.prepare(h, gnn.check_edges(edges, h))  # changed in place: rebuilt
    assert g3 is not g1
    for _ in range(3):  # new tensors every call: the cache stays bounded
        gnn.prepare(h, gnn.check_edges({k: v.clone() for k, v in edges.items()}, h))
    assert len(gnn._graphs) == gnn.cache_size


def test_rgcn_rejects_out_of_range_ids():
    x, edges = gnn_graph()
    gnn = get_gnn("rgcn", METADATA, GNN_IN_DIMS, HIDDEN, 4, num_nodes=NUM_NODES)
    bad = edges[METADATA[1][0]].clone()
    bad[1, 0] = 99
    with pytest.raises(IndexError, match="made_by"):
        gnn(x, {**edges, METADATA[1][0]: bad})


def test_config_errors():
    with pytest.raises(ValueError, match="num_nodes"):
        get_gnn("sage", METADATA, GNN_IN_DIMS, HIDDEN, 4)
    with pytest.raises(ValueError, match="unknown node types"):
        get_gnn("sage", METADATA, {"prodcut": 3}, HIDDEN, 4, num_nodes=NUM_NODES)
    with pytest.raises(ValueError, match="not both"):
        get_gnn(
            "rgcn", METADATA, GNN_IN_DIMS, HIDDEN, 4, num_nodes=NUM_NODES, num_bases=2, num_blocks=2
        )
    with pytest.raises(ValueError, match="heads"):
        get_gnn("hgt", METADATA, GNN_IN_DIMS, HIDDEN, 4, num_nodes=NUM_NODES, heads=3)
    with pytest.raises(ValueError, match="metadata"):
        get_gnn("mlp", (["a"], [("a", "r", "b")]), {"a": 2}, HIDDEN, 4)
    x, edges = gnn_graph()
    gnn = get_gnn("mlp", METADATA, GNN_IN_DIMS, HIDDEN, 4, num_nodes=NUM_NODES)
    with pytest.raises(KeyError, match="brand"):
        gnn({k: v for k, v in x.items() if k != "brand"}, edges)
    with pytest.raises(ValueError, match="product"):
        gnn({**x, "product": torch.randn(10, 2)}, edges)


def test_build_from_config_restores_tuples():
    gnn = get_gnn("gat", METADATA, GNN_IN_DIMS, HIDDEN, 4, num_nodes=NUM_NODES, heads=2)
    import json

    again = build_from_config(json.loads(json.dumps(gnn.config)))
    assert again.edge_types == METADATA[1] and again.config == gnn.config
    assert isinstance(again.encoders[CATEGORY], torch.nn.Embedding)
    assert "rgcn" in GNNS


def test_no_edge_types_at_all():
    meta = (["a", "b"], [])
    for name in list_gnns():
        gnn = get_gnn(name, meta, {"a": 3, "b": 0}, HIDDEN, 4, num_nodes={"b": 2})
        out = gnn({"a": torch.randn(5, 3)}, {})
        assert out["a"].shape == (5, 4) and out["b"].shape == (2, 4)


# -- R-GCN's featureless (one-hot) input layer -------------------------------------------------

ONEHOT_TYPES = {"a": 5, "b": 4}
# relation 0 sent by "a" and "b" (one predicate between several type pairs), 1 by "b" only,
# 2 by nobody here (its sources have features)
ONEHOT_SOURCES = [["a", "b"], ["b"], []]


def onehot_graph(seed: int = 0):
    """Node types a (5), b (4), c (3; with features); edges of 3 relations."""
    gen = torch.Generator().manual_seed(seed)
    counts = {"a": 5, "b": 4, "c": 3}
    offsets = {"a": 0, "b": 5, "c": 9}
    edge_types = [("a", "r0", "b"), ("b", "r0", "c"), ("b", "r1", "a"), ("c", "r2", "a")]

    def rand(s, d, e):
        return torch.stack(
            [
                torch.randint(0, counts[s], (e,), generator=gen),
                torch.randint(0, counts[d], (e,), generator=gen),
            ]
        )

    edges = [rand(s, d, 12) for s, _, d in edge_types]
    graph = relational_graph(edges, edge_types, offsets, counts, relation_ids=[0, 0, 1, 2])
    return graph, edges, edge_types, offsets, counts


def dense_onehot(layer: RGCNInputLayer, graph) -> torch.Tensor:
    """The layer's output computed the straightforward way: full per-relation weight
    matrices ``W_r [N_graph, out]`` (zero rows for nodes that have features) and dense
    mean-normalised adjacency matrices ``A_r [N_graph, N_graph]``."""
    n, out = graph.num_nodes, layer.out_channels
    W = torch.zeros(layer.num_relations, n, out)
    table = layer.relation_weights()
    for r in range(layer.num_relations):
        for k, t in enumerate(layer.types):
            start = int(layer.block_start[r, k])
            if start >= 0:
                off, count = graph.offsets[t], graph.counts[t]
                W[r, off : off + count] = table[start : start + count]
    A = torch.zeros(layer.num_relations, n, n)
    for s, d, r in zip(graph.src.tolist(), graph.dst.tolist(), graph.rel.tolist(), strict=True):
        A[r, d, s] += 1.0
    A = A / A.sum(-1, keepdim=True).clamp(min=1.0)
    h = torch.einsum("rij,rjo->io", A, W)
    for t in layer.types:
        off, count = graph.offsets[t], graph.counts[t]
        start = layer.node_start[t]
        h[off : off + count] += layer.root[start : start + count]
    return h + (layer.bias if layer.bias is not None else 0.0)


@pytest.mark.parametrize("num_bases", [None, 3])
def test_onehot_layer_shapes_and_dense_equivalence(num_bases):
    torch.manual_seed(0)
    graph, *_ = onehot_graph()
    layer = RGCNInputLayer(ONEHOT_TYPES, ONEHOT_SOURCES, 6, num_bases=num_bases)
    rows = 5 * 1 + 4 * 2  # a sends r0; b sends r0 and r1
    assert layer.rows == rows and layer.relation_weights().shape == (rows, 6)
    if num_bases:
        assert layer.weight.shape == (3, 9, 6) and layer.comp.shape == (2, 3)
    else:
        assert layer.weight.shape == (rows, 6)
    assert layer.root.shape == (9, 6)
    out = layer(graph)
    assert out.shape == (12, 6)
    assert torch.allclose(out, dense_onehot(layer, graph), atol=1e-5)
    assert graph.cache, "the per-graph plan is cached on the graph"


@pytest.mark.parametrize("num_bases", [None, 3])
def test_onehot_layer_gradients_reach_every_parameter(num_bases):
    torch.manual_seed(0)
    graph, *_ = onehot_graph()
    layer = RGCNInputLayer(ONEHOT_TYPES, ONEHOT_SOURCES, 6, num_bases=num_bases)
    target = torch.randn(12, 6, generator=torch.Generator().manual_seed(1))
    (layer(graph) * target).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    assert all(bool(g.abs().sum() > 0) for g in grads.values()), grads.keys()
    layer.zero_grad()
    (dense_onehot(layer, graph) * target).sum().backward()  # autograd through the dense path
    for name, p in layer.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-5), name


@pytest.mark.parametrize("num_bases", [None, 2])
def test_onehot_layer_matches_pyg_rgcnconv_without_features(num_bases):
    """PyG's featureless RGCNConv (x=None, in_channels = N) with the same weights: our
    blocks are its W_r restricted to the rows that are read; the other rows are zero."""
    torch.manual_seed(0)
    n, r = 9, 3
    gen = torch.Generator().manual_seed(2)
    edges = [torch.randint(0, n, (2, 30), generator=gen) for _ in range(r)]
    edge_types = [("n", f"r{i}", "n") for i in range(r)]
    graph = relational_graph(edges, edge_types, {"n": 0}, {"n": n})
    ours = RGCNInputLayer({"n": n}, [["n"]] * r, 4, num_bases=num_bases)
    ref = RGCNConv(n, 4, r, num_bases=num_bases)
    with torch.no_grad():
        ref.weight.copy_(ours.weight.view(ref.weight.shape))
        ref.root.copy_(ours.root)
        ref.bias.copy_(ours.bias)
        if num_bases:
            ref.comp.copy_(ours.comp)
    edge_index = torch.cat(edges, dim=1)
    edge_type = torch.cat([torch.full((e.shape[1],), i) for i, e in enumerate(edges)])
    a, b = ours(graph), ref(None, edge_index, edge_type)
    assert torch.allclose(a, b, atol=1e-5)
    ga = torch.autograd.grad(a.pow(2).sum(), list(ours.parameters()))
    gb = torch.autograd.grad(b.pow(2).sum(), list(ref.parameters()))
    named = dict(zip([k for k, _ in ours.named_parameters()], ga, strict=True))
    for (name, _), g in zip(ref.named_parameters(), gb, strict=True):
        assert torch.allclose(named[name].reshape(g.shape), g, atol=1e-4), name


def test_onehot_layer_node_ids_subset():
    """A mini-batch of node ids: row k of type t is node ids[t][k]; relabelling the nodes
    and passing the permutation as ids gives the permuted output."""
    torch.manual_seed(0)
    graph, edges, edge_types, offsets, counts = onehot_graph()
    layer = RGCNInputLayer(ONEHOT_TYPES, ONEHOT_SOURCES, 6, num_bases=2)
    full = layer(graph)
    same = layer(graph, {"a": torch.arange(5), "b": torch.arange(4)})
    assert torch.allclose(full, same, atol=1e-6)
    perm = {"a": torch.randperm(5), "b": torch.randperm(4), "c": torch.arange(3)}
    inverse = {t: torch.argsort(p) for t, p in perm.items()}  # old id -> new row
    moved = [
        torch.stack([inverse[s][e[0]], inverse[d][e[1]]])
        for (s, _, d), e in zip(edge_types, edges, strict=True)
    ]
    g2 = relational_graph(moved, edge_types, offsets, counts, relation_ids=[0, 0, 1, 2])
    out = layer(g2, {"a": perm["a"], "b": perm["b"]})
    for t in ("a", "b", "c"):
        off = offsets[t]
        assert torch.allclose(out[off : off + counts[t]], full[off + perm[t]], atol=1e-5), t
    with pytest.raises(IndexError, match="out of range"):
        layer(graph, {"a": torch.tensor([0, 1, 2, 3, 7])})


ALL_FEATURELESS = (["a", "b"], [("a", "r", "b"), ("b", "rev_r", "a"), ("a", "r", "a")])


def featureless_edges(seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    ab = torch.stack(
        [torch.randint(0, 6, (15,), generator=gen), torch.randint(0, 4, (15,), generator=gen)]
    )
    aa = torch.randint(0, 6, (2, 10), generator=gen)
    return {ALL_FEATURELESS[1][0]: ab, ALL_FEATURELESS[1][1]: ab.flip(0), ALL_FEATURELESS[1][2]: aa}


@pytest.mark.parametrize("num_bases", [None, 2])
def test_rgcn_featureless_is_the_paper_model(num_bases):
    """All types featureless, out_proj=False: the paper's two-layer R-GCN, the first
    layer one-hot; relations per predicate share W_r and the neighbour mean."""
    kw = dict(hidden=5, out_dim=3, num_nodes={"a": 6, "b": 4}, num_bases=num_bases, out_proj=False)
    gnn = get_gnn("rgcn", ALL_FEATURELESS, {"a": 0, "b": 0}, **kw)
    assert gnn.onehot_types == ["a", "b"] and len(gnn.encoders) == 0
    assert gnn.relation_names == ["r", "rev_r"] and gnn.relation_of == [0, 1, 0]
    first, second = gnn.convs
    assert isinstance(first, RGCNInputLayer) and first.bias is not None
    assert second.out_channels == 3 and not gnn.heads
    edges = featureless_edges()
    out = gnn({}, edges)
    # the same by hand over the homogeneous graph (a: 0..5, b: 6..9)
    graph = gnn.prepare(gnn.encode({}), gnn.check_edges(edges, gnn.encode({})))
    h = torch.relu(dense_onehot(first, graph))
    edge_index, edge_type = graph.homogeneous()
    ref = RGCNConv(5, 3, 2, num_bases=num_bases)
    ref.load_state_dict(second.state_dict())
    expected = ref(h, edge_index, edge_type)
    assert torch.allclose(torch.cat([out["a"], out["b"]]), expected, atol=1e-5)


def test_rgcn_featureless_save_load_round_trip(tmp_path):
    gnn = get_gnn(
        "rgcn", ALL_FEATURELESS, {"a": 0, "b": 0}, 4, 4, num_nodes={"a": 6, "b": 4}, num_bases=2
    ).eval()
    edges = featureless_edges()
    expected = gnn({}, edges)
    gnn.save(tmp_path / "m")
    loaded = type(gnn).load(tmp_path / "m").eval()
    assert loaded.config == gnn.config and loaded.onehot_types == ["a", "b"]
    for t, v in loaded({}, edges).items():
        assert torch.equal(v, expected[t]), t
    again = build_from_config(json.loads(json.dumps(gnn.config)))
    again.load_state_dict(gnn.state_dict())
    assert torch.equal(again.eval()({}, edges)["a"], expected["a"])


def test_rgcn_featureless_modes_and_auto_fallback(monkeypatch):
    import fusion.gnn.rgcn as rgcn_module

    kw = dict(in_dims={"a": 0, "b": 0}, hidden=4, out_dim=4, num_nodes={"a": 6, "b": 4})
    assert get_gnn("rgcn", ALL_FEATURELESS, **kw).onehot_types == ["a", "b"]  # auto, small
    emb = get_gnn("rgcn", ALL_FEATURELESS, featureless="embedding", **kw)
    assert emb.onehot_types == [] and isinstance(emb.encoders["a"], torch.nn.Embedding)
    monkeypatch.setattr(rgcn_module, "ONEHOT_AUTO_MAX", 10)
    assert get_gnn("rgcn", ALL_FEATURELESS, **kw).onehot_types == []  # auto, too large
    assert get_gnn("rgcn", ALL_FEATURELESS, featureless="onehot", **kw).onehot_types == ["a", "b"]
    assert get_gnn("rgcn", ALL_FEATURELESS, relations="edge_type", **kw).relation_of == [0, 1, 2]
    with pytest.raises(ValueError, match="featureless"):
        get_gnn("rgcn", ALL_FEATURELESS, featureless="one-hot", **kw)
    with pytest.raises(ValueError, match="relations"):
        get_gnn("rgcn", ALL_FEATURELESS, relations="type", **kw)
    with pytest.raises(ValueError, match="num_layers"):
        get_gnn("rgcn", ALL_FEATURELESS, featureless="onehot", num_layers=0, **kw)
    size = rgcn_module.onehot_input_size({"a": 6, "b": 4}, [["a"], ["b"]], 4)
    assert size == (6 + 4) * 4 + (6 + 4) * 4  # rows (a sends r, b sends rev_r) + root


def test_rgcn_node_ids_adds_onehot_to_features():
    """node_ids=True: the first layer is the features' R-GCN layer plus the one-hot layer
    over every node type (the input is [x; one-hot])."""
    x, edges = gnn_graph()
    base = dict(in_dims=GNN_IN_DIMS, hidden=HIDDEN, out_dim=4, num_nodes=NUM_NODES)
    gnn = get_gnn("rgcn", METADATA, node_ids=True, **base).eval()
    first = gnn.convs[0]
    assert first.onehot.types == METADATA[0] and first.onehot.bias is None
    h = gnn.encode(x)
    graph = gnn.prepare(h, gnn.check_edges(edges, h))
    zero_cat = torch.cat(
        [torch.zeros(NUM_NODES[t], HIDDEN) if t == CATEGORY else h[t] for t in METADATA[0]]
    )
    expected = first.conv(zero_cat, graph) + dense_onehot(first.onehot, graph)
    got = gnn.propagate(0, h, gnn.check_edges(edges, h), graph)
    assert torch.allclose(torch.cat([got[t] for t in METADATA[0]]), expected, atol=1e-5)
    with pytest.raises(ValueError, match="full batch"):
        gnn({**x, "product": x["product"][:4]}, {})
    with pytest.raises(ValueError, match="num_nodes"):
        get_gnn("rgcn", METADATA, node_ids=True, **{**base, "num_nodes": {CATEGORY: 3}})


def test_out_proj_false_makes_the_last_layer_the_output():
    x, edges = gnn_graph()
    for name in list_gnns():
        extra = {"heads": 1} if name in ("gat", "hgt") else {}
        gnn = get_gnn(
            name, METADATA, GNN_IN_DIMS, HIDDEN, 3, num_nodes=NUM_NODES, out_proj=False, **extra
        )
        assert not gnn.heads and gnn.config["out_proj"] is False
        out = gnn(x, edges)
        assert all(out[t].shape == (NUM_NODES[t], 3) for t in METADATA[0]), name
        # no activation after the output layer: some outputs are negative
        assert any(bool((v < 0).any()) for v in out.values()), name
    with pytest.raises(ValueError, match="num_layers"):
        get_gnn(
            "sage",
            METADATA,
            GNN_IN_DIMS,
            HIDDEN,
            3,
            num_nodes=NUM_NODES,
            out_proj=False,
            num_layers=0,
        )


def test_every_gnn_trains_under_bf16_autocast():
    x, edges = gnn_graph()
    for name in list_gnns():
        extra = {"heads": 1} if name in ("gat", "hgt") else {}
        gnn = get_gnn(name, METADATA, GNN_IN_DIMS, HIDDEN, 3, num_nodes=NUM_NODES, **extra)
        ref = gnn(x, edges)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = gnn(x, edges)
        loss = sum(v.float().square().mean() for v in out.values())
        loss.backward()
        for t in METADATA[0]:
            err = (out[t].float() - ref[t]).norm() / ref[t].norm()
            assert err < 5e-2, (name, t, float(err))
        assert all(p.grad.dtype == torch.float32 for p in gnn.parameters() if p.grad is not None)


def test_input_gate_starts_closed_and_its_prior_pulls_it_shut():
    """``input_gate``: at initialisation the features change almost nothing (the structural
    model);
    the gate learns from the loss, and ``gate_prior`` adds ``lam * p`` to its gradient."""
    from fusion.gnn import get_gnn

    torch.manual_seed(0)
    metadata = (["a", "b"], [("a", "to", "b"), ("b", "rev_to", "a")])
    edges = {("a", "to", "b"): torch.tensor([[0, 1, 2], [0, 0, 1]]),
             ("b", "rev_to", "a"): torch.tensor([[0, 0, 1], [0, 1, 2]])}  # fmt: skip
    gnn = get_gnn("rgcn", metadata, {"a": 5, "b": 0}, 8, 3, num_nodes={"a": 3, "b": 2},
                  featureless="onehot", node_ids=True, input_gate=True, gate_prior=0.5)  # fmt: skip
    x = torch.randn(3, 5)
    out = gnn({"a": x}, edges)
    closed = gnn({"a": torch.zeros(3, 5)}, edges)
    assert all(torch.allclose(out[t], closed[t], atol=1e-2) for t in out)  # nearly closed
    out["b"].sum().backward()
    gate = gnn.input_gates["a"]
    assert gate.grad is not None and gate.grad.abs().item() > 0  # it can open
    with torch.no_grad():
        gate.fill_(2.0)
    gnn.zero_grad()
    (0 * gnn({"a": x}, edges)["b"].sum()).backward()
    assert torch.allclose(gate.grad, torch.tensor([1.0]))  # 0.5 * 2: only the prior
    assert gnn.config["input_gate"] is True and gnn.config["gate_prior"] == 0.5

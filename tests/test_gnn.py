"""Heterogeneous GNNs: the generic cases for every registered variant, then specifics."""

from __future__ import annotations

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

from fusion.gnn import GNNS, RGCNLayer, build_from_config, get_gnn, list_gnns
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

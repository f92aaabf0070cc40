"""Generic test cases for every registered variant (PyKEEN style).

:class:`FusionCases` and :class:`GNNCases` are parametrised over the names in
``FUSIONS`` / ``GNNS`` at collection time, so a new variant is tested by being registered:
no per-variant test code. Optional extra configurations per name go in
``FUSION_EXTRA`` / ``GNN_EXTRA``. A test module collects a case class by subclassing it::

    class TestFusions(FusionCases): ...

Checked for every variant: output shapes, the config round trip, masks / missing inputs,
gradients reaching every parameter, safetensors save + load, determinism under a seed,
CPU and CUDA (skipped without CUDA); for GNNs also featureless node types (embeddings, or
one-hot input where a variant takes it),
node types that receive no messages, and that messages really pass (except ``mlp``,
where they must not).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from fusion.fuse import FUSIONS
from fusion.fuse import build_from_config as build_fusion
from fusion.gnn import GNNS
from fusion.gnn import build_from_config as build_gnn
from fusion.registry import UnknownNameError

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available"),
    ),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread. With more, some CPU kernels (GELU, LayerNorm) pay
    milliseconds per call in OpenMP wake-ups on a busy machine, for no work."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.cpu(), b.cpu(), atol=tol, rtol=tol)


def check_grads(module: torch.nn.Module) -> None:
    """Every parameter got a gradient and it is not all zero."""
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    zero = [n for n, p in module.named_parameters() if not bool(p.grad.abs().sum() > 0)]
    assert not zero, f"all-zero gradient for {zero}"
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradient for {bad}"


def state_round_trip(module: torch.nn.Module, rebuild, tmp_path) -> torch.nn.Module:
    """Save ``state_dict`` with safetensors, rebuild from the JSON config, load it back."""
    path = tmp_path / "model.safetensors"
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, path)
    config = json.loads(json.dumps(module.config))
    other = rebuild(config)
    other.load_state_dict(load_file(str(path)))
    return other.eval()


def ids(cases: list[tuple[str, dict]]) -> list[str]:
    return [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in cases]


# ------------------------------------------------------------------------------------------
# fusion
# ------------------------------------------------------------------------------------------

#: extra configurations tested besides each variant's defaults
FUSION_EXTRA: dict[str, list[dict[str, Any]]] = {
    "tensor": [{"hidden": {"text": 3, "image": 4, "num.price": 2}}],
    "lowrank": [{"rank": 1}],
}
FUSION_CASES = [(n, {}) for n in FUSIONS.names()] + [
    (n, kw) for n, kws in FUSION_EXTRA.items() if n in FUSIONS for kw in kws
]

IN_DIMS = {"text": 7, "image": 5, "num.price": 3}
OUT_DIM = 6
# every combination of present / missing modalities, twice (16 nodes)
MASK_BITS = torch.tensor([[(i >> b) & 1 for b in range(3)] for i in range(8)] * 2, dtype=torch.bool)


def fusion_inputs(seed: int = 0, device="cpu") -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(seed)
    n = MASK_BITS.shape[0]
    x = {m: torch.randn(n, d, generator=gen).to(device) for m, d in IN_DIMS.items()}
    mask = {m: MASK_BITS[:, i].to(device) for i, m in enumerate(IN_DIMS)}
    return x, mask


class FusionCases:
    """Checks every registered fusion module."""

    @pytest.fixture(params=FUSION_CASES, ids=ids(FUSION_CASES))
    def case(self, request) -> tuple[str, dict]:
        return request.param

    def build(self, case, seed: int = 0):
        name, kwargs = case
        torch.manual_seed(seed)
        return FUSIONS.get(name, in_dims=IN_DIMS, out_dim=OUT_DIM, **kwargs).eval()

    def test_shape_and_config(self, case):
        module = self.build(case)
        x, mask = fusion_inputs()
        out = module(x, mask)
        assert out.shape == (MASK_BITS.shape[0], OUT_DIM)
        assert torch.isfinite(out).all()
        assert module.config["name"] == case[0] == module.name
        assert json.loads(json.dumps(module.config)) == module.config
        assert module(x).shape == out.shape  # no mask: everything present

    def test_masked_features_are_ignored(self, case):
        module = self.build(case)
        x, mask = fusion_inputs()
        out = module(x, mask)
        noisy = {}
        for i, (m, t) in enumerate(x.items()):
            junk = torch.randn_like(t) * 1e3
            junk[::3] = float("nan")
            noisy[m] = torch.where(MASK_BITS[:, i : i + 1], t, junk)
        assert torch.equal(module(noisy, mask), out)
        # a modality absent from x is missing for every node
        only = {m: x[m] for m in list(IN_DIMS)[:2]}
        sub_mask = {m: mask[m] for m in only}
        dropped = {
            m: (v if m in only else torch.zeros_like(v, dtype=torch.bool)) for m, v in mask.items()
        }
        assert torch.equal(module(only, sub_mask), module(x, dropped))

    def test_nodes_without_any_modality(self, case):
        module = self.build(case)
        x, mask = fusion_inputs()
        out = module(x, mask)
        none = ~MASK_BITS.any(dim=1)
        assert torch.isfinite(out).all()
        assert torch.equal(out[none], module.empty.detach().expand(int(none.sum()), -1))
        all_missing = {m: torch.zeros_like(v) for m, v in mask.items()}
        out = module(x, all_missing)
        assert torch.isfinite(out).all() and out.shape == (MASK_BITS.shape[0], OUT_DIM)

    def test_batch_independence(self, case):
        module = self.build(case)
        x, mask = fusion_inputs()
        out = module(x, mask)
        idx = torch.tensor([5, 0, 11])
        sub = module({m: v[idx] for m, v in x.items()}, {m: v[idx] for m, v in mask.items()})
        assert close(sub, out[idx])

    def test_gradients_reach_every_parameter(self, case):
        module = self.build(case).train()
        x, mask = fusion_inputs()
        x = {m: v.requires_grad_() for m, v in x.items()}
        out = module(x, mask)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        ((out * weight).sum() + out.pow(2).sum()).backward()
        check_grads(module)
        for i, (m, v) in enumerate(x.items()):
            assert torch.all(v.grad[~MASK_BITS[:, i]] == 0), f"masked {m} rows got gradient"

    def test_save_load_round_trip(self, case, tmp_path):
        module = self.build(case)
        x, mask = fusion_inputs()
        other = state_round_trip(module, build_fusion, tmp_path)
        assert torch.equal(other(x, mask), module(x, mask))
        module.save(tmp_path / "saved")
        loaded = type(module).load(tmp_path / "saved").eval()
        assert type(loaded) is type(module)
        assert torch.equal(loaded(x, mask), module(x, mask))

    def test_deterministic_under_seed(self, case):
        x, mask = fusion_inputs()
        a, b = self.build(case, seed=3), self.build(case, seed=3)
        for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert na == nb and torch.equal(pa, pb)
        assert torch.equal(a(x, mask), b(x, mask))
        assert torch.equal(a(x, mask), a(x, mask))

    @pytest.mark.parametrize("device", DEVICES)
    def test_device(self, case, device):
        module = self.build(case)
        x, mask = fusion_inputs()
        expected = module(x, mask)
        module = copy.deepcopy(module).to(device)
        xd, md = fusion_inputs(device=device)
        out = module(xd, md)
        assert out.device.type == device
        assert close(out, expected, 1e-4)
        out.sum().backward()

    def test_unknown_name(self, case):
        with pytest.raises(KeyError) as err:
            FUSIONS.get(case[0] + "x", in_dims=IN_DIMS, out_dim=OUT_DIM)
        assert isinstance(err.value, UnknownNameError)
        assert f"did you mean {case[0]!r}" in str(err.value)


# ------------------------------------------------------------------------------------------
# GNNs
# ------------------------------------------------------------------------------------------

#: extra configurations tested besides each variant's defaults
COMMON_EXTRA: list[dict[str, Any]] = [
    {"residual": True, "norm": "layer", "num_layers": 3, "dropout": 0.1, "act": "gelu"},
]
GNN_EXTRA: dict[str, list[dict[str, Any]]] = {
    "rgcn": [
        {"num_bases": 2},
        {"num_blocks": 2},
        {"impl": "pyg"},
        {"featureless": "embedding", "relations": "edge_type"},
        {"out_proj": False, "num_bases": 2},
        {"out_proj": False, "num_layers": 1, "norm": "layer", "residual": True},
        {"node_ids": True, "num_bases": 2},
    ],
    "hgt": [{"heads": 1}, {"heads": 1, "out_proj": False}],
    "gat": [{"heads": 4}, {"heads": 1, "out_proj": False}],
    "sage": [{"aggr": "max"}, {"out_proj": False}],
    "mlp": [{"out_proj": False}],
}
GNN_CASES = (
    [(n, {}) for n in GNNS.names()]
    + [(n, kw) for n in GNNS.names() for kw in COMMON_EXTRA]
    + [(n, kw) for n, kws in GNN_EXTRA.items() if n in GNNS for kw in kws]
)

# "seller" only sends (no edge type ends there); the category type has no features and a
# dotted name (module dict keys must cope).
CATEGORY = "schema.org/Category"
NODE_TYPES = ["product", "brand", CATEGORY, "seller"]
EDGE_TYPES = [
    ("product", "made_by", "brand"),
    ("brand", "rev_made_by", "product"),
    ("product", "in_category", CATEGORY),
    (CATEGORY, "rev_in_category", "product"),
    ("seller", "sells", "product"),
]
METADATA = (NODE_TYPES, EDGE_TYPES)
GNN_IN_DIMS = {"product": 6, "brand": 4, CATEGORY: 0, "seller": 5}
NUM_NODES = {"product": 10, "brand": 4, CATEGORY: 3, "seller": 3}
HIDDEN, GNN_OUT = 8, 5


def gnn_graph(seed: int = 0, device="cpu") -> tuple[dict, dict]:
    """Small graph: every product has 2 brands and 2 categories, every seller 6 products."""
    gen = torch.Generator().manual_seed(seed)
    x = {
        t: torch.randn(NUM_NODES[t], d, generator=gen).to(device)
        for t, d in GNN_IN_DIMS.items()
        if d
    }

    def pick(n_src: int, n_dst: int, k: int) -> torch.Tensor:
        dst = torch.stack([torch.randperm(n_dst, generator=gen)[:k] for _ in range(n_src)])
        return torch.stack([torch.arange(n_src).repeat_interleave(k), dst.flatten()])

    made_by = pick(NUM_NODES["product"], NUM_NODES["brand"], 2)
    in_cat = pick(NUM_NODES["product"], NUM_NODES[CATEGORY], 2)
    sells = pick(NUM_NODES["seller"], NUM_NODES["product"], 6)
    edges = {
        EDGE_TYPES[0]: made_by,
        EDGE_TYPES[1]: made_by.flip(0),
        EDGE_TYPES[2]: in_cat,
        EDGE_TYPES[3]: in_cat.flip(0),
        EDGE_TYPES[4]: sells,
    }
    return x, {k: v.to(device) for k, v in edges.items()}


class GNNCases:
    """Checks every registered heterogeneous GNN."""

    @pytest.fixture(params=GNN_CASES, ids=ids(GNN_CASES))
    def case(self, request) -> tuple[str, dict]:
        return request.param

    def build(self, case, seed: int = 0, **over):
        name, kwargs = case
        torch.manual_seed(seed)
        kwargs = {**kwargs, **over}
        return GNNS.get(
            name,
            metadata=METADATA,
            in_dims=GNN_IN_DIMS,
            hidden=HIDDEN,
            out_dim=GNN_OUT,
            num_nodes=NUM_NODES,
            **kwargs,
        ).eval()

    def test_shapes_and_config(self, case):
        module = self.build(case)
        x, edges = gnn_graph()
        out = module(x, edges)
        assert set(out) == set(NODE_TYPES)
        for t in NODE_TYPES:
            assert out[t].shape == (NUM_NODES[t], GNN_OUT), t
            assert torch.isfinite(out[t]).all(), t
        assert module.config["name"] == case[0] == module.name
        assert json.loads(json.dumps(module.config)) == module.config

    def test_featureless_type_uses_embedding(self, case):
        """A featureless type gets an embedding, or (``onehot_types``) one-hot input into the
        first layer; either way ids ``arange(N)`` give what ``None`` gives."""
        module = self.build(case)
        if CATEGORY in module.onehot_types:
            assert CATEGORY not in module.encoders
        else:
            emb = module.encoders[CATEGORY]
            assert isinstance(emb, torch.nn.Embedding)
            assert emb.num_embeddings == NUM_NODES[CATEGORY]
        x, edges = gnn_graph()
        out = module(x, edges)
        with_ids = module({**x, CATEGORY: torch.arange(NUM_NODES[CATEGORY])}, edges)
        for t in NODE_TYPES:
            assert close(with_ids[t], out[t]), t
        with pytest.raises(ValueError, match="featureless"):
            module({**x, CATEGORY: torch.randn(3, 2)}, edges)

    def test_messages_pass(self, case):
        module = self.build(case)
        x, edges = gnn_graph()
        out = module(x, edges)
        changed = {**x, "product": x["product"].clone()}
        changed["product"][0] += 5.0
        out2 = module(changed, edges)
        # brands of product 0 hear from it; sellers never do; other products only via others
        brands = edges[EDGE_TYPES[0]][1][edges[EDGE_TYPES[0]][0] == 0]
        others = torch.arange(1, NUM_NODES["product"])
        if case[0] == "mlp":
            assert torch.equal(out2["brand"], out["brand"])
            assert torch.equal(out2["product"][others], out["product"][others])
        else:
            diff = (out2["brand"][brands] - out["brand"][brands]).abs().amax(dim=1)
            assert bool((diff > 1e-6).all()), f"brands {brands.tolist()} did not change"
        assert not torch.equal(out2["product"][0], out["product"][0])
        assert torch.equal(out2["seller"], out["seller"])  # receives nothing

    def test_edge_types_may_be_absent(self, case):
        module = self.build(case)
        x, edges = gnn_graph()
        out = module(x, {EDGE_TYPES[0]: edges[EDGE_TYPES[0]]})
        assert all(torch.isfinite(out[t]).all() for t in NODE_TYPES)
        out = module(x, {})
        assert all(out[t].shape == (NUM_NODES[t], GNN_OUT) for t in NODE_TYPES)
        with pytest.raises(KeyError, match="not in the metadata"):
            module(x, {("product", "made_by", "seller"): edges[EDGE_TYPES[0]]})

    def test_gradients_reach_every_parameter(self, case):
        module = self.build(case).train()
        x, edges = gnn_graph()
        torch.manual_seed(0)
        out = module(x, edges)
        gen = torch.Generator().manual_seed(1)
        loss = sum(
            (o * torch.randn(o.shape, generator=gen)).sum() + o.pow(2).sum() for o in out.values()
        )
        loss.backward()
        check_grads(module)

    def test_batch_norm(self, case):
        module = self.build(case, norm="batch").train()
        x, edges = gnn_graph()
        out = module(x, edges)
        sum(o.sum() for o in out.values()).backward()
        module.eval()
        assert all(torch.isfinite(v).all() for v in module(x, edges).values())

    def test_save_load_round_trip(self, case, tmp_path):
        module = self.build(case)
        x, edges = gnn_graph()
        expected = module(x, edges)
        other = state_round_trip(module, build_gnn, tmp_path)
        got = other(x, edges)
        for t in NODE_TYPES:
            assert torch.equal(got[t], expected[t]), t
        module.save(tmp_path / "saved")
        loaded = type(module).load(tmp_path / "saved").eval()
        assert type(loaded) is type(module) and loaded.config == module.config
        for t, v in loaded(x, edges).items():
            assert torch.equal(v, expected[t]), t

    def test_deterministic_under_seed(self, case):
        x, edges = gnn_graph()
        a, b = self.build(case, seed=3).train(), self.build(case, seed=3).train()
        for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert na == nb and torch.equal(pa, pb), na
        torch.manual_seed(5)
        out_a = a(x, edges)
        torch.manual_seed(5)
        out_b = b(x, edges)
        for t in NODE_TYPES:
            assert torch.equal(out_a[t], out_b[t]), t

    @pytest.mark.parametrize("device", DEVICES)
    def test_device(self, case, device):
        module = self.build(case)
        x, edges = gnn_graph()
        expected = module(x, edges)
        module = copy.deepcopy(module).to(device)
        xd, ed = gnn_graph(device=device)
        out = module(xd, ed)
        for t in NODE_TYPES:
            assert out[t].device.type == device
            assert close(out[t], expected[t], 1e-4), t
        sum(o.sum() for o in out.values()).backward()

    def test_unknown_name(self, case):
        with pytest.raises(KeyError, match=f"did you mean '{case[0]}'"):
            GNNS.get(case[0] + "x")

"""Generic cases for every registered cross-modal alignment method (align.alignment).

:class:`AlignmentCases` is parametrised over ``ALIGNMENTS.names()`` at collection time (as
``tests/generic_cases.py`` does for fusions and GNNs): a new method is tested by being
registered. Extra constructor options per name (fewer epochs) go in ``FAST``.
Synthetic pairs: text and image are two noisy linear views of one latent, the graph
neighbours are latent clusters, so every method must retrieve well above chance.
"""

from __future__ import annotations

import json

import pytest
import torch

from align.alignment import ALIGNMENTS, Alignment, AlignmentData, AlignmentError, recall_at
from fusion.artifacts import ArtifactError
from fusion.registry import load_module, save_module

FAST = {"infonce": {"epochs": 12, "batch_size": 48}, "infonce-graph": {"epochs": 12, "batch_size": 48},
        "cca": {"pre_dim": 24}}
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="CUDA not available")),  # fmt: skip
]
N, D_T, D_V, DIM = 160, 24, 32, 8


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def data() -> AlignmentData:
    g = torch.Generator().manual_seed(0)
    cluster = torch.randint(0, 8, (N,), generator=g)
    latent = torch.randn(8, 6, generator=g)[cluster] + 0.5 * torch.randn(N, 6, generator=g)
    text = latent @ torch.randn(6, D_T, generator=g) + 0.1 * torch.randn(N, D_T, generator=g)
    image = latent @ torch.randn(6, D_V, generator=g) + 0.1 * torch.randn(N, D_V, generator=g)
    node_text = torch.randn(12, D_T, generator=g)
    neighbours = torch.stack([cluster, 8 + cluster % 4, torch.full((N,), -1)], dim=1)
    return AlignmentData(text, image, neighbours, node_text)


def build(name: str, seed: int = 0) -> Alignment:
    return ALIGNMENTS.get(name, text_dim=D_T, image_dim=D_V, dim=DIM, seed=seed,
                          **FAST.get(name, {}))  # fmt: skip


@pytest.fixture(scope="module")
def fitted(data):
    out = {}
    for name in ALIGNMENTS.names():
        method = build(name)
        method.fit(data)
        out[name] = method
    return out


def embed(method: Alignment, data: AlignmentData):
    with torch.no_grad():
        context = data.context()
        return method.embed_text(data.text, context), method.embed_image(data.image, context)


@pytest.mark.parametrize("name", ALIGNMENTS.names())
class TestAlignmentCases:
    def test_registered_class_and_json_config(self, name):
        method = build(name)
        assert isinstance(method, Alignment) and type(method).name == name
        assert json.loads(json.dumps(method.config))["name"] == name
        assert not method.fitted

    def test_shapes_normalised_and_retrieves(self, name, fitted, data):
        zt, zv = embed(fitted[name], data)
        assert zt.shape == zv.shape == (N, fitted[name].out_dim)
        assert torch.allclose(zt.norm(dim=1), torch.ones(N), atol=1e-4)
        assert fitted[name].fitted
        # chance Recall@10 is 10 / 160; a fitted method finds most partners
        assert recall_at(zt, zv)["r@10"] > 0.4, name
        assert recall_at(zv, zt)["r@10"] > 0.4, name

    def test_save_load_round_trip(self, name, fitted, data, tmp_path):
        save_module(fitted[name], tmp_path)
        assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors"}
        again = load_module(tmp_path, ALIGNMENTS).eval()
        assert again.fitted
        for a, b in zip(embed(fitted[name], data), embed(again, data), strict=True):
            assert torch.allclose(a, b, atol=1e-5)

    def test_load_refuses_other_widths(self, name, fitted, tmp_path):
        save_module(fitted[name], tmp_path)
        config = json.loads((tmp_path / "config.json").read_text())
        config["image_dim"] = D_V + 1
        (tmp_path / "config.json").write_text(json.dumps(config))
        with pytest.raises(ArtifactError, match="model.safetensors"):
            load_module(tmp_path, ALIGNMENTS)

    def test_deterministic_under_seed(self, name, fitted, data):
        again = build(name)
        again.fit(data)
        for a, b in zip(embed(fitted[name], data), embed(again, data), strict=True):
            assert torch.allclose(a, b, atol=1e-4)

    def test_query_without_graph_context(self, name, fitted, data):
        with torch.no_grad():
            z = fitted[name].embed_image(data.image[:3])
            q = fitted[name].embed_text(data.text[:3])
        assert z.shape == q.shape == (3, fitted[name].out_dim) and torch.isfinite(z).all()

    def test_wrong_width_is_refused(self, name, fitted):
        with pytest.raises(AlignmentError, match="width"):
            fitted[name].embed_text(torch.zeros(2, D_T + 3))

    @pytest.mark.parametrize("device", DEVICES)
    def test_device(self, name, fitted, data, device):
        method = build(name).to(device)
        method.fit(data.subset(torch.arange(60)))
        z = method.embed_image(data.image[:4].to(device))
        assert z.device.type == device


def test_unknown_method_did_you_mean():
    with pytest.raises(KeyError, match="did you mean 'infonce'"):
        ALIGNMENTS.get("infonse", text_dim=2, image_dim=2)


def test_too_few_pairs():
    with pytest.raises(AlignmentError, match="at least 4"):
        AlignmentData(torch.zeros(2, 3), torch.zeros(2, 4))

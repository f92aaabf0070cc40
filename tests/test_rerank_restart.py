"""Restarts of a cross-encoder fit that fails to learn (align.rerank_train)."""

from __future__ import annotations

import pytest
import torch
from test_rerank_precision import easy_pairs
from tiny_models import save_tiny_bert

from align.rerank import CrossEncoder
from align.rerank_train import ap_floor, train_cross_encoder


def test_ap_floor_is_halfway_from_chance_to_the_features():
    assert ap_floor(0.9, 0.1) == pytest.approx(0.5)
    assert ap_floor(0.05, 0.1) == pytest.approx(0.1)  # features worse than chance: chance


@pytest.fixture
def folder(tmp_path):
    return save_tiny_bert(tmp_path / "tiny")


@pytest.fixture
def encoder(folder):
    return CrossEncoder.from_base(f"hf:{folder}", max_length=24)


def test_a_failed_fit_restarts_from_the_base_weights_at_half_the_rate(encoder):
    """An unreachable floor fails every checked attempt: each is started again from the
    base weights with a new seed at half the learning rates, and the last one, unchecked,
    runs to the end, so a fit always returns."""
    base = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    fit, logits = train_cross_encoder(
        encoder, easy_pairs(32, 0), easy_pairs(8, 1), epochs=2, lr=1e-3, batch_size=8,
        augment=0.0, seed=3, progress=False, floor=1.01, restarts=2,
    )  # fmt: skip
    assert [(r["seed"], r["lr"]) for r in fit["restarts"]] == [(3, 1e-3), (1003, 5e-4)]
    assert all(0.0 <= r["valid_ap"] <= 1.0 for r in fit["restarts"])
    assert len(fit["history"]) == 2 and logits.shape == (8,)
    state = encoder.model.state_dict()
    assert not all(torch.equal(state[k], v) for k, v in base.items())  # the last one trained


def test_restarts_start_from_the_same_weights(encoder, folder):
    """The attempt after a failure trains from the base weights: the same as a fresh
    encoder trained with that attempt's seed and rates (head drawn from that seed)."""
    kwargs = dict(epochs=1, batch_size=8, augment=0.0, progress=False, balance=False)
    train, valid = easy_pairs(32, 0), easy_pairs(8, 1)
    fit, logits = train_cross_encoder(encoder, train, valid, lr=1e-3, seed=0, floor=1.01,
                                      restarts=1, **kwargs)  # fmt: skip
    fresh = CrossEncoder.from_base(f"hf:{folder}", max_length=24)
    fresh.model.reset_head(1000)
    _, again = train_cross_encoder(fresh, train, valid, lr=5e-4, head_lr=2e-2, seed=1000,
                                   restarts=0, **kwargs)  # fmt: skip
    assert len(fit["restarts"]) == 1
    assert torch.allclose(torch.from_numpy(logits), torch.from_numpy(again), atol=1e-5)


def test_a_fit_that_learns_is_not_restarted(encoder):
    fit, _ = train_cross_encoder(
        encoder, easy_pairs(64, 0), easy_pairs(16, 1), epochs=3, lr=2e-3, batch_size=8,
        augment=0.0, seed=0, progress=False, balance=False, floor=0.5,
    )  # fmt: skip
    assert fit["restarts"] == [] and fit["valid_ap"] == 1.0, fit

"""Restarts of a cross-encoder fit that has not left the prior (align.rerank_train)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_rerank_precision import easy_pairs
from tiny_models import save_tiny_bert

from align import rerank_train
from align.rerank import CrossEncoder
from align.rerank_train import prior_loss, train_cross_encoder


def test_prior_loss_is_the_best_constant_logit():
    y = np.array([1, 0, 0, 0], np.float32)
    assert prior_loss(y, 3.0) == pytest.approx(2 * np.log(2) * 0.75)  # balanced: p = 0.5
    p = 0.25  # unweighted: the constant is the match rate
    assert prior_loss(y, 1.0) == pytest.approx(-(0.25 * np.log(p) + 0.75 * np.log(1 - p)))
    assert prior_loss(np.zeros(3, np.float32), 1.0) == 0.0


@pytest.fixture
def encoder(tmp_path):
    return CrossEncoder.from_base(f"hf:{save_tiny_bert(tmp_path / 'tiny')}", max_length=24)


def test_a_fit_at_the_prior_restarts_from_the_base_weights(encoder, monkeypatch):
    """With a learning rate of 0 nothing can leave the prior: each attempt is stopped at
    STALL_STEP and started again from the base weights with a new head; the last attempt
    runs to the end, so a fit always returns."""
    monkeypatch.setattr(rerank_train, "STALL_STEP", 10)
    base = {k: v.clone() for k, v in encoder.model.state_dict().items() if "head" not in k}
    fit, logits = train_cross_encoder(
        encoder, easy_pairs(48, 0), easy_pairs(8, 1), epochs=1, lr=0.0, batch_size=2,
        augment=0.0, seed=3, progress=False, restarts=2,
    )  # fmt: skip
    assert [r["seed"] for r in fit["restarts"]] == [3, 1003]
    assert "prior" in fit["restarts"][0]["reason"]
    assert len(fit["history"]) == 1 and logits.shape == (8,)
    state = encoder.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in base.items())  # lr 0: still the base


def test_a_fit_that_learns_is_not_restarted(encoder, monkeypatch):
    """Checked at step 20 (after the 10-step warm-up), its loss is far below the prior's."""
    monkeypatch.setattr(rerank_train, "STALL_STEP", 20)
    fit, _ = train_cross_encoder(
        encoder, easy_pairs(200, 0), easy_pairs(16, 1), epochs=2, lr=2e-3, batch_size=4,
        augment=0.0, seed=0, progress=False, balance=False,
    )  # fmt: skip
    assert fit["restarts"] == [] and fit["valid_ap"] == 1.0, fit
    assert fit["history"][0]["curve"][0] < 0.95 * prior_loss(easy_pairs(200, 0)[2], 1.0)

"""The greedy soup of a cross-encoder fit's epoch checkpoints (align.rerank_train)."""

from __future__ import annotations

import pytest
import torch
from test_rerank_precision import easy_pairs
from tiny_models import save_tiny_bert

from align.rerank import CrossEncoder
from align.rerank_train import average_states, greedy_soup, train_cross_encoder
from align.scorer import average_precision


@pytest.fixture
def encoder(tmp_path):
    return CrossEncoder.from_base(f"hf:{save_tiny_bert(tmp_path / 'tiny')}", max_length=24)


def test_average_states_is_the_mean_and_keeps_integer_buffers():
    a = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1])}
    b = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([5, 5])}
    mean = average_states([a, b])
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0]))
    assert torch.equal(mean["ids"], a["ids"])  # not averaged: taken from the first


def _states(encoder, n: int, valid):
    """``n`` checkpoints: the encoder's weights with growing noise, each scored on ``valid``."""
    torch.manual_seed(0)
    base = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    out = []
    for i in range(n):
        state = {k: v + 0.05 * (i + 1) * torch.randn_like(v) if v.is_floating_point() else v
                 for k, v in base.items()}  # fmt: skip
        encoder.model.load_state_dict(state)
        scores = encoder.logits(valid[0], valid[1])
        out.append((state, average_precision(scores, valid[2]), scores))
    return out


def test_the_soup_starts_from_the_best_epoch_and_never_scores_below_it(encoder):
    valid = easy_pairs(16, 1)
    states = _states(encoder, 3, valid)
    best = max(range(3), key=lambda i: states[i][1])
    state, ap, scores, members = greedy_soup(encoder, states, valid, "fp32")
    assert members[0] == best + 1 and len(set(members)) == len(members)
    assert ap >= states[best][1]
    assert ap == pytest.approx(average_precision(scores, valid[2]))
    expected = average_states([states[m - 1][0] for m in members])
    assert all(torch.equal(state[k], v) for k, v in expected.items())


def test_a_fit_keeps_its_soup_or_its_best_epoch(encoder):
    """With ``soup`` the fit reports the epochs averaged (the best first) and its validation
    AP is at least the best epoch's; without, the best epoch alone."""
    train, valid = easy_pairs(48, 0), easy_pairs(16, 1)
    kwargs = dict(epochs=3, lr=1e-3, batch_size=8, augment=0.0, seed=0, progress=False,
                  balance=False, restarts=0)  # fmt: skip
    base = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    fit, _ = train_cross_encoder(encoder, train, valid, soup=True, **kwargs)
    best_ap = max(h["valid_ap"] for h in fit["history"])
    assert fit["soup"][0] == fit["best_epoch"] and fit["valid_ap"] >= best_ap
    encoder.model.load_state_dict(base)
    plain, _ = train_cross_encoder(encoder, train, valid, soup=False, **kwargs)
    assert plain["soup"] == [plain["best_epoch"]]
    assert plain["valid_ap"] == max(h["valid_ap"] for h in plain["history"])

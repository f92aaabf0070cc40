"""The cross-encoder question scorer (align.qa_crossencoder) and the learned ensemble of
scorers (align.qa_ensemble), on tiny random BERTs: they learn toy questions, keep the NIL
threshold of the model they keep, and round-trip through load_scorer."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from qa_fixtures import gold, toy_questions
from tiny_models import save_tiny_bert

from align import LinkerError
from align.qa_crossencoder import (
    CrossEncoderScorer,
    fit_crossencoder,
    predict_crossencoder,
    sampled,
)
from align.qa_ensemble import EnsembleScorer, fit_ensemble, fit_weights, pooled
from align.qa_scorer import Candidate, Question
from align.qa_scorers import load_scorer, scorer_class
from align.qa_train import attribute_split, calibrate


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A random 2-layer BERT encoder with the offline MiniLM's tokenizer, saved as a folder."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-qa-cross"), "BertModel")


def test_cross_encoder_learns_toy_questions_and_round_trips(tiny_encoder, tmp_path):
    scorer = CrossEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32)
    questions = toy_questions()
    before = predict_crossencoder(scorer, questions[:12])[0]
    metrics = fit_crossencoder(scorer, questions * 3, epochs=3, lr=3e-3, batch_size=4,
                               valid_fraction=0.0, seed=0)  # fmt: skip
    assert scorer.config.trained and metrics["epoch"] >= 1
    assert set(metrics) >= {"p@1", "mrr", "threshold", "calibration", "cpu_seconds"}
    assert gold(predict_crossencoder(scorer, questions[:12])[0], questions[:12]) > gold(
        before, questions[:12]
    )
    scorer.save(tmp_path / "qa-scorer")
    again = load_scorer(tmp_path / "qa-scorer")
    assert isinstance(again, CrossEncoderScorer)
    assert again.config.threshold == scorer.config.threshold
    q = questions[0]
    a, b = scorer.score(q.text, q.candidates), again.score(q.text, q.candidates)
    assert np.allclose(a.probs, b.probs, atol=1e-5) and a.best == b.best
    assert abs(a.probs.sum() + a.nil_prob - 1.0) < 1e-5
    empty = again.score("", [])
    assert empty.best is None and len(empty.probs) == 0
    with pytest.raises(LinkerError, match="kgf qa-train WS --scorer cross-encoder"):
        CrossEncoderScorer.load(tmp_path / "nothing")
    assert scorer_class("cross-encoder") is CrossEncoderScorer


@pytest.mark.parametrize("pooling", ["mean", "cls", "classifier"])
def test_cross_encoder_heads_train_in_bf16_and_round_trip(tiny_encoder, tmp_path, pooling):
    """A fresh head on the mean or the [CLS] state, and format 1's sequence-classification
    head (saved as format 1, read back with that head); bf16 autocast training learns."""
    scorer = CrossEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32, pooling=pooling)
    questions = toy_questions()
    before = predict_crossencoder(scorer, questions[:12])[0]
    fit_crossencoder(scorer, questions * 3, epochs=3, lr=3e-3, head_lr_multiplier=3.0,
                     batch_size=4, valid_fraction=0.0, seed=0, precision="bf16")  # fmt: skip
    after = predict_crossencoder(scorer, questions[:12])[0]
    assert gold(after, questions[:12]) > gold(before, questions[:12])
    if pooling == "classifier":  # what format 1 wrote: no pooling key, version 1
        scorer.config.version = 1
    scorer.save(tmp_path / "qa-scorer")
    again = load_scorer(tmp_path / "qa-scorer")
    assert again.config.pooling == pooling
    q = questions[0]
    assert np.allclose(scorer.score(q.text, q.candidates).probs,
                       again.score(q.text, q.candidates).probs, atol=1e-5)  # fmt: skip
    with pytest.raises(LinkerError, match="pooling 'max'"):
        CrossEncoderScorer.from_base(f"hf:{tiny_encoder}", pooling="max")


def test_cosine_prior_stays_frozen_learns_and_round_trips(tiny_encoder, tmp_path):
    """With ``prior``, a frozen copy of the base encoder adds ``a * cos(q, c)``: training
    moves the pair model and ``a`` but never the frozen copy, and it round-trips."""
    import torch

    scorer = CrossEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32, pooling="mean",
                                          prior=True)  # fmt: skip
    frozen = {k: v.clone() for k, v in scorer.module.frozen.state_dict().items()}
    encoder = {k: v.clone() for k, v in scorer.module.model.encoder.state_dict().items()}
    questions = toy_questions()
    before = predict_crossencoder(scorer, questions[:12])[0]
    fit_crossencoder(scorer, questions * 3, epochs=3, lr=3e-3, head_lr_multiplier=3.0,
                     batch_size=4, valid_fraction=0.0, seed=0)  # fmt: skip
    assert gold(predict_crossencoder(scorer, questions[:12])[0], questions[:12]) > gold(
        before, questions[:12]
    )
    assert all(torch.equal(v, scorer.module.frozen.state_dict()[k]) for k, v in frozen.items())
    moved = scorer.module.model.encoder.state_dict()
    assert any(not torch.equal(v, moved[k]) for k, v in encoder.items())
    assert scorer.module.prior.item() != 20.0
    scorer.save(tmp_path / "qa-scorer")
    again = load_scorer(tmp_path / "qa-scorer")
    assert again.config.prior and again.module.prior.item() == scorer.module.prior.item()
    q = questions[0]
    assert np.allclose(scorer.score(q.text, q.candidates).probs,
                       again.score(q.text, q.candidates).probs, atol=1e-5)  # fmt: skip
    with pytest.raises(LinkerError, match="cosine prior needs a pooled head"):
        CrossEncoderScorer.from_base(f"hf:{tiny_encoder}", pooling="classifier", prior=True)


def test_prior_from_a_saved_bi_encoder_uses_its_encoder(tiny_encoder, tmp_path):
    import torch

    from align.qa_biencoder import BiEncoderScorer

    bi = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32)
    with torch.no_grad():  # a bi-encoder unlike the base model
        next(bi.module.encoder.parameters()).add_(1.0)
    bi.save(tmp_path / "bi")
    scorer = CrossEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32, pooling="mean",
                                          prior_from=tmp_path / "bi")  # fmt: skip
    assert scorer.config.prior and scorer.config.prior_model == str(tmp_path / "bi")
    want = bi.module.encoder.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in scorer.module.frozen.state_dict().items())
    assert not torch.equal(next(scorer.module.frozen.parameters()),
                           next(scorer.module.model.encoder.parameters()))  # fmt: skip


def test_the_fresh_pair_head_learns_at_its_own_rate(tiny_encoder):
    from align.qa_crossencoder import _optimiser

    scorer = CrossEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32, pooling="mean")
    groups = _optimiser(scorer, 2e-5, 40.0).param_groups
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    pair = scorer.module.model
    assert rate[id(pair.head.weight)] == rate[id(pair.head.bias)] == pytest.approx(8e-4)
    assert {rate[id(p)] for p in pair.encoder.parameters()} == {2e-5}
    assert len(rate) == sum(1 for _ in scorer.module.parameters())  # every parameter, once


def test_training_questions_keep_their_answers_among_sampled_candidates():
    cands = [Candidate(f"k{i}", str(i)) for i in range(20)]
    q = sampled(Question("which k7 and k15?", cands, [7, 15]), 5, random.Random(0))
    assert len(q.candidates) == 5 and [q.candidates[i].key for i in q.labels] == ["k7", "k15"]
    nil = sampled(Question("shipping?", cands, []), 5, random.Random(0))
    assert len(nil.candidates) == 5 and nil.labels == []
    short = Question("k1?", cands[:3], [1])
    assert sampled(short, 5, random.Random(0)) is short


def test_ensemble_weights_follow_the_better_member():
    """Pooled log-probabilities: the member that ranks the answers right gets the weight."""
    cands = [Candidate("a", ""), Candidate("b", ""), Candidate("c", "")]
    questions = [Question(str(i), cands, [i % 3]) for i in range(12)]
    right = [np.eye(4, dtype=np.float32)[i % 3] * 0.7 + 0.075 for i in range(12)]
    noise = [np.random.default_rng(i).dirichlet(np.ones(4)).astype(np.float32) for i in range(12)]
    weights = fit_weights(questions, [noise, right])
    assert weights[1] > weights[0]
    rows = pooled(weights, [noise, right])
    assert all(abs(r.sum() - 1.0) < 1e-5 and r[:3].argmax() == i % 3 for i, r in enumerate(rows))


def test_ensemble_trains_members_calibrates_on_their_hold_out_and_round_trips(
    tiny_encoder, tmp_path
):
    questions = toy_questions() * 2
    scorer = EnsembleScorer.untrained(f"hf:{tiny_encoder}")
    metrics = fit_ensemble(scorer, questions, epochs=1, valid_fraction=0.3, seed=0, refit=False)
    assert set(metrics["weights"]) == {"bi-encoder", "cross-encoder"}
    assert all(m.config.trained for m in scorer.members) and scorer.config.trained
    valid, _ = attribute_split(questions, 0.3, 0)
    probs = [r[:-1] for r in scorer.probabilities([q.text for q in valid],
                                                  [q.candidates for q in valid])]  # fmt: skip
    assert scorer.config.threshold == pytest.approx(calibrate(valid, probs))
    scorer.save(tmp_path / "qa-scorer")
    again = load_scorer(tmp_path / "qa-scorer")
    assert isinstance(again, EnsembleScorer) and again.config.weights == scorer.config.weights
    q = questions[0]
    a, b = scorer.score(q.text, q.candidates), again.score(q.text, q.candidates)
    assert np.allclose(a.probs, b.probs, atol=1e-5) and a.best == b.best
    with pytest.raises(LinkerError, match="--scorer ensemble"):
        EnsembleScorer.load(tmp_path / "nothing")


def test_ensemble_refit_keeps_the_hold_out_weights_and_refits_its_members(tiny_encoder):
    """With ``refit`` (default) the weights and the threshold are fitted on the members'
    hold-out models, then each member is fine-tuned again on every question."""
    questions = toy_questions() * 2
    ensembles = {}
    for refit in (False, True):
        torch.manual_seed(0)  # the same fresh pair head for both
        ensembles[refit] = EnsembleScorer.untrained(f"hf:{tiny_encoder}")
        fit_ensemble(ensembles[refit], questions, epochs=2, valid_fraction=0.3, seed=0,
                     refit=refit)  # fmt: skip
    plain, refit = ensembles[False], ensembles[True]
    assert refit.config.weights == plain.config.weights
    assert refit.config.threshold == plain.config.threshold
    refitted = [m for m in refit.members if m.config.epochs > 0]
    assert refitted and all(m.config.metrics["refit"]["questions"] == len(questions)
                            for m in refitted)  # fmt: skip
    for a, b in zip(plain.members, refit.members, strict=True):
        changed = any(not torch.equal(v, b.module.state_dict()[k])
                      for k, v in a.module.state_dict().items())  # fmt: skip
        assert changed == (b.config.epochs > 0)


def test_session_trains_and_asks_with_the_ensemble(tiny_encoder, tmp_path):
    """``kgf qa-train --scorer ensemble`` and ``kgf ask`` go through the same Session code."""
    import kg
    from kg.samples import write_sample_catalogue
    from kgfusion.session import Session

    cat = write_sample_catalogue(tmp_path / "cat", n_products=6)
    ws = kg.load_rdf(cat.path).save(tmp_path / "ws", sparql_store=False)
    session = Session(ws)
    metrics = session.qa_train(graph_products=3, kind="ensemble", encoder=f"hf:{tiny_encoder}",
                               epochs=1)  # fmt: skip
    assert set(metrics["members"]) == {"bi-encoder", "cross-encoder"}
    iri = session.graph.node_iris("Product")[0]
    answer = session.ask("what color is it?", product=iri)
    assert isinstance(session.answerer.scorer, EnsembleScorer)
    assert answer.product == iri and answer.attributes

"""The question memory (align.qa_memory) and the ensemble with it (``--scorer
ensemble-memory``), on a tiny random BERT: it votes for the names that answered the
nearest memorised questions, only for names the product has, offers a hold-out of unseen
and one of seen attribute types, and round-trips through load_scorer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from qa_fixtures import toy_questions
from tiny_models import save_tiny_bert

from align import LinkerError
from align.qa_ensemble import EnsembleScorer, pooled
from align.qa_memory import QuestionMemory, answer_names, fit_memory, name_key
from align.qa_scorer import Candidate, Question
from align.qa_scorers import SCORERS, load_scorer, train_scorer
from align.qa_train import attribute_split, calibrate


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A random 2-layer BERT encoder with the offline MiniLM's tokenizer, saved as a folder."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-qa-memory"), "BertModel")


@pytest.fixture(scope="module")
def memory(tiny_encoder):
    scorer = QuestionMemory.untrained(f"hf:{tiny_encoder}")
    scorer.config.k = 1
    fit_memory(scorer, toy_questions(), valid_fraction=0.3, seed=0)
    return scorer


def test_names_are_normalised_for_matching():
    assert name_key("Item_Weight") == name_key("item  weight") == "item weight"
    q = Question("how heavy?", [Candidate("Item_Weight", "2 kg"), Candidate("colour", "red")], [0])
    assert answer_names(q) == ["item weight"]
    assert answer_names(Question("?", q.candidates, [])) == []


def test_memory_votes_for_the_answering_name_on_another_product(memory):
    """A memorised question asked about another product (other names' case, extra
    attributes) points to the attribute of the name that answered it."""
    other = [Candidate("Size", "XL"), Candidate("BRAND", "zeta"), Candidate("Colour", "red")]
    for text, answer in [("which colour", 2), ("which brand", 1)]:
        scored = memory.score(text, other)
        assert scored.best == answer and scored.probs[answer] > 0.5
    assert memory.score("how much does shipping cost", other).nil_prob > 0.5  # a NIL question


def test_memory_is_silent_on_names_it_never_saw(memory):
    """Unseen attribute types: every candidate gets the same probability, so pooled with
    other scorers in log space it changes no ranking."""
    unseen = [Candidate("size", "XL"), Candidate("weight", "2 kg"), Candidate("material", "oak")]
    row = memory.probabilities(["which colour"], [unseen])[0]
    assert np.allclose(row[:-1], row[0])
    other = np.array([0.2, 0.5, 0.25, 0.05], np.float32)
    with_memory = pooled([0.8, 0.6], [[other], [row]])[0]
    assert with_memory[:-1].argmax() == other[:-1].argmax()


def test_hold_out_views_hide_what_they_must(memory):
    """Unseen types: only the training part votes; seen types: every memorised question
    about another product votes, never the question itself or its product's."""
    cands = [Candidate("colour", "black"), Candidate("brand", "acme"), Candidate("size", "M")]
    other = [Candidate("Colour", "white"), Candidate("brand", "zeta")]  # another product
    a, same, a2, b = (Question("what colour is it", cands, [0]),
                      Question("is the colour black", cands, [0]),
                      Question("is it white", other, [0]), Question("who makes it", other, [1]))  # fmt: skip
    memory = QuestionMemory(copy.deepcopy(memory.config), memory.encoder)
    memory.config.k, memory.config.temperature = 4, 100.0  # all vote, about equally
    memory.memorise([a, same, a2, b])
    (unseen,), (seen,) = memory.hold_out_views([a], [b])
    assert unseen[1] > 0.8 and unseen[0] == pytest.approx(unseen[2])  # only b: brand
    assert 0.3 < seen[0] < 0.6 and 0.3 < seen[1] < 0.6  # a2 (colour) and b (brand) only
    memory.config.k = 1
    assert memory.votes([a.text], [cands])[0][0] > 0.8  # without leaving out: a finds itself


def test_memory_calibrates_saves_and_loads(memory, tmp_path):
    assert memory.config.trained and memory.config.metrics["memorised"] == 13
    assert memory.config.metrics["calibration"]["on"] == "a product-wise hold-out"
    memory.save(tmp_path / "qa-scorer")
    again = load_scorer(tmp_path / "qa-scorer")
    assert isinstance(again, QuestionMemory) and again.answers == memory.answers
    q = toy_questions()[5]
    a, b = memory.score(q.text, q.candidates), again.score(q.text, q.candidates)
    assert np.allclose(a.probs, b.probs, atol=1e-5) and a.best == b.best
    with pytest.raises(LinkerError, match="--scorer memory"):
        QuestionMemory.load(tmp_path / "nothing")


def test_ensemble_with_memory_fits_on_both_views_and_round_trips(tiny_encoder, tmp_path):
    assert {"memory", "ensemble-memory"} <= set(SCORERS)
    questions = toy_questions() * 2
    scorer, metrics = train_scorer(questions, "ensemble-memory", encoder=f"hf:{tiny_encoder}",
                                   epochs=1, valid_fraction=0.3, seed=0)  # fmt: skip
    assert set(metrics["weights"]) == {"bi-encoder", "cross-encoder", "memory"}
    assert len(metrics["views"]) == 2
    valid, train = attribute_split(questions, 0.3, 0)
    rows = [[*r, *r] for r in (m.probabilities([q.text for q in valid], [q.candidates for q in valid])
                               for m in scorer.members[:2])]  # fmt: skip
    mem = scorer.members[2].hold_out_views(valid, train)
    probs = [r[:-1] for r in pooled(scorer.config.weights, [*rows, mem[0] + mem[1]])]
    assert scorer.config.threshold == pytest.approx(calibrate(valid * 2, probs))
    scorer.save(tmp_path / "qa-scorer")
    again = load_scorer(tmp_path / "qa-scorer")
    assert isinstance(again, EnsembleScorer) and again.config.members[2] == "memory"
    q = questions[3]
    assert np.allclose(scorer.score(q.text, q.candidates).probs,
                       again.score(q.text, q.candidates).probs, atol=1e-5)  # fmt: skip


def test_session_trains_the_memory(tiny_encoder, tmp_path):
    """``kgf qa-train --scorer memory`` goes through Session.qa_train like every kind."""
    import kg
    from kg.samples import write_sample_catalogue
    from kgfusion.session import Session

    cat = write_sample_catalogue(tmp_path / "cat", n_products=6)
    ws = kg.load_rdf(cat.path).save(tmp_path / "ws", sparql_store=False)
    session = Session(ws)
    metrics = session.qa_train(graph_products=4, kind="memory", encoder=f"hf:{tiny_encoder}")
    assert metrics["memorised"] > 0
    iri = session.graph.node_iris("Product")[0]
    answer = session.ask("what color is it?", product=iri)
    assert isinstance(session.answerer.scorer, QuestionMemory) and answer.product == iri

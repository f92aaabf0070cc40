"""The bi-encoder's training losses (align.qa_negatives): in-batch negatives across
products with the attributes of the asked name left out, checked against a direct
computation, and a bi-encoder (tiny random BERT) trained with them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qa_fixtures import gold, toy_questions
from tiny_models import save_tiny_bert

from align import LinkerError
from align.qa_biencoder import BiEncoderScorer, fit_biencoder, predict_biencoder
from align.qa_negatives import in_batch_loss, in_batch_masks, listwise_loss, negatives_loss
from align.qa_scorer import Candidate, Question
from align.qa_scorers import load_scorer


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-negatives"), "BertModel")


def two_products() -> list[Question]:
    """Questions about two products that both have a colour (named differently)."""
    shoe = [Candidate("Colour", "black"), Candidate("brand", "acme"), Candidate("size", "9")]
    lamp = [Candidate("colour", "white"), Candidate("wattage", "40 W")]
    return [Question("what colour is the shoe", shoe, [0]),
            Question("who makes it", shoe, [1]),
            Question("is the lamp white", lamp, [0]),
            Question("how bright is it", lamp, [1]),
            Question("does it ship abroad", lamp, [])]  # fmt: skip


def test_in_batch_masks_leave_out_other_products_attributes_of_the_asked_name(tiny_encoder):
    scorer = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=24)
    batch = two_products()
    encoded = scorer.encoded([q.text for q in batch], [q.candidates for q in batch])
    texts = ["Colour: black", "brand: acme", "size: 9", "colour: white", "wattage: 40 W"]
    assert encoded.text_keys == ["Colour", "brand", "size", "colour", "wattage"]
    assert encoded.c.shape[0] == len(texts)
    positive, excluded = in_batch_masks(batch, encoded)
    col = {t: i for i, t in enumerate(texts)}
    assert positive.sum(1).tolist() == [1, 1, 1, 1, 0]  # the NIL question has none
    assert positive[0, col["Colour: black"]] and positive[2, col["colour: white"]]
    # the other product's colour answers "what colour" too: not a negative of it
    assert excluded[0, col["colour: white"]] and excluded[2, col["Colour: black"]]
    assert excluded[1].tolist() == positive[1].tolist()  # only its own answer is a brand
    assert not excluded[0, col["brand: acme"]] and not excluded[0, col["wattage: 40 W"]]


def test_in_batch_loss_is_the_listwise_loss_plus_symmetric_infonce(tiny_encoder):
    scorer = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=24)
    batch = two_products()
    encoded = scorer.encoded([q.text for q in batch], [q.candidates for q in batch])
    s = (scorer.module.scale * encoded.q @ encoded.c.T).detach().numpy().astype(np.float64)
    positive, excluded = (m.numpy() for m in in_batch_masks(batch, encoded))

    def nce(s, pos, out):
        terms = []
        for row, p, x in zip(s, pos, out, strict=True):
            if p.any():
                kept = [v for v, pp, xx in zip(row, p, x, strict=True) if pp or not xx]
                terms.append(math.log(sum(map(math.exp, kept)))
                             - math.log(sum(math.exp(v) for v, pp in zip(row, p, strict=True) if pp)))  # fmt: skip
        return sum(terms) / len(terms)

    expected = listwise_loss(scorer, batch, encoded).item()
    expected += (nce(s, positive, excluded) + nce(s.T, positive.T, excluded.T)) / 2
    assert in_batch_loss(scorer, batch, encoded).item() == pytest.approx(expected, rel=1e-4)
    assert (
        in_batch_loss(scorer, batch, encoded).item() > listwise_loss(scorer, batch, encoded).item()
    )


def test_biencoder_trained_with_in_batch_negatives_learns_and_round_trips(tiny_encoder, tmp_path):
    scorer = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=24)
    questions = toy_questions() + two_products()
    before = predict_biencoder(scorer, questions)[0]
    metrics = fit_biencoder(scorer, questions * 3, epochs=3, lr=3e-3, batch_size=8,
                            valid_fraction=0.0, negatives="batch")  # fmt: skip
    assert metrics["negatives"] == "batch" and scorer.config.metrics["negatives"] == "batch"
    answered = [q for q in questions if q.labels]
    after = predict_biencoder(scorer, answered)[0]
    assert gold(after, answered) > gold([p for p, q in zip(before, questions, strict=True)
                                         if q.labels], answered)  # fmt: skip
    scorer.save(tmp_path / "bi")
    again = load_scorer(tmp_path / "bi")
    q = questions[0]
    assert np.allclose(scorer.score(q.text, q.candidates).probs,
                       again.score(q.text, q.candidates).probs, atol=1e-5)  # fmt: skip


def test_unknown_negatives_name_the_choices(tiny_encoder):
    assert negatives_loss("product") is listwise_loss and negatives_loss("batch") is in_batch_loss
    scorer = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=24)
    with pytest.raises(
        LinkerError,
        match=r"unknown bi-encoder negatives 'hard'; choose one of \['batch', 'product'\]",
    ):
        fit_biencoder(scorer, toy_questions(), epochs=1, negatives="hard")

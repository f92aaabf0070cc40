"""The fine-tuned bi-encoder question scorer (align.qa_biencoder, a tiny random BERT), the
scorer registry, the multilingual generated questions (align.qa_lexicon) and the
catalogue-wide value ranges of relations (align.qa.relation_ranges)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from qa_fixtures import toy_questions
from tiny_models import save_tiny_bert

import kg
from align import LinkerError
from align.qa import product_attributes, relation_ranges
from align.qa_biencoder import BiEncoderScorer, fit_biencoder, predict_biencoder, refit_biencoder
from align.qa_lexicon import (
    CONCEPTS,
    LANGUAGES,
    TEMPLATES,
    concept_of,
    concept_words,
    generated_questions,
)
from align.qa_scorer import (
    Candidate,
    QAScorer,
    lexical_overlap,
)
from align.qa_scorers import load_scorer, scorer_class
from align.qa_train import attribute_split, calibrate, graph_questions, read_semipqa
from kg.samples import write_sample_catalogue

SEMIPQA = SHARED_DATA / "qa" / "semipqa"


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A random 2-layer BERT encoder with the offline MiniLM's tokenizer, saved as a folder."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-qa"), "BertModel")


# ---------------------------------------------------------------------- bi-encoder
def test_biencoder_learns_toy_questions_and_round_trips(tiny_encoder, tmp_path):
    scorer = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32)
    questions = toy_questions()
    before = predict_biencoder(scorer, questions[:12])
    metrics = fit_biencoder(scorer, questions * 4, epochs=4, lr=3e-3, batch_size=8,
                            valid_fraction=0.0, seed=0)  # fmt: skip
    assert set(metrics) >= {"p@1", "mrr", "threshold", "epoch", "cpu_seconds"}
    assert scorer.config.trained and metrics["epoch"] >= 1  # training beat the random start
    after = predict_biencoder(scorer, questions[:12])
    gold = lambda probs: np.mean([p[q.labels[0]] for p, q in zip(probs, questions, strict=False)])  # noqa: E731
    assert gold(after[0]) > gold(before[0])
    scorer.save(tmp_path / "qa-scorer")
    again = load_scorer(tmp_path / "qa-scorer")
    assert isinstance(again, BiEncoderScorer) and again.config.threshold == scorer.config.threshold
    q = questions[0]
    a, b = scorer.score(q.text, q.candidates), again.score(q.text, q.candidates)
    assert np.allclose(a.probs, b.probs, atol=1e-5) and a.best == b.best
    assert abs(a.probs.sum() + a.nil_prob - 1.0) < 1e-5
    empty = again.score("", [])
    assert empty.best is None and len(empty.probs) == 0


def test_biencoder_refit_repeats_the_recipe_on_every_question(tiny_encoder):
    """``refit_biencoder`` (what ``fit_biencoder`` runs after a hold-out chose the epochs)
    fine-tunes the base again with the saved recipe on all the questions for the kept
    epochs: after a fit without hold-out it gives back the very weights that fit kept."""
    questions = toy_questions() * 4
    scorer = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32)
    metrics = fit_biencoder(scorer, questions, epochs=2, lr=3e-3, batch_size=8,
                            valid_fraction=0.0, seed=0)  # fmt: skip
    assert metrics["epoch"] >= 1 and "refit" not in metrics  # no hold-out: nothing to refit
    assert scorer.config.training == {"lr": 3e-3, "batch_size": 8, "negatives": "product",
                                      "seed": 0}  # fmt: skip
    kept, threshold = copy.deepcopy(scorer.module.state_dict()), scorer.config.threshold
    info = refit_biencoder(scorer, questions)
    assert info["questions"] == len(questions) and info["epochs"] == metrics["epoch"]
    assert scorer.config.metrics["refit"] == info and scorer.config.threshold == threshold
    assert "before the refit" in scorer.config.metrics["calibration"]["on"]
    assert all(torch.allclose(kept[k], v, atol=1e-5) for k, v in scorer.module.state_dict().items())
    scorer.config.training = {}  # as saved before refits were recorded
    with pytest.raises(LinkerError, match="saved before refits"):
        refit_biencoder(scorer, questions)


def test_biencoder_with_the_name_view_learns_and_round_trips(tiny_encoder, tmp_path):
    """``key_view``: the question is compared with the attribute's name alone too (its
    weight learned); the view is saved with the scorer."""
    scorer = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=32, key_view=True)
    questions = toy_questions()
    before = predict_biencoder(scorer, questions[:12])[0]
    fit_biencoder(scorer, questions * 3, epochs=3, lr=3e-3, batch_size=8, valid_fraction=0.0)
    after = predict_biencoder(scorer, questions[:12])[0]
    gold = lambda probs: np.mean([p[q.labels[0]] for p, q in zip(probs, questions, strict=False)])  # noqa: E731
    assert gold(after) > gold(before) and scorer.module.key.item() != 0.5  # the weight learned
    scorer.save(tmp_path / "qa-scorer")
    again = load_scorer(tmp_path / "qa-scorer")
    assert again.config.key_view and again.module.key.item() == scorer.module.key.item()
    q = questions[5]
    assert np.allclose(scorer.score(q.text, q.candidates).probs,
                       again.score(q.text, q.candidates).probs, atol=1e-5)  # fmt: skip


def test_biencoder_errors_name_the_folder(tmp_path):
    with pytest.raises(LinkerError, match="cannot load a sentence encoder"):
        BiEncoderScorer.from_base(f"hf:{tmp_path}")
    with pytest.raises(LinkerError, match="kgf qa-train"):
        BiEncoderScorer.load(tmp_path / "nothing")
    with pytest.raises(LinkerError, match="unknown question scorer 'gpt'; choose one of"):
        scorer_class("gpt")
    assert scorer_class("features") is QAScorer and scorer_class("bi-encoder") is BiEncoderScorer
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("[1, 2]")
    with pytest.raises(LinkerError, match="not a JSON object"):
        load_scorer(tmp_path / "bad")


@pytest.mark.skipif(not SEMIPQA.is_dir(), reason=f"{SEMIPQA} not found (../shared/data)")
def test_biencoder_on_semipqa_rows(tiny_encoder):
    rows = read_semipqa(SEMIPQA / "dev.csv")
    questions = rows[:20] + [q for q in rows if not q.labels][:3]
    scorer = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=48)
    options = dict(epochs=1, lr=1e-3, batch_size=8, seed=0)
    metrics = fit_biencoder(scorer, questions, refit=False, **options)
    assert 0.0 <= metrics["p@1"] <= 1.0 and 0.0 <= scorer.config.threshold <= 1.0
    assert metrics["questions"] == len(questions)
    # the threshold is the kept model's: calibrated on its own hold-out scores
    valid, _ = attribute_split(questions, 0.2, 0)
    assert scorer.config.threshold == pytest.approx(
        calibrate(valid, predict_biencoder(scorer, valid)[0])
    )
    assert metrics["calibration"] == {
        "on": "hold-out scores of the kept model",
        "questions": len(valid),
    }
    probs, nils = predict_biencoder(scorer, questions)
    assert [len(p) for p in probs] == [len(q.candidates) for q in questions]
    assert all(abs(p.sum() + n - 1.0) < 1e-4 for p, n in zip(probs, nils, strict=True))
    # with the refit (default): the same choice and threshold, then all the questions
    refit = BiEncoderScorer.from_base(f"hf:{tiny_encoder}", max_length=48)
    again = fit_biencoder(refit, questions, **options)
    assert again["epoch"] == metrics["epoch"] and refit.config.threshold == scorer.config.threshold
    assert ("refit" in refit.config.metrics) == (metrics["epoch"] > 0)


# ---------------------------------------------------------------------- generated questions
def test_concepts_and_multilingual_generated_questions():
    assert concept_of("base colour") == "colour" and concept_of("article type") == "type"
    assert concept_of("usage") == "usage" and concept_of("age range description") is None
    assert all(set(words) == set(LANGUAGES) for words in CONCEPTS.values())
    cands = [Candidate("season", "Winter", "Summer, Fall, Winter"), Candidate("lens mount", "EF")]
    questions = generated_questions(lambda iri: cands, ["p1"], seed=0)
    season = [q.text for q in questions if q.labels == [0]]
    assert len(season) == len(LANGUAGES) + 1  # one per language + a value choice
    assert any("Winter" in t and ("Summer" in t or "Fall" in t) for t in season)
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in season)  # Chinese
    lens = [q.text for q in questions if q.labels == [1]]
    assert len(lens) == 1 and "lens mount" in lens[0]  # no concept: English, its own words


def _benchmark_templates() -> dict:
    """``benchmarks/qa_fashion.py``'s TEMPLATES, loaded by path (benchmarks/ is no package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "qa_fashion.py"
    spec = importlib.util.spec_from_file_location("kgf_qa_fashion", path)
    module = sys.modules.setdefault("kgf_qa_fashion", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module.TEMPLATES


def test_training_templates_differ_from_the_benchmark():
    TEST_TEMPLATES = _benchmark_templates()

    test = {
        t.replace("{p}", "").strip(" ?？.¿").lower()
        for by_lang in TEST_TEMPLATES.values()
        for ts in by_lang.values()
        for t in ts
    }
    train = {t.replace("{c}", "").strip(" ?？.¿").lower() for ts in TEMPLATES.values() for t in ts}
    assert not test & train


def test_asking_words_point_to_their_concept_and_are_not_the_benchmark_templates():
    """A question word that asks for a concept by itself ("Wofür ...?", what for -> usage)
    describes the predicate and yields training questions (with the German impersonal
    "man", no gender), in templates that are not the benchmark's."""
    from align.qa_lexicon import ASKING, ASKING_TEMPLATES

    usage = Candidate("usage", "Casual", "", concept_words("usage"))
    gender = Candidate("gender", "Men", "", concept_words("gender"))
    question = "Wofür ist die Jacke gedacht?"
    assert lexical_overlap(question, usage)[0] == 1.0 and lexical_overlap(question, gender) == [
        0.0,
        0.0,
    ]
    assert lexical_overlap("Für welchen Anlass ist sie?", gender)[0] == 0.0
    texts = [q.text for q in generated_questions(lambda iri: [usage], [f"p{i}" for i in range(30)])]
    asked = [t for t in texts if any(w in t for w in ASKING["usage"]["de"])]
    assert asked and all(" man " in t or "gedacht" in t for t in asked)
    test = {
        t.replace("{p}", "").strip(" ?？.¿").lower()
        for by_lang in _benchmark_templates().values()
        for ts in by_lang.values()
        for t in ts
    }
    train = {
        t.format(w=w).strip(" ?？.¿").lower()
        for words in ASKING.values()
        for lang, ws in words.items()
        for w in ws
        for t in ASKING_TEMPLATES[lang]
    }
    assert train and not test & train


def test_relation_ranges_describe_candidates(tmp_path):
    cat = write_sample_catalogue(tmp_path / "cat", n_products=12)
    graph = kg.load_rdf(cat.path)
    ranges = relation_ranges(graph)
    assert ranges and relation_ranges(graph) is ranges  # once per graph
    iri = graph.node_iris("Product")[0]
    atts = product_attributes(graph, iri)
    relations = [a for a in atts if a.kind == "relation" and a.name in ranges]
    assert relations
    for att in relations:
        assert att.candidate.about == ranges[att.name]
        assert att.values[0] in att.about.split(", ") or len(att.about.split(", ")) == 8
    assert all(a.candidate.about == "" for a in atts if a.kind == "literal")
    questions = graph_questions(graph, lambda i: [a.candidate for a in product_attributes(graph, i)],
                                graph.node_iris("Product")[:2])  # fmt: skip
    assert questions and all(q.labels for q in questions)
    att = relations[0]
    key, joined = QAScorer().candidate_texts(att.candidate)
    assert key.startswith(att.words) and key.endswith(f"({att.about[:80]})")
    assert joined.startswith(att.words)
    brand = next(a for a in atts if a.words == "brand")
    assert (
        "Marke" in brand.aka
        and "品牌" in brand.aka
        and "Marke" in QAScorer().candidate_texts(brand.candidate)[0]
    )


def test_concept_words_and_lexical_overlap_in_four_languages():
    usage = concept_words("usage")
    assert (
        "Anlass" in usage
        and "ocasión" in usage
        and "场合" in usage
        and "usage" not in usage.split(", ")
    )
    assert concept_words("lens mount") == ""
    cand = Candidate("usage", "Casual", "", usage)
    assert lexical_overlap("Für welchen Anlass ist es?", cand)[0] == 1.0
    assert lexical_overlap("它适合什么场合？", cand)[0] == 1.0
    assert lexical_overlap("是什么颜色？", cand)[0] == 0.0
    assert lexical_overlap("what colour is it?", Candidate("usage", "Casual")) == [0.0, 0.0]


def test_session_trains_and_asks_with_the_bi_encoder(tiny_encoder, tmp_path, capsys):
    from kgfusion.cli import main
    from kgfusion.session import Session

    cat = write_sample_catalogue(tmp_path / "cat", n_products=6)
    ws = kg.load_rdf(cat.path).save(tmp_path / "ws", sparql_store=False)
    session = Session(ws)
    metrics = session.qa_train(graph_products=4, kind="bi-encoder", encoder=f"hf:{tiny_encoder}",
                               epochs=1)  # fmt: skip
    assert metrics["questions"] > 4 and "cpu_seconds" in metrics
    iri = session.graph.node_iris("Product")[0]
    answer = session.ask("what color is it?", product=iri)
    assert isinstance(session.answerer.scorer, BiEncoderScorer)
    assert answer.product == iri and answer.attributes  # ranked by the bi-encoder
    assert main(["qa-train", str(ws), "--scorer", "gpt", "--graph-products", "2"]) == 2
    assert "unknown question scorer 'gpt'" in capsys.readouterr().err
    # --no-refit keeps the model trained beside the hold-out (features scorer here)
    assert main(["qa-train", str(ws), "--graph-products", "4", "--epochs", "2", "--no-refit"]) == 0
    printed = capsys.readouterr().out
    assert "question scorer saved" in printed and "refit        False" in printed

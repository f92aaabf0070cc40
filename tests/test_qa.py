"""Product question answering (align.qa, align.qa_scorer, align.qa_train; Session.ask,
`kgf ask`, `/ask`) on the sample catalogue, and the scorer on a few semiPQA rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA

import kg
from align import Answer, LinkerError, QAError, QAScorer, product_attributes
from align.qa_scorer import Candidate, lexical_overlap, parse_semipqa, predicate_words
from align.qa_train import calibrate, fit_scorer, rank_metrics, read_semipqa
from fusion.features import FeatureSpec, build_features
from kg.labels import display_name
from kg.samples import write_sample_catalogue
from kgfusion.cli import main
from kgfusion.session import Session

SEMIPQA = SHARED_DATA / "qa" / "semipqa"


# ---------------------------------------------------------------------- text of candidates
def test_predicate_words_and_semipqa_candidates():
    assert predicate_words("baseColour") == "base colour"
    assert predicate_words("age_range_description") == "age range description"
    assert predicate_words("isAccessoryOrSparePartFor") == "is accessory or spare part for"
    c = parse_semipqa('color:  { standardized_values:[ "black" ], value:"charcoal" }')
    assert c == Candidate("color", "charcoal")
    assert parse_semipqa("batteries_included:  { value:false }") == Candidate(
        "batteries included", "false"
    )
    assert parse_semipqa("brand") == Candidate("brand", "")
    assert lexical_overlap("what colour is it?", Candidate("base colour", "Black")) == [0.5, 0.0]


def test_read_semipqa_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("qid\tquestion\tcandidate\n1\tq?\tkey: { value:1 }\n")
    with pytest.raises(LinkerError, match=r"bad\.csv: missing column\(s\) label"):
        read_semipqa(bad)
    bad.write_text("qid\tqa_pair_id\tquestion\tcandidate\tlabel\n1\t1\tq?\tk: { value:1 }\tyes\n")
    with pytest.raises(LinkerError, match=r"bad\.csv, line 2: label must be 0 or 1"):
        read_semipqa(bad)
    with pytest.raises(LinkerError, match="no such file"):
        read_semipqa(tmp_path / "missing.csv")


def test_metrics_and_calibration():
    from align.qa_scorer import Question

    cands = [Candidate("a", ""), Candidate("b", "")]
    qs = [Question("x", cands, [0]), Question("y", cands, [1]), Question("z", cands, [])]
    probs = [np.array([0.9, 0.05]), np.array([0.6, 0.3]), np.array([0.2, 0.1])]
    m = rank_metrics(qs, probs, [0.0] * 3, threshold=0.25)
    assert m["p@1"] == 0.5 and m["mrr"] == 0.75 and m["nil_acc"] == 1.0
    threshold = calibrate(qs, probs)
    assert 0.2 < threshold < 0.6  # separates the NIL question from the answered ones


@pytest.mark.skipif(not SEMIPQA.is_dir(), reason=f"{SEMIPQA} not found (../shared/data)")
def test_scorer_trains_on_semipqa_rows_and_round_trips(tmp_path):
    rows = read_semipqa(SEMIPQA / "dev.csv")
    questions = rows[:14] + [q for q in rows if not q.labels][:2]
    assert all(q.candidates for q in questions) and any(not q.labels for q in questions)
    scorer = QAScorer()
    metrics = fit_scorer(scorer, questions, epochs=2, seed=0)
    assert set(metrics) >= {"p@1", "mrr", "nil_acc", "threshold", "epoch"}
    assert scorer.config.trained and 0.0 <= scorer.config.threshold <= 1.0
    scorer.save(tmp_path / "qa")
    again = QAScorer.load(tmp_path / "qa")
    q = questions[0]
    a, b = scorer.score(q.text, q.candidates), again.score(q.text, q.candidates)
    assert np.allclose(a.probs, b.probs, atol=1e-6) and a.best == b.best
    assert abs(a.probs.sum() + a.nil_prob - 1.0) < 1e-5
    with pytest.raises(LinkerError, match="kgf qa-train"):
        QAScorer.load(tmp_path / "nothing")


# ---------------------------------------------------------------------- over a graph
@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    """A 16-product sample workspace, encoded (MiniLM text, images), with a question scorer
    trained on questions generated from its own products."""
    root = tmp_path_factory.mktemp("qa")
    cat = write_sample_catalogue(root / "cat", n_products=16, image_size=64)
    graph = kg.load_rdf(cat.path)
    ws = graph.save(root / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(text_encoder="minilm"))
    session = Session(ws, graph=graph)
    metrics = session.qa_train(graph_products=16, epochs=8, seed=0)
    assert metrics["questions"] > 16
    product = next(p for p in graph.node_iris("Product")
                   if any(v.name == "color" for v in graph.literals(p))
                   and (cat.image_dir / f"{p.rsplit('/', 1)[1]}.png").is_file())  # fmt: skip
    return {"session": session, "graph": graph, "ws": ws, "product": product, "cat": cat}


def _colour(graph, iri):
    return next(v.value for v in graph.literals(iri) if v.name == "color")


def test_product_attributes(qa):
    graph, iri = qa["graph"], qa["product"]
    atts = {a.name: a for a in product_attributes(graph, iri)}
    assert "image" not in atts and {"name", "color", "brand", "category"} <= set(atts)
    assert atts["color"].values == [_colour(graph, iri)]
    assert atts["name"].values[0] == display_name(graph, iri)  # English first
    assert atts["brand"].kind == "relation" and atts["brand"].objects[0].startswith("http")


def test_ask_by_name_by_iri_and_by_photo(qa):
    session, graph, iri = qa["session"], qa["graph"], qa["product"]
    name = display_name(graph, iri)
    answer = session.ask(f"what is the color of the {name}?")
    assert isinstance(answer, Answer) and answer.answered, answer
    assert (answer.product, answer.found_by) == (iri, "text")
    assert answer.values == [_colour(graph, iri)] and answer.predicate == "http://schema.org/color"
    assert answer.evidence == [(iri, "http://schema.org/color", _colour(graph, iri))]
    assert _colour(graph, iri) in answer.text and 0 < answer.confidence <= 1
    by_iri = session.ask("which brand makes it?", product=iri)
    assert by_iri.found_by == "iri" and by_iri.predicate == "http://schema.org/brand"
    image = qa["cat"].image_dir / f"{iri.rsplit('/', 1)[1]}.png"
    photo = session.ask("what color is this?", image=image)
    assert (photo.product, photo.found_by) == (iri, "image")
    assert photo.values == [_colour(graph, iri)]
    json.dumps(photo.to_dict())  # serialisable


def test_bad_input_gives_clear_answers(qa, tmp_path):
    session, iri = qa["session"], qa["product"]
    with pytest.raises(QAError, match="question is empty"):
        session.ask("   ")
    with pytest.raises(QAError, match="not in the catalogue"):
        session.ask("what color is it?", product="https://example.org/nothing")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(QAError, match="cannot read the photo"):
        session.ask("what color is this?", image=broken)
    long = session.ask("what is the color " + "really " * 400 + "?", product=iri)
    assert any("cut" in note for note in long.notes)
    unknown = session.ask("what color is the zqxv wrrpt hoverboard 9000?")
    if not unknown.answered and unknown.product is None:  # said so, with the closest products
        assert "No product of the catalogue" in unknown.text and unknown.alternatives


def test_cli_ask(qa, capsys):
    ws, iri = qa["ws"], qa["product"]
    assert main(["ask", str(ws), "what is the color?", "--product", iri]) == 0
    out = capsys.readouterr().out
    assert _colour(qa["graph"], iri) in out.splitlines()[0] and "evidence" in out
    assert main(["ask", str(ws), "what is the color?", "--product", iri, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["product"] == iri
    assert main(["ask", str(ws), ""]) == 2
    assert "question is empty" in capsys.readouterr().err


def test_service_ask(qa):
    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    iri = qa["product"]
    with TestClient(create_app(qa["session"])) as client:
        r = client.get("/ask", params={"question": "what is the color?", "product": iri})
        assert r.status_code == 200 and r.json()["values"] == [_colour(qa["graph"], iri)]
        assert client.get("/ask", params={"question": "x" * 5000}).status_code == 422
        r = client.post("/ask", params={"question": "what color is this?"}, content=b"junk")
        assert r.status_code == 400 and "not a readable image" in r.json()["detail"]
        image = qa["cat"].image_dir / f"{iri.rsplit('/', 1)[1]}.png"
        r = client.post("/ask", params={"question": "what color is this?"},
                        content=image.read_bytes(), headers={"content-type": "image/png"})  # fmt: skip
        assert r.status_code == 200 and r.json()["product"] == iri


def test_workspace_without_scorer_names_the_command(tmp_path):
    cat = write_sample_catalogue(tmp_path / "cat", n_products=8)
    ws = kg.load_rdf(cat.path).save(tmp_path / "ws", sparql_store=False)
    with pytest.raises(LinkerError, match=r"kgf qa-train"):
        Session(ws).ask("what color is it?")


def _nil_toy_questions() -> list:
    """40 questions over 8 attribute types of 4-attribute products (5 each), 6 NIL."""
    from align.qa_scorer import Question

    keys = ["colour", "season", "brand", "material", "size", "weight", "price", "warranty"]
    asks = ["what {} is it?", "tell me the {}", "which {} does it have", "{} please",
            "is the {} listed?"]  # fmt: skip
    out = []
    for n, key in enumerate(keys):
        cands = [Candidate(k, f"v{n}") for k in [key] + keys[(n + 1) % 8 : (n + 1) % 8 + 3]]
        out += [Question(a.format(key), cands, [0]) for a in asks]
    nil = ["does it ship abroad?", "how long is delivery?", "can I return it?",
           "is there a discount?", "who sells it?", "is it in stock?"]  # fmt: skip
    return out + [Question(t, out[3 * i].candidates, []) for i, t in enumerate(nil)]


def test_nil_threshold_is_calibrated_for_the_model_kept():
    """The NIL threshold belongs to the model that is saved: without a refit, the kept
    model's hold-out scores; with a refit on all questions, the out-of-fold scores of the
    refit recipe itself (not the hold-out model's, which the refit replaces)."""
    from align.qa_train import attribute_split, out_of_fold, predict, train_head

    questions = _nil_toy_questions()
    kept = QAScorer.untrained("minilm")
    metrics = fit_scorer(kept, questions, epochs=3, seed=0, refit=False)
    valid, _ = attribute_split(questions, 0.2, 0)
    probs, _ = predict(kept, valid)
    assert kept.config.threshold == pytest.approx(calibrate(valid, probs))
    assert metrics["calibration"]["on"] == "hold-out scores of the kept model"

    refit = QAScorer.untrained("minilm")
    refit.cache = kept.cache  # same encoder: its embeddings
    metrics = fit_scorer(refit, questions, epochs=3, seed=0, folds=3)
    assert metrics["refit"] and "out-of-fold" in metrics["calibration"]["on"]

    def recipe(train, held):
        fold = QAScorer(refit.config, train_head(refit, train, refit.config.epochs, seed=0))
        fold.cache = refit.cache
        return predict(fold, held)

    order, probs, _ = out_of_fold(questions, recipe, folds=3, seed=0)
    assert len(order) == len(questions)
    assert refit.config.threshold == pytest.approx(calibrate(order, probs))
    assert metrics["threshold"] == pytest.approx(refit.config.threshold, abs=1e-4)
    with_threshold = rank_metrics(order, probs, [0.0] * len(order), refit.config.threshold)
    assert metrics["calibration"]["nil_acc"] == pytest.approx(with_threshold["nil_acc"], abs=1e-4)

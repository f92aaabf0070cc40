"""Predicting missing attribute values with a trained attribute-completion run: from Python
(:mod:`fusion.predict`, :meth:`Session.predict`), `kgf predict`, `/predict` and `kgf ask`
about an attribute the catalogue lacks; bad input."""

from __future__ import annotations

import json
import random

import pytest
import torch

import kg
from fusion.features import FeatureSpec, build_features
from fusion.model import ConfigError
from fusion.predict import (
    TEMPERATURES,
    AttributePredictor,
    NodePredictor,
    _without,
    predict_values,
)
from kgfusion.cli import main
from kgfusion.session import Session

SEASONS = ("Summer", "Winter", "Fall")
GAPS = range(0, 150, 15)  # products without a season edge: the catalogue's gaps
PREFIX = "http://ex.org/"


def season_of(year: int) -> str:
    return SEASONS[year % 3]


def gap_shop(path, n=300, seed=0):
    """Products with a year, a colour and a season that follows the year (only the graph
    tells it: the names are ``thing i``); the products of :data:`GAPS` have no season."""
    rng = random.Random(seed)
    lines = ["@prefix ex: <http://ex.org/> ."]
    lines += [f'ex:y{y} a ex:Year ; ex:name "{2010 + y}" .' for y in range(6)]
    lines += [f'ex:{s} a ex:Season ; ex:name "{s}" .' for s in SEASONS]
    lines += [f'ex:{c} a ex:Colour ; ex:name "{c}" .' for c in ("red", "blue")]
    years = {}
    for i in range(n):
        years[i] = y = rng.randrange(6)
        season = "" if i in GAPS else f" ; ex:season ex:{season_of(y)}"
        lines.append(f'ex:p{i} a ex:Product ; ex:name "thing {i}" ; ex:year ex:y{y} ; '
                     f"ex:colour ex:{rng.choice(('red', 'blue'))}{season} .")  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return kg.load_rdf(path), years


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The gap shop saved, its names encoded (MiniLM), an R-GCN attribute run trained."""
    root = tmp_path_factory.mktemp("predict")
    graph, years = gap_shop(root / "shop.ttl")
    ws = graph.save(root / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(text_encoder="minilm", image_encoder=None))
    session = Session(ws, graph=graph)
    session.train(task="attribute", relations=["season", "colour"], gnn="rgcn",
                  run_name="attr", progress=False,
                  overrides={"trainer.epochs": 80, "trainer.patience": 0, "model.hidden": 32,
                             "model.out_dim": 32})  # fmt: skip
    return {"ws": ws, "graph": graph, "years": years, "session": session}


def test_gaps_are_predicted_from_the_graph(shop):
    """Every gap (and only the gaps) gets a prediction; the season follows the year, which
    the graph holds and the names do not: far above chance (1/3)."""
    found = predict_values(shop["ws"], k=2)
    assert {p.relation for p in found} == {"season"}  # every product has a colour
    assert sorted(int(p.node.rsplit("p", 1)[1]) for p in found) == list(GAPS)
    right = 0
    for p in found:
        i = int(p.node.rsplit("p", 1)[1])
        assert p.known == [] and p.run == "attr" and len(p.values) == 2
        assert p.values[0][1] >= p.values[1][1] and 0 < p.values[0][1] <= 1
        right += p.values[0][0] == PREFIX + season_of(shop["years"][i])
    assert right >= 0.8 * len(GAPS)


def test_named_products_show_the_catalogue_value(shop):
    predictor = AttributePredictor(shop["ws"], graph=shop["graph"])
    assert predictor.run == "attr" and predictor.relations == ["season", "colour"]
    assert 0 <= predictor.test_accuracy("season") <= 1
    found = predictor.predict([PREFIX + "p1", PREFIX + "p0"], ["colour", "season"], k=1)
    by = {(p.node, p.relation): p for p in found}
    assert set(by) == {(PREFIX + f"p{i}", r) for i in (0, 1) for r in ("season", "colour")}
    assert by[(PREFIX + "p1", "season")].known == [PREFIX + season_of(shop["years"][1])]
    assert by[(PREFIX + "p0", "season")].known == []  # a gap
    assert all(len(p.values) == 1 for p in found)


def test_calibration_keeps_the_ranking_and_fits_the_validation_edges(shop):
    """Temperature scaling: the temperature minimises the validation NLL over the grid (1.0
    included), the best values are those of the raw softmax, only their probabilities move."""
    import torch.nn.functional as F

    raw = AttributePredictor(shop["ws"], graph=shop["graph"], calibrate=False)
    tuned = AttributePredictor(shop["ws"], graph=shop["graph"])
    i = raw.task.relations.index("season")
    pairs = tuned.task.split.of("valid", i)
    assert len(pairs) >= 20 and raw.temperature(i) == 1.0
    scores = tuned.task.scores(tuned._pass(i, pairs[:, 0].unique()), i, pairs[:, 0])

    def nll(t):
        return F.cross_entropy(scores / t, pairs[:, 1]).item()

    t = tuned.temperature(i)
    assert t in TEMPERATURES.tolist() and nll(t) <= nll(1.0) + 1e-6
    assert nll(t) <= min(nll(x) for x in TEMPERATURES.tolist()) + 1e-6
    a, b = raw.predict(k=3), tuned.predict(k=3)
    assert [[v for v, _ in p.values] for p in a] == [[v for v, _ in p.values] for p in b]


def test_predict_quality_benchmark(shop, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import predict_quality

    plot = tmp_path / "reliability.png"
    assert predict_quality.main([str(shop["ws"]), "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("summary: attr accuracy ") and "| at p>=0.9: coverage " in out[-1]
    assert any(line.startswith("mean ECE: raw ") for line in out)


def test_asked_products_lose_their_own_edges_only():
    edges = {("P", "season", "S"): torch.tensor([[0, 1, 2], [0, 1, 0]]),
             ("S", "rev_season", "P"): torch.tensor([[0, 1, 0], [0, 1, 2]]),
             ("P", "colour", "C"): torch.tensor([[0, 1], [1, 1]])}  # fmt: skip
    out = _without(edges, ("P", "season", "S"), torch.tensor([0, 2]))
    assert out[("P", "season", "S")].tolist() == [[1], [1]]
    assert out[("S", "rev_season", "P")].tolist() == [[1], [1]]
    assert out[("P", "colour", "C")] is edges[("P", "colour", "C")]


def test_bad_input(shop, tmp_path):
    with pytest.raises(ConfigError, match="predicts season, colour, not year.*--relation year"):
        predict_values(shop["ws"], relations=["year"])
    with pytest.raises(ConfigError, match="'http://ex.org/nope' is not a node"):
        predict_values(shop["ws"], nodes=["http://ex.org/nope"])
    with pytest.raises(ConfigError, match="at least one value"):
        predict_values(shop["ws"], k=0)
    with pytest.raises(ConfigError, match="no trained run 'gone'"):
        predict_values(shop["ws"], "gone")
    bare = shop["graph"].save(tmp_path / "bare", sparql_store=False)
    with pytest.raises(ConfigError, match="no 'attribute' or 'node' run.*--task attribute"):
        predict_values(bare)


def test_kgf_predict(shop, capsys):
    ws = str(shop["ws"])
    assert main(["predict", ws, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(GAPS) and {r["relation"] for r in rows} == {"season"}
    assert {r["predicted"] for r in rows} <= set(SEASONS)
    assert all(r["name"].startswith("thing ") and r["catalogue"] == [] for r in rows)
    assert main(["predict", ws, "--product", PREFIX + "p1", "--relation", "season"]) == 0
    out = capsys.readouterr().out
    assert "thing 1" in out and season_of(shop["years"][1]) in out
    assert "run attr; test accuracy: season" in out
    probs = sorted(r["probability"] for r in rows)
    cut = probs[len(probs) // 2]
    assert main(["predict", ws, "--min-probability", repr(cut), "--format", "json"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert len(kept) == sum(p >= cut for p in probs) and all(r["probability"] >= cut for r in kept)
    if probs[-1] < 1.0:
        assert main(["predict", ws, "--min-probability", "1.0"]) == 0
        assert "none of the 10 predictions reaches --min-probability 1.0" in capsys.readouterr().out
    assert main(["predict", ws, "--min-probability", "0.5", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("product,name,relation,predicted,probability")
    assert main(["predict", ws, "--relation", "gender"]) == 2
    assert "not gender" in capsys.readouterr().err


def test_kgf_predict_writes_the_gaps_as_triples(shop, tmp_path, capsys):
    """--triples: one `<product> <season predicate> <value>` line per gap shown, loadable
    as RDF; a product that has a value is never written."""
    import pyoxigraph as ox

    out = tmp_path / "predicted.nt"
    code = main(["predict", str(shop["ws"]), "--triples", str(out), "--format", "json",
                 "--product", PREFIX + "p0", "--product", PREFIX + "p1"])  # fmt: skip
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    triples = list(ox.parse(out.read_bytes(), format=ox.RdfFormat.N_TRIPLES))
    gap = next(r for r in rows if r["product"] == PREFIX + "p0" and r["relation"] == "season")
    assert [(t.subject.value, t.predicate.value, t.object.value) for t in triples] == [
        (PREFIX + "p0", PREFIX + "season", gap["value_iri"])]  # fmt: skip


def test_service_predict(shop):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from kgfusion.service import create_app

    with TestClient(create_app(shop["session"])) as client:
        body = client.get("/predict", params={"limit": 3}).json()
        assert body["run"] == "attr" and body["truncated"] is True
        assert len(body["predictions"]) == 3 and set(body["test_accuracy"]) == {"season", "colour"}
        one = client.get("/predict", params={"product": PREFIX + "p1", "relation": "season"})
        assert one.json()["predictions"][0]["catalogue"] == [season_of(shop["years"][1])]
        assert client.get("/predict", params={"product": PREFIX + "nope"}).status_code == 404
        assert client.get("/predict", params={"relation": "gender"}).status_code == 422


def test_ask_about_a_gap_answers_with_the_attribute_model(shop):
    """`kgf ask` about a season the catalogue lacks: the attribute model's best value, said
    to be predicted; about a season it has: the catalogue's, no prediction."""
    session = shop["session"]
    session.qa_train(graph_products=40, epochs=8, seed=0)
    gap = PREFIX + "p15"
    answer = session.ask("which season is it for?", product=gap)
    assert answer.answered and answer.attribute == "season" and answer.model == "attribute model"
    assert "(predicted by the attribute model, probability " in answer.text
    assert answer.values == [session.predict([gap], ["season"], 1)[0].values[0][0].rsplit("/", 1)[1]]
    known = session.ask("which season is it for?", product=PREFIX + "p1")
    assert known.answered and known.predicted == [] and known.model == ""
    assert known.values == [season_of(shop["years"][1])]


def test_node_run_predicts_the_unlabelled_entities(shop, tmp_path, capsys):
    """A node-classification run: the class of each product the label file leaves out
    (the year's parity, which only the graph holds), calibrated on its validation labels."""
    years = shop["years"]
    labelled = range(0, 300, 3)  # a third of the products labelled
    path = tmp_path / "train.tsv"
    path.write_text("product\tparity\n" + "".join(
        f"{PREFIX}p{i}\t{'even' if years[i] % 2 == 0 else 'odd'}\n" for i in range(300) if i in labelled))  # fmt: skip
    session = shop["session"]
    session.train(labels=str(path), run_name="parity", progress=False,
                  overrides={"trainer.epochs": 60, "trainer.patience": 0})  # the graph's settings
    predictor = session.predictor("parity")
    assert type(predictor).__name__ == "NodePredictor" and predictor.relations == ["parity"]
    found = predictor.predict(k=2)
    assert len(found) == 300 - len(labelled) and all(p.known == [] for p in found)
    right = sum(p.values[0][0] == ("even" if years[int(p.node.rsplit("p", 1)[1])] % 2 == 0 else "odd")
                for p in found)  # fmt: skip
    assert right >= 0.9 * len(found)
    one = predictor.predict([PREFIX + "p3"], k=1)[0]
    assert one.known == ["even" if years[3] % 2 == 0 else "odd"]
    assert main(["predict", str(shop["ws"]), "--run", "parity", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(found) and {r["predicted"] for r in rows} <= {"even", "odd"}
    nt = tmp_path / "classes.nt"
    assert main(["predict", str(shop["ws"]), "--run", "parity", "--triples", str(nt)]) == 2
    assert "only attribute predictions" in capsys.readouterr().err and not nt.exists()
    with pytest.raises(ConfigError, match="run 'parity' predicts parity, not season.*--labels"):
        predictor.predict(relations=["season"])
    with pytest.raises(ConfigError, match="run 'attr' is a 'attribute' run; .*of task 'node'"):
        NodePredictor(shop["ws"], "attr")

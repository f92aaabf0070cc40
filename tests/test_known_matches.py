"""Known matches as evidence for the reranker's decision (align.known_matches)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from test_rerank import EX, OFFERS, pairs, sparse_pairs, tiny_model, workspace  # noqa: F401

from align import Linker, LinkerError, fit_linker
from align.known_matches import (
    KNOWN_FILE,
    KNOWN_INPUTS,
    KnownMatches,
    duplicate_share,
    use_known_matches,
    view_inputs,
)
from align.rerank import INPUTS, RERANKER_DIR, CrossEncoder, Reranker
from align.rerank_train import fit_reranker


@pytest.fixture(scope="module")
def linker(workspace):  # noqa: F811
    linker = Linker(workspace)
    train, valid = pairs(OFFERS[:4] + OFFERS[6:7]), pairs(OFFERS[4:6] + OFFERS[7:])
    fit_linker(linker, *train, valid=valid, hidden=0, projection=False, epochs=100)
    return linker


def _fit(linker, tiny_model, setting):  # noqa: F811
    train, valid = sparse_pairs(OFFERS[:4] + OFFERS[6:7]), pairs(OFFERS[4:6] + OFFERS[7:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_reranker(
            linker, *train, valid, base_model=f"hf:{tiny_model}", max_length=48, epochs=1,
            batch_size=8, lr=1e-3, candidate_negatives=1, seed=0, known_matches=setting,
        )  # fmt: skip


@pytest.fixture(scope="module")
def known_reranker(linker, tiny_model):  # noqa: F811
    return _fit(linker, tiny_model, "on")


def test_duplicate_share_reads_several_entities_per_record():
    texts = ["a", "a", "b", "c", "c"]
    iris = ["e1", "e2", "e3", "e4", "e5"]
    assert duplicate_share(texts, iris, [1, 1, 1, 1, 0]) == pytest.approx(1 / 3)
    assert duplicate_share(texts, iris, [0, 0, 0, 0, 0]) == 0.0
    # one-to-one (Abt-Buy-like): not used; a catalogue with duplicates (WDC-like): used
    assert use_known_matches("auto", ["a", "b"], ["e1", "e2"], [1, 1])[0] is False
    used, why = use_known_matches("auto", texts, iris, [1, 1, 1, 1, 0])
    assert used and "33.3 %" in why
    assert use_known_matches("on", ["a"], ["e1"], [1]) == (True, "known_matches='on'")
    with pytest.raises(ValueError, match="expected one of"):
        use_known_matches("sometimes", [], [], [])


def test_known_records_are_the_matches_distinct_and_capped(tmp_path):
    texts = ["x1", "x2", "x1", "x3", "y1"]
    known = KnownMatches.from_pairs(texts, ["e", "e", "e", "e", "f"], [1, 1, 1, 1, 0], limit=2)
    assert known.records == {"e": ["x1", "x2"]} and len(known) == 1
    known.save(tmp_path)
    assert KnownMatches.load(tmp_path) == known
    assert KnownMatches.load(tmp_path / "none") is None
    (tmp_path / KNOWN_FILE).write_text(json.dumps({"e": "x1"}))
    with pytest.raises(LinkerError, match=KNOWN_FILE):
        KnownMatches.load(tmp_path)


def test_view_logit_is_the_best_comparison_with_the_known_records(tiny_model):  # noqa: F811
    encoder = CrossEncoder.from_base(f"hf:{tiny_model}", max_length=32)
    known = KnownMatches({"e": ["COL title VAL canon eos 550d", "COL title VAL sony tv"]})
    texts = ["COL title VAL canon dslr 550d", "COL title VAL bose speakers"]
    views = known.view_logits(encoder, texts, ["e", "f"])
    expected = encoder.logits([texts[0]] * 2, known.records["e"]).max()
    assert views[0] == pytest.approx(expected, abs=1e-5) and np.isnan(views[1])
    assert view_inputs(views).tolist() == [[pytest.approx(expected, abs=1e-5), 1.0], [0.0, 0.0]]


def test_a_reranker_fitted_with_known_matches_reads_them(linker, known_reranker, tmp_path):
    r = known_reranker
    assert r.calibrator.inputs == INPUTS + KNOWN_INPUTS
    assert r.config.cascade is None  # known matches: every pair goes through the cross-encoder
    info = r.config.metrics["known_matches"]
    assert info["used"] and info["entities"] == 4  # the four matched training offers
    assert 0 < info["valid_pairs_with_view"] < 1
    assert r.known.records[EX + "p1"] == [r.mention_text({"name": OFFERS[0][0]})]
    records, iris, _ = pairs(OFFERS[4:6])
    p = r.score_pairs(linker, records, iris)
    loaded = Reranker.load(r.save(tmp_path / RERANKER_DIR))
    assert (tmp_path / RERANKER_DIR / KNOWN_FILE).is_file()
    assert loaded.known == r.known
    (tmp_path / RERANKER_DIR / KNOWN_FILE).rename(tmp_path / "moved.json")
    with pytest.raises(LinkerError, match="known_matches.json is missing"):
        Reranker.load(tmp_path / RERANKER_DIR)
    assert np.allclose(loaded.score_pairs(linker, records, iris), p, atol=1e-5)
    # without its known records every view is absent: the probabilities of pairs whose
    # entity had one change (the calibrator weighs the view inputs); every pair reranked
    loaded.config.cascade = None
    full = loaded.score_pairs(linker, records, iris)
    loaded.known = KnownMatches()
    changed = ~np.isclose(loaded.score_pairs(linker, records, iris), full, atol=1e-6)
    has_view = np.array([iri in r.known.records for iri in iris])
    assert changed[~has_view].sum() == 0 and changed[has_view].any()
    links = linker.link_records(records[:1], k=5)
    out = r.rerank(linker, records[:1], links, k=5)
    assert {i for i, _ in out[0].alternatives} == {i for i, _ in links[0].alternatives}


def test_auto_leaves_a_one_to_one_set_alone(linker, tiny_model):  # noqa: F811
    r = _fit(linker, tiny_model, "auto")
    info = r.config.metrics["known_matches"]
    assert info["used"] is False and "0.0 %" in info["why"]
    assert r.known is None and r.calibrator.inputs == INPUTS

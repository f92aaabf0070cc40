"""The calibrated pair decision (pair score + its best rival, Platt-fitted on validation
pairs, p >= 0.5), the workspace reranker used by `Linker` / `kgf link` / `kgf link-evaluate`
when it was trained against the linker, and `kgf link-train --reranker`."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
from test_rerank import EX, OFFERS, pairs, sparse_pairs, tiny_model, workspace  # noqa: F401

from align import Linker, fit_linker
from align.calibration import Calibrator
from align.pair_decision import INPUTS, decision_inputs, pair_context
from align.rerank import RERANKER_DIR
from align.rerank_train import fit_reranker
from kg.workspace import LINKER_DIR, sha256_file
from kgfusion.cli import main


@pytest.fixture(scope="module")
def saved(workspace):  # noqa: F811
    """The toy workspace with a trained, saved linker."""
    linker = Linker(workspace, fresh=True)
    train, valid = pairs(OFFERS[:4] + OFFERS[6:7]), pairs(OFFERS[4:6] + OFFERS[7:])
    fit_linker(linker, *train, valid=valid, hidden=0, projection=False, epochs=100)
    linker.save()
    return linker


def test_decision_is_calibrated_and_stored(workspace, saved):  # noqa: F811
    c = saved.config
    assert Calibrator.from_dict(c.decision).inputs == INPUTS and c.threshold == 0.5
    assert Calibrator.from_dict(c.calibrator).inputs == ["scorer_logit"]
    assert c.metrics["valid"]["threshold"] == 0.5 and "tuned_threshold" in c.metrics["valid"]
    w_own, w_rival = Calibrator.from_dict(c.decision).weights
    assert w_own > 0 > w_rival  # a better rival makes the pair less likely a match
    again = Linker(workspace)
    assert again.config.decision == c.decision and again.pair_threshold == 0.5
    records, iris, labels = pairs(OFFERS[4:6])
    p = again.score_pairs(records, iris)
    assert np.allclose(p, saved.score_pairs(records, iris), atol=1e-6)
    mentions, groups = again.group_pairs(records, iris)
    _, raw, rival = pair_context(again, mentions, groups, again.config.record_types)
    assert np.allclose(p, Calibrator.from_dict(c.decision).predict(decision_inputs(raw, rival)))
    # the rival is the best other candidate: for each offer, the gold pair's rival is the
    # best wrong pair's raw score or higher, never the pair itself
    gold = labels.astype(bool)
    assert (rival[gold] >= raw[~gold].reshape(2, -1).max(axis=1) - 1e-9).all()
    assert (p[gold] >= 0.5).all() and (p >= 0.5).sum() <= 4


def test_probabilities_for_linking_are_platt_calibrated(saved):
    x = np.random.default_rng(0).random((5, len(saved.config.features))).astype(np.float32)
    raw = saved.scorer.predict(x)
    calibrated = saved.probabilities(x)
    assert np.argsort(raw).tolist() == np.argsort(calibrated).tolist()  # monotone


def test_decision_from_a_links_alternatives_equals_score_pairs(saved):
    """The reranker's prior for a link's candidates is the feature decision of those pairs."""
    from align.pair_decision import decide_candidates

    record = {"name": "sony cybershot dsc-w120 camera"}
    link = saved.link_record(record, k=6, nil=False)
    iris = [iri for iri, _ in link.alternatives]
    expected = saved.score_pairs([record] * len(iris), iris)
    got = decide_candidates(saved, [p for _, p in link.alternatives])
    assert np.allclose(got, expected, atol=2e-3)


def _reranker_in(workspace, linker, tiny_model):  # noqa: F811
    train, valid = sparse_pairs(OFFERS[:4] + OFFERS[6:7]), pairs(OFFERS[4:6] + OFFERS[7:])
    reranker = fit_reranker(
        linker, *train, valid, base_model=f"hf:{tiny_model}", max_length=48, epochs=1,
        batch_size=8, lr=1e-3, candidate_negatives=1, graph_negative_n=0, seed=0,
    )  # fmt: skip
    reranker.config.linker_sha256 = sha256_file(workspace / LINKER_DIR / "model.safetensors")
    reranker.save(workspace / RERANKER_DIR)
    return reranker


def test_linker_uses_the_workspace_reranker(workspace, saved, tiny_model):  # noqa: F811
    reranker = _reranker_in(workspace, saved, tiny_model)
    assert reranker.config.nil_threshold is not None and reranker.config.metrics["nil"]["mentions"]
    try:
        linker = Linker(workspace)
        assert linker.reranker is not None and Linker(workspace, rerank=False).reranker is None
        assert linker.nil_threshold == reranker.nil_threshold and linker.pair_threshold == 0.5
        records, iris, _ = pairs(OFFERS[4:6])
        assert np.allclose(linker.score_pairs(records, iris),
                           reranker.score_pairs(linker, records, iris), atol=1e-5)  # fmt: skip
        link = linker.link_record({"name": "canon eos 550d dslr"}, k=2)
        plain = Linker(workspace, rerank=False).link_record({"name": "canon eos 550d dslr"}, k=10)
        expected = reranker.rerank(linker, [{"name": "canon eos 550d dslr"}], [plain],
                                   threshold=reranker.nil_threshold)[0]  # fmt: skip
        assert len(link.alternatives) == 2 and link.alternatives == expected.alternatives[:2]
        assert link.nil == (link.score < reranker.nil_threshold)
        assert not linker.link_record({"name": "canon eos 550d dslr"}, nil=False).nil
        # a linker retrained since: the reranker is stale, said once and not used
        config = json.loads((workspace / RERANKER_DIR / "config.json").read_text())
        config["linker_sha256"] = "0" * 64
        (workspace / RERANKER_DIR / "config.json").write_text(json.dumps(config))
        with pytest.warns(UserWarning, match="another version of the linker.*--reranker"):
            assert Linker(workspace).reranker is None
    finally:
        import shutil

        shutil.rmtree(workspace / RERANKER_DIR)


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def test_cli_link_train_reranker(tmp_path, workspace, tiny_model, capsys):  # noqa: F811
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    shutil.rmtree(ws / LINKER_DIR, ignore_errors=True)
    _write(tmp_path / "tableB.csv", ["id", "name"], [[str(i), t] for i, (t, _) in enumerate(OFFERS)])
    rows = {"train": [], "valid": []}
    for i, (_, gold) in enumerate(OFFERS):
        part = "valid" if i in (4, 5, 7) else "train"
        rows[part] += [[f"p{j}", str(i), int(gold == f"p{j}")] for j in range(1, 7)]
    for part, found in rows.items():
        _write(tmp_path / f"{part}.csv", ["ltable_id", "rtable_id", "label"], found)
    assert "--reranker-precision" in (usage := _help(capsys)) and "--reranker-soup" in usage
    assert "--reranker-known-matches" in usage
    args = ["link-train", str(ws), "--mentions", str(tmp_path / "tableB.csv"), "--pairs",
            str(tmp_path / "train.csv"), "--valid", str(tmp_path / "valid.csv")]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([*args, "--reranker", "--reranker-base", f"hf:{tiny_model}",
                     "--reranker-epochs", "1", "--reranker-max-length", "48",
                     "--reranker-precision", "fp32", "--reranker-train-precision", "fp32",
                     "--reranker-soup", "--reranker-known-matches", "on"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "reranker saved to" in out
    assert (ws / RERANKER_DIR / "config.json").is_file()
    assert (ws / RERANKER_DIR / "model.safetensors").is_file()
    assert Linker(ws).reranker is not None
    saved = json.loads((ws / RERANKER_DIR / "config.json").read_text())
    assert saved["precision"] == "fp32" and saved["train_precision"] == "fp32"
    assert saved["metrics"]["fit"]["soup"] == [1]  # one epoch: its own soup
    assert saved["metrics"]["known_matches"]["used"] and (ws / RERANKER_DIR / "known_matches.json").is_file()
    assert main(["link-evaluate", str(ws), "--pairs", str(tmp_path / "valid.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reranked"] is True and report["pair_threshold"] == 0.5
    assert main(["link", str(ws), "canon eos 550d dslr", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert main(["link-train", str(ws), "--images", "x", "--reranker"]) == 2


def _help(capsys) -> str:
    with pytest.raises(SystemExit):
        main(["link-train", "--help"])
    return capsys.readouterr().out


def test_one_class_validation_is_refused_by_name(workspace):  # noqa: F811
    from align import LinkerError

    linker = Linker(workspace, fresh=True)
    train = pairs(OFFERS[:4] + OFFERS[6:7])
    only_matches = [({"name": t}, EX + g, 1) for t, g in OFFERS[4:6]]
    valid = ([r for r, _, _ in only_matches], [i for _, i, _ in only_matches],
             np.array([y for _, _, y in only_matches]))  # fmt: skip
    with pytest.raises(LinkerError, match="validation pairs.*both classes"):
        fit_linker(linker, *train, valid=valid, hidden=0, projection=False, epochs=20)

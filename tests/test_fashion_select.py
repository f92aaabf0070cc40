"""The Fashion benchmark's per-relation model selection (benchmarks/fashion_select.py) and
its default grid (residual variants instead of the plain ones)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fusion.config import resolve_config
from fusion.tasks import TASKS
from fusion.trainer import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fashion  # noqa: E402
import fashion_select  # noqa: E402
from test_attribute import RELATIONS, random_features, shop_graph  # noqa: E402


@pytest.mark.parametrize("inductive", [False, True])
def test_per_relation_selection_keeps_each_relations_best_validation_epoch(tmp_path, inductive):
    """Training is unchanged (same final metrics as a plain run); each relation's kept
    metrics are those of the first epoch with its best validation MRR in metrics.jsonl."""
    graph = shop_graph(tmp_path, n=150)
    feats = random_features(graph)
    overrides = {"task.inductive": inductive, "trainer.epochs": 30, "model.hidden": 16,
                 "model.out_dim": 16, "trainer.patience": 0}  # fmt: skip
    kw = dict(task="attribute", relations=RELATIONS, gnn="rgcn", progress=False)
    plain = train(tmp_path / "ws", run_name="plain", graph=graph, features=feats,
                  overrides=overrides, **kw)  # fmt: skip
    trainer = fashion_select.PerRelationTrainer(resolve_config(None, overrides, **kw))
    result = trainer.fit(tmp_path / "ws", run_name="picked", graph=graph, features=feats)
    assert result.metrics == plain.metrics and result.best_epoch == plain.best_epoch

    log = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    log = [r for r in log if not r.get("final") and "valid/mrr" in r]
    assert set(trainer.picked) == set(RELATIONS)
    for r in RELATIONS:
        values = [rec[f"valid/mrr.{r}"] for rec in log]
        first_best = log[values.index(max(values))]
        kept = trainer.picked[r]
        assert kept["epoch"] == first_best["epoch"]
        assert kept[f"valid/mrr.{r}"] == max(values)
        assert kept[f"valid/acc.{r}"] == first_best[f"valid/acc.{r}"]
        assert {f"test/acc.{r}", f"test/mrr.{r}"} <= set(kept)
        if kept["epoch"] == result.best_epoch:  # the same weights as the final model
            assert kept[f"test/acc.{r}"] == pytest.approx(result.metrics[f"test/acc.{r}"])

    m = fashion_select.per_relation_metrics(trainer.picked)
    for key in ("valid/acc", "valid/mrr", "test/acc", "test/mrr"):
        assert m[key] == pytest.approx(sum(m[f"{key}.{r}"] for r in RELATIONS) / len(RELATIONS))
    # each relation at its own best epoch: the mean validation MRR can only be higher
    assert m["valid/mrr"] >= result.metrics["valid/mrr"] - 1e-9
    assert fashion_select.per_relation_metrics({}) == {}


def test_default_grid_is_the_residual_one_and_no_residual_gives_the_plain_one():
    default = [v["name"] for v in fashion.variants(False)]
    plain = [v["name"] for v in fashion.variants(False, residual=False)]
    assert all(n.endswith(" +res") for n in default)
    assert "rgcn/attention/early/3 layers +res" in default
    assert all(v["model"]["residual"] for v in fashion.variants(False))
    assert [n.removesuffix(" +res") for n in default] == [*plain, "rgcn/attention/early/3 layers"]
    assert not any("+res" in n or "3 layers" in n for n in plain)
    assert not any(v["model"]["residual"] for v in fashion.variants(False, residual=False))
    groups = {v["group"] for v in fashion.variants(False)}
    assert groups == {"single", "non-graph", "graph"}
    extra = [v["name"] for v in fashion.variants(False, extra=True)]
    assert extra.count("rgcn/attention/early/3 layers +res") == 1
    assert "rgcn/attention/early+labels +res" in extra


def test_select_relation_reads_per_relation_metrics_and_names_old_rows():
    def run(acc, per=None):
        return {"metrics": {"valid/acc": acc, "test/acc": acc}, "cpu_s": 1.0,
                **({"per_relation": {"valid/acc": per, "test/acc": per}} if per else {})}  # fmt: skip

    every = {"transductive": {
        "majority": {"group": "majority", "runs": [run(0.5)]},
        "g": {"group": "graph", "runs": [run(0.8, 0.9), run(0.8, 0.7)]},
        "old": {"group": "non-graph", "runs": [run(0.6)]},
    }}  # fmt: skip
    same, none = fashion.selected(every, "mean")
    assert same is every and none == []
    out, old = fashion.selected(every, "relation")
    assert old == ["transductive old"]
    assert [r["metrics"]["test/acc"] for r in out["transductive"]["g"]["runs"]] == [0.9, 0.7]
    assert out["transductive"]["old"]["runs"][0]["metrics"]["test/acc"] == 0.6
    assert out["transductive"]["majority"]["runs"][0]["metrics"]["test/acc"] == 0.5
    assert every["transductive"]["g"]["runs"][0]["metrics"]["test/acc"] == 0.8  # not changed


def test_attribute_task_defaults_to_residual_connections_config_wins():
    """Residual connections won on validation for every Fashion model: the attribute task's
    model default (Task.model_defaults); other tasks keep theirs; the config still wins."""
    assert resolve_config(None, None, task="attribute", relations=["usage"]).model["residual"] is True
    assert TASKS.get_class("node").model_defaults == {}
    off = resolve_config(None, {"model.residual": False}, task="attribute", relations=["usage"])
    assert off.model["residual"] is False


def test_stop_on_any_relation_trains_at_least_as_long(tmp_path):
    """``stop="relation"``: patience counts epochs without a better validation MRR of any
    relation, so the run never stops earlier than the mean-stopped one; it stops only after
    ``patience`` epochs in which no relation improved."""
    graph = shop_graph(tmp_path, n=150)
    feats = random_features(graph)
    overrides = {"trainer.epochs": 60, "model.hidden": 16, "model.out_dim": 16,
                 "trainer.patience": 3, "trainer.lr": 0.05}  # fmt: skip
    kw = dict(task="attribute", relations=RELATIONS, gnn="rgcn", progress=False)
    runs = {}
    for stop in ("mean", "relation"):
        trainer = fashion_select.PerRelationTrainer(resolve_config(None, overrides, **kw), stop)
        runs[stop] = (trainer, trainer.fit(tmp_path / "ws", run_name=stop, graph=graph,
                                           features=feats))  # fmt: skip
    assert runs["relation"][1].epochs >= runs["mean"][1].epochs
    trainer, result = runs["relation"]
    last = max(k["epoch"] for k in trainer.picked.values())
    assert result.epochs == 60 or result.epochs - last == 3
    with pytest.raises(ValueError, match="expected 'mean' or 'relation'"):
        fashion_select.PerRelationTrainer(resolve_config(None, overrides, **kw), "any")


def test_goal_lines_give_the_margin_seed_by_seed_on_the_same_splits():
    keys = ("valid/acc", "test/acc", "test/acc.season", "test/acc.usage")

    def runs(*accs):
        return [{"seed": s, "metrics": dict.fromkeys(keys, a)} for s, a in enumerate(accs)]

    results = {
        "g": {"group": "graph", "runs": runs(0.94, 0.95, 0.93)},
        "c": {"group": "non-graph", "runs": runs(0.93, 0.93, 0.92)[::-1]},  # any order
    }
    lines = fashion.goal_lines(results, "transductive")
    assert len(lines) == 3
    usage = next(line for line in lines if "acc.usage" in line)
    # seed 0: 94 - 93; seed 1: 95 - 93; seed 2: 93 - 92
    assert usage.endswith("per seed +1.0 +2.0 +1.0"), usage
    assert "margin +1.3 (2 x std 2.0) FAILS" in usage  # every seed wins; the std test fails
    assert fashion.paired_margins(results["g"]["runs"], [], "test/acc") == []


def test_knn_vote_counts_only_the_nearest_training_products():
    import fashion_knn
    import numpy as np

    vectors = fashion_knn.unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [1.0, 0.05]]))
    train = np.array([[1, 0], [2, 1], [3, 1]])  # (product, value): product 0 and 4 are not voters
    v = fashion_knn.vote(vectors, np.array([0, 4]), train, n_values=2, k=1, tau=0.05)
    assert v.shape == (2, 2) and np.allclose(v.sum(1), 1)
    assert (v.argmax(1) == [0, 0]).all()  # both look like product 1 (value 0)
    wide = fashion_knn.vote(vectors, np.array([0]), train, n_values=2, k=2, tau=10.0)
    assert 0.4 < wide[0, 1] < 0.6  # two voters, nearly equal weights at a high temperature

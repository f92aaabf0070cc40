"""fusion.scoring.LinkScorer: a trained link run as the scorer of related()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kg
from fusion.model import ConfigError
from fusion.scoring import LinkScorer, find_link_run
from fusion.trainer import load_embeddings, resolve_config, train
from kg.index import EntityIndex, graph_version
from kg.related import related

EX = "http://ex.org/"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """People working on projects; a bilinear link model of worksOn, and a node run."""
    tmp = tmp_path_factory.mktemp("scoring")
    lines = ["@prefix ex: <http://ex.org/> ."]
    lines += [f'ex:proj{p} a ex:Project ; ex:name "project {p}" .' for p in range(4)]
    for i in range(40):
        lines.append(f"ex:p{i} a ex:Person ; ex:worksOn ex:proj{i % 4} ; ex:knows ex:p{(i + 4) % 40} .")  # fmt: skip
    (tmp / "g.ttl").write_text("\n".join(lines), encoding="utf-8")
    graph = kg.load_rdf(tmp / "g.ttl")
    ws = graph.save(tmp / "ws", sparql_store=False)
    fast = {"hidden": 8, "out_dim": 8, "epochs": 100, "patience": 0, "checkpoint_every": 100}
    train(ws, task="link", relations=["worksOn"], run_name="lp", progress=False,
          overrides={**fast, "lr": 0.01, "task.decoder": "bilinear"})  # fmt: skip
    (tmp / "labels.tsv").write_text(
        "entity\tlabel\n" + "".join(f"{EX}p{i}\t{'AB'[i % 2]}\n" for i in range(40)), "utf-8"
    )
    train(ws, labels=tmp / "labels.tsv", run_name="node", progress=False,
          overrides={**fast, "epochs": 2})  # fmt: skip
    return ws, graph


def test_scores_are_the_decoder_probabilities(trained):
    ws, graph = trained
    scorer = LinkScorer.from_run(ws, "lp", graph)
    emb = load_embeddings(ws / "models" / "lp")
    projects = [f"{EX}proj{p}" for p in range(4)]
    got = scorer(f"{EX}p1", projects, "worksOn")
    h = emb["Person"][graph.node(f"{EX}p1")[1]]
    t = torch.stack([emb["Project"][graph.node(p)[1]] for p in projects])
    want = torch.sigmoid((h @ scorer.decoder.relation[0].detach()) @ t.T).numpy()
    assert got.shape == (4,) and np.allclose(got, want, atol=1e-6)
    # rev_worksOn: the query is the tail (a project), the candidates the heads
    people = [f"{EX}p{i}" for i in range(5)]
    back = scorer(f"{EX}proj1", people, "rev_worksOn")
    assert np.allclose(back[1], scorer(f"{EX}p1", [f"{EX}proj1"], "worksOn")[0], atol=1e-6)
    # the relation by IRI, and None when the run predicts one relation
    assert np.allclose(scorer(f"{EX}p1", projects, EX + "worksOn"), got)
    assert np.allclose(scorer(f"{EX}p1", projects, None), got)


def test_trained_model_prefers_true_links_and_proposes_them(trained):
    ws, graph = trained
    scorer = LinkScorer.from_workspace(ws, "worksOn", graph)
    true = [scorer(f"{EX}p{i}", [f"{EX}proj{i % 4}"], "worksOn")[0] for i in range(40)]
    false = [scorer(f"{EX}p{i}", [f"{EX}proj{(i + 1) % 4}"], "worksOn")[0] for i in range(40)]
    assert np.mean(true) > np.mean(false) + 0.1
    proposed = scorer.propose(f"{EX}p2", "worksOn", k=2)
    scores = scorer(f"{EX}p2", [f"{EX}proj{p}" for p in range(4)], "worksOn")
    assert proposed == [f"{EX}proj{p}" for p in np.argsort(-scores)[:2]]
    assert all(graph.node(p)[0] == "Project" for p in scorer.propose(f"{EX}p2", "worksOn", 10))


def test_related_with_the_model_finds_what_the_index_would_not(trained):
    ws, graph = trained
    scorer = LinkScorer.from_run(ws, "lp", graph)
    rng = np.random.default_rng(0)
    iris = list(graph.nodes)
    index = EntityIndex.build(iris, rng.normal(size=(len(iris), 4)).astype("float32"),
                              kind="torch", graph_version=graph_version(graph))  # fmt: skip
    items = related(graph, index, f"{EX}p3", k=2, relation="worksOn", scorer=scorer)
    assert {graph.node(i.iri)[0] for i in items} == {"Project"}
    assert items[0].iri == f"{EX}proj3" and items[0].parts["relation"] == 1.0  # the known link
    assert all("scorer" in i.parts for i in items)


def test_errors_name_the_fix(trained):
    ws, graph = trained
    scorer = LinkScorer.from_run(ws, "lp", graph)
    with pytest.raises(ConfigError, match="--relation knows"):
        scorer(f"{EX}p1", [f"{EX}p2"], "knows")
    with pytest.raises(ConfigError, match="not a link-prediction run"):
        LinkScorer.from_run(ws, "node", graph)
    with pytest.raises(ConfigError, match="no trained run 'lq'.*runs: lp, node"):
        LinkScorer.from_run(ws, "lq", graph)
    assert find_link_run(ws, "knows") is None and find_link_run(ws) == "lp"
    assert LinkScorer.from_workspace(ws, "knows", graph) is None


def test_a_changed_graph_is_refused(trained, tmp_path):
    ws, _ = trained
    (tmp_path / "small.ttl").write_text(
        "@prefix ex: <http://ex.org/> .\nex:p0 a ex:Person ; ex:worksOn ex:proj0 .\n"
        "ex:proj0 a ex:Project .\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="another version of the graph.*retrain"):
        LinkScorer.from_run(ws, "lp", kg.load_rdf(tmp_path / "small.ttl"))


def test_link_task_defaults_and_config_precedence():
    assert resolve_config(task="link", relations=["r"]).trainer.lr == 0.001
    assert resolve_config(task="link", relations=["r"]).trainer.epochs == 300
    assert resolve_config(task="link", relations=["r"], overrides={"lr": 0.02}).trainer.lr == 0.02
    assert resolve_config(task="node", labels="x.tsv").trainer.lr == 0.01


class Killed(BaseException):
    """A stand-in for kill -9 right after the first checkpoint."""


def test_an_interrupted_link_run_is_skipped(trained, tmp_path, monkeypatch, capsys):
    """Issue 13.8: a link run killed after its first checkpoint never hides the older
    complete runs from `kgf related --relation`, the service or the run finder."""
    import shutil

    from fusion import runs
    from fusion import trainer as T
    from kgfusion.cli import main
    from kgfusion.service import load_workspace

    ws = shutil.copytree(trained[0], tmp_path / "ws")
    real = T.save_checkpoint

    def killed_after(*args, **kwargs):
        real(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(T, "save_checkpoint", killed_after)
    fast = {"hidden": 8, "out_dim": 8, "epochs": 4, "patience": 0, "checkpoint_every": 1}
    with pytest.raises(Killed):
        train(ws, task="link", relations=["worksOn"], run_name="new", progress=False,
              overrides={**fast, "task.decoder": "bilinear"})  # fmt: skip
    monkeypatch.undo()
    assert runs.list_runs(ws, incomplete=True) == ["new"]
    assert [r.name for r in runs.scan_runs(ws) if not r.complete] == ["new"]
    assert find_link_run(ws, "worksOn") == "lp" and runs.find_run(ws, "new") is None
    assert LinkScorer.from_workspace(ws, "worksOn").run == "lp"
    assert load_workspace(ws).scorer("worksOn").run == "lp"
    graph = kg.load_graph(ws)
    EntityIndex.build(list(graph.nodes), np.eye(len(graph.nodes), 8, dtype="float32"),
                      kind="torch", graph_version=graph_version(graph)).save(ws / "index")  # fmt: skip
    assert main(["related", str(ws), f"{EX}p3", "--relation", "worksOn", "-k", "2"]) == 0
    assert "p3 -worksOn-> project 3" in capsys.readouterr().out
    train(ws, task="link", relations=["worksOn"], run_name="new", progress=False, resume=True,
          overrides={**fast, "task.decoder": "bilinear"})  # fmt: skip
    assert find_link_run(ws, "worksOn") == "new" and runs.list_runs(ws) == ["lp", "new", "node"]

"""The `kgf` command line: help, build, info, sparql, and what bad input gets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import shared

from kgfusion.cli import COMMANDS, main
from kgfusion.session import Session

TTL = """\
@prefix s: <http://schema.org/> .
<http://ex.org/p1> a s:Product ; s:name "Ring"@en ; s:image "missing.png" ; s:brand <http://ex.org/b> .
<http://ex.org/b> a s:Brand ; s:name "Aurum" .
"""


def test_help_teaches_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert name in text
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "usage: kgf " + name in capsys.readouterr().out


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "kgfusion.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "kgfusion" in result.stdout


def test_build_info_sparql(tmp_path, capsys):
    source = tmp_path / "cat.ttl"
    source.write_text(TTL)
    ws = tmp_path / "ws"
    assert main(["build", str(source), "-o", str(ws)]) == 0
    assert "Product" in capsys.readouterr().out
    assert main(["info", str(ws)]) == 0
    out = capsys.readouterr().out
    assert "Images: 0 found, 1 missing" in out and "missing.png" in out
    assert main(["info", str(ws), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["node_types"] == {"Brand": 1, "Product": 1}
    assert report["languages"] == {"en": 1}
    query = "SELECT ?n WHERE { ?p <http://schema.org/name> ?n } ORDER BY ?n"
    assert main(["sparql", str(ws), query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", "Aurum", "Ring"]
    assert main(["sparql", str(ws), "DELETE WHERE { ?s ?p ?o }"]) == 2
    assert "read-only" in capsys.readouterr().err


def test_existing_workspace_needs_overwrite_and_bad_input_writes_nothing(tmp_path, capsys):
    source = tmp_path / "cat.ttl"
    source.write_text(TTL)
    ws = tmp_path / "ws"
    assert main(["build", str(source), "-o", str(ws)]) == 0
    manifest = (ws / "manifest.json").read_bytes()
    assert main(["build", str(source), "-o", str(ws)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    bad = tmp_path / "bad.ttl"
    bad.write_text('<http://a> <http://b> "unterminated .\n')
    assert main(["build", str(bad), "-o", str(ws), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "bad.ttl, line 1" in err
    assert (ws / "manifest.json").read_bytes() == manifest
    assert main(["build", str(bad), "-o", str(tmp_path / "new")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ttl", "cat.ttl", "ws"]
    assert main(["info", str(tmp_path)]) == 2
    assert "kgf build" in capsys.readouterr().err


def test_build_aifb(tmp_path, capsys):
    path = shared("rdf/aifb/aifb_stripped.nt.gz")
    assert main(["build", str(path), "-o", str(tmp_path / "aifb")]) == 0
    assert main(["info", str(tmp_path / "aifb"), "--json"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "sparql",
                str(tmp_path / "aifb"),
                "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["rows"] == [{"n": "29043"}]


@pytest.mark.parametrize(
    ("table", "mapping", "products"),
    [
        ("matching/abt_buy/tableA.csv", "abt_buy.toml", 1081),
        ("matching/amazon_google/tableA.csv", "amazon_google.toml", 1363),
        ("images/grocery/classes.csv", "grocery.toml", 81),
    ],
)
def test_build_example_mappings(tmp_path, capsys, table, mapping, products):
    from conftest import ROOT

    source = shared(table)
    ws = tmp_path / "ws"
    assert (
        main(["build", str(source), "--mapping", str(ROOT / "examples" / mapping), "-o", str(ws)])
        == 0
    )
    capsys.readouterr()
    assert (ws / "catalogue.ttl").is_file()  # the RDF it built, for any triple store
    assert main(["info", str(ws), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["node_types"]["Product"] == products
    if mapping == "grocery.toml":
        assert report["node_types"]["CategoryCode"] == 43
        assert report["images"] == {"found": 81, "missing": 0, "remote": 0, "missing_examples": []}


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo"), "--products", "40"]) == 0
    out = capsys.readouterr().out
    assert "isAccessoryOrSparePartFor" in out and "test MRR" in out
    assert "what this accessory fits" in out and "rotes Rennauto" in out  # steps 6-9 ran
    assert "Q: Welche Farbe" in out and "questions about products" in out  # the QA step ran
    # the related steps print what `kgf related` prints in a terminal: IRIs beside the names
    # (the sample has products of the same name), evidence cut to fit, not 1,000-char lines
    assert "long cells cut to fit the terminal" in out
    assert max(len(line) for line in out.splitlines()) <= 300
    ws = tmp_path / "demo" / "workspace"
    assert (ws / "models" / "demo-link" / "embeddings.safetensors").is_file()
    _assert_accessories_first(ws)
    related = ["related", str(ws), "--name", "racing car", "-k", "3", "--json"]
    assert main([*related, "--relation", "rev_isAccessoryOrSparePartFor"]) == 0
    out = capsys.readouterr().out
    items = json.loads(out[out.index("[") :])
    assert len(items) == 3 and all("scorer" in item["parts"] for item in items)  # the LP run
    assert main([*related, "--relation", "rev_isAccessoryOrSparePartFor", "--no-model"]) == 0
    out = capsys.readouterr().out
    assert not any("scorer" in item["parts"] for item in json.loads(out[out.index("[") :]))
    assert main([*related, "--relation", "isSimilarTo", "--model", "nope"]) == 2
    assert "no trained run 'nope'" in capsys.readouterr().err
    assert main(["related", str(ws), "https://example.org/kgf/product/nope"]) == 2
    assert "did you mean" in capsys.readouterr().err
    session = Session(ws)  # what `kgf serve` answers /link and /related?name= with
    assert session.match_method() == "linker"  # the text linker, not the lexical fallback
    matches = session.match("rotes Rennauto", 3)
    assert matches and all(0 <= m.score <= 1 and m.text for m in matches)
    shutil.rmtree(ws / "index")
    assert main(["related", str(ws), "--name", "racing car", "-k", "3"]) == 2
    assert "kgf index" in capsys.readouterr().err  # no index: the message names the command


def _assert_accessories_first(ws) -> None:
    """The demo's "its accessories" step, answered as the demo answers it: from the index of
    the demo's run, the product's own accessories first, then no main product before an
    accessory."""
    import kg
    from kgfusion.demo import RELATION, RUN, related_examples

    graph = kg.load_graph(ws)
    session = Session(ws)
    assert session.index.source["run"] == RUN  # the trained embeddings, not the features
    examples = {title: (iri, items) for title, iri, _, items in related_examples(session, graph)}
    product, items = examples["its accessories"]
    own = {n.iri for n in graph.neighbors(product, "rev_" + RELATION)}
    is_accessory = [bool(graph.neighbors(item.iri, RELATION)) for item in items]
    assert len(items) == 5 and own
    assert {item.iri for item in items[: len(own)]} == own  # its known accessories first
    assert is_accessory == sorted(is_accessory, reverse=True)  # then accessories, then the rest
    assert all(item.parts["scorer"] > 0 for item in items)  # scored by the demo's link run


def test_train_and_evaluate_link_prediction(tmp_path, capsys):
    from kg.samples import write_sample_catalogue

    sample = write_sample_catalogue(tmp_path / "cat", n_products=40, seed=1)
    ws = tmp_path / "ws"
    assert main(["build", str(sample.path), "-o", str(ws)]) == 0
    args = ["train", str(ws), "--task", "link", "--relation", "isAccessoryOrSparePartFor"]
    assert main([*args, "--gnn", "sage", "--set", "trainer.epochs=3", "--run", "lp"]) == 0
    out = capsys.readouterr().out
    assert "test/mrr" in out.lower() or "mrr" in out.lower()
    assert (ws / "models" / "lp" / "model.safetensors").is_file()
    assert main(["evaluate", str(ws), "lp", "--split", "valid"]) == 0
    assert "mrr" in capsys.readouterr().out.lower()
    assert main([*args[:4], "--relation", "isAccesoryFor", "--run", "bad"]) == 2
    assert "isAccessoryOrSparePartFor" in capsys.readouterr().err  # lists the available ones
    assert main([*args, "--set", "trainer.epochz=3"]) == 2
    assert "epochs" in capsys.readouterr().err  # unknown key: a suggestion


def test_link_text_on_the_demo_catalogue(tmp_path, capsys):
    from kg.samples import write_sample_catalogue

    sample = write_sample_catalogue(tmp_path / "cat", n_products=30, seed=2)
    ws = tmp_path / "ws"
    assert main(["build", str(sample.path), "-o", str(ws)]) == 0
    assert main(["link", str(ws), "a red racing car"]) == 2
    assert "kgf encode" in capsys.readouterr().err  # the missing step, named
    assert Session(ws).text_linker is None  # no features: the service falls back to lexical lookup
    assert main(["encode", str(ws), "--image", "none"]) == 0
    capsys.readouterr()
    assert main(["link", str(ws), "", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

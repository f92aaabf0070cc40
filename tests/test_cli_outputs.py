"""Output you can use: every command that prints rows goes through one format registry
(table / csv / json / jsonl); machine formats are never cut, tables only on a terminal
and then say so. Real `kgf` commands on small workspaces."""

from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np
import pytest

import kg
from kg.index import EntityIndex
from kgfusion.cli import main
from kgfusion.display import FORMATS, Rows, emit, render

BASE = "https://example.org/a-catalogue-with-rather-long-identifiers/products/"
LONG = "extra long professional stainless steel espresso machine with milk frother"


def _ttl() -> str:
    lines = ["@prefix s: <http://schema.org/> .", "@prefix ex: <https://example.org/> ."]
    for i in range(8):
        lines.append(
            f'<{BASE}item-{i:04d}-{"x" * 20}> a s:Product ; s:name "{LONG} model {i}"@en ; '
            f"s:brand ex:brand{i % 2} ; s:category ex:cat{i % 3} ."
        )
    lines += ['ex:brand0 a s:Brand ; s:name "Aurum" .', 'ex:brand1 a s:Brand ; s:name "Bolt" .']
    lines += [f'ex:cat{i} a s:Category ; s:name "Category {i}" .' for i in range(3)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Eight products whose IRIs (> 60 characters) and names (> 44) are long, sharing
    brands and categories (several pieces of evidence each), with an index of random
    product vectors."""
    folder = tmp_path_factory.mktemp("outputs")
    (folder / "cat.ttl").write_text(_ttl(), encoding="utf-8")
    assert main(["build", str(folder / "cat.ttl"), "-o", str(folder / "ws")]) == 0
    graph = kg.load_graph(folder / "ws")
    vectors = np.random.default_rng(0).standard_normal((graph.num_nodes_dict["Product"], 8))
    EntityIndex.from_embeddings(graph, {"Product": vectors}).save(folder / "ws" / "index")
    return folder / "ws"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _first_product(ws) -> str:
    return kg.load_graph(ws).iri("Product", 0)


QUERY = "SELECT ?p ?n WHERE { ?p <http://schema.org/name> ?n ; a <http://schema.org/Product> }"


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_sparql_machine_formats_are_never_cut(workspace, capsys, fmt):
    capsys.readouterr()
    assert main(["sparql", str(workspace), QUERY, "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
    elif fmt == "json":
        rows = json.loads(out)["rows"]
    else:
        rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 8
    assert all(r["p"].startswith(BASE) and len(r["p"]) > 60 for r in rows)
    assert all(r["n"].startswith(LONG) for r in rows)


def test_tables_are_cut_only_on_a_terminal_and_say_so(workspace, capsys, monkeypatch):
    capsys.readouterr()
    assert main(["sparql", str(workspace), QUERY]) == 0  # piped: whole cells
    piped = capsys.readouterr().out
    assert BASE + "item-0000-" + "x" * 20 in piped and "cut" not in piped
    assert "(8 rows)" in piped
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["sparql", str(workspace), QUERY]) == 0
    shown = terminal.getvalue()
    assert BASE + "item-0000-" + "x" * 20 not in shown and "…" in shown
    assert "cut to fit the terminal; --format csv or json shows them whole" in shown
    assert all(len(line) < 200 for line in shown.splitlines())


def test_a_cut_iri_keeps_its_end_so_two_iris_stay_apart():
    """Two products of the same name (the sample catalogue has some): a terminal table cuts
    their IRIs from the start, keeping the local names that tell them apart."""
    iris = [BASE + "product/verdi-gioielli-cleaning-kit-vg-" + n for n in ("3742", "4297")]
    rows = Rows(["iri", "name"], [{"iri": i, "name": "Verdi Gioielli cleaning kit"} for i in iris],
                widths={"iri": 30})  # fmt: skip
    shown = render(rows, "table", cut=True).splitlines()[2:4]
    assert [line.split()[0] for line in shown] == ["…" + i[-29:] for i in iris]
    assert shown[0].split()[0].endswith("vg-3742") and shown[1].split()[0].endswith("vg-4297")


def test_the_registry_writes_every_format_and_files_by_suffix(tmp_path):
    rows = Rows(["a", "b"], [{"a": "x" * 100, "b": [1.5, 2.25]}, {"a": None, "b": True}])
    assert set(FORMATS) == {"table", "csv", "json", "jsonl"}
    assert render(rows, "csv").splitlines() == ["a,b", f"{'x' * 100},1.5; 2.25", ",true"]
    assert json.loads(render(rows, "json"))[0]["b"] == [1.5, 2.25]
    assert len(render(rows, "jsonl").splitlines()) == 2
    assert "x" * 100 in render(rows, "table") and "yes" in render(rows, "table")
    assert "…" in render(rows, "table", cut=True)
    for suffix in ("csv", "json", "jsonl", "tsv"):
        assert emit(rows, path=tmp_path / f"out.{suffix}") == suffix
    assert "x" * 100 in (tmp_path / "out.tsv").read_text()
    with pytest.raises(ValueError, match="name the file"):
        emit(rows, path=tmp_path / "out.txt")


def test_related_csv_and_json_keep_names_and_every_piece_of_evidence(workspace, capsys):
    iri = _first_product(workspace)
    capsys.readouterr()
    assert main(["related", str(workspace), iri, "-k", "7", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)  # every other product
    assert len(items) == 7 and all(i["name"].startswith(LONG) for i in items)
    assert max(len(i["evidence"]) for i in items) >= 2
    assert main(["related", str(workspace), iri, "-k", "7", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["iri"] for r in rows] == [i["iri"] for i in items]
    for row, item in zip(rows, items, strict=True):
        assert row["name"] == item["name"] and len(row["name"]) > 44
        assert row["why"] == "; ".join(item["evidence"])  # all of it, not the first piece
        assert float(row["score"]) == pytest.approx(item["score"])
    assert main(["related", str(workspace), iri, "-k", "7"]) == 0  # piped table: whole
    table = capsys.readouterr().out
    most = max(items, key=lambda i: len(i["evidence"]))
    assert most["name"] in table and "; ".join(most["evidence"]) in table


def test_related_name_goes_to_stderr_for_machine_formats(workspace, capsys):
    capsys.readouterr()
    assert main(["related", str(workspace), "--name", f"{LONG} model 3", "--format",
                 "jsonl", "-k", "2"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert [json.loads(line)["rank"] for line in captured.out.splitlines()] == [1, 2]
    assert "lexical score" in captured.err  # no text features: lexical lookup, said where


def test_related_help_says_how_names_are_found(capsys):
    with pytest.raises(SystemExit):
        main(["related", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "text linker when the workspace has text features" in text and "lexical" in text
    assert "--table" in text


def test_related_table_one_row_per_query_and_answer(workspace, tmp_path, capsys):
    iri = _first_product(workspace)
    queries = tmp_path / "ids.csv"
    queries.write_text(f"name,iri\n,{iri}\n{LONG} model 5,\nqqqq zzzz,\n\n")
    out = tmp_path / "out.csv"
    capsys.readouterr()
    assert main(["related", str(workspace), "--table", str(queries), "-k", "3",
                 "-o", str(out)]) == 0  # fmt: skip
    assert "1 of 3 queries failed" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["line"] for r in rows] == ["2"] * 3 + ["3"] * 3 + ["4"]
    assert [r["rank"] for r in rows[:3]] == ["1", "2", "3"]
    assert rows[0]["query_iri"] == iri and rows[3]["query_iri"].startswith(BASE)
    assert rows[-1]["error"].startswith("no entity matches") and rows[-1]["iri"] == ""
    assert all(not r["why"].startswith("[") for r in rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("sku\n1\n")
    assert main(["related", str(workspace), "--table", str(bad)]) == 2
    assert "no `iri` or `name` column" in capsys.readouterr().err


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """A 30-product sample workspace with text features (the text linker works)."""
    from kg.samples import write_sample_catalogue

    folder = tmp_path_factory.mktemp("linked")
    sample = write_sample_catalogue(folder / "catalogue", n_products=30, seed=2)
    ws = folder / "ws"
    assert main(["build", str(sample.path), "-o", str(ws)]) == 0
    assert main(["encode", str(ws), "--image", "none"]) == 0
    return ws


def test_text_links_show_names_and_machine_rows_hold_no_json(encoded, tmp_path, capsys):
    text = "a lumo toy car and an aurelia ring"
    capsys.readouterr()
    assert main(["link", str(encoded), text]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["mention", "start", "end", "entity", "name", "score"]
    assert main(["link", str(encoded), text, "--json", "-k", "3"]) == 0
    links = json.loads(capsys.readouterr().out)
    linked = [ln for ln in links if not ln["nil"]]
    assert linked and all(ln["name"] and ln["name"] in table for ln in linked)
    assert all(len(alt) == 3 for ln in links for alt in ln["alternatives"])  # iri, score, name
    assert main(["link", str(encoded), text, "--format", "csv", "-k", "3"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == sum(len(ln["alternatives"]) or 1 for ln in links)
    assert {r["rank"] for r in rows} <= {"1", "2", "3"}
    assert sum(r["linked"] == "true" for r in rows) == len(linked)
    assert all(r["name"] for r in rows if r["iri"])
    assert not any(v.startswith("[") for r in rows for v in r.values())


def test_link_table_writes_one_row_per_record_and_candidate(encoded, tmp_path, capsys):
    offers = tmp_path / "offers.csv"
    offers.write_text("id,name\n1,lumo racing car\n2,\n3,aurelia gold ring\n")
    out = tmp_path / "links.csv"
    capsys.readouterr()
    assert main(["link", str(encoded), "--table", str(offers), "-o", str(out), "-k", "2"]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["1", "1", "2", "3", "3"]
    assert rows[2]["nil"] == "true" and rows[2]["iri"] == ""  # no text: one NIL row
    assert not any(v.startswith("[") for r in rows for v in r.values())  # no JSON in a cell
    assert main(["link", str(encoded), "--table", str(offers), "-o", str(tmp_path / "l.json")]) == 0
    records = json.loads((tmp_path / "l.json").read_text())
    assert [r["id"] for r in records] == ["1", "2", "3"] and records[1]["nil"] is True

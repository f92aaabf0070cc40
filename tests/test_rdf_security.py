"""Hostile and broken RDF: entity bombs, nesting bombs, truncated gzip, huge tokens, IRIs
with line breaks, invalid lenient tags. Each must be a clear :class:`kg.rdf.RdfError` (or
load correctly), never a crash, a traceback or a silently shifted workspace.

Inputs that crashed or exhausted memory before the fix are loaded in a subprocess under an
address-space cap, so that a regression fails the test instead of killing pytest.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kg
from kg.rdf import RdfError, RdfSyntaxError
from kg.sparql import run_query

ROOT = Path(__file__).resolve().parents[1]
RDF_HEAD = (
    '<?xml version="1.0"?>\n'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://ex.org/">\n'
)

# An OWL file as ontology editors write it: internal entities for namespaces, used in
# attributes and in xmlns declarations, and the word PUBLIC in a comment and a literal.
OWL = """\
<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
    <!ENTITY owl "http://www.w3.org/2002/07/owl#" >
    <!ENTITY xsd "http://www.w3.org/2001/XMLSchema#" >
    <!ENTITY rdfs "http://www.w3.org/2000/01/rdf-schema#" >
    <!ENTITY rdf "http://www.w3.org/1999/02/22-rdf-syntax-ns#" >
    <!ENTITY shop "http://example.org/shop#" >
    <!ENTITY item "&shop;item/" >
]>
<!-- Released to the PUBLIC domain; no SYSTEM is needed to read it. -->
<rdf:RDF xmlns="&shop;" xml:base="http://example.org/shop"
     xmlns:rdfs="&rdfs;" xmlns:owl="&owl;" xmlns:xsd="&xsd;" xmlns:rdf="&rdf;">
    <owl:Ontology rdf:about="http://example.org/shop"/>
    <owl:Class rdf:about="&shop;Product">
        <rdfs:label xml:lang="en">Product</rdfs:label>
        <rdfs:comment>Anything sold to the PUBLIC.</rdfs:comment>
    </owl:Class>
    <owl:DatatypeProperty rdf:about="&shop;price">
        <rdfs:range rdf:resource="&xsd;decimal"/>
    </owl:DatatypeProperty>
    <Product rdf:about="&item;p1">
        <price rdf:datatype="&xsd;decimal">9.99</price>
        <rdfs:label xml:lang="en">Red car</rdfs:label>
    </Product>
</rdf:RDF>
"""


def billion_laughs(levels: int = 9) -> str:
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, levels + 1))
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n<!ENTITY lol0 "lol">\n'
        + entities
        + "]>\n"
        + RDF_HEAD[RDF_HEAD.index("<rdf:RDF") :]
        + f'<rdf:Description rdf:about="http://ex.org/a"><ex:p>&lol{levels};</ex:p>'
        "</rdf:Description>\n</rdf:RDF>\n"
    )


def load_capped(path: Path, memory_gb: int = 2, **options) -> dict:
    """``kg.load_rdf(path)`` in a subprocess under an address-space cap: a dict with
    ``rc`` and, when Python got to report, ``error`` / ``message`` or ``triples``."""
    code = textwrap.dedent(
        f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({memory_gb} << 30, {memory_gb} << 30))
        import kg
        try:
            graph = kg.load_rdf(sys.argv[1], **json.loads(sys.argv[2]))
            print(json.dumps({{"triples": graph.num_triples}}))
        except Exception as err:
            print(json.dumps({{"error": type(err).__name__, "message": str(err)}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), json.dumps(options)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    result = {"rc": done.returncode, "stderr": done.stderr[-2000:]}
    if done.returncode == 0 and done.stdout.strip():
        result.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return result


# --------------------------------------------------------------------------- entities
def test_billion_laughs_is_refused_naming_file_and_entity(tmp_path):
    bomb = tmp_path / "lol.rdf"
    bomb.write_text(billion_laughs())
    assert bomb.stat().st_size < 1500
    result = load_capped(bomb)
    assert result["rc"] == 0, result["stderr"]
    assert result["error"] == "RdfSyntaxError"
    assert "lol.rdf, line" in result["message"] and "&lol" in result["message"]
    assert "billion laughs" in result["message"]


def test_quadratic_entity_blowup_and_entity_loops_are_refused(tmp_path):
    big = tmp_path / "big.rdf"
    big.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "{"x" * 70_000}">]>\n'
        + RDF_HEAD[RDF_HEAD.index("<rdf:RDF") :]
        + "</rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError, match=r"&a; expands to more than") as err:
        kg.load_rdf(big)
    assert err.value.line == 2
    loop = tmp_path / "loop.rdf"
    loop.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "&b;">\n<!ENTITY b "&a;">]>\n'
        + RDF_HEAD[RDF_HEAD.index("<rdf:RDF") :]
        + "</rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError, match="refers to itself"):
        kg.load_rdf(loop)


def test_owl_file_with_internal_entities_and_the_word_public_loads(tmp_path):
    owl = tmp_path / "shop.owl"
    owl.write_text(OWL)
    graph = kg.load_rdf(owl)
    assert "http://example.org/shop#item/p1" in graph.nodes
    prices = [
        (v, graph.datatypes[d])
        for v, d in zip(graph.lit_value, graph.lit_dtype.tolist(), strict=True)
        if v == "9.99"
    ]
    assert prices == [("9.99", "http://www.w3.org/2001/XMLSchema#decimal")]
    assert graph.node_iris("Product") == ["http://example.org/shop#item/p1"]


def test_public_doctype_is_accepted_but_external_and_parameter_entities_are_not(tmp_path):
    public = tmp_path / "public.rdf"
    public.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF PUBLIC "-//W3C//DTD RDF//EN" '
        '"http://www.w3.org/rdf.dtd">\n' + RDF_HEAD[RDF_HEAD.index("<rdf:RDF") :]
        + '<rdf:Description rdf:about="http://ex.org/a"><ex:p>x</ex:p></rdf:Description>'
        "</rdf:RDF>\n"
    )  # fmt: skip
    assert kg.load_rdf(public).num_literals == 1
    for name, decl in [
        ("system", '<!ENTITY x SYSTEM "file:///etc/passwd">'),
        ("public", '<!ENTITY x PUBLIC "-//x//EN" "http://ex.org/x.txt">'),
    ]:
        path = tmp_path / f"{name}.rdf"
        path.write_text(
            f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n{decl}\n]>\n'
            + RDF_HEAD[RDF_HEAD.index("<rdf:RDF") :]
            + '<rdf:Description rdf:about="http://ex.org/a"><ex:p>&x;</ex:p>'
            "</rdf:Description></rdf:RDF>\n"
        )
        with pytest.raises(RdfSyntaxError, match=r"external entity &x;") as err:
            kg.load_rdf(path)
        assert f"{name}.rdf, line 3" in str(err.value)
    param = tmp_path / "param.rdf"
    param.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % p "x">]>\n<r/>\n'.replace("r/", "rdf:RDF/")
    )
    with pytest.raises(RdfSyntaxError, match="parameter entity %p"):
        kg.load_rdf(param)


# --------------------------------------------------------------------------- nesting
def test_deep_jsonld_is_refused_not_a_segfault(tmp_path):
    deep = tmp_path / "deep.jsonld"
    deep.write_text(
        '{\n"@id": "http://ex.org/a",\n"http://ex.org/p":'
        + '{"@id": "http://ex.org/b", "http://ex.org/p": ' * 4000
        + "1"
        + "}" * 4001
    )
    result = load_capped(deep)
    assert result["rc"] == 0, result["stderr"]
    assert result["error"] == "RdfSyntaxError"
    assert "deep.jsonld, line 3" in result["message"] and "nested more than" in result["message"]


def test_deep_rdfxml_is_refused_with_its_line(tmp_path):
    deep = tmp_path / "deep.rdf"
    levels = 2000
    deep.write_text(
        RDF_HEAD
        + "<rdf:Description>\n<ex:p>\n" * levels
        + "x"
        + "</ex:p></rdf:Description>" * levels
        + "</rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError, match="nested more than 512 levels") as err:
        kg.load_rdf(deep)
    assert err.value.line == 2 + 512 and err.value.column == 1


def test_nesting_within_the_bound_and_brackets_in_strings_load(tmp_path):
    doc = tmp_path / "ok.jsonld"
    doc.write_text(
        json.dumps(
            {
                "@id": "http://ex.org/a",
                "http://ex.org/name": "[[[[{{{{" * 200 + '\\" ]]] \n',
                "http://ex.org/p": {"@id": "http://ex.org/b", "http://ex.org/q": [[[1]]]},
            }
        )
    )
    graph = kg.load_rdf(doc)
    assert graph.num_edges == 1 and any(v.startswith("[[[[{{{{") for v in graph.lit_value)


def test_over_long_jsonld_string_is_refused_with_its_line(tmp_path):
    doc = tmp_path / "long.jsonld"
    doc.write_text('{\n"@id": "http://ex.org/a",\n"http://ex.org/p": "' + "x" * (17 << 20) + '"}')
    with pytest.raises(RdfSyntaxError, match="longer than 16 MiB") as err:
        kg.load_rdf(doc)
    assert err.value.line == 3


# --------------------------------------------------------------------------- read errors
@pytest.mark.parametrize("name", ["cat.rdf.gz", "cat.jsonld.gz", "cat.ttl.gz", "cat.nt.gz"])
def test_truncated_gzip_is_a_user_error(tmp_path, name):
    payload = {
        "rdf": (RDF_HEAD + '<rdf:Description rdf:about="http://ex.org/a"><ex:p>x</ex:p>'
                "</rdf:Description>\n" * 300 + "</rdf:RDF>\n"),
        "jsonld": json.dumps([{"@id": f"http://ex.org/{i}", "http://ex.org/p": "x"}
                              for i in range(2000)]),
        "ttl": '<http://ex.org/a> <http://ex.org/p> "x" .\n' * 2000,
        "nt": '<http://ex.org/a> <http://ex.org/p> "x" .\n' * 2000,
    }[name.split(".")[1]]  # fmt: skip
    path = tmp_path / name
    path.write_bytes(gzip.compress(payload.encode())[:-40])
    with pytest.raises(RdfError, match=r"cat\..*\.gz: cannot read .*truncated"):
        kg.load_rdf(path)


@pytest.mark.parametrize("suffix", ["nt", "ttl"])
def test_literal_over_16_mib_names_file_and_line(tmp_path, suffix):
    path = tmp_path / f"big.{suffix}"
    path.write_text(
        '<http://ex.org/a> <http://ex.org/p> "short" .\n' * 3
        + '<http://ex.org/a> <http://ex.org/p> "'
        + "x" * (17 << 20)
        + '" .\n'
    )
    with pytest.raises(RdfError, match=rf"big\.{suffix}, near line 4: a literal or IRI longer"):
        kg.load_rdf(path)


def test_rdfxml_syntax_errors_give_line_and_column(tmp_path):
    ill = tmp_path / "ill.rdf"
    ill.write_text(
        RDF_HEAD + '<rdf:Description rdf:about="http://ex.org/a">\n  <ex:p>x</ex:q>\n'
        "</rdf:Description></rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError, match="mismatched tag") as err:
        kg.load_rdf(ill)
    assert (err.value.line, err.value.column) == (4, 12)  # at the name ex:q
    assert "<ex:p>x</ex:q>" in str(err.value)
    bad = tmp_path / "bad.rdf"
    bad.write_text(
        RDF_HEAD
        + '<rdf:Description rdf:about="http://ex.org/a"><ex:p>x</ex:p></rdf:Description>\n' * 50
        + '<rdf:Description rdf:about="http://ex.org/b">\n  <ex:q rdf:ID="1x">y</ex:q>\n'
        "</rdf:Description></rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError, match="1x is not a valid rdf:ID") as err:
        kg.load_rdf(bad)
    assert err.value.line == 2 + 50 + 2
    assert 'rdf:ID="1x"' in str(err.value)


# --------------------------------------------------------------------------- lenient
ODD_IRIS = {
    "newline": "http://ex.org/b\\u000Ac",
    "cr": "http://ex.org/b\\u000Dc",
    "tab": "http://ex.org/b\\u0009c",
    "line separator": "http://ex.org/b\\u2028c",
    "paragraph separator": "http://ex.org/b\\u2029c",
    "nul": "http://ex.org/b\\u0000c",
    "quote first": '"http://ex.org/q',
}


def test_lenient_iris_with_line_breaks_round_trip_through_a_workspace(tmp_path):
    lines = [f'<{iri}> <http://ex.org/name> "{name}" .' for name, iri in ODD_IRIS.items()]
    lines += [f'<http://ex.org/after{i}> <http://ex.org/name> "after {i}" .' for i in range(3)]
    path = tmp_path / "odd.nt"
    path.write_text("\n".join(lines) + "\n")
    graph = kg.load_rdf(path, lenient=True)
    assert "http://ex.org/b\nc" in graph.nodes and "http://ex.org/b\x00c" in graph.nodes
    loaded = kg.load_graph(graph.save(tmp_path / "ws"))
    assert loaded.nodes == graph.nodes

    def names(g, iri):
        node = g.nodes.index(iri)
        return [v for n, v in zip(g.lit_node.tolist(), g.lit_value, strict=True) if n == node]

    for name, iri in ODD_IRIS.items():
        decoded = iri.encode().decode("unicode_escape")
        assert names(loaded, decoded) == [name]
    assert names(loaded, "http://ex.org/after2") == ["after 2"]
    # SPARQL (the store) and the graph agree on every node's name
    rows = run_query(loaded, "SELECT ?s ?n WHERE { ?s <http://ex.org/name> ?n }").rows
    assert len(rows) == len(ODD_IRIS) + 3
    after = [r for r in rows if r[0] == "http://ex.org/after2"]
    assert [r[1] for r in after] == ["after 2"]


def test_workspace_nodes_file_of_an_older_build_still_reads(tmp_path, monkeypatch):
    graph_file = tmp_path / "cat.nt"
    graph_file.write_text("<http://ex.org/a> <http://ex.org/p> <http://ex.org/b> .\n")
    ws = kg.load_rdf(graph_file).save(tmp_path / "ws")
    assert (ws / "nodes.txt").read_text() == "http://ex.org/a\nhttp://ex.org/b"
    assert kg.load_graph(ws).nodes == ["http://ex.org/a", "http://ex.org/b"]


def test_lenient_space_bracket_iri_and_underscore_language_save_with_sparql(tmp_path):
    nt = tmp_path / "odd.nt"
    nt.write_text(
        "<http://ex.org/a b[1]> <http://ex.org/p> <http://ex.org/c> .\n"
        '<http://ex.org/c> <http://ex.org/name> "colour"@en-US .\n'
    )
    ws = kg.load_rdf(nt, lenient=True).save(tmp_path / "ws")
    rows = run_query(kg.load_graph(ws), "SELECT ?s WHERE { ?s <http://ex.org/p> ?o }").rows
    assert rows == [["http://ex.org/a%20b%5B1%5D"]]
    xml = tmp_path / "odd.rdf"
    xml.write_text(
        RDF_HEAD + '<rdf:Description rdf:about="http://ex.org/a b[1]">\n'
        '<ex:name xml:lang="en_US">colour</ex:name></rdf:Description></rdf:RDF>\n'
    )
    with pytest.warns(UserWarning, match="'en_us' -> 'en-us'"):
        graph = kg.load_rdf(xml, lenient=True)
    assert graph.languages == ["en-us"]
    rows = graph.save(tmp_path / "ws2") and run_query(
        kg.load_graph(tmp_path / "ws2"),
        "SELECT ?n (LANG(?n) AS ?l) WHERE { ?s <http://ex.org/name> ?n }",
    )
    assert rows.rows == [["colour", "en-us"]]


def test_cli_build_reports_user_errors_without_traceback(tmp_path, capsys):
    from kgfusion.cli import main

    path = tmp_path / "cat.rdf.gz"
    path.write_bytes(gzip.compress(OWL.encode())[:-30])
    assert main(["build", str(path), "-o", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "kgf build: error:" in err and "cat.rdf.gz" in err and "Traceback" not in err
    assert not (tmp_path / "ws").exists()


# --------------------------------------------------------------------------- literals
def test_overflowing_date_is_kept_as_text_with_a_warning(tmp_path):
    path = tmp_path / "dates.ttl"
    path.write_text(
        "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
        '<http://ex.org/a> <http://ex.org/d> "9999999999999999999999-01-01"^^xsd:date .\n'
        '<http://ex.org/b> <http://ex.org/d> "2024-05-01"^^xsd:date .\n'
    )
    with pytest.warns(UserWarning, match="1 literal.*9999999999999999999999-01-01"):
        graph = kg.load_rdf(path)
    kinds = {c.kind: c.count for c in graph.literal_columns()}
    assert kinds == {"date": 1, "text": 1}


# --------------------------------------------------------------------------- fuzz finds
def test_unknown_xml_encoding_is_a_user_error(tmp_path):
    path = tmp_path / "enc.rdf"
    path.write_text(RDF_HEAD.replace('version="1.0"', 'version="1.0" encoding="u.tf-8"'))
    with pytest.raises(RdfSyntaxError, match="unknown character encoding") as err:
        kg.load_rdf(path)
    assert err.value.line == 1


def test_junk_in_a_dtd_is_a_syntax_error_with_its_line(tmp_path):
    path = tmp_path / "junk.rdf"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n<!ENTITY xsd "http://x/" >'
        + "é" * (2 << 20)
        + "\n]>\n"
        + RDF_HEAD[RDF_HEAD.index("<rdf:RDF") :]
        + "</rdf:RDF>\n"
    )
    with pytest.raises(RdfSyntaxError, match="ill-formed XML") as err:
        kg.load_rdf(path)
    assert err.value.line == 3


def test_lenient_iri_that_looks_like_a_blank_node_saves(tmp_path):
    path = tmp_path / "odd.nt"
    path.write_text(
        "<_:https://ex.org/a> <http://ex.org/p> <http://ex.org/b> .\n"
        "_:b1 <http://ex.org/p> <http://ex.org/b> .\n"
    )
    graph = kg.load_rdf(path, lenient=True)
    loaded = kg.load_graph(graph.save(tmp_path / "ws"))
    assert loaded.nodes == graph.nodes
    rows = run_query(loaded, "SELECT ?s WHERE { ?s <http://ex.org/p> ?o }").rows
    assert len(rows) == 2

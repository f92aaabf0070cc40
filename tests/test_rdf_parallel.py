"""Parallel chunked N-Triples / N-Quads reading (kg.nt_parallel) gives the graph that
streaming the file through pyoxigraph gives: same node ids, edges, types and literals."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyoxigraph as ox
import pytest
from conftest import shared

import kg
from kg.nt_chunks import parse_chunk
from kg.nt_parallel import add_lines_file, merge_chunk
from kg.rdf import RdfError, RdfSyntaxError
from kg.triples import DEFAULT_IMAGE_PREDICATES, RDF_LANG_STRING, RawTriples, TripleSink

ARRAYS = ("src", "pred", "dst", "type_node", "type_class", "lit_node", "lit_pred",
          "lit_dtype", "lit_lang", "lit_source")  # fmt: skip
LISTS = ("nodes", "predicates", "classes", "datatypes", "languages", "lit_value", "skipped")


def streamed(path: Path, quads: bool = False, lenient: bool = False) -> RawTriples:
    """The reference: pyoxigraph's parser streamed through a TripleSink."""
    fmt = ox.RdfFormat.N_QUADS if quads else ox.RdfFormat.N_TRIPLES
    sink = TripleSink()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        sink.add_quads(ox.parse(fh, fmt, lenient=lenient), 0, scope="f0_")
    return sink.raw


def chunked(path: Path, quads=False, lenient=False, workers=2, chunk_bytes=256) -> RawTriples:
    sink = TripleSink()
    sink._intern(sink._dtype_ids, sink.raw.datatypes, RDF_LANG_STRING)
    add_lines_file(sink, path, quads, 0, lenient, workers, chunk_bytes)
    return sink.raw


def assert_same(a: RawTriples, b: RawTriples) -> None:
    for name in LISTS:
        assert getattr(a, name) == getattr(b, name), name
    for name in ARRAYS:
        assert list(getattr(a, name)) == list(getattr(b, name)), name


EDGE_CASES = r"""# a comment line, then a blank line

<http://ex.org/p1> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://schema.org/Product> .
<http://ex.org/p1> <http://schema.org/name> "Caf\u00e9 \"Noir\"\n\\ ok"@EN-us .
<http://ex.org/p1> <http://schema.org/name> "Kaffee"@de .
<http://ex.org/p1> <http://schema.org/price> "01.50"^^<http://www.w3.org/2001/XMLSchema#decimal> .
<http://ex.org/p1> <http://schema.org/sku> "plain, with spaces and # and > and <" .
<http://ex.org/p1> <http://schema.org/sku> "typed"^^<http://www.w3.org/2001/XMLSchema#string> .
<http://ex.org/p1> <http://schema.org/image> <http://img.example/p1.jpg> .
<http://ex.org/p1> <http://schema.org/image> "images/p1.jpg" .
<http://ex.org/p1> <http://schema.org/image> _:img .
<http://ex.org/p1> <http://schema.org/brand> _:b1 .
_:b1 <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://schema.org/Brand> .
_:b1 <http://schema.org/name> "Acme \U0001F600 ✓" .
_:b1 <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> _:klass .
_:b1 <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "not a class" .
<http://ex.org/p2> <http://schema.org/isSimilarTo> <http://ex.org/p1> .
<http://ex.org/p2> <http://schema.org/isSimilarTo> <http://ex.org/p1> .
<http://ex.org/p2> <http://schema.org/name> "Dir"@en--ltr .
<http://ex.org/p2> <http://schema.org/name> "" .
<http://ex.org/p3>	<http://schema.org/name>	"tabs and a trailing comment"	. # here
<http://ex.org/p3> <http://schema.org/name> "crlf" .
<http://ex.org/p4> <http://schema.org/name> "ünïcödé"@fr .
<http://ex.org/é> <http://schema.org/isSimilarTo> <http://ex.org/p4?q=1#frag> .
"""


@pytest.mark.parametrize("chunk_bytes", [64, 300, 1 << 20])
@pytest.mark.parametrize("workers", [1, 2])
def test_edge_cases_match_pyoxigraph_streaming(tmp_path, chunk_bytes, workers):
    path = tmp_path / "edge.nt"
    path.write_bytes(EDGE_CASES.replace('"crlf" .\n', '"crlf" .\r\n').encode())
    assert_same(chunked(path, workers=workers, chunk_bytes=chunk_bytes), streamed(path))


def test_fast_path_takes_canonical_lines_and_hands_the_rest_to_pyoxigraph():
    canonical = EDGE_CASES.split("<http://ex.org/p3>\t")[0].encode()
    chunk = parse_chunk(canonical, DEFAULT_IMAGE_PREDICATES, "f0_")
    assert chunk.fast and chunk.error is None and chunk.count == 18
    odd = b'<http://ex.org/a>\t<http://ex.org/b> "x" .\n'
    chunk = parse_chunk(odd, DEFAULT_IMAGE_PREDICATES, "f0_")
    assert not chunk.fast and chunk.count == 1 and chunk.lit_value == ["x"]


def _merged(chunk) -> RawTriples:
    sink = TripleSink()
    sink._intern(sink._dtype_ids, sink.raw.datatypes, RDF_LANG_STRING)
    merge_chunk(sink, chunk, 0)
    return sink.raw


def test_a_hash_collision_falls_back_to_pyoxigraph_with_the_same_graph(tmp_path):
    path = tmp_path / "edge.nt"
    path.write_bytes(EDGE_CASES.split("<http://ex.org/p3>\t")[0].encode())
    hashed = parse_chunk(path.read_bytes(), DEFAULT_IMAGE_PREDICATES, "f0_")
    assert hashed.fast
    # one hash bit: distinct terms must collide; the collision is found and the chunk is
    # read by pyoxigraph instead, to the same graph
    collided = parse_chunk(path.read_bytes(), DEFAULT_IMAGE_PREDICATES, "f0_", hash_bits=1)
    assert not collided.fast
    assert_same(_merged(collided), _merged(hashed))
    assert_same(_merged(hashed), streamed(path))


ODD_LINES = [  # (line, whether the fast path takes it); the graph is streaming's either way
    (b"<http://ex.org/\\u0041> <http://ex.org/p> <http://ex.org/o> .\n", False),  # escaped IRI
    (b"# caf\xe9 in Latin-1: no UTF-8\n<http://ex.org/s> <http://ex.org/p> \"x\" .\n", False),
    (b"<http://ex.org/s>  <http://ex.org/p> \"two spaces\" .\n", False),
    (b"<http://ex.org/s> <http://ex.org/p> \"x\"^^<http://ex.org/\\u0041> .\n", True),  # datatype read by pyoxigraph
    (b"<http://ex.org/s> <http://ex.org/p> \"a <b>\"^^<http://ex.org/dt> .\n", True),
]  # fmt: skip


@pytest.mark.parametrize("line, fast", ODD_LINES)
def test_odd_lines_read_as_streaming_reads_them(tmp_path, line, fast):
    data = b'<http://ex.org/a> <http://ex.org/p> "plain" .\n' + line
    assert parse_chunk(data, DEFAULT_IMAGE_PREDICATES, "f0_").fast == fast
    path = tmp_path / "odd.nt"
    path.write_bytes(data)
    assert_same(chunked(path, workers=1, chunk_bytes=1 << 20), streamed(path))
    # as N-Quads, a last token <...> may be a graph name: here it is inside the literal
    path = tmp_path / "odd.nq"
    path.write_bytes(data)
    assert_same(
        chunked(path, quads=True, workers=1, chunk_bytes=1 << 20), streamed(path, quads=True)
    )


def test_lenient_iri_spelled_like_a_scoped_blank_node_is_that_node(tmp_path):
    path = tmp_path / "lenient.nt"
    path.write_text(
        "<http://a.org/s> <http://a.org/p> <_:f0_b> .\n"
        '_:b <http://a.org/p> "x" .\n'
        "<http://a.org/s> <http://a.org/p> _:b .\n"
    )
    assert parse_chunk(path.read_bytes(), DEFAULT_IMAGE_PREDICATES, "f0_", lenient=True).fast
    raw = chunked(path, lenient=True, workers=1, chunk_bytes=1 << 20)
    assert_same(raw, streamed(path, lenient=True))
    assert raw.nodes == ["http://a.org/s", "_:f0_b"]


def test_nquads_graph_terms_are_merged_into_the_default_graph(tmp_path):
    path = tmp_path / "q.nq"
    path.write_text(
        '<http://a.org/s> <http://a.org/p> "x y <g>"@en <http://a.org/g1> .\n'
        '<http://a.org/s> <http://a.org/p> "a <b"^^<http://a.org/dt> .\n'
        "<http://a.org/s> <http://a.org/q> <http://a.org/o> _:g2 .\n"
        "<http://a.org/s> <http://a.org/q> _:o .\n"
    )
    assert_same(chunked(path, quads=True, chunk_bytes=90), streamed(path, quads=True))


def test_real_aifb_and_goodrelations_as_ntriples_nquads_and_gzip(tmp_path):
    aifb = shared("rdf/aifb/aifb_stripped.nt.gz")
    assert_same(chunked(aifb, chunk_bytes=256 << 10), streamed(aifb))
    with gzip.open(aifb, "rb") as fh:
        triples = list(ox.parse(fh, ox.RdfFormat.N_TRIPLES))[:20000]
    for folder in ("rdf/goodrelations",):
        for rdf in sorted(shared(folder).glob("*.rdf")):
            triples += list(
                ox.parse(
                    path=str(rdf), format=ox.RdfFormat.RDF_XML, base_iri=rdf.as_uri(), lenient=True
                )
            )
    nt = tmp_path / "real.nt"
    nt.write_bytes(ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES))
    assert_same(chunked(nt, lenient=True, chunk_bytes=64 << 10), streamed(nt, lenient=True))
    nq = tmp_path / "real.nq"
    quads = [ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode("http://g.org/1")) for t in triples]  # fmt: skip
    nq.write_bytes(ox.serialize(quads, format=ox.RdfFormat.N_QUADS))
    assert_same(
        chunked(nq, quads=True, lenient=True, chunk_bytes=64 << 10), streamed(nt, lenient=True)
    )
    gz = tmp_path / "real.nt.gz"
    gz.write_bytes(gzip.compress(nt.read_bytes()))
    assert_same(chunked(gz, lenient=True, chunk_bytes=64 << 10), streamed(nt, lenient=True))
    # and end to end, to a HeteroData, against the graph built from the same triples
    ours = kg.load_rdf(nt, workers=2, lenient=True).to_pyg()
    reference = kg.ProductGraph(streamed(nt, lenient=True)).to_pyg()
    assert ours.node_types == reference.node_types
    for edge_type in reference.edge_types:
        assert np.array_equal(ours[edge_type].edge_index, reference[edge_type].edge_index)


def test_malformed_line_names_file_and_line_in_a_later_chunk(tmp_path):
    path = tmp_path / "bad.nt"
    good = '<http://a.org/s> <http://a.org/p> "x" .\n'
    path.write_text(good * 40 + "<http://a.org/s> <http://a.org/p> 12 12 .\n" + good * 5 + "junk\n")
    with pytest.raises(RdfSyntaxError) as err:
        kg.load_rdf(path, workers=2)
    assert (
        err.value.line == 41 and "bad.nt, line 41" in str(err.value) and "12 12" in str(err.value)
    )
    with pytest.raises(kg.nt_parallel.ChunkError) as err:  # in chunks of a few lines
        chunked(path, chunk_bytes=100)
    assert err.value.line == 41


def test_invalid_iri_is_refused_unless_lenient(tmp_path):
    path = tmp_path / "iri.nt"
    path.write_text(
        '<http://a.org/s> <http://a.org/p> "x"@en-US .\n' * 3
        + "<http://a.org/a b> <http://a.org/p> <http://a.org/o> .\n"
    )
    with pytest.raises(RdfSyntaxError, match=r"iri\.nt, line 4.*IRI.*lenient=True") as err:
        kg.load_rdf(path, workers=2)
    assert err.value.line == 4
    graph = kg.load_rdf(path, lenient=True, workers=2)
    reference = streamed(path, lenient=True)
    assert graph.nodes == reference.nodes and graph.languages == reference.languages
    path.write_text(
        path.read_text().replace("a b>", "a-b>") + '<http://a.org/s> <http://a.org/p> "x"@EN_us .\n'
    )
    with pytest.raises(RdfSyntaxError, match=r"iri\.nt, line 5, column 41: .* \(line 5\)\n"):
        kg.load_rdf(path, workers=1)


def test_truncated_gzip_and_over_long_literal_keep_their_errors(tmp_path):
    path = tmp_path / "cut.nt.gz"
    path.write_bytes(gzip.compress(b'<http://a.org/s> <http://a.org/p> "x" .\n' * 5000)[:-40])
    with pytest.raises(RdfError, match="truncated"):
        kg.load_rdf(path, workers=2)


@pytest.mark.parametrize("workers", [None, 1, 2])
def test_every_source_records_its_sha256(tmp_path, workers):
    """The files are hashed while the graph is built: each source still gets its digest."""
    from kg.workspace import sha256_file

    nt, ttl = tmp_path / "a.nt", tmp_path / "b.ttl"
    nt.write_bytes(EDGE_CASES.encode())
    ttl.write_text('<http://ex.org/p9> <http://schema.org/name> "nine" .\n')
    graph = kg.load_rdf([nt, ttl], workers=workers)
    assert [s["sha256"] for s in graph.sources] == [sha256_file(nt), sha256_file(ttl)]
    assert [s["path"] for s in graph.sources] == [str(nt.resolve()), str(ttl.resolve())]


def test_repeated_literals_across_chunks_are_dropped_as_streaming_drops_them(tmp_path):
    """Repeated literal triples are dropped, escaped or not, in whatever chunk they come."""
    lines = ['<http://ex.org/p> <http://schema.org/name> "Caf\\u00e9" .',
             '<http://ex.org/p> <http://schema.org/sku> "a1" .'] * 20  # fmt: skip
    lines += ['<http://ex.org/p> <http://schema.org/name> "Café" .']
    path = tmp_path / "repeated.nt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = chunked(path, workers=2, chunk_bytes=128)
    assert len(raw.lit_value) == 41
    reference = kg.ProductGraph(streamed(path))
    graph = kg.ProductGraph(raw)
    assert graph.duplicates == reference.duplicates == 39
    assert graph.lit_value == reference.lit_value == ["Café", "a1"]

"""kg.tabular: CSV / JSON Lines + TOML mapping -> Turtle, checked by parsing it back."""

from __future__ import annotations

import csv
import gzip
import json
import textwrap
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from conftest import ROOT, shared

from kg.tabular import Mapping, MappingError, TableError, table_to_rdf, turtle_iri, turtle_string

SCHEMA = "http://schema.org/"
SKOS = "http://www.w3.org/2004/02/skos/core#"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
P = "https://example.org/shop/product/"
B = "https://example.org/shop/brand/"
C = "https://example.org/shop/category/"

HEADER = """
[entity]
id = "id"
base = "https://example.org/shop/product/"
type = "schema:Product"
"""


def n(iri: str) -> ox.NamedNode:
    return ox.NamedNode(iri)


def s(name: str) -> ox.NamedNode:
    return ox.NamedNode(SCHEMA + name)


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def convert(tmp_path: Path, table: str | bytes, mapping: str, name="products.csv", **kw):
    """Write table + mapping, convert, and return (stats, set of pyoxigraph triples)."""
    table_path = write(tmp_path / name, table)
    mapping_path = write(tmp_path / "mapping.toml", HEADER + mapping)
    out = tmp_path / "out" / "catalogue.ttl"
    stats = table_to_rdf(table_path, Mapping.from_toml(mapping_path), out)
    triples = set(parse(out))
    graph = rdflib.Graph().parse(out, format="turtle")
    assert len(graph) == len(triples) == stats.triples  # both parsers agree, nothing doubled
    return stats, triples


def parse(path: Path) -> list[ox.Triple]:
    return [q.triple for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE)]


def t(subject: str, predicate: ox.NamedNode, obj) -> ox.Triple:
    return ox.Triple(n(subject), predicate, obj)


# ---------------------------------------------------------------------- literals


def test_literals_languages_datatypes_multivalued_and_escaping(tmp_path):
    table = (
        "id,name,lang,price,tags,notes\n"
        '1,Sony Turntable,en,399.0,audio|vinyl| ,"says ""hi""\\ back\n'
        'line two\ttab"\n'
        "2,Platine vinyle,fr-FR,12,,\n"
        'a b/<c>,"  spaced  ",,,x,"\x01ctl"\n'
    )
    mapping = """
[[literal]]
column = "name"
predicate = "schema:name"
language_column = "lang"
[[literal]]
column = "name"
predicate = "schema:alternateName"
language = "en"
replace = { " " = "_" }
[[literal]]
column = "price"
predicate = "schema:price"
datatype = "xsd:decimal"
[[literal]]
column = "tags"
predicate = "schema:keywords"
separator = "|"
[[literal]]
column = "notes"
predicate = "schema:disambiguatingDescription"
"""
    stats, triples = convert(tmp_path, table, mapping)
    assert stats.rows == 3 and stats.skipped_rows == 0 and stats.warning_count == 0
    assert stats.entities == {SCHEMA + "Product": 3}
    assert t(P + "1", n(RDF_TYPE), s("Product")) in triples
    assert t(P + "1", s("name"), ox.Literal("Sony Turntable", language="en")) in triples
    assert t(P + "2", s("name"), ox.Literal("Platine vinyle", language="fr-fr")) in triples
    assert t(P + "1", s("alternateName"), ox.Literal("Sony_Turntable", language="en")) in triples
    price = ox.Literal("399.0", datatype=n(XSD + "decimal"))
    assert t(P + "1", s("price"), price) in triples
    assert t(P + "2", s("price"), ox.Literal("12", datatype=n(XSD + "decimal"))) in triples
    keywords = {x.object.value for x in triples if x.predicate == s("keywords")}
    assert keywords == {"audio", "vinyl", "x"}  # empty part of "a|b| " skipped
    notes = ox.Literal('says "hi"\\ back\nline two\ttab')
    assert t(P + "1", s("disambiguatingDescription"), notes) in triples
    # an id with a space, slash and <> becomes one percent-encoded IRI segment
    odd = P + "a%20b%2F%3Cc%3E"
    assert t(odd, s("name"), ox.Literal("spaced")) in triples  # stripped, no language
    assert t(odd, s("disambiguatingDescription"), ox.Literal("\x01ctl")) in triples
    # empty cells give no statement
    assert not [x for x in triples if x.subject == n(P + "2") and x.predicate == s("keywords")]
    assert not [x for x in triples if x.subject == n(odd) and x.predicate == s("price")]


def test_invalid_number_kept_as_string_with_warning(tmp_path):
    table = 'id,price,lang\n1,"12,99",english please\n2,7,en\n'
    mapping = """
[[literal]]
column = "price"
predicate = "schema:price"
datatype = "xsd:decimal"
[[literal]]
column = "id"
predicate = "schema:name"
language_column = "lang"
"""
    stats, triples = convert(tmp_path, table, mapping)
    assert t(P + "1", s("price"), ox.Literal("12,99")) in triples
    assert t(P + "2", s("price"), ox.Literal("7", datatype=n(XSD + "decimal"))) in triples
    assert t(P + "1", s("name"), ox.Literal("1")) in triples  # bad tag -> plain string
    assert stats.warning_count == 2
    assert "row 1 (line 2), column 'price'" in stats.warnings[0]
    assert "xsd:decimal" in stats.warnings[0]
    assert "column 'lang'" in stats.warnings[1]


# -------------------------------------------------------------------- references


REFERENCES = """
[[reference]]
column = "brand"
predicate = "schema:brand"
type = "schema:Brand"
base = "https://example.org/shop/brand/"
name_predicate = "schema:name"
lowercase = true
separator = "|"
[[reference]]
column = "category"
predicate = "schema:category"
type = "schema:CategoryCode"
base = "https://example.org/shop/category/"
name_predicate = "schema:name"
name_language = "en"
parent_column = "parent"
"""


def test_references_dedup_labels_and_parent_hierarchy(tmp_path):
    table = (
        "id,brand,category,parent\n"
        "1,Sony|Philips,Turntables,Audio\n"
        "2,sony,Speakers,Audio\n"
        "3,,Audio,Electronics\n"
        "4,SONY,Speakers,Audio\n"
    )
    stats, triples = convert(tmp_path, table, REFERENCES)
    assert stats.entities == {
        SCHEMA + "Product": 4,
        SCHEMA + "Brand": 2,
        SCHEMA + "CategoryCode": 4,
    }
    assert t(P + "1", s("brand"), n(B + "sony")) in triples
    assert t(P + "1", s("brand"), n(B + "philips")) in triples
    assert t(P + "2", s("brand"), n(B + "sony")) in triples
    assert t(B + "sony", n(RDF_TYPE), s("Brand")) in triples
    assert t(B + "sony", s("name"), ox.Literal("Sony")) in triples  # first spelling kept
    assert len([x for x in triples if x.subject == n(B + "sony")]) == 2  # type + one label
    assert t(P + "1", s("category"), n(C + "Turntables")) in triples
    assert t(C + "Turntables", s("name"), ox.Literal("Turntables", language="en")) in triples
    broader = {
        (x.subject.value, x.object.value) for x in triples if x.predicate.value == SKOS + "broader"
    }
    assert broader == {
        (C + "Turntables", C + "Audio"),
        (C + "Speakers", C + "Audio"),
        (C + "Audio", C + "Electronics"),
    }
    assert t(C + "Electronics", n(RDF_TYPE), s("CategoryCode")) in triples
    # the Turtle text is deterministic and compact (prefixes for the bases)
    text = (tmp_path / "out" / "catalogue.ttl").read_text()
    assert "product:1 a schema:Product ;" in text
    assert "schema:brand brand:sony" in text


LEVELS = """
[[reference]]
column = "type"
predicate = "http://shop.example/v#articleType"
type = "http://shop.example/v#ArticleType"
base = "http://shop.example/type/"
name_predicate = "schema:name"

[[reference.parent]]
column = "sub"
type = "http://shop.example/v#SubCategory"
base = "http://shop.example/sub/"

[[reference.parent]]
column = "master"
type = "http://shop.example/v#MasterCategory"
base = "http://shop.example/master/"
"""


def test_parent_levels_give_a_typed_hierarchy_over_columns(tmp_path):
    # "Watches" is both an article type and a sub-category: two nodes, two types.
    table = "id,type,sub,master\n1,Watches,Watches,Accessories\n2,Tshirts,Topwear,Apparel\n3,Caps,,Apparel\n"
    stats, triples = convert(tmp_path, table, LEVELS)
    v = "http://shop.example/v#"
    assert stats.entities == {
        SCHEMA + "Product": 3,
        v + "ArticleType": 3,
        v + "SubCategory": 2,
        v + "MasterCategory": 2,
    }
    broader = {
        (x.subject.value, x.object.value) for x in triples if x.predicate.value == SKOS + "broader"
    }
    root = "http://shop.example/"
    assert broader == {
        (root + "type/Watches", root + "sub/Watches"),
        (root + "sub/Watches", root + "master/Accessories"),
        (root + "type/Tshirts", root + "sub/Topwear"),
        (root + "sub/Topwear", root + "master/Apparel"),
    }  # the chain stops at the empty sub-category of row 3
    assert t(root + "sub/Topwear", s("name"), ox.Literal("Topwear")) in triples


def test_parent_levels_are_validated(tmp_path):
    bad = LEVELS.replace('column = "master"\n', "")
    with pytest.raises(MappingError, match=r"parent #2: missing required key 'column'"):
        Mapping.from_toml(write(tmp_path / "m.toml", HEADER + bad))
    both = LEVELS.replace(
        'name_predicate = "schema:name"', 'name_predicate = "schema:name"\nparent_column = "sub"'
    )
    with pytest.raises(MappingError, match="one"):
        Mapping.from_toml(write(tmp_path / "m2.toml", HEADER + both))


BRAND_FROM_NAME = """
[[reference]]
column = "name"
predicate = "schema:brand"
type = "schema:Brand"
base = "https://example.org/shop/brand/"
name_predicate = "schema:name"
lowercase = true
pattern = '^(.+?) (?:Men|Women) |^(\\S+)'
"""


def test_pattern_names_the_node_by_part_of_the_cell(tmp_path):
    table = (
        "id,name\n1,United Colors of Benetton Men Blue Shirt\n2,Puma Women Cap\n"
        "3,PUMA Unisex Bag\n4,Nike Sahara Team Jersey\n5,\n"
    )
    stats, triples = convert(tmp_path, table, BRAND_FROM_NAME)
    brand = {(x.subject.value, x.object.value) for x in triples if x.predicate == s("brand")}
    assert brand == {
        (P + "1", B + "united%20colors%20of%20benetton"),  # the words before the gender
        (P + "2", B + "puma"),
        (P + "3", B + "puma"),  # no gender word: the first word; lowercase joins the spellings
        (P + "4", B + "nike"),
    }  # the empty name of row 5 gives no brand
    assert stats.entities[SCHEMA + "Brand"] == 3
    assert t(B + "puma", s("name"), ox.Literal("Puma")) in triples  # the first spelling seen


def test_pattern_must_compile_and_names_the_whole_cell_alone(tmp_path):
    with pytest.raises(MappingError, match=r"'pattern' '\(' is not a regular expression"):
        Mapping.from_toml(write(tmp_path / "m.toml", HEADER + BRAND_FROM_NAME.replace(
            "pattern = '^(.+?) (?:Men|Women) |^(\\S+)'", "pattern = '('")))  # fmt: skip
    both = BRAND_FROM_NAME + 'label_column = "name"\n'
    with pytest.raises(MappingError, match="cannot be combined with 'label_column'"):
        Mapping.from_toml(write(tmp_path / "m2.toml", HEADER + both))


def test_hierarchy_separator_and_label_column(tmp_path):
    table = "id,path,cat_id,cat_name\n1,Audio > Speakers,7,Loud Things\n2,Car > Speakers,7,x\n"
    mapping = """
[[reference]]
column = "path"
predicate = "schema:category"
type = "skos:Concept"
base = "https://example.org/shop/category/"
name_predicate = "skos:prefLabel"
hierarchy_separator = ">"
[[reference]]
column = "cat_id"
predicate = "schema:additionalType"
type = "schema:CategoryCode"
base = "https://example.org/shop/code/"
name_predicate = "schema:name"
label_column = "cat_name"
"""
    stats, triples = convert(tmp_path, table, mapping)
    assert stats.entities[SKOS + "Concept"] == 4  # Audio, Audio>Speakers, Car, Car>Speakers
    assert t(P + "1", s("category"), n(C + "Audio%3ESpeakers")) in triples
    assert t(P + "2", s("category"), n(C + "Car%3ESpeakers")) in triples
    label = ox.Literal("Speakers")
    assert t(C + "Car%3ESpeakers", n(SKOS + "prefLabel"), label) in triples
    assert t(C + "Car%3ESpeakers", n(SKOS + "broader"), n(C + "Car")) in triples
    code = "https://example.org/shop/code/7"
    assert t(code, s("name"), ox.Literal("Loud Things")) in triples
    assert len([x for x in triples if x.subject == n(code)]) == 2


# ---------------------------------------------------------------- input handling


NAME = """
[[literal]]
column = "name"
predicate = "schema:name"
"""


def test_bom_is_ignored(tmp_path):
    stats, triples = convert(tmp_path, b"\xef\xbb\xbfid,name\n1,caf\xc3\xa9\n", NAME)
    assert t(P + "1", s("name"), ox.Literal("café")) in triples


def test_undecodable_bytes_name_row_line_and_column(tmp_path):
    data = b"id,name\n1,ok\n2,caf\xe9\n"
    with pytest.raises(TableError) as err:
        convert(tmp_path, data, NAME)
    e = err.value
    assert (e.row, e.line, e.column) == (2, 3, "name")
    assert "row 2 (line 3), column 'name'" in str(e) and "b'\\xe9'" in str(e)
    assert "encoding" in str(e)
    # the advice works
    stats, triples = convert(tmp_path, data, '[table]\nencoding = "cp1252"\n' + NAME)
    assert t(P + "2", s("name"), ox.Literal("café")) in triples


def test_missing_column_lists_available(tmp_path):
    with pytest.raises(TableError, match=r"column 'nmae'.*did you mean 'name'.*'id', 'name'"):
        convert(tmp_path, "id,name\n1,a\n", NAME.replace('"name"', '"nmae"'))


def test_optional_column_absent_is_a_warning(tmp_path):
    stats, _ = convert(tmp_path, "id,name\n1,a\n", NAME + "optional = true\n".replace("name", "x"))
    assert stats.warning_count == 0  # 'name' is present
    stats, triples = convert(tmp_path, "id,title\n1,a\n", NAME + "optional = true\n")
    assert stats.warning_count == 1 and "'name'" in stats.warnings[0]
    assert len(triples) == 1  # just the type


def test_duplicate_and_missing_ids(tmp_path):
    table = "id,name\n1,a\n2,b\n1,c\n"
    with pytest.raises(TableError, match=r"row 3 \(line 4\), column 'id': duplicate id '1'"):
        convert(tmp_path, table, NAME)
    merged = HEADER.replace(
        'type = "schema:Product"', 'type = "schema:Product"\non_duplicate = "merge"'
    )
    (tmp_path / "m.toml").write_text(merged + NAME)
    write(tmp_path / "dup.csv", table)
    stats = table_to_rdf(tmp_path / "dup.csv", tmp_path / "m.toml", tmp_path / "dup.ttl")
    names = {x.object.value for x in parse(tmp_path / "dup.ttl") if x.predicate == s("name")}
    assert names == {"a", "b", "c"} and stats.entities == {SCHEMA + "Product": 2}
    with pytest.raises(TableError, match=r"row 2 \(line 3\), column 'id': the id cell is empty"):
        convert(tmp_path, "id,name\n1,a\n ,b\n", NAME)
    stats, _ = convert(tmp_path, "id,name\n1,a\n,\n2,b\n", NAME)  # an all-empty row
    assert (stats.rows, stats.skipped_rows) == (3, 1)
    with pytest.raises(TableError, match=r"row 2 \(line 3\), column 'id'"):  # not all empty
        convert(tmp_path, "id,name,other\n1,a,\n,,x\n", NAME)


def test_csv_shape_errors(tmp_path):
    with pytest.raises(TableError, match=r"row 1 \(line 2\).*3 fields but the header has 2"):
        convert(tmp_path, "id,name\n1,a,b\n", NAME)
    with pytest.raises(TableError, match="CSV syntax error"):
        convert(tmp_path, 'id,name\n1,"unclosed\n', NAME)
    with pytest.raises(TableError, match="empty"):
        convert(tmp_path, "", NAME)


def test_tsv_gzip_and_explicit_tab_delimiter(tmp_path):
    data = gzip.compress(b"id\tname\n1\ta, b\n")
    stats, triples = convert(tmp_path, data, NAME, name="products.tsv.gz")
    assert t(P + "1", s("name"), ox.Literal("a, b")) in triples
    tab = '[table]\nformat = "csv"\ndelimiter = "\\t"\n' + NAME
    stats, triples = convert(tmp_path, b"id\tname\n2\tc\n", tab, name="products.txt")
    assert t(P + "2", s("name"), ox.Literal("c")) in triples


def test_failed_conversion_leaves_previous_output_intact(tmp_path):
    out = tmp_path / "out" / "catalogue.ttl"
    convert(tmp_path, "id,name\n1,a\n", NAME)
    before = out.read_bytes()
    rows = "".join(f"{i},n{i}\n" for i in range(5000)) + "7,again\n"
    with pytest.raises(TableError, match="duplicate id '7'"):
        convert(tmp_path, "id,name\n" + rows, NAME)
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["catalogue.ttl"]  # no temp file
    fresh = tmp_path / "fresh" / "catalogue.ttl"
    with pytest.raises(TableError):
        table_to_rdf(tmp_path / "products.csv", tmp_path / "mapping.toml", fresh)
    assert not fresh.exists() and list(fresh.parent.iterdir()) == []


# --------------------------------------------------------------------- JSON Lines


def test_jsonl_lists_numbers_and_booleans(tmp_path):
    rows = [
        {"id": 1, "name": "Sony", "tags": ["a", "b", ""], "price": 9.50, "ok": True},
        {"id": "x/2", "name": None, "tags": "c", "price": "n/a"},
    ]
    table = "\n".join(json.dumps(r) for r in rows) + "\n\n"
    mapping = (
        NAME
        + """
[[literal]]
column = "tags"
predicate = "schema:keywords"
separator = "|"
[[literal]]
column = "price"
predicate = "schema:price"
datatype = "xsd:double"
[[literal]]
column = "ok"
predicate = "schema:isFamilyFriendly"
datatype = "xsd:boolean"
"""
    )
    stats, triples = convert(tmp_path, table, mapping, name="products.jsonl")
    assert stats.rows == 2 and stats.warning_count == 1
    assert t(P + "1", s("price"), ox.Literal("9.5", datatype=n(XSD + "double"))) in triples
    assert t(P + "1", s("isFamilyFriendly"), ox.Literal(True)) in triples
    assert {x.object.value for x in triples if x.predicate == s("keywords")} == {"a", "b", "c"}
    assert t(P + "x%2F2", s("price"), ox.Literal("n/a")) in triples


def test_jsonl_errors(tmp_path):
    with pytest.raises(TableError, match=r"row 2 \(line 3\): not valid JSON"):
        convert(tmp_path, '{"id": 1}\n\n{"id": 2,\n', NAME, name="p.jsonl")
    with pytest.raises(TableError, match=r"row 1 \(line 1\), column 'name': nested"):
        convert(tmp_path, '{"id": 1, "name": {"en": "x"}}\n', NAME, name="p.jsonl")
    with pytest.raises(TableError, match=r"expected a JSON object"):
        convert(tmp_path, "[1, 2]\n", NAME, name="p.jsonl")
    with pytest.raises(TableError, match=r"column 'name'.*appears in no object.*'title'"):
        convert(tmp_path, '{"id": 1, "title": "x"}\n', NAME, name="p.jsonl")
    with pytest.raises(TableError, match=r"row 1 \(line 1\), column 'name'.*not valid UTF-8"):
        convert(tmp_path, b'{"id": 1, "name": "caf\xe9"}\n', NAME, name="p.jsonl")
    with pytest.raises(TableError, match=r"row 1 \(line 1\), column 'name': a lone surrogate"):
        convert(tmp_path, b'{"id": 1, "name": "\\ud800x"}\n', NAME, name="p.jsonl")
    with pytest.raises(TableError, match=r"row 1 \(line 1\): not valid JSON.*character 22"):
        convert(tmp_path, b'{"id": 1, "name": "x"\n', NAME, name="p.jsonl")


# ------------------------------------------------------------------- files, paths


def test_image_and_text_file_columns(tmp_path):
    (tmp_path / "media" / "p1").mkdir(parents=True)
    (tmp_path / "media" / "p1" / "img.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "media" / "p1" / "desc.txt").write_bytes(b'\xef\xbb\xbf  Crisp "apple".\n')
    table = "id,img,desc\n1,/media/p1/img.jpg,/media/p1/desc.txt\n2,https://x.org/a.png,\n"
    mapping = """
[[literal]]
column = "img"
predicate = "schema:image"
kind = "image"
leading_slash = "root"
[[literal]]
column = "desc"
predicate = "schema:description"
kind = "text_file"
language = "en"
root = "table"
leading_slash = "root"
"""
    stats, triples = convert(tmp_path, table, mapping)
    image = str(tmp_path / "media" / "p1" / "img.jpg")
    assert t(P + "1", s("image"), ox.Literal(image)) in triples
    assert t(P + "2", s("image"), ox.Literal("https://x.org/a.png")) in triples  # URL as is
    assert t(P + "1", s("description"), ox.Literal('Crisp "apple".', language="en")) in triples

    # relative output: relative to the Turtle file, as kg resolves image paths
    rel = mapping.replace('kind = "image"', 'kind = "image"\npath_output = "relative"')
    stats, triples = convert(tmp_path, table, rel)
    assert t(P + "1", s("image"), ox.Literal("../media/p1/img.jpg")) in triples

    # without leading_slash = "root", "/media/..." is an absolute path: missing, with a hint
    plain = mapping.replace('leading_slash = "root"\n', "", 1)
    with pytest.raises(
        TableError, match=r"row 1 \(line 2\), column 'img': no such image file.*leading_slash"
    ):
        convert(tmp_path, table, plain)
    stats, triples = convert(
        tmp_path, table, plain.replace('kind = "image"', 'kind = "image"\non_missing = "skip"')
    )
    assert stats.warning_count == 1 and not [
        x for x in triples if x.subject == n(P + "1") and x.predicate == s("image")
    ]


# ------------------------------------------------------------------------ mapping


LIT = HEADER + '[[literal]]\ncolumn = "a"\npredicate = "schema:name"\n'
REF = HEADER + '[[reference]]\ncolumn = "a"\npredicate = "schema:brand"\ntype = "schema:Brand"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LIT + 'langauge = "en"\n', r"unknown key 'langauge'; did you mean 'language'\?"),
        (
            HEADER + '[[literals]]\ncolumn = "a"\n',
            r"unknown key 'literals'; did you mean 'literal'",
        ),
        (HEADER.replace("schema:Product", "shema:Product"), r"unknown prefix 'shema'.*'schema'\?"),
        (HEADER.replace("schema:Product", "Product"), r"neither a prefixed name"),
        (LIT + 'language = "en"\ndatatype = "xsd:string"\n', "language or a datatype"),
        (LIT + 'kind = "picture"\n', r"'kind' must be one of .*"),
        (LIT + 'root = "."\n', "applies to kind"),
        (REF, "missing required key 'base'"),
        (HEADER.replace('id = "id"\n', ""), "missing required key 'id'"),
        (HEADER.replace("https://example.org/shop/product/", "product/"), "not an absolute IRI"),
        (HEADER + '[table]\ndelimiter = ";;"\n', "one character"),
        (HEADER + "[entity", "not valid TOML"),
        (HEADER + '[literal]\ncolumn = "a"\n', r"write \[\[literal\]\]"),
    ],
)
def test_mapping_errors(tmp_path, text, message):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(MappingError, match=message) as err:
        Mapping.from_toml(path)
    assert str(path) in str(err.value)


def test_prefixes_and_turtle_escaping():
    mapping = Mapping.from_dict(
        {
            "prefixes": {"ex": "https://example.org/vocab#"},
            "entity": {"id": "id", "base": "urn:x:", "type": ["ex:Thing", "<http://a.org/T>"]},
        }
    )
    assert mapping.types == ("https://example.org/vocab#Thing", "http://a.org/T")
    assert turtle_string('a"b\\c\nd\re\tf\x00') == '"a\\"b\\\\c\\nd\\re\\tf\\u0000"'
    assert turtle_iri("http://x.org/a b<c>") == "<http://x.org/a%20b%3Cc%3E>"


def test_documented_example_mapping_is_valid(tmp_path):
    doc = (ROOT / "docs" / "tabular-mapping.md").read_text(encoding="utf-8")
    example = doc.split("## A full example (`products.toml`)\n\n```toml\n", 1)[1].split("\n```")[0]
    path = write(tmp_path / "products.toml", textwrap.dedent(example))
    mapping = Mapping.from_toml(path)
    assert mapping.columns() == [
        "sku", "name", "price", "tags", "image", "description_file", "brand", "category",
        "parent_category", "article_type", "sub_category", "master_category",
    ]  # fmt: skip
    assert mapping.references[1].parent_predicate == SKOS + "broader"


# --------------------------------------------------------------------- real data


EXAMPLES = ROOT / "examples"


def _example(tmp_path, table: str, mapping: str):
    source = shared(table)
    out = tmp_path / "catalogue.ttl"
    stats = table_to_rdf(source, EXAMPLES / mapping, out)
    triples = parse(out)
    assert len(triples) == stats.triples and stats.warning_count == 0
    with open(source, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return stats, triples, rows


def test_example_abt_buy(tmp_path):
    stats, triples, rows = _example(tmp_path, "matching/abt_buy/tableA.csv", "abt_buy.toml")
    assert stats.rows == len(rows) == 1081
    assert stats.entities == {SCHEMA + "Product": 1081}
    prices = [x for x in triples if x.predicate == s("price")]
    assert len(prices) == sum(1 for r in rows if r["price"].strip())
    price = ox.Literal("399.0", datatype=n(XSD + "decimal"))
    assert t("https://example.org/abt/product/1", s("price"), price) in set(triples)


def test_example_amazon_google(tmp_path):
    stats, triples, rows = _example(
        tmp_path, "matching/amazon_google/tableA.csv", "amazon_google.toml"
    )
    brands = {r["manufacturer"].strip().lower() for r in rows} - {""}
    assert stats.entities == {SCHEMA + "Product": 1363, SCHEMA + "Brand": len(brands)}
    assert len([x for x in triples if x.predicate == s("brand")]) == sum(
        1 for r in rows if r["manufacturer"].strip()
    )


def test_example_grocery(tmp_path):
    stats, triples, rows = _example(tmp_path, "images/grocery/classes.csv", "grocery.toml")
    assert stats.entities == {SCHEMA + "Product": 81, SCHEMA + "CategoryCode": 43}
    products = {x.subject for x in triples if x.object == s("Product")}
    images = {x.subject: x.object.value for x in triples if x.predicate == s("image")}
    descriptions = {x.subject: x.object for x in triples if x.predicate == s("description")}
    categories = {x.subject for x in triples if x.predicate == s("category")}
    assert len(products) == 81 and set(images) == set(descriptions) == categories == products
    assert all(Path(p).is_file() for p in images.values())
    assert all(d.language == "en" and len(d.value) > 20 for d in descriptions.values())
    gala = "https://example.org/grocery/product/4"
    assert t(gala, s("name"), ox.Literal("Royal Gala", language="en")) in set(triples)
    assert t(gala, s("category"), n("https://example.org/grocery/category/0")) in set(triples)

    import kg  # the Turtle goes through the normal RDF ingestion

    graph = kg.load_rdf(tmp_path / "catalogue.ttl")
    assert graph.num_nodes_dict == {"CategoryCode": 43, "Product": 81}


def test_example_fashion(tmp_path):
    stats, triples, rows = _example(tmp_path, "products/fashion/styles.csv", "fashion.toml")
    f = "https://example.org/fashion/"
    assert stats.rows == len(rows) and stats.entities[SCHEMA + "Product"] == len(rows)
    for column, kind in [("gender", "Gender"), ("baseColour", "Colour"), ("season", "Season")]:
        values = {r[column].strip() for r in rows} - {""}
        assert stats.entities[f + kind] == len(values)
        edges = [x for x in triples if x.predicate == n(f + column)]
        assert len(edges) == sum(1 for r in rows if r[column].strip())
    images = [x for x in triples if x.predicate == s("image")]
    assert len(images) == len(rows) and all(Path(x.object.value).is_file() for x in images[:20])
    row = rows[0]
    broader = {
        (x.subject.value, x.object.value) for x in triples if x.predicate == n(SKOS + "broader")
    }
    sub = f + "sub-category/" + row["subCategory"]
    assert (f + "article-type/" + row["articleType"], sub) in broader
    assert (sub, f + "master-category/" + row["masterCategory"]) in broader

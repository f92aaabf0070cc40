"""kg.tabular against hostile tables and mappings: special files, paths outside the table's
folder, over-long or NUL path cells, non-UTF-8 / BOM / non-text-encoding mappings, huge
CSV cells. Each case is a clear TableError / MappingError naming the file, never a hang,
an unbounded read or a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyoxigraph as ox
import pytest
from conftest import ROOT

from kg.tabular import Mapping, MappingError, TableError, table_to_rdf

HEADER = """
[entity]
id = "id"
base = "https://example.org/shop/product/"
type = "schema:Product"
"""
TEXT_FILE = """
[[literal]]
column = "desc"
predicate = "schema:description"
kind = "text_file"
"""
IMAGE = """
[[literal]]
column = "img"
predicate = "schema:image"
kind = "image"
"""


def convert(folder, table: str, mapping: str, **kw):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.csv").write_text(table, encoding="utf-8")
    (folder / "m.toml").write_text(HEADER + mapping, encoding="utf-8")
    out = folder / "out" / "c.ttl"
    stats = table_to_rdf(folder / "t.csv", Mapping.from_toml(folder / "m.toml"), out, **kw)
    return stats, out.read_text(encoding="utf-8")


# ------------------------------------------------------------------ special files


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_text_file_naming_dev_zero_is_refused_not_read(tmp_path):
    with pytest.raises(TableError, match=r"row 1.*column 'desc'.*not a regular file.*/dev/zero"):
        convert(tmp_path, "id,desc\n1,/dev/zero\n", TEXT_FILE + 'root = "/dev"\n')


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_text_file_and_image_naming_a_fifo_do_not_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    # a FIFO with no writer blocks open() forever: run in a child with a timeout
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from kg.tabular import Mapping, TableError, table_to_rdf
folder = Path({str(tmp_path)!r})
for mapping in ({TEXT_FILE!r}, {IMAGE!r}):
    (folder / "t.csv").write_text("id,desc,img\\n1,pipe,pipe\\n")
    (folder / "m.toml").write_text({HEADER!r} + mapping)
    try:
        table_to_rdf(folder / "t.csv", Mapping.from_toml(folder / "m.toml"), folder / "o.ttl")
    except TableError as e:
        print("ERR", e)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout + done.stderr
    for line in lines:
        assert "not a regular file (a FIFO)" in line and "pipe" in line, line


def test_special_file_with_on_missing_skip_is_a_warning(tmp_path):
    (tmp_path / "folder.txt").mkdir(parents=True)
    stats, ttl = convert(tmp_path, "id,desc\n1,folder.txt\n", TEXT_FILE + 'on_missing = "skip"\n')
    assert stats.warning_count == 1 and "not a regular file (a folder)" in stats.warnings[0]
    assert "description" not in ttl


def test_oversized_text_file_is_refused(tmp_path, monkeypatch):
    import kg.tabular.conversion as conversion

    monkeypatch.setattr(conversion, "MAX_TEXT_FILE_BYTES", 1000)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "big.txt").write_text("x" * 1001)
    with pytest.raises(TableError, match=r"big.txt.*1,000-byte limit"):
        convert(tmp_path, "id,desc\n1,big.txt\n", TEXT_FILE)


# ------------------------------------------------------------------ confinement


def test_text_file_outside_the_table_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the password")
    table = tmp_path / "shop"
    for cell in ("../secret.txt", str(secret), "../" * 30 + "etc/passwd"):
        if cell.endswith("passwd") and not os.path.exists("/etc/passwd"):
            continue
        with pytest.raises(TableError, match=r"outside the allowed folder.*--data-root") as err:
            convert(table, f"id,desc\n1,{cell}\n", TEXT_FILE)
        assert "row 1" in str(err.value) and "password" not in str(err.value)
    # the same file, allowed by a data root (kgf build --data-root DIR) or the mapping's root
    _, ttl = convert(table, "id,desc\n1,../secret.txt\n", TEXT_FILE, data_roots=[tmp_path])
    assert "the password" in ttl
    _, ttl = convert(table, "id,desc\n1,secret.txt\n", TEXT_FILE + f'root = "{tmp_path}"\n')
    assert "the password" in ttl


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_out_of_the_table_folder_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("the password")
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8")
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "desc.txt").symlink_to(tmp_path / "secret.txt")
    (shop / "img.jpg").symlink_to(tmp_path / "secret.jpg")
    with pytest.raises(TableError, match=r"outside the allowed folder"):
        convert(shop, "id,desc\n1,desc.txt\n", TEXT_FILE)
    with pytest.raises(TableError, match=r"outside the allowed folder"):
        convert(shop, "id,img\n1,img.jpg\n", IMAGE)
    with pytest.raises(TableError, match=r"outside the allowed folder"):  # not even kept
        convert(shop, "id,img\n1,../secret.jpg\n", IMAGE + 'on_missing = "keep"\n')
    # inside the folder a symlink is fine
    (shop / "real.txt").write_text("inside")
    (shop / "link.txt").symlink_to(shop / "real.txt")
    _, ttl = convert(shop, "id,desc\n1,link.txt\n", TEXT_FILE)
    assert "inside" in ttl


def test_kgf_build_data_root_allows_another_folder(tmp_path):
    from kgfusion.cli import main

    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "d.txt").write_text("from the media folder")
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "t.csv").write_text("id,desc\n1,../media/d.txt\n")
    (shop / "m.toml").write_text(HEADER + TEXT_FILE)
    args = ["build", str(shop / "t.csv"), "--mapping", str(shop / "m.toml"), "--no-sparql"]
    assert main([*args, "-o", str(tmp_path / "ws1")]) == 2
    assert main([*args, "-o", str(tmp_path / "ws2"), "--data-root", str(tmp_path / "media")]) == 0
    assert "from the media folder" in (tmp_path / "ws2" / "literals.jsonl").read_text()


# ------------------------------------------------------------------ path cells


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("a\0b.txt", "NUL character"),
        ("x" * 300 + ".txt", "304 bytes long"),
        ("d/" * 2100 + "x.txt", "at most 4,096"),
    ],
)
@pytest.mark.parametrize("kind", [TEXT_FILE, IMAGE])
def test_bad_path_cells_are_table_errors(tmp_path, cell, message, kind):
    folder = tmp_path / "t"
    folder.mkdir()
    row = {"id": "1", "desc": cell, "img": cell}
    (folder / "t.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    (folder / "m.toml").write_text(HEADER + kind + 'on_missing = "skip"\n')
    with pytest.raises(TableError, match=rf"row 1.*{message}"):
        table_to_rdf(folder / "t.jsonl", Mapping.from_toml(folder / "m.toml"), folder / "o.ttl")


# ------------------------------------------------------------------ mapping files


def test_mapping_that_is_not_utf8_names_the_line(tmp_path):
    (tmp_path / "m.toml").write_bytes((HEADER + "# caf\xe9\n").encode("latin-1"))
    with pytest.raises(MappingError, match=r"m.toml, line 6: bytes b'\\xe9' are not valid UTF-8"):
        Mapping.from_toml(tmp_path / "m.toml")


def test_mapping_and_config_with_a_bom_are_read(tmp_path):
    (tmp_path / "m.toml").write_bytes(b"\xef\xbb\xbf" + HEADER.encode())
    assert Mapping.from_toml(tmp_path / "m.toml").id_column == "id"
    from fusion.config import read_toml

    (tmp_path / "c.toml").write_bytes(b"\xef\xbb\xbf[task]\n")
    assert read_toml(tmp_path / "c.toml") is not None


def test_mapping_naming_a_special_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "m.toml") if hasattr(os, "mkfifo") else None
    target = tmp_path / "m.toml" if hasattr(os, "mkfifo") else tmp_path
    with pytest.raises(MappingError, match=r"not a regular file"):
        Mapping.from_toml(target)


@pytest.mark.parametrize("encoding", ["base64", "rot13", "zlib", "idna", "hex", "bz2"])
@pytest.mark.parametrize("key", ["table", "file"])
def test_non_text_encodings_are_refused(tmp_path, encoding, key):
    if key == "table":
        text = HEADER + f'[table]\nencoding = "{encoding}"\n'
    else:
        text = HEADER + TEXT_FILE + f'file_encoding = "{encoding}"\n'
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(MappingError, match=rf"'{encoding}' is not a text encoding"):
        Mapping.from_toml(tmp_path / "m.toml")


# ------------------------------------------------------------------ huge CSV cells


def test_csv_cell_over_131072_characters_is_read(tmp_path):
    name = "n" * 200_000
    _, ttl = convert(
        tmp_path,
        f"id,name\n1,{name}\n",
        '[[literal]]\ncolumn = "name"\npredicate = "schema:name"\n',
    )
    triples = list(ox.parse(ttl.encode(), format=ox.RdfFormat.TURTLE))
    assert any(q.object.value == name for q in triples)


def test_csv_cell_over_the_limit_says_so(tmp_path, monkeypatch):
    import csv

    old = csv.field_size_limit()
    monkeypatch.setattr("kg.tabular.readers.MAX_CELL_CHARS", 1000)
    csv.field_size_limit(1000)
    try:
        with pytest.raises(TableError, match=r"row 1 \(line 2\).*longer than 1,000 characters"):
            convert(
                tmp_path,
                "id,name\n1," + "n" * 2000 + "\n",
                '[[literal]]\ncolumn = "name"\npredicate = "schema:name"\n',
            )
    finally:
        csv.field_size_limit(old)

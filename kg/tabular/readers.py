"""Reading tables row by row: CSV / TSV and JSON Lines, each optionally gzipped.

A reader yields :class:`Row` objects (1-based row number, first physical line, the mapped
columns' cells) and reports problems as :class:`~kg.tabular.errors.TableError` naming the
file, row, line and column: undecodable bytes (with the bytes and the fix), CSV syntax
(unclosed quotes), a wrong field count, bad JSON, nested values, missing columns (with a
suggestion). :data:`READERS` maps a format name to its reader; :func:`table_format` picks the
format from the mapping or the file extension (:data:`TABLE_FORMATS`).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import TableError, suggest
from .mapping import Mapping
from .stats import TableStats

_SURROGATE = re.compile(r"[\ud800-\udfff]")

MAX_CELL_CHARS = 16 << 20  # one CSV cell (the csv module's default limit is 131,072)

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
}


@dataclass
class Row:
    number: int  # 1-based data row (the header is not a row)
    line: int  # first physical line of the row
    cells: dict[str, Any]  # column -> str | list | None (only the mapped columns)
    blank: bool = False  # every field of the row is empty


def open_binary(path: Path):
    try:
        return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")
    except OSError as e:
        raise TableError(f"cannot open the table: {e.strerror or e}", path=path) from e


def table_format(path: Path, mapping: Mapping) -> str:
    if mapping.format:
        return mapping.format
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = TABLE_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise TableError(
            "cannot tell the table format from the extension (.csv, .tsv, .jsonl, .ndjson, "
            'optionally .gz); set [table] format = "csv" or "jsonl" in the mapping',
            path=path,
        )
    return fmt


class _Lines:
    """Decoded physical lines of a file (line endings kept), remembering which failed to
    decode (those are decoded with ``surrogateescape`` so the bad bytes can be located)."""

    def __init__(self, fh, encoding: str, path: Path):
        self.fh, self.encoding, self.path = fh, encoding, path
        self.number = 0
        self.bad: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        first_encoding = self.encoding
        rest_encoding = (
            "utf-8" if codecs.lookup(self.encoding).name == "utf-8-sig" else self.encoding
        )
        lines = iter(self.fh)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                return
            except (OSError, EOFError) as e:  # unreadable, or a corrupt / truncated .gz
                raise TableError(
                    f"cannot read the table: {e}", path=self.path, line=self.number + 1
                ) from e
            self.number += 1
            encoding = first_encoding if self.number == 1 else rest_encoding
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError:
                self.bad.add(self.number)
                yield raw.decode(encoding, errors="surrogateescape")


def _bad_bytes(text: str) -> str:
    return repr(bytes(ord(c) - 0xDC00 for c in _SURROGATE.findall(text) if ord(c) >= 0xDC80))


def _decode_error(path, row, line, column, text: str, encoding: str) -> TableError:
    shown = _SURROGATE.sub("\ufffd", text.strip())
    shown = repr(shown if len(shown) <= 60 else shown[:57] + "...")
    if codecs.lookup(encoding).name == "utf-8-sig":
        encoding = "UTF-8"
    return TableError(
        f"bytes {_bad_bytes(text)} are not valid {encoding} (in {shown}); re-save the "
        'file as UTF-8, or set [table] encoding = "..." to its real encoding (e.g. "cp1252")',
        path=path,
        row=row,
        line=line,
        column=column,
    )


def _check_columns(path: Path, available: list[str], mapping: Mapping, stats: TableStats):
    optional = mapping.optional_columns()
    for column in mapping.columns():
        if column in available:
            continue
        if column in optional:
            stats.warn(f"{path}: optional column {column!r} is absent; nothing mapped from it")
            continue
        raise TableError(
            f"the mapping names column {column!r}, which the table lacks"
            f"{suggest(column, available)}; available columns: "
            f"{', '.join(repr(c) for c in available)}",
            path=path,
        )


def read_csv(path: Path, mapping: Mapping, stats: TableStats) -> Iterator[Row]:
    delimiter = mapping.delimiter or ("\t" if ".tsv" in [s.lower() for s in path.suffixes] else ",")
    columns = mapping.columns()
    if csv.field_size_limit() < MAX_CELL_CHARS:
        csv.field_size_limit(MAX_CELL_CHARS)
    with open_binary(path) as fh:
        lines = _Lines(fh, mapping.encoding, path)
        reader = csv.reader(lines, delimiter=delimiter, quotechar=mapping.quotechar, strict=True)
        last_line, row_number = 0, 0
        header = None
        try:
            for record in reader:
                start, last_line = last_line + 1, reader.line_num
                bad = any(n in lines.bad for n in range(start, last_line + 1))
                if header is None:
                    if not record:
                        continue
                    if bad:
                        col = next((c for c in record if _SURROGATE.search(c)), "")
                        raise _decode_error(path, None, start, None, col, mapping.encoding)
                    header = [h.strip().lstrip("\ufeff") for h in record]
                    _check_columns(path, header, mapping, stats)
                    index = {}
                    for i, name in enumerate(header):
                        if name in index and name in columns:
                            raise TableError(
                                f"the header names column {name!r} twice; rename one",
                                path=path,
                                line=start,
                            )
                        index.setdefault(name, i)
                    wanted = [(c, index[c]) for c in columns if c in index]
                    continue
                if not record:  # an empty line
                    continue
                row_number += 1
                if bad:
                    for i, cell in enumerate(record):
                        if _SURROGATE.search(cell):
                            column = header[i] if i < len(header) else f"#{i + 1}"
                            raise _decode_error(
                                path, row_number, start, column, cell, mapping.encoding
                            )
                if len(record) != len(header):
                    if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
                        raise TableError(
                            f"{len(record)} fields but the header has {len(header)}; check the "
                            f"delimiter ({delimiter!r}) and the quoting of this row",
                            path=path,
                            row=row_number,
                            line=start,
                        )
                    if len(record) < len(header):
                        stats.warn(
                            f"{path}, row {row_number} (line {start}): {len(record)} fields, "
                            f"header has {len(header)}; the missing cells are empty"
                        )
                n = len(record)
                cells = {c: record[i] if i < n else None for c, i in wanted}
                yield Row(row_number, start, cells, blank=not any(c.strip() for c in record))
        except csv.Error as e:
            if "field larger than field limit" in str(e):
                raise TableError(
                    f"a cell is longer than {csv.field_size_limit():,} characters, the limit "
                    "for one cell; shorten it (or, if no cell is that long, a quote left open "
                    "swallowed the lines after it)",
                    path=path,
                    row=row_number + 1 if header else None,
                    line=last_line + 1,
                ) from e
            raise TableError(
                f"CSV syntax error: {e}; check the quoting (an unclosed quote swallows the "
                "following lines)",
                path=path,
                row=row_number + 1 if header else None,
                line=last_line + 1,
            ) from e
        if header is None:
            raise TableError("the table is empty (a CSV table needs a header row)", path=path)


def cell_values(raw: Any, separator: str | None) -> list[str]:
    """The non-empty, stripped values of a cell (split on ``separator``; a list as is)."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if item is None:
            continue
        text = ("true" if item else "false") if isinstance(item, bool) else str(item)
        parts = (
            text.split(separator) if separator is not None and not isinstance(raw, list) else [text]
        )
        out.extend(p.strip() for p in parts if p.strip())
    return out


_JSON_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _flat(value: Any) -> str:
    """The text of a JSON value (strings of a list or object joined; no escaping)."""
    if isinstance(value, list):
        return " ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k} {_flat(v)}" for k, v in value.items())
    return str(value)


def _json_object(text: str, path: Path, row: int, line: int, bad: bool, encoding: str) -> dict:
    """One line's JSON object (numbers kept as their written text); ``bad``: the line did
    not decode, so find the undecodable bytes for the message."""
    try:
        obj = json.loads(text.rstrip("\r\n"), parse_int=str, parse_float=str, parse_constant=str)
    except RecursionError as e:
        raise TableError(
            "JSON nested too deeply; a JSON Lines row is one flat object",
            path=path,
            row=row,
            line=line,
        ) from e
    except json.JSONDecodeError as e:
        raise TableError(
            f"not valid JSON ({e.msg} at character {e.pos + 1}); a JSON Lines file holds "
            "one complete object per line",
            path=path,
            row=row,
            line=line,
        ) from e
    if not isinstance(obj, dict):
        raise TableError(
            f"expected a JSON object, got {type(obj).__name__}; each line must be one "
            'object {"column": value, ...}',
            path=path,
            row=row,
            line=line,
        )
    if bad:
        for key, value in obj.items():
            flat = _flat(value)
            if _SURROGATE.search(key + flat):
                raise _decode_error(path, row, line, key, f"{key}: {flat}", encoding)
    return obj


def _json_cell(value: Any, surrogates: bool, **where) -> Any:
    """A mapped value, refused when nested or holding a lone surrogate escape."""
    if isinstance(value, dict) or (
        isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
    ):
        raise TableError(
            "nested objects/lists are not supported; flatten the object (one key "
            "per mapped value, a list of plain values for a multi-valued cell)",
            **where,
        )
    if surrogates and _SURROGATE.search(_flat(value)):
        raise TableError(
            "a lone surrogate escape (\\ud800-\\udfff) is not text; fix the JSON string", **where
        )
    return value


def read_jsonl(path: Path, mapping: Mapping, stats: TableStats) -> Iterator[Row]:
    """The rows of a JSON Lines table: one object per line, its keys the columns (a list is
    a multi-valued cell); blank lines are skipped."""
    columns = mapping.columns()
    seen: set[str] = set()
    keys: dict[str, None] = {}
    with open_binary(path) as fh:
        lines = _Lines(fh, mapping.encoding, path)
        row_number = 0
        for text in lines:
            if not text.strip():
                continue
            row_number += 1
            line = lines.number
            bad = line in lines.bad
            obj = _json_object(text, path, row_number, line, bad, mapping.encoding)
            surrogates = "\\u" in text and _JSON_SURROGATE_ESCAPE.search(text) is not None
            if len(keys) < 1000:
                keys.update(dict.fromkeys(obj))
            cells = {}
            for column in columns:
                if column in obj:
                    seen.add(column)
                    where = dict(path=path, row=row_number, line=line, column=column)
                    cells[column] = _json_cell(obj[column], surrogates, **where)
            blank = not any(cell_values(v, None) for v in obj.values())
            yield Row(row_number, line, cells, blank=blank)
    optional = mapping.optional_columns()
    for column in columns:
        if column in seen:
            continue
        if column in optional:
            stats.warn(f"{path}: optional column {column!r} appears in no object")
            continue
        raise TableError(
            f"the mapping names column {column!r}, which appears in no object of the table"
            f"{suggest(column, keys)}; keys seen: {', '.join(repr(k) for k in keys)}",
            path=path,
        )


#: Format name -> reader ``(path, mapping, stats) -> Iterator[Row]``.
READERS: dict[str, Callable[[Path, Mapping, TableStats], Iterator[Row]]] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
}

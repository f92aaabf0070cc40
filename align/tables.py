"""Tables in and out of the linker: mention tables, labelled pairs, and linked tables.

- :func:`read_table`: a CSV (UTF-8, byte-order mark allowed; ``.tsv`` tab-separated) or
  JSON Lines (``.jsonl`` / ``.ndjson``) table as ``{id: record}``;
- :func:`read_pairs`: a DeepMatcher pairs file (``ltable_id, rtable_id, label``);
- :func:`link_table`: link every record of a table and write one CSV row per record
  (``id, iri, type, score, nil, mention, alternatives``; ``alternatives`` is a JSON list of
  ``[iri, score]``; a record with no text is a NIL row), in batches, written to a temporary file and renamed at the end.

Errors name the file, the line and the column (:class:`~align.linker.LinkerError`).
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from pathlib import Path

from .base import LinkerError


def read_table(path, id_col: str = "id") -> dict[str, dict]:
    """A mentions table as ``{id: record}`` (records keep every column, as strings)."""
    path = Path(path)
    if not path.is_file():
        raise LinkerError(f"{path}: no such table file")
    rows: dict[str, dict] = {}

    def add(key, row, line):
        key = "" if key is None else str(key).strip()
        if not key:
            raise LinkerError(f"{path}, line {line}, column {id_col!r}: empty id")
        if key in rows:
            raise LinkerError(f"{path}, line {line}, column {id_col!r}: duplicate id {key!r}")
        rows[key] = row

    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8-sig") as fh:
            for line, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as err:
                    raise LinkerError(f"{path}, line {line}: not JSON ({err.msg})") from None
                if not isinstance(row, dict):
                    raise LinkerError(f"{path}, line {line}: expected a JSON object per line")
                if id_col not in row:
                    raise LinkerError(f"{path}, line {line}: no {id_col!r} key; pass --id-col")
                add(row[id_col], row, line)
        return rows
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        if reader.fieldnames is None or id_col not in reader.fieldnames:
            have = ", ".join(reader.fieldnames or [])
            raise LinkerError(f"{path}: no id column {id_col!r} (columns: {have}); pass --id-col")
        for row in reader:
            add(row.get(id_col), row, reader.line_num)
    return rows


def read_pairs(
    path, left_col: str = "ltable_id", right_col: str = "rtable_id", label_col: str = "label"
) -> list[tuple[str, str, int]]:
    """``(catalogue id, mention id, label)`` rows of a pairs CSV (labels 0 or 1)."""
    path = Path(path)
    if not path.is_file():
        raise LinkerError(f"{path}: no such pairs file")
    out = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        names = reader.fieldnames or []
        for col in (left_col, right_col, label_col):
            if col not in names:
                raise LinkerError(f"{path}: no column {col!r} (columns: {', '.join(names)})")
        for row in reader:
            label = (row[label_col] or "").strip()
            if label not in ("0", "1"):
                raise LinkerError(
                    f"{path}, line {reader.line_num}, column {label_col!r}: label {label!r} "
                    "is not 0 or 1"
                )
            out.append((row[left_col].strip(), row[right_col].strip(), int(label)))
    return out


OUTPUT_COLUMNS = ("id", "iri", "type", "score", "nil", "mention", "alternatives")


def link_table(
    linker, table, out, *, id_col: str = "id", k: int | None = None, batch: int = 1024, types=None
) -> int:
    """Link each record of ``table`` (:func:`read_table`) and write ``out`` (CSV, see the
    module docstring). Returns the number of records linked."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(OUTPUT_COLUMNS)
            for key, link in iter_table_links(linker, table, id_col=id_col, k=k, batch=batch,
                                              types=types):  # fmt: skip
                count += 1
                if link is None:  # nothing to link: a NIL row
                    writer.writerow([key, "", "", f"{0.0:.6f}", 1, "", "[]"])
                    continue
                alternatives = [[iri, round(s, 6)] for iri, s in link.alternatives]
                writer.writerow(
                    [key, link.iri or "", link.type or "", f"{link.score:.6f}",
                     int(link.nil), link.mention, json.dumps(alternatives)]
                )  # fmt: skip
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def iter_table_links(linker, table, *, id_col: str = "id", k: int | None = None,
                     batch: int = 1024, types=None, threshold=None, nil: bool = True):  # fmt: skip
    """``(record id, Link)`` for each record of ``table`` (:func:`read_table`), in table
    order, linked ``batch`` records at a time; the link is None for a record with no text.
    ``threshold`` / ``nil``: as in :meth:`align.Linker.link_text`."""
    records = read_table(table, id_col)
    ids = list(records)
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        mentions = [linker.mention(records[i]) for i in chunk]
        present = [m for m in mentions if m.text.strip()]
        links = iter(linker.link_records(present, k=k, types=types, threshold=threshold, nil=nil)
                     if present else [])  # fmt: skip
        for key, mention in zip(chunk, mentions, strict=True):
            yield key, (next(links) if mention.text.strip() else None)

"""Terminal and file output shared by the command line and the demo.

Nothing here computes; it formats what :class:`kgfusion.session.Session` returns.

Every command that prints rows builds one :class:`Rows` (column names + JSON-ready
records) and hands it to :func:`emit`, which writes it in one of the formats of the
:data:`FORMATS` registry:

- ``table``: aligned columns for people. Long cells are cut **only when the output is a
  terminal** (``sys.stdout.isatty()``), and a footer line then says so; piped or
  redirected output is never cut.
- ``csv``: one row per record, one value per cell (lists joined by ``"; "``, never JSON).
- ``json``: the records as a JSON list (or the command's own JSON document, e.g. a
  SPARQL result's ``{"variables", "rows"}``).
- ``jsonl``: one JSON object per line.

The machine formats (``csv``, ``json``, ``jsonl``) are never truncated. ``emit(rows,
path=...)`` writes a file atomically, its format taken from the suffix (``.csv``,
``.json``, ``.jsonl``; ``.tsv`` is tab-separated CSV).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

#: widest cell of a table on a terminal, unless a column says otherwise
CELL_WIDTH = 60


@dataclass
class Rows:
    """Rows to print or write.

    ``columns``: the column names, in order; ``records``: one dict per row keyed by them
    (values: str, int, float, bool, None, or lists / dicts of those). ``document``: what
    ``json`` writes instead of the list of records, when the command has a JSON shape of
    its own. ``widths``: terminal cut per column (default :data:`CELL_WIDTH`); ``digits``:
    decimals of floats in a table (machine formats keep every digit). ``empty``: the
    line a table prints when there are no records; ``footer``: lines after a table."""

    columns: list[str]
    records: list[dict]
    document: Any = None
    widths: dict[str, int] = field(default_factory=dict)
    digits: int = 4
    empty: str | None = None
    footer: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- cells
def _text(value, digits: int | None = None) -> str:
    """One cell as text: None is empty, lists are joined by ``"; "``, dicts are
    ``key=value`` pairs, floats get ``digits`` decimals (all of them when None)."""
    if value is None:
        return ""
    if isinstance(value, bool):  # yes / no in a table, true / false in a file
        return ("yes" if value else "no") if digits is not None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}" if digits is not None else repr(value)
    if isinstance(value, (list, tuple)):
        return "; ".join(_text(v, digits) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v, digits)}" for k, v in value.items())
    return str(value)


def _is_iri(column: str) -> bool:
    return column == "iri" or column.endswith("_iri")


def _cut(text: str, width: int, from_start: bool = False) -> str:
    """``text`` in ``width`` characters ending in ``…``; ``from_start``: starting with
    ``…`` instead, for IRIs, whose distinguishing part is their end (``…/product/vg-3742``)."""
    return "…" + text[len(text) - width + 1 :] if from_start else text[: width - 1] + "…"


# ---------------------------------------------------------------------- formats
def write_table(rows: Rows, out: TextIO, *, cut: bool) -> None:
    """Aligned columns; with ``cut`` (a terminal) long cells end in ``…`` (IRIs start with
    it: their end tells them apart) and a footer line names the machine formats that show
    them whole."""
    if not rows.records and rows.empty is not None:
        out.write(rows.empty + "\n")
        return
    cells = [[_text(r.get(c), rows.digits) for c in rows.columns] for r in rows.records]
    shortened = 0
    if cut:
        for row in cells:
            for i, column in enumerate(rows.columns):
                width = rows.widths.get(column, CELL_WIDTH)
                if len(row[i]) > width:
                    row[i] = _cut(row[i], width, from_start=_is_iri(column))
                    shortened += 1
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(rows.columns)]
    line = lambda row: "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
    out.write("\n".join([line(rows.columns), line(["-" * w for w in widths]), *map(line, cells)]))
    out.write("\n")
    for text in rows.footer:
        out.write(text + "\n")
    if shortened:
        out.write(
            f"({shortened} long cell{'s' * (shortened > 1)} cut to fit the terminal; "
            "--format csv or json shows them whole)\n"
        )


def write_csv(rows: Rows, out: TextIO, *, cut: bool = False, delimiter: str = ",") -> None:
    """One row per record, every value whole (lists joined by ``"; "``)."""
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(rows.columns)
    writer.writerows([[_text(r.get(c)) for c in rows.columns] for r in rows.records])


def write_tsv(rows: Rows, out: TextIO, *, cut: bool = False) -> None:
    write_csv(rows, out, delimiter="\t")


def write_json(rows: Rows, out: TextIO, *, cut: bool = False) -> None:
    """The command's JSON document, else the list of records (indented)."""
    document = rows.document if rows.document is not None else rows.records
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(rows: Rows, out: TextIO, *, cut: bool = False) -> None:
    """One compact JSON object per record and line."""
    for record in rows.records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


#: output formats by name: ``writer(rows, out, cut=...)``; ``cut`` is True on a terminal
FORMATS: dict[str, Callable[..., None]] = {
    "table": write_table,
    "csv": write_csv,
    "json": write_json,
    "jsonl": write_jsonl,
}
#: file formats by suffix, for ``-o FILE``
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_FILE_WRITERS = {**FORMATS, "tsv": write_tsv}


class OutputError(ValueError):
    """An output format or file that cannot be written; the message lists the choices."""


def format_for_path(path) -> str:
    """The file format of ``path`` by its suffix (see :data:`SUFFIXES`)."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise OutputError(
            f"{path}: cannot tell the format from {suffix or 'no suffix'!r}; "
            f"name the file {', '.join('*' + s for s in SUFFIXES)}"
        )
    return SUFFIXES[suffix]


def render(rows: Rows, fmt: str = "table", *, cut: bool = False) -> str:
    """``rows`` in format ``fmt`` as one string."""
    buffer = io.StringIO()
    _writer(fmt)(rows, buffer, cut=cut)
    return buffer.getvalue()


def _writer(fmt: str):
    if fmt not in _FILE_WRITERS:
        raise OutputError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _FILE_WRITERS[fmt]


def emit(rows: Rows, fmt: str = "table", *, path=None, out: TextIO | None = None) -> str:
    """Print ``rows`` (``out``, default stdout) in ``fmt``, or write them to ``path``
    atomically in the format of its suffix. Tables are cut only when ``out`` is a
    terminal. Returns the format used."""
    if path is not None:
        from kg.workspace import atomic_write_bytes

        fmt = format_for_path(path)
        atomic_write_bytes(Path(path), render(rows, fmt).encode("utf-8"))
        return fmt
    out = out if out is not None else sys.stdout
    isatty = getattr(out, "isatty", None)
    _writer(fmt)(rows, out, cut=bool(isatty and isatty()))
    return fmt


def add_format_argument(parser, default: str = "table", json_flag: bool = True) -> None:
    """``--format {table,csv,json,jsonl}`` (and ``--json``, short for ``--format json``)."""
    parser.add_argument(
        "--format", choices=list(FORMATS), default=None,
        help=f"output format (default {default}; csv, json and jsonl are never cut short)",
    )  # fmt: skip
    if json_flag:
        parser.add_argument("--json", action="store_true", help="same as --format json")
    parser.set_defaults(default_format=default)


def chosen_format(args) -> str:
    """The format that :func:`add_format_argument`'s options ask for."""
    if getattr(args, "json", False):
        return "json"
    return args.format or args.default_format


def emit_for_args(rows: Rows, args, what: str = "rows") -> None:
    """Print ``rows`` in the format ``args`` ask for, or write them to ``args.output``
    (the format from its suffix) and say so on stderr."""
    output = getattr(args, "output", None)
    if output is not None:
        fmt = emit(rows, path=output)
        print(f"wrote {len(rows.records):,} {what} ({fmt}) -> {output}", file=sys.stderr)
        return
    emit(rows, chosen_format(args))


# ---------------------------------------------------------------------- command rows
def quiet_transformers() -> None:
    """No per-model "Loading weights" bars from transformers on the command line."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def print_encode_report(features, report) -> None:
    """Print what :meth:`Session.encode` did: nodes and missing values per type and
    modality with the feature width, skipped inputs, and the encoded / cached counts."""
    from kg.report import format_table

    dims = features.dims()
    rows = [
        [node_type, modality, c["present"], c["missing"], dims[node_type][modality]]
        for node_type, mods in report.counts.items()
        for modality, c in mods.items()
    ]
    print("\n".join(format_table(["type", "modality", "nodes", "missing", "dim"], rows)))
    for problem in report.problems[:20]:
        print(f"  skipped: {problem}")
    if len(report.problems) > 20:
        print(f"  ... and {len(report.problems) - 20} more skipped")
    print(
        f"encoded {report.encoded:,} inputs, {report.cached:,} from cache, in {report.seconds:.1f}s"
    )


RELATED_COLUMNS = ["rank", "score", "similarity", "model", "known", "evidence_score", "iri",
                   "name", "type", "why"]  # fmt: skip
#: score parts of kg.related by output column (``model``: a link-prediction run's
#: probability; ``known``: the boost for an existing edge of the relation)
RELATED_PARTS = {"similarity": "similarity", "model": "scorer", "known": "relation",
                 "evidence_score": "evidence"}  # fmt: skip


def related_rows(items, query: dict | None = None) -> list[dict]:
    """One record per related item: rank, score, its parts, iri, name, type and every
    piece of evidence (``why``). ``query``: columns that name the query, put first."""
    return [
        {
            **(query or {}), "rank": n, "score": i.score,
            **{col: i.parts.get(part) for col, part in RELATED_PARTS.items()},
            "iri": i.iri, "name": i.name, "type": i.node_type, "why": list(i.evidence),
        }
        for n, i in enumerate(items, 1)
    ]  # fmt: skip


def related_output(items) -> Rows:
    """:class:`Rows` of related items; ``json`` keeps the parts as one object."""
    widths = {"iri": 50, "name": 44, "why": 80}
    return Rows(RELATED_COLUMNS, related_rows(items), document=related_records(items),
                widths=widths, digits=3, empty="no related entities")  # fmt: skip


def related_records(items) -> list[dict]:
    """Related items as JSON-ready records: iri, type, name, score, parts, evidence."""
    return [
        {"iri": i.iri, "type": i.node_type, "name": i.name, "score": i.score,
         "parts": i.parts, "evidence": i.evidence}
        for i in items
    ]  # fmt: skip


LINK_COLUMNS = ["mention", "start", "end", "nil", "rank", "iri", "name", "type", "score",
                "linked"]  # fmt: skip


def _names(graph):
    """``iri -> (display name, node type)`` for the answers of one command, cached."""
    from functools import cache

    from kg.labels import display_name

    @cache
    def lookup(iri: str) -> tuple[str, str]:
        try:
            node_type = graph.node(iri)[0]
        except KeyError:
            node_type = ""
        return display_name(graph, iri) or "", node_type

    return lookup


def link_summary(graph, links, keys: dict[str, list] | None = None) -> Rows:
    """One row per link (the table a terminal shows): the mention, the entity (NIL: the
    best candidate after it), its name, type and score; ``keys``: columns naming each
    link's input (a record id, an image path), first."""
    names = _names(graph)
    records = []
    for n, link in enumerate(links):
        record = {c: v[n] for c, v in (keys or {}).items()}
        best = link.alternatives[0][0] if link is not None and link.alternatives else None
        if link is None or (link.nil and best is None):
            record.update(mention=getattr(link, "mention", ""), entity="NIL")
        else:
            entity = f"NIL (best: {best})" if link.nil else link.iri
            record.update(mention=link.mention, start=link.start, end=link.end, entity=entity,
                          name=names(best if link.nil else link.iri)[0], score=link.score)
        records.append(record)
    columns = [*(keys or {}), "mention", "start", "end", "entity", "name", "score"]
    if keys and "image" in keys:
        columns = [c for c in columns if c not in ("mention", "start", "end")]
    return Rows(columns, records, digits=3, widths={"name": 40},
                empty="no mentions found")  # fmt: skip




def link_rows(graph, links, keys: dict[str, list] | None = None) -> Rows:
    """One row per link and candidate (csv, jsonl): the mention and its offsets, ``nil``,
    the candidate's ``rank`` (1: best), iri, name, type, probability, and ``linked`` (1 on
    the row that is the link); a link without candidates is one row. ``json`` writes one
    object per link instead (:meth:`align.Link.to_dict` with the entity's ``name``, and
    ``[iri, score, name]`` alternatives)."""
    names = _names(graph)
    records = []
    for n, link in enumerate(links):
        base = {c: v[n] for c, v in (keys or {}).items()}
        if link is None:  # a record with no text to link
            records.append({**base, "mention": "", "nil": True, "linked": False})
            continue
        base.update(mention=link.mention, start=link.start, end=link.end, nil=link.nil)
        if not link.alternatives:
            records.append({**base, "linked": False})
        for rank, (iri, score) in enumerate(link.alternatives, 1):
            name, node_type = names(iri)
            records.append({**base, "rank": rank, "iri": iri, "name": name, "type": node_type,
                            "score": score, "linked": not link.nil and iri == link.iri})
    document = [{**{c: v[n] for c, v in (keys or {}).items()},
                 **(link.to_dict() if link else {"nil": True, "alternatives": []})}
                for n, link in enumerate(links)]  # fmt: skip
    for record in document:  # names next to the IRIs
        record["name"] = names(record["iri"])[0] if record.get("iri") else None
        record["alternatives"] = [[iri, score, names(iri)[0]]
                                  for iri, score in record["alternatives"]]  # fmt: skip
    columns = [*(keys or {}), *LINK_COLUMNS]
    if keys and "image" in keys:  # a photo has no offsets; its mention is its path
        columns = [c for c in columns if c not in ("mention", "start", "end")]
    return Rows(columns, records, digits=3, document=document)


def metrics_output(metrics: dict[str, float]) -> Rows:
    """``metric, value`` rows; ``json`` writes the ``{metric: value}`` object."""
    records = [{"metric": k, "value": v} for k, v in sorted(metrics.items())]
    return Rows(["metric", "value"], records, document=dict(sorted(metrics.items())))


def sparql_output(result) -> Rows:
    """A :class:`kg.sparql.QueryResult` as rows (``json``: its ``variables``/``rows``
    document, or ``{"boolean"}`` for ASK)."""
    if result.kind == "ask":
        return Rows(["boolean"], [{"boolean": str(result.boolean).lower()}],
                    document={"boolean": result.boolean})  # fmt: skip
    records = [dict(zip(result.variables, row, strict=True)) for row in result.rows]
    footer = [f"({len(records)} rows{', cut at the row limit' if result.truncated else ''})"]
    return Rows(list(result.variables), records, footer=footer,
                document={"variables": result.variables, "rows": records})  # fmt: skip


def toml_text(config: dict) -> str:
    """A run configuration (``RunConfig.to_dict()``) as TOML that ``--config`` reads back:
    ``[task]``, ``[model]``, ``[data]``, ``[trainer]`` and ``[[aux]]`` tables; None values
    are left out (TOML has no null: the default applies)."""
    lines: list[str] = []

    def table(header: str, values: dict) -> None:
        lines.append(header)
        for key, value in values.items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")

    for section in ("task", "model", "data", "trainer"):
        table(f"[{section}]", config.get(section) or {})
    for aux in config.get("aux") or []:
        table("[[aux]]", aux)
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()
                          if v is not None)  # fmt: skip
        return "{" + (f" {inner} " if inner else "") + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")

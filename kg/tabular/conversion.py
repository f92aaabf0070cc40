"""Rows -> RDF: one entity per row, its literals and references, streamed to Turtle.

:func:`table_to_rdf` reads the table with its reader (:mod:`kg.tabular.readers`), converts
each row (:class:`_Converter`: the row's entity, typed; its literals, datatype-checked; its
reference nodes, each written once, with labels and hierarchy edges) and writes Turtle
(:mod:`kg.tabular.turtle`) to a temporary file that replaces the output only when the whole
table converted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import quote

from .errors import TableError
from .files import (
    MAX_TEXT_FILE_BYTES,
    SpecialFileError,
    outside,
    path_problem,
    read_regular_file,
    regular_file_size,
)
from .mapping import LANGUAGE_TAG, XSD, LiteralColumn, Mapping, ReferenceColumn
from .readers import READERS, Row, cell_values, table_format
from .stats import TableStats
from .turtle import RDF_TYPE, TurtleWriter

_INTEGER = r"[+-]?[0-9]+"
_DECIMAL = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
_TZ = r"(Z|[+-][0-9]{2}:[0-9]{2})?"
_INTEGER_TYPES = (
    "integer", "int", "long", "short", "byte", "nonNegativeInteger", "positiveInteger",
    "nonPositiveInteger", "negativeInteger", "unsignedLong", "unsignedInt", "unsignedShort",
    "unsignedByte",
)  # fmt: skip
_LEXICAL: dict[str, re.Pattern[str]] = {
    **{XSD + name: re.compile(_INTEGER) for name in _INTEGER_TYPES},
    XSD + "decimal": re.compile(_DECIMAL),
    XSD + "double": re.compile(rf"{_DECIMAL}([eE][+-]?[0-9]+)?|[+-]?INF|NaN"),
    XSD + "float": re.compile(rf"{_DECIMAL}([eE][+-]?[0-9]+)?|[+-]?INF|NaN"),
    XSD + "boolean": re.compile(r"true|false|1|0"),
    XSD + "date": re.compile(rf"-?[0-9]{{4,}}-[0-9]{{2}}-[0-9]{{2}}{_TZ}"),
    XSD + "dateTime": re.compile(
        rf"-?[0-9]{{4,}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(\.[0-9]+)?{_TZ}"
    ),
    XSD + "gYear": re.compile(rf"-?[0-9]{{4,}}{_TZ}"),
}
_URL = re.compile(r"(https?|ftp|file)://", re.IGNORECASE)


def _replace(text: str, replacements: tuple[tuple[str, str], ...]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def auto_prefixes(mapping: Mapping) -> dict[str, str]:
    """The mapping's prefixes plus one per entity / reference base ending in / or #."""
    prefixes = dict(mapping.prefixes)
    known = set(prefixes.values())
    for base in (mapping.base, *(r.base for r in mapping.references)):
        if base in known or not base.endswith(("/", "#")):
            continue
        segments = [s for s in re.split(r"[/#:.?=&]+", base) if s]
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", segments[-1] if segments else "").strip("_-")
        stem = stem.lower() if stem and stem[0].isalpha() else "ns" + stem
        name, n = stem, 2
        while name in prefixes:
            name, n = f"{stem}{n}", n + 1
        prefixes[name] = base
        known.add(base)
    return prefixes


class _Converter:
    def __init__(
        self,
        table: Path,
        mapping: Mapping,
        out: Path,
        writer: TurtleWriter,
        stats: TableStats,
        data_roots: tuple[Path, ...] = (),
    ):
        self.table, self.mapping, self.out = table, mapping, out
        self.data_roots = tuple(Path(r).absolute() for r in data_roots)
        self.w, self.stats = writer, stats
        self.ids: dict[str, int] = {}  # entity id -> the row that introduced it
        self.nodes: set[str] = set()  # IRIs typed so far (rows' entities, reference nodes)
        self.links: set[tuple[str, str]] = set()  # (child, parent) hierarchy edges written
        self.roots = {
            lit.root: self._root(lit.root) for lit in mapping.literals if lit.kind != "text"
        }

    def _root(self, spec: str) -> Path:
        mapping_dir = self.mapping.source.parent if self.mapping.source else Path.cwd()
        anchor, colon, sub = spec.partition(":")
        if colon and anchor in ("table", "mapping"):  # "table:images": a folder under it
            return (self._root(anchor) / sub).absolute()
        if spec == "table":
            return self.table.parent.absolute()
        if spec == "mapping":
            return mapping_dir.absolute()
        path = Path(spec).expanduser()
        return (path if path.is_absolute() else mapping_dir / path).absolute()

    def _count(self, types: tuple[str, ...]):
        for t in types:
            self.stats.entities[t] = self.stats.entities.get(t, 0) + 1

    def row(self, row: Row):
        m, stats = self.mapping, self.stats
        stats.rows += 1
        where = dict(path=self.table, row=row.number, line=row.line)
        ids = cell_values(row.cells.get(m.id_column), None)
        if isinstance(row.cells.get(m.id_column), list):
            raise TableError("the id must be one value, not a list", column=m.id_column, **where)
        if not ids:
            if row.blank:
                stats.skipped_rows += 1  # a row of empty cells (",,,"), no warning
                return
            if m.on_missing_id == "skip":
                stats.skipped_rows += 1
                stats.warn(f"{self.table}, row {row.number} (line {row.line}): no id; skipped")
                return
            raise TableError(
                "the id cell is empty; give every row an id (or set [entity] on_missing_id = "
                '"skip")',
                column=m.id_column,
                **where,
            )
        key = ids[0]
        subject_iri = m.base + quote(key, safe="")
        pairs: list[tuple[str, str]] = []
        if key in self.ids:
            if m.on_duplicate == "error":
                raise TableError(
                    f"duplicate id {key!r} (first in row {self.ids[key]}); make ids unique, or set "
                    '[entity] on_duplicate = "merge" (or "skip")',
                    column=m.id_column,
                    **where,
                )
            if m.on_duplicate == "skip":
                stats.skipped_rows += 1
                stats.warn(
                    f"{self.table}, row {row.number} (line {row.line}): duplicate id {key!r}; skipped"
                )
                return
        else:
            self.ids[key] = row.number
            self.nodes.add(subject_iri)
            self._count(m.types)
            pairs.extend((self.w.term(RDF_TYPE), self.w.term(t)) for t in m.types)

        extra: list[tuple[str, list[tuple[str, str]]]] = []
        for lit in m.literals:
            self._literal(lit, row, pairs, where)
        for ref in m.references:
            self._reference(ref, row, pairs, extra, where)
        self.w.block(self.w.iri(subject_iri), pairs)
        for node, node_pairs in extra:
            self.w.block(node, node_pairs)

    # ---------------------------------------------------------------- literals
    def _literal(self, lit: LiteralColumn, row: Row, pairs, where):
        values = cell_values(row.cells.get(lit.column), lit.separator)
        if not values:
            return
        predicate = self.w.term(lit.predicate)
        language = lit.language
        if lit.language_column is not None:
            tags = cell_values(row.cells.get(lit.language_column), None)
            language = tags[0] if tags else None
            if language is not None and not LANGUAGE_TAG.fullmatch(language):
                self.stats.warn(
                    f"{self.table}, row {row.number} (line {row.line}), column "
                    f"{lit.language_column!r}: {language!r} is not a language tag; "
                    "written without one"
                )
                language = None
        for value in values:
            value = _replace(value, lit.replace)
            if lit.kind == "image":
                value = self._image(lit, value, row, where)
            elif lit.kind == "text_file":
                value = self._text_file(lit, value, row, where)
            if not value:
                continue
            datatype = lit.datatype
            if datatype is not None:
                pattern = _LEXICAL.get(datatype)
                if pattern is not None and not pattern.fullmatch(value):
                    self.stats.warn(
                        f"{self.table}, row {row.number} (line {row.line}), column "
                        f"{lit.column!r}: {value!r} is not a valid {self.w.term(datatype)}; "
                        "kept as a plain string"
                    )
                    datatype = None
            pairs.append((predicate, self.w.literal(value, language, datatype)))

    def _path(self, lit: LiteralColumn, value: str, where) -> Path:
        problem = path_problem(value)
        if problem is not None:
            shown = repr(value if len(value) <= 60 else value[:57] + "...")
            raise TableError(f"{problem}: {shown}; fix the cell", column=lit.column, **where)
        root = self.roots[lit.root]
        if lit.leading_slash == "root":
            return root / value.lstrip("/\\")
        path = Path(value).expanduser()
        return path if path.is_absolute() else root / path

    def _confine(self, lit: LiteralColumn, path: Path, where) -> None:
        """Refuse a path that resolves (``..``, symlinks) outside the literal's root and
        the extra data roots: a table must not make the build read any file it likes."""
        roots = (self.roots[lit.root], *self.data_roots)
        if outside(path, roots):
            allowed = " or ".join(str(r) for r in roots)
            raise TableError(
                f"{path} is outside the allowed folder{'s' if len(roots) > 1 else ''} "
                f"({allowed}; symlinks and '..' are followed): a table may only name files "
                f"under its root (root = {lit.root!r}). Move the file there, set root = "
                '"DIR" in this [[literal]] of the mapping, or allow another folder with '
                "`kgf build --data-root DIR` (table_to_rdf(..., data_roots=[DIR]))",
                column=lit.column,
                **where,
            )

    def _missing(self, lit: LiteralColumn, path: Path, row: Row, where, why: str) -> None:
        hint = (
            ' (a leading "/" means the filesystem root; set leading_slash = "root" if the '
            "paths are relative to the table's folder)"
            if lit.leading_slash == "absolute"
            and str(row.cells.get(lit.column, "")).lstrip().startswith("/")
            else ""
        )
        if lit.on_missing == "error":
            raise TableError(
                f"{why}: {path}{hint}; fix the path (root = {lit.root!r}) or set "
                'on_missing = "skip"',
                column=lit.column,
                **where,
            )
        self.stats.warn(
            f"{self.table}, row {row.number} (line {row.line}), column {lit.column!r}: "
            f"{why}: {path}; skipped"
        )

    def _image(self, lit: LiteralColumn, value: str, row: Row, where) -> str | None:
        if _URL.match(value):
            return value
        path = self._path(lit, value, where)
        if lit.on_missing != "keep":
            try:
                regular_file_size(path)
            except FileNotFoundError:
                return self._missing(lit, path, row, where, "no such image file")
            except OSError as e:
                self._confine(lit, path, where)
                return self._missing(lit, path, row, where, _why(e, "image file"))
        self._confine(lit, path, where)
        path = Path(os.path.normpath(path))
        if lit.path_output == "relative":
            return Path(os.path.relpath(path, self.out.parent.absolute())).as_posix()
        return str(path)

    def _text_file(self, lit: LiteralColumn, value: str, row: Row, where) -> str | None:
        path = self._path(lit, value, where)
        try:
            regular_file_size(path)
        except FileNotFoundError:
            return self._missing(lit, path, row, where, "no such text file")
        except OSError:
            pass  # confined first, then reported by the read below
        self._confine(lit, path, where)
        try:
            data = read_regular_file(path, MAX_TEXT_FILE_BYTES)
        except FileNotFoundError:
            return self._missing(lit, path, row, where, "no such text file")
        except SpecialFileError as e:
            if e.errno == errno.EFBIG:
                raise TableError(
                    f"{path}: {e.strerror}; a text_file cell names a description, not a "
                    "data set", column=lit.column, **where,
                ) from e  # fmt: skip
            return self._missing(lit, path, row, where, _why(e, "text file"))
        except OSError as e:
            raise TableError(
                f"cannot read {path}: {e.strerror or e}", column=lit.column, **where
            ) from e
        try:
            text = data.decode(lit.file_encoding)
        except UnicodeDecodeError as e:
            raise TableError(
                f"{path} is not valid {lit.file_encoding} (byte {e.start}); re-save it as "
                "UTF-8 or set file_encoding",
                column=lit.column,
                **where,
            ) from e
        return text.replace("\r\n", "\n").replace("\r", "\n").strip()

    # -------------------------------------------------------------- references
    def _node(self, ref: ReferenceColumn, key: str, label: str | None, extra, level=None) -> str:
        """The IRI of a reference node, queueing its type and label the first time.

        ``level`` (a ParentLevel) gives the base and types of a parent level; the label
        options (predicate, language, replacements) are the reference's."""
        where = level or ref
        iri = where.base + quote(key.lower() if ref.lowercase else key, safe="")
        if iri not in self.nodes:
            self.nodes.add(iri)
            self._count(where.types)
            node_pairs = [(self.w.term(RDF_TYPE), self.w.term(t)) for t in where.types]
            if ref.name_predicate is not None and label:
                node_pairs.append(
                    (
                        self.w.term(ref.name_predicate),
                        self.w.literal(_replace(label, ref.replace), ref.name_language),
                    )
                )
            extra.append((self.w.iri(iri), node_pairs))
        return iri

    def _link(self, child: str, parent: str, ref: ReferenceColumn, extra):
        if (child, parent) not in self.links:
            self.links.add((child, parent))
            extra.append(
                (self.w.iri(child), [(self.w.term(ref.parent_predicate), self.w.iri(parent))])
            )

    @staticmethod
    def _parents(ref: ReferenceColumn, row: Row) -> list[tuple]:
        """(level, key, label) of each hierarchy level above the node, nearest first;
        the chain stops at the first empty cell."""
        chain = []
        for level in ref.parent_levels():
            keys = cell_values(row.cells.get(level.column), None)
            if not keys:
                break
            labels = (
                cell_values(row.cells.get(level.label_column), None) if level.label_column else keys
            )
            chain.append((level, keys[0], labels[0] if labels else None))
        return chain

    def _reference(self, ref: ReferenceColumn, row: Row, pairs, extra, where):
        keys = (ref.key(v) for v in cell_values(row.cells.get(ref.column), ref.separator))
        values = [k for k in keys if k is not None]
        if not values:
            return
        predicate = self.w.term(ref.predicate)
        labels: list[str | None] = list(values)
        if ref.label_column is not None:
            given = cell_values(row.cells.get(ref.label_column), ref.separator)
            if len(given) == len(values):
                labels = list(given)
            else:
                labels = [None] * len(values)
                self.stats.warn(
                    f"{self.table}, row {row.number} (line {row.line}), column "
                    f"{ref.label_column!r}: {len(given)} labels for {len(values)} values of "
                    f"{ref.column!r}; nodes left without a label"
                )
        parents = self._parents(ref, row)
        for value, label in zip(values, labels, strict=True):
            if ref.hierarchy_separator is not None:
                steps = [s.strip() for s in value.split(ref.hierarchy_separator) if s.strip()]
                node, path = None, []
                for step in steps:
                    path.append(step)
                    child = self._node(ref, ref.hierarchy_separator.join(path), step, extra)
                    if node is not None:
                        self._link(child, node, ref, extra)
                    node = child
                if node is None:
                    continue
            else:
                node = self._node(ref, value, label, extra)
                child = node
                for level, key, plabel in parents:
                    parent = self._node(ref, key, plabel, extra, level)
                    self._link(child, parent, ref, extra)
                    child = parent
            pairs.append((predicate, self.w.iri(node)))


def table_to_rdf(
    table: str | os.PathLike,
    mapping: Mapping | str | os.PathLike,
    out: str | os.PathLike,
    data_roots: tuple[str | os.PathLike, ...] | list = (),
) -> TableStats:
    """Convert a CSV / JSON Lines table to Turtle by ``mapping`` (the mapping format, values
    and IRIs: ``docs/tabular-mapping.md``).

    Args:
        table: the table file (``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``, each optionally
            ``.gz``; or any name with ``[table] format`` set).
        mapping: a :class:`Mapping` or the path of its TOML file.
        out: the Turtle file to write; written atomically (temp file + rename), so on error
            nothing is written and a previous file stays as it was.
        data_roots: folders besides each literal's ``root`` (the table's folder by
            default) whose files ``image`` / ``text_file`` cells may name; a path that
            resolves outside them all is refused (:mod:`kg.tabular.files`).

    Returns:
        :class:`TableStats` (rows, entities per type, triples, skipped rows, warnings).

    Raises:
        TableError: unreadable table, bad bytes, bad JSON, missing column, missing or
            duplicate id, missing file for an image / text column (the message says where).
        MappingError: an invalid mapping file.
    """
    table, out = Path(table), Path(out)
    if not isinstance(mapping, Mapping):
        mapping = Mapping.from_toml(mapping)
    if not table.is_file():
        raise TableError("no such table file" if not table.exists() else "not a file", path=table)
    fmt = table_format(table, mapping)
    prefixes = auto_prefixes(mapping)
    stats = TableStats(source=table, output=out, prefixes=prefixes)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            writer = TurtleWriter(fh, prefixes)
            source = f" with {mapping.source.name}" if mapping.source else ""
            writer.header(f"Generated by kgfusion (kg.tabular) from {table.name}{source}.")
            converter = _Converter(
                table, mapping, out, writer, stats, tuple(Path(r) for r in data_roots)
            )
            for row in READERS[fmt](table, mapping, stats):
                converter.row(row)
            stats.triples = writer.triples
            fh.flush()
            os.fsync(fh.fileno())
        mode = out.stat().st_mode & 0o777 if out.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return stats


def _why(err: OSError, what: str) -> str:
    """``"not a regular file (a FIFO)"``-style reason for a file that cannot be read."""
    reason = err.strerror or str(err)
    return reason if isinstance(err, SpecialFileError) else f"cannot read the {what}: {reason}"

"""Tabular catalogues (CSV / JSON Lines) -> RDF (Turtle), by a declarative TOML mapping.

Each row of the table becomes one entity (an IRI built from an id column), typed by the
mapping; mapped columns become literals (text with a language tag, typed numbers and dates,
image references, the text of a file a cell names) or references: a cell that names another
entity (a brand, a category) becomes a typed node of its own, with its label, linked to the
row's entity, optionally inside a hierarchy (``skos:broader``). The output is plain Turtle
that then goes through the normal RDF ingestion (:func:`kg.load_rdf`), so a table and an
RDF catalogue give the same kind of :class:`kg.ProductGraph`.

>>> from kg.tabular import Mapping, table_to_rdf
>>> mapping = Mapping.from_toml("examples/abt_buy.toml")                      # doctest: +SKIP
>>> stats = table_to_rdf("tableA.csv", mapping, "out/catalogue.ttl")         # doctest: +SKIP
>>> print(stats.summary())                                                    # doctest: +SKIP
1,081 rows -> 1,081 schema:Product; 3,661 triples; 0 skipped rows; 0 warnings

The conversion streams: rows are read and written one at a time; only the set of entity ids
(duplicate check) and of reference node IRIs (each node is written once) stays in memory.
The Turtle file is written to a temporary file next to the target and renamed over it only
when the whole table converted, so an error never leaves a half-written catalogue behind
(a previous output stays as it was).

Mapping format
==============

A full example (``products.toml``)::

    [table]                        # optional
    format = "csv"                 # "csv" | "jsonl"; default from the extension:
                                   # .csv, .tsv (tab-delimited), .jsonl, .ndjson, each + .gz
    delimiter = ","                # CSV only; one character
    encoding = "utf-8-sig"         # default: UTF-8, with or without a byte-order mark

    [prefixes]                     # optional, added to the predefined ones: schema, xsd, rdf,
    shop = "https://example.org/shop/"  # rdfs, skos, foaf, gr, owl, dcterms

    [entity]                       # one entity per row
    id = "sku"                     # the id column; IRI = base + percent-encoded id
    base = "https://example.org/shop/product/"
    type = "schema:Product"        # a prefixed name or an absolute IRI; or a list of them
    on_duplicate = "error"         # a second row with the same id: "error" | "merge" | "skip"
    on_missing_id = "error"        # a row without id: "error" | "skip"

    [[literal]]                    # a column -> one literal per (non-empty) value
    column = "name"
    predicate = "schema:name"
    language = "en"                # or language_column = "lang" (a tag per row)

    [[literal]]
    column = "name"                # a column may be mapped several times
    predicate = "schema:alternateName"
    replace = { "-" = " " }        # plain-text replacements, applied in order

    [[literal]]
    column = "price"
    predicate = "schema:price"
    datatype = "xsd:decimal"       # a value that is not a valid decimal stays a plain string
                                   # literal and is counted in the warnings
    [[literal]]
    column = "tags"
    predicate = "schema:keywords"
    separator = "|"                # multi-valued cell ("a|b|c"); a JSON list needs none

    [[literal]]
    column = "image"
    predicate = "schema:image"
    kind = "image"                 # a local path (or an http(s)/file URL, kept as it is)
    root = "table"                 # relative paths are relative to: "table" (the table's
                                   # folder, default) | "mapping" (the mapping's folder) | a
                                   # folder (relative to the mapping file)
    leading_slash = "absolute"     # "/x/y.jpg" is: "absolute" (default) | "root": under root
    on_missing = "error"           # file absent: "error" | "skip" (warning) | "keep" (no check)
    path_output = "absolute"       # written as: "absolute" path | "relative" to the Turtle file

    [[literal]]
    column = "description_file"
    predicate = "schema:description"
    kind = "text_file"             # the text of the file the cell names (same path options;
    language = "en"                # on_missing "error" | "skip"); file_encoding = "utf-8-sig"

    [[reference]]                  # a column naming another entity -> typed node + relation
    column = "brand"
    predicate = "schema:brand"
    type = "schema:Brand"
    base = "https://example.org/shop/brand/"
    name_predicate = "schema:name" # the node's label: the cell's value (or label_column)
    lowercase = true               # "Sony" and "sony" are one node (IRI only; the label keeps
                                   # the first spelling seen)
    [[reference]]
    column = "category"
    predicate = "schema:category"
    type = "schema:CategoryCode"
    base = "https://example.org/shop/category/"
    name_predicate = "schema:name"
    parent_column = "parent_category"   # hierarchy: category node -> parent category node
    parent_predicate = "skos:broader"   # default
    # or, for paths in one cell ("Audio > Speakers"): hierarchy_separator = " > "

Keys in detail
--------------

``[table]``: ``format``, ``delimiter``, ``quotechar`` (``"``), ``encoding``. CSV needs a
header row. A JSON Lines file holds one object per line; its keys are the columns, a list
is a multi-valued cell, numbers keep their written form, nested objects are refused.

``[prefixes]``: ``name = "namespace IRI"``; a predefined prefix may be redefined (e.g.
``schema = "https://schema.org/"``). The Turtle output also declares one prefix per entity
or reference base ending in ``/`` or ``#`` (``product:``, ``brand:``...), for readability.

``[entity]``: ``id``, ``base`` and ``type`` are required. ``on_duplicate = "merge"`` adds
the later rows' statements to the same entity.

``[[literal]]``: ``column`` and ``predicate`` are required; ``language`` /
``language_column`` (not with ``datatype``), ``datatype``, ``separator``, ``replace``,
``kind`` (``"text"`` default, ``"image"``, ``"text_file"``), the path options above, and
``optional = true`` to accept a table that lacks the column (warning) instead of failing.
Datatypes checked for their lexical form: the XSD integer types, ``decimal``, ``double``,
``float``, ``boolean``, ``date``, ``dateTime``, ``gYear``; others are written unchecked.

``[[reference]]``: ``column``, ``predicate``, ``type``, ``base`` are required; optional
``separator``, ``lowercase``, ``name_predicate``, ``name_language``, ``label_column``,
``replace`` (applied to the label), ``parent_column``, ``parent_label_column``,
``parent_predicate``, ``hierarchy_separator``, ``optional``.

Values and IRIs
---------------

Every cell is stripped of surrounding whitespace; empty cells (and empty values of a
multi-valued cell) give no statement. An entity or reference IRI is ``base +
urllib.parse.quote(value, safe="")`` of the stripped value (lowercased first with
``lowercase = true``), so any value gives a valid IRI and equal values give one node; with
``hierarchy_separator`` the key is the path up to that level, so ``"Audio > Speakers"`` and
``"Car > Speakers"`` are two nodes. Image paths are written as plain string literals
holding the resolved path (absolute by default); the graph resolves a relative path against
the Turtle file's folder, which ``path_output = "relative"`` accounts for.

Errors (:class:`TableError`, :class:`MappingError`) name the file, the row (and line) and
the column, and say what to do. Bad values that are not worth stopping for (an invalid
number, an invalid language tag, a skipped row) are collected in
:attr:`TableStats.warnings`.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .hints import did_you_mean

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "PREDEFINED_PREFIXES",
    "LiteralColumn",
    "Mapping",
    "MappingError",
    "ReferenceColumn",
    "TableError",
    "TableStats",
    "table_to_rdf",
]

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD = "http://www.w3.org/2001/XMLSchema#"

PREDEFINED_PREFIXES: dict[str, str] = {
    "schema": "http://schema.org/",
    "xsd": XSD,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "gr": "http://purl.org/goodrelations/v1#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "dcterms": "http://purl.org/dc/terms/",
}

#: How many warning messages :class:`TableStats` keeps (all are counted).
MAX_WARNINGS = 100

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
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_PREFIX_NAME = re.compile(r"[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?")
_LOCAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # a safe subset of Turtle's PN_LOCAL
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_IRI_ILLEGAL = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_URL = re.compile(r"(https?|ftp|file)://", re.IGNORECASE)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_LITERAL_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)} | {
    0x7F: "\\u007F",
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord("\b"): "\\b",
    ord("\f"): "\\f",
}

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
}


class TableError(ValueError):
    """Bad tabular input: the message names the file, the row (line) and column, and what
    to do. ``path``, ``row``, ``line`` and ``column`` hold the place when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        row: int | None = None,
        line: int | None = None,
        column: str | None = None,
    ):
        self.path = Path(path) if path is not None else None
        self.row, self.line, self.column = row, line, column
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class MappingError(TableError):
    """An invalid mapping file: unknown key (with a suggestion), bad value, unknown prefix."""


# --------------------------------------------------------------------------- mapping


def _suggest(word: str, choices) -> str:
    return did_you_mean(word, choices)


_BLANK_OK = {"separator", "hierarchy_separator", "delimiter", "quotechar"}  # " " / "\t" are fine


class _Section:
    """Validates one table of the mapping file: known keys, types, allowed values."""

    def __init__(self, data: Any, where: str, source: Path | None):
        self.where, self.source = where, source
        if not isinstance(data, dict):
            self.fail(f"must be a table (got {type(data).__name__})")
        self.data = data
        self.used: set[str] = set()

    def fail(self, message: str):
        raise MappingError(f"{self.where}: {message}", path=self.source)

    def get(self, key: str, kind: type | tuple = str, default: Any = None, required=False):
        self.used.add(key)
        if key not in self.data:
            if required:
                self.fail(f"missing required key {key!r}")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is str and isinstance(value, bool)):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            self.fail(f"{key!r} must be a {names} (got {value!r})")
        if isinstance(value, str) and not (value if key in _BLANK_OK else value.strip()):
            self.fail(f"{key!r} must not be empty")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            self.fail(
                f"{key!r} must be one of {', '.join(map(repr, choices))} (got {value!r})"
                + _suggest(value, choices)
            )
        return value

    def done(self):
        for key in self.data:
            if key not in self.used:
                self.fail(f"unknown key {key!r}{_suggest(key, self.used)}")


def _check_iri(iri: str, section: _Section, key: str) -> str:
    if not _SCHEME.match(iri) or _IRI_ILLEGAL.search(iri):
        section.fail(
            f'{key!r}: {iri!r} is not an absolute IRI (scheme:..., no spaces or <>"{{}}|^`\\)'
        )
    return iri


def _expand(name: str, prefixes: dict[str, str], section: _Section, key: str) -> str:
    """A prefixed name (``schema:Product``), ``<IRI>`` or absolute IRI -> full IRI."""
    name = name.strip()
    if name.startswith("<") and name.endswith(">"):
        return _check_iri(name[1:-1], section, key)
    prefix, colon, local = name.partition(":")
    if not colon:
        section.fail(
            f"{key!r}: {name!r} is neither a prefixed name (e.g. 'schema:{name}') nor an "
            "absolute IRI"
        )
    if prefix in prefixes:
        return _check_iri(prefixes[prefix] + local, section, key)
    if local.startswith("//") or prefix.lower() in ("urn", "mailto", "tag", "file"):
        return _check_iri(name, section, key)
    section.fail(
        f"{key!r}: unknown prefix {prefix!r} in {name!r}{_suggest(prefix, prefixes)} "
        f"(known: {', '.join(sorted(prefixes))}; declare others under [prefixes])"
    )
    raise AssertionError  # unreachable


def _replacements(section: _Section) -> tuple[tuple[str, str], ...]:
    table = section.get("replace", dict, {})
    for old, new in table.items():
        if not old or not isinstance(new, str):
            section.fail(f"'replace' maps non-empty text to text (got {old!r} = {new!r})")
    return tuple(table.items())


@dataclass(frozen=True)
class LiteralColumn:
    """One ``[[literal]]`` entry: a column -> literals of one predicate (IRIs expanded)."""

    column: str
    predicate: str
    language: str | None = None
    language_column: str | None = None
    datatype: str | None = None
    kind: str = "text"  # "text" | "image" | "text_file"
    separator: str | None = None
    replace: tuple[tuple[str, str], ...] = ()
    root: str = "table"
    leading_slash: str = "absolute"
    on_missing: str = "error"
    path_output: str = "absolute"
    file_encoding: str = "utf-8-sig"
    optional: bool = False


@dataclass(frozen=True)
class ReferenceColumn:
    """One ``[[reference]]`` entry: a column naming other entities (IRIs expanded)."""

    column: str
    predicate: str
    types: tuple[str, ...]
    base: str
    separator: str | None = None
    lowercase: bool = False
    name_predicate: str | None = None
    name_language: str | None = None
    label_column: str | None = None
    replace: tuple[tuple[str, str], ...] = ()
    parent_column: str | None = None
    parent_label_column: str | None = None
    parent_predicate: str = PREDEFINED_PREFIXES["skos"] + "broader"
    hierarchy_separator: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Mapping:
    """A validated table -> RDF mapping (see the module docstring for the format)."""

    id_column: str
    base: str
    types: tuple[str, ...]
    literals: tuple[LiteralColumn, ...] = ()
    references: tuple[ReferenceColumn, ...] = ()
    prefixes: dict[str, str] = field(default_factory=lambda: dict(PREDEFINED_PREFIXES))
    format: str | None = None
    delimiter: str | None = None
    quotechar: str = '"'
    encoding: str = "utf-8-sig"
    on_duplicate: str = "error"
    on_missing_id: str = "error"
    source: Path | None = None

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> Mapping:
        """Read and validate a mapping file (:class:`MappingError` when it is invalid)."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as e:
            raise MappingError(f"cannot read the mapping file: {e.strerror or e}", path=path) from e
        except tomllib.TOMLDecodeError as e:
            raise MappingError(f"not valid TOML: {e}", path=path) from e
        return cls.from_dict(data, source=path)

    @classmethod
    def from_dict(cls, data: dict, source: str | os.PathLike | None = None) -> Mapping:
        """Validate a mapping given as a dict (the parsed TOML); ``source`` is the mapping
        file, used in messages and for ``root = "mapping"``."""
        src = Path(source) if source is not None else None
        top = _Section(data, "mapping", src)

        raw_prefixes = _Section(top.get("prefixes", dict, {}), "[prefixes]", src)
        prefixes = dict(PREDEFINED_PREFIXES)
        for name in raw_prefixes.data:
            ns = raw_prefixes.get(name, str)
            if not _PREFIX_NAME.fullmatch(name):
                raw_prefixes.fail(f"{name!r} is not a valid prefix name (letters, digits, _ - .)")
            prefixes[name] = _check_iri(ns, raw_prefixes, name)

        table = _Section(top.get("table", dict, {}), "[table]", src)
        fmt = table.get("format", str)
        if fmt is not None and fmt not in ("csv", "jsonl"):
            table.fail(
                f"'format' must be 'csv' or 'jsonl' (got {fmt!r}){_suggest(fmt, ['csv', 'jsonl'])}"
            )
        delimiter = table.get("delimiter", str)
        quotechar = table.get("quotechar", str, '"')
        for key, value in (("delimiter", delimiter), ("quotechar", quotechar)):
            if value is not None and len(value) != 1:
                table.fail(f"{key!r} must be one character (got {value!r}); use '\\t' for tab")
        encoding = table.get("encoding", str, "utf-8-sig")
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            table.fail(f"unknown encoding {encoding!r}")
        if codec.startswith(("utf-16", "utf-32")):
            table.fail(f"{encoding!r} is not supported: re-encode the table as UTF-8")
        table.done()

        entity = _Section(top.get("entity", dict, required=True), "[entity]", src)
        id_column = entity.get("id", str, required=True)
        base = _check_iri(entity.get("base", str, required=True), entity, "base")
        types = _types(entity, prefixes)
        on_duplicate = entity.choice("on_duplicate", ("error", "merge", "skip"), "error")
        on_missing_id = entity.choice("on_missing_id", ("error", "skip"), "error")
        entity.done()

        for key, entry in (("literal", "[[literal]]"), ("reference", "[[reference]]")):
            if isinstance(data.get(key), dict):
                top.fail(f"write {entry} (an array of tables, one per column), not [{key}]")
        literals = tuple(
            _literal(_Section(item, f"[[literal]] #{i} ({_col(item)})", src), prefixes)
            for i, item in enumerate(top.get("literal", list, []), 1)
        )
        references = tuple(
            _reference(_Section(item, f"[[reference]] #{i} ({_col(item)})", src), prefixes)
            for i, item in enumerate(top.get("reference", list, []), 1)
        )
        top.done()
        return cls(
            id_column=id_column,
            base=base,
            types=types,
            literals=literals,
            references=references,
            prefixes=prefixes,
            format=fmt,
            delimiter=delimiter,
            quotechar=quotechar,
            encoding=encoding,
            on_duplicate=on_duplicate,
            on_missing_id=on_missing_id,
            source=src,
        )

    def columns(self) -> list[str]:
        """Every column the mapping reads, in mapping order, without repeats."""
        cols = [self.id_column]
        for lit in self.literals:
            cols += [lit.column, lit.language_column]
        for ref in self.references:
            cols += [ref.column, ref.label_column, ref.parent_column, ref.parent_label_column]
        return list(dict.fromkeys(c for c in cols if c is not None))

    def optional_columns(self) -> set[str]:
        """Columns whose absence from the table is only a warning."""
        required = {self.id_column}
        optional: set[str] = set()
        for entry in (*self.literals, *self.references):
            cols = {entry.column}
            if isinstance(entry, LiteralColumn) and entry.language_column:
                cols.add(entry.language_column)
            if isinstance(entry, ReferenceColumn):
                cols |= {entry.label_column, entry.parent_column, entry.parent_label_column}
            cols.discard(None)
            (optional if entry.optional else required).update(cols)
        return optional - required


def _col(item: Any) -> str:
    return repr(item.get("column")) if isinstance(item, dict) else "?"


def _types(section: _Section, prefixes: dict[str, str]) -> tuple[str, ...]:
    raw = section.get("type", (str, list), required=True)
    names = [raw] if isinstance(raw, str) else raw
    if not names or not all(isinstance(n, str) for n in names):
        section.fail(f"'type' must be a name or a non-empty list of names (got {raw!r})")
    return tuple(_expand(n, prefixes, section, "type") for n in names)


def _literal(s: _Section, prefixes: dict[str, str]) -> LiteralColumn:
    column = s.get("column", str, required=True)
    predicate = _expand(s.get("predicate", str, required=True), prefixes, s, "predicate")
    kind = s.choice("kind", ("text", "image", "text_file"), "text")
    language = s.get("language", str)
    language_column = s.get("language_column", str)
    datatype = s.get("datatype", str)
    if language is not None and not _LANGUAGE.fullmatch(language):
        s.fail(f"'language' {language!r} is not a language tag (e.g. 'en', 'en-GB')")
    if language is not None and language_column is not None:
        s.fail("give 'language' or 'language_column', not both")
    if datatype is not None:
        datatype = _expand(datatype, prefixes, s, "datatype")
        if language is not None or language_column is not None:
            s.fail("a literal has a language or a datatype, not both")
        if kind != "text":
            s.fail(f"kind = {kind!r} literals are strings; remove 'datatype'")
        if datatype == XSD + "string":
            datatype = None
    if kind == "image" and (language or language_column):
        s.fail("an image reference has no language; remove it")
    separator = s.get("separator", str)
    path_keys = ("root", "leading_slash", "on_missing", "path_output", "file_encoding")
    if kind == "text":
        for key in path_keys:
            if key in s.data:
                s.fail(f"{key!r} applies to kind = 'image' or 'text_file' only")
    root = s.get("root", str, "table")
    leading_slash = s.choice("leading_slash", ("absolute", "root"), "absolute")
    missing = ("error", "skip", "keep") if kind == "image" else ("error", "skip")
    on_missing = s.choice("on_missing", missing, "error")
    path_output = s.choice("path_output", ("absolute", "relative"), "absolute")
    if kind != "image" and "path_output" in s.data:
        s.fail("'path_output' applies to kind = 'image' only")
    file_encoding = s.get("file_encoding", str, "utf-8-sig")
    if kind != "text_file" and "file_encoding" in s.data:
        s.fail("'file_encoding' applies to kind = 'text_file' only")
    try:
        codecs.lookup(file_encoding)
    except LookupError:
        s.fail(f"unknown encoding {file_encoding!r}")
    result = LiteralColumn(
        column=column,
        predicate=predicate,
        language=language,
        language_column=language_column,
        datatype=datatype,
        kind=kind,
        separator=separator,
        replace=_replacements(s),
        root=root,
        leading_slash=leading_slash,
        on_missing=on_missing,
        path_output=path_output,
        file_encoding=file_encoding,
        optional=s.get("optional", bool, False),
    )
    s.done()
    return result


def _reference(s: _Section, prefixes: dict[str, str]) -> ReferenceColumn:
    column = s.get("column", str, required=True)
    predicate = _expand(s.get("predicate", str, required=True), prefixes, s, "predicate")
    types = _types(s, prefixes)
    base = _check_iri(s.get("base", str, required=True), s, "base")
    separator = s.get("separator", str)
    hierarchy_separator = s.get("hierarchy_separator", str)
    name_predicate = s.get("name_predicate", str)
    if name_predicate is not None:
        name_predicate = _expand(name_predicate, prefixes, s, "name_predicate")
    name_language = s.get("name_language", str)
    if name_language is not None and not _LANGUAGE.fullmatch(name_language):
        s.fail(f"'name_language' {name_language!r} is not a language tag (e.g. 'en')")
    label_column = s.get("label_column", str)
    parent_column = s.get("parent_column", str)
    parent_label_column = s.get("parent_label_column", str)
    parent_predicate = s.get("parent_predicate", str, "skos:broader")
    parent_predicate = _expand(parent_predicate, prefixes, s, "parent_predicate")
    if name_predicate is None:
        for key in ("name_language", "label_column", "parent_label_column", "replace"):
            if key in s.data:
                s.fail(f"{key!r} needs 'name_predicate' (the predicate of the node's label)")
    if parent_column is not None and hierarchy_separator is not None:
        s.fail("give 'parent_column' or 'hierarchy_separator', not both")
    if parent_column is None and "parent_label_column" in s.data:
        s.fail("'parent_label_column' needs 'parent_column'")
    if parent_column is None and hierarchy_separator is None and "parent_predicate" in s.data:
        s.fail("'parent_predicate' needs 'parent_column' or 'hierarchy_separator'")
    if label_column is not None and hierarchy_separator is not None:
        s.fail("'label_column' cannot label a path; the last path element is the label")
    result = ReferenceColumn(
        column=column,
        predicate=predicate,
        types=types,
        base=base,
        separator=separator,
        lowercase=s.get("lowercase", bool, False),
        name_predicate=name_predicate,
        name_language=name_language,
        label_column=label_column,
        replace=_replacements(s),
        parent_column=parent_column,
        parent_label_column=parent_label_column,
        parent_predicate=parent_predicate,
        hierarchy_separator=hierarchy_separator,
        optional=s.get("optional", bool, False),
    )
    s.done()
    return result


# --------------------------------------------------------------------------- Turtle


def turtle_string(value: str) -> str:
    """A Turtle string literal (double quotes; backslash, quote, control characters
    escaped)."""
    return '"' + value.translate(_LITERAL_ESCAPES) + '"'


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group().encode("utf-8"))


def turtle_iri(iri: str) -> str:
    """``<iri>`` with the characters Turtle forbids in an IRIREF percent-encoded."""
    return "<" + _IRI_ILLEGAL.sub(_percent, iri) + ">"


class _TurtleWriter:
    """Writes subject blocks to a text stream, compacting IRIs with the prefixes."""

    def __init__(self, fh, prefixes: dict[str, str]):
        self.fh = fh
        self.prefixes = prefixes
        self.by_namespace: dict[str, str] = {}
        for name, ns in sorted(prefixes.items()):
            self.by_namespace.setdefault(ns, name)
        self.triples = 0
        self._cache: dict[str, str] = {RDF_TYPE: "a"}

    def header(self, comment: str):
        for line in comment.splitlines():
            self.fh.write(f"# {line}\n")
        for name, ns in sorted(self.prefixes.items()):
            self.fh.write(f"@prefix {name}: {turtle_iri(ns)} .\n")
        self.fh.write("\n")

    def iri(self, iri: str) -> str:
        for sep in ("#", "/"):
            cut = iri.rfind(sep)
            if cut >= 0:
                name = self.by_namespace.get(iri[: cut + 1])
                local = iri[cut + 1 :]
                if name is not None and _LOCAL_NAME.fullmatch(local):
                    return f"{name}:{local}"
                break
        return turtle_iri(iri)

    def term(self, iri: str) -> str:
        """A cached rendering for the few IRIs used over and over (predicates, types)."""
        out = self._cache.get(iri)
        if out is None:
            out = self._cache[iri] = self.iri(iri)
        return out

    def literal(self, value: str, language: str | None = None, datatype: str | None = None):
        text = turtle_string(value)
        if language:
            return f"{text}@{language}"
        if datatype:
            return f"{text}^^{self.term(datatype)}"
        return text

    def block(self, subject: str, pairs: list[tuple[str, str]]):
        if not pairs:
            return
        body = " ;\n    ".join(f"{p} {o}" for p, o in pairs)
        self.fh.write(f"{subject} {body} .\n\n")
        self.triples += len(pairs)


def _auto_prefixes(mapping: Mapping) -> dict[str, str]:
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


# --------------------------------------------------------------------------- reading


@dataclass
class _Row:
    number: int  # 1-based data row (the header is not a row)
    line: int  # first physical line of the row
    cells: dict[str, Any]  # column -> str | list | None (only the mapped columns)
    blank: bool = False  # every field of the row is empty


def _open_binary(path: Path):
    try:
        return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")
    except OSError as e:
        raise TableError(f"cannot open the table: {e.strerror or e}", path=path) from e


def _table_format(path: Path, mapping: Mapping) -> str:
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
            f"{_suggest(column, available)}; available columns: "
            f"{', '.join(repr(c) for c in available)}",
            path=path,
        )


def _read_csv(path: Path, mapping: Mapping, stats: TableStats) -> Iterator[_Row]:
    delimiter = mapping.delimiter or ("\t" if ".tsv" in [s.lower() for s in path.suffixes] else ",")
    columns = mapping.columns()
    with _open_binary(path) as fh:
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
                yield _Row(row_number, start, cells, blank=not any(c.strip() for c in record))
        except csv.Error as e:
            raise TableError(
                f"CSV syntax error: {e}; check the quoting (an unclosed quote swallows the "
                "following lines)",
                path=path,
                row=row_number + 1 if header else None,
                line=last_line + 1,
            ) from e
        if header is None:
            raise TableError("the table is empty (a CSV table needs a header row)", path=path)


_JSON_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _flat(value: Any) -> str:
    """The text of a JSON value (strings of a list or object joined; no escaping)."""
    if isinstance(value, list):
        return " ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k} {_flat(v)}" for k, v in value.items())
    return str(value)


def _read_jsonl(path: Path, mapping: Mapping, stats: TableStats) -> Iterator[_Row]:
    columns = mapping.columns()
    seen: set[str] = set()
    keys: dict[str, None] = {}
    with _open_binary(path) as fh:
        lines = _Lines(fh, mapping.encoding, path)
        row_number = 0
        for text in lines:
            if not text.strip():
                continue
            row_number += 1
            line = lines.number
            try:
                obj = json.loads(
                    text.rstrip("\r\n"), parse_int=str, parse_float=str, parse_constant=str
                )
            except json.JSONDecodeError as e:
                raise TableError(
                    f"not valid JSON ({e.msg} at character {e.pos + 1}); a JSON Lines file holds "
                    "one complete object per line",
                    path=path,
                    row=row_number,
                    line=line,
                ) from e
            if not isinstance(obj, dict):
                raise TableError(
                    f"expected a JSON object, got {type(obj).__name__}; each line must be one "
                    'object {"column": value, ...}',
                    path=path,
                    row=row_number,
                    line=line,
                )
            if line in lines.bad:
                for key, value in obj.items():
                    flat = _flat(value)
                    if _SURROGATE.search(key + flat):
                        raise _decode_error(
                            path, row_number, line, key, f"{key}: {flat}", mapping.encoding
                        )
            surrogates = "\\u" in text and _JSON_SURROGATE_ESCAPE.search(text) is not None
            if len(keys) < 1000:
                keys.update(dict.fromkeys(obj))
            cells = {}
            for column in columns:
                if column not in obj:
                    continue
                seen.add(column)
                value = obj[column]
                if isinstance(value, dict) or (
                    isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
                ):
                    raise TableError(
                        "nested objects/lists are not supported; flatten the object (one key "
                        "per mapped value, a list of plain values for a multi-valued cell)",
                        path=path,
                        row=row_number,
                        line=line,
                        column=column,
                    )
                if surrogates and _SURROGATE.search(_flat(value)):
                    raise TableError(
                        "a lone surrogate escape (\\ud800-\\udfff) is not text; fix the JSON "
                        "string",
                        path=path,
                        row=row_number,
                        line=line,
                        column=column,
                    )
                cells[column] = value
            yield _Row(
                row_number, line, cells, blank=not any(_values(v, None) for v in obj.values())
            )
    optional = mapping.optional_columns()
    for column in columns:
        if column in seen:
            continue
        if column in optional:
            stats.warn(f"{path}: optional column {column!r} appears in no object")
            continue
        raise TableError(
            f"the mapping names column {column!r}, which appears in no object of the table"
            f"{_suggest(column, keys)}; keys seen: {', '.join(repr(k) for k in keys)}",
            path=path,
        )


# --------------------------------------------------------------------------- conversion


@dataclass
class TableStats:
    """What :func:`table_to_rdf` did.

    ``rows``: data rows read (blank lines excluded); ``skipped_rows``: rows that gave no
    entity (all cells empty, or skipped for a missing / duplicate id); ``entities``: new
    nodes per type IRI (rows' entities and reference nodes); ``triples``: statements written;
    ``warnings``: the first :data:`MAX_WARNINGS` messages, ``warning_count`` all of them.
    """

    source: Path
    output: Path
    rows: int = 0
    skipped_rows: int = 0
    entities: dict[str, int] = field(default_factory=dict)
    triples: int = 0
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    prefixes: dict[str, str] = field(default_factory=dict, repr=False)

    def warn(self, message: str):
        self.warning_count += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)

    def summary(self, prefixes: dict[str, str] | None = None) -> str:
        """One line: rows -> entities per type; triples; skipped rows; warnings."""
        prefixes = prefixes or self.prefixes or PREDEFINED_PREFIXES
        by_ns = {ns: name for name, ns in sorted(prefixes.items(), reverse=True)}

        def short(iri: str) -> str:
            for sep in ("#", "/"):
                cut = iri.rfind(sep)
                if cut >= 0 and iri[: cut + 1] in by_ns:
                    return f"{by_ns[iri[: cut + 1]]}:{iri[cut + 1 :]}"
            return iri

        entities = ", ".join(f"{n:,} {short(t)}" for t, n in self.entities.items())
        return (
            f"{self.rows:,} rows -> {entities or 'no entities'}; {self.triples:,} triples; "
            f"{self.skipped_rows:,} skipped rows; {self.warning_count:,} warnings"
        )


def _values(raw: Any, separator: str | None) -> list[str]:
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


def _replace(text: str, replacements: tuple[tuple[str, str], ...]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return text


class _Converter:
    def __init__(
        self, table: Path, mapping: Mapping, out: Path, writer: _TurtleWriter, stats: TableStats
    ):
        self.table, self.mapping, self.out = table, mapping, out
        self.w, self.stats = writer, stats
        self.ids: dict[str, int] = {}  # entity id -> the row that introduced it
        self.nodes: set[str] = set()  # IRIs typed so far (rows' entities, reference nodes)
        self.links: set[tuple[str, str]] = set()  # (child, parent) hierarchy edges written
        self.roots = {
            lit.root: self._root(lit.root) for lit in mapping.literals if lit.kind != "text"
        }

    def _root(self, spec: str) -> Path:
        mapping_dir = self.mapping.source.parent if self.mapping.source else Path.cwd()
        if spec == "table":
            return self.table.parent.absolute()
        if spec == "mapping":
            return mapping_dir.absolute()
        path = Path(spec).expanduser()
        return (path if path.is_absolute() else mapping_dir / path).absolute()

    def _count(self, types: tuple[str, ...]):
        for t in types:
            self.stats.entities[t] = self.stats.entities.get(t, 0) + 1

    def row(self, row: _Row):
        m, stats = self.mapping, self.stats
        stats.rows += 1
        where = dict(path=self.table, row=row.number, line=row.line)
        ids = _values(row.cells.get(m.id_column), None)
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
    def _literal(self, lit: LiteralColumn, row: _Row, pairs, where):
        values = _values(row.cells.get(lit.column), lit.separator)
        if not values:
            return
        predicate = self.w.term(lit.predicate)
        language = lit.language
        if lit.language_column is not None:
            tags = _values(row.cells.get(lit.language_column), None)
            language = tags[0] if tags else None
            if language is not None and not _LANGUAGE.fullmatch(language):
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

    def _path(self, lit: LiteralColumn, value: str) -> Path:
        root = self.roots[lit.root]
        if lit.leading_slash == "root":
            return root / value.lstrip("/\\")
        path = Path(value).expanduser()
        return path if path.is_absolute() else root / path

    def _missing(self, lit: LiteralColumn, path: Path, row: _Row, where, why: str) -> None:
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

    def _image(self, lit: LiteralColumn, value: str, row: _Row, where) -> str | None:
        if _URL.match(value):
            return value
        path = self._path(lit, value)
        if lit.on_missing != "keep" and not path.is_file():
            return self._missing(lit, path, row, where, "no such image file")
        path = Path(os.path.normpath(path))
        if lit.path_output == "relative":
            return Path(os.path.relpath(path, self.out.parent.absolute())).as_posix()
        return str(path)

    def _text_file(self, lit: LiteralColumn, value: str, row: _Row, where) -> str | None:
        path = self._path(lit, value)
        try:
            with open(path, encoding=lit.file_encoding) as fh:
                text = fh.read()
        except FileNotFoundError:
            return self._missing(lit, path, row, where, "no such text file")
        except UnicodeDecodeError as e:
            raise TableError(
                f"{path} is not valid {lit.file_encoding} (byte {e.start}); re-save it as "
                "UTF-8 or set file_encoding",
                column=lit.column,
                **where,
            ) from e
        except OSError as e:
            raise TableError(
                f"cannot read {path}: {e.strerror or e}", column=lit.column, **where
            ) from e
        return text.strip()

    # -------------------------------------------------------------- references
    def _node(self, ref: ReferenceColumn, key: str, label: str | None, extra) -> str:
        """The IRI of a reference node, queueing its type and label the first time."""
        iri = ref.base + quote(key.lower() if ref.lowercase else key, safe="")
        if iri not in self.nodes:
            self.nodes.add(iri)
            self._count(ref.types)
            node_pairs = [(self.w.term(RDF_TYPE), self.w.term(t)) for t in ref.types]
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

    def _reference(self, ref: ReferenceColumn, row: _Row, pairs, extra, where):
        values = _values(row.cells.get(ref.column), ref.separator)
        if not values:
            return
        predicate = self.w.term(ref.predicate)
        labels: list[str | None] = list(values)
        if ref.label_column is not None:
            given = _values(row.cells.get(ref.label_column), ref.separator)
            if len(given) == len(values):
                labels = list(given)
            else:
                labels = [None] * len(values)
                self.stats.warn(
                    f"{self.table}, row {row.number} (line {row.line}), column "
                    f"{ref.label_column!r}: {len(given)} labels for {len(values)} values of "
                    f"{ref.column!r}; nodes left without a label"
                )
        parent = None
        if ref.parent_column is not None:
            parents = _values(row.cells.get(ref.parent_column), None)
            if parents:
                plabels = (
                    _values(row.cells.get(ref.parent_label_column), None)
                    if ref.parent_label_column
                    else parents
                )
                parent = (parents[0], plabels[0] if plabels else None)
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
                if parent is not None:
                    self._link(node, self._node(ref, parent[0], parent[1], extra), ref, extra)
            pairs.append((predicate, self.w.iri(node)))


def table_to_rdf(
    table: str | os.PathLike,
    mapping: Mapping | str | os.PathLike,
    out: str | os.PathLike,
) -> TableStats:
    """Convert a CSV / JSON Lines table to Turtle by ``mapping``; see the module docstring.

    Args:
        table: the table file (``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``, each optionally
            ``.gz``; or any name with ``[table] format`` set).
        mapping: a :class:`Mapping` or the path of its TOML file.
        out: the Turtle file to write; written atomically (temp file + rename), so on error
            nothing is written and a previous file stays as it was.

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
    fmt = _table_format(table, mapping)
    prefixes = _auto_prefixes(mapping)
    stats = TableStats(source=table, output=out, prefixes=prefixes)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            writer = _TurtleWriter(fh, prefixes)
            source = f" with {mapping.source.name}" if mapping.source else ""
            writer.header(f"Generated by kgfusion (kg.tabular) from {table.name}{source}.")
            converter = _Converter(table, mapping, out, writer, stats)
            reader: Callable[..., Iterator[_Row]] = _read_csv if fmt == "csv" else _read_jsonl
            for row in reader(table, mapping, stats):
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

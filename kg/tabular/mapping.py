"""The table -> RDF mapping: read a TOML file, validate it, expand prefixed names.

:meth:`Mapping.from_toml` (or :meth:`Mapping.from_dict`) gives a frozen :class:`Mapping`
with every name expanded to a full IRI: the ``[entity]`` (id column, base, types), its
``[[literal]]`` columns (:class:`LiteralColumn`) and ``[[reference]]`` columns
(:class:`ReferenceColumn`). Unknown keys are refused with a suggestion; every message names
the mapping file and the section. The format is documented in ``docs/tabular-mapping.md``.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..hints import close_matches
from .errors import MappingError, suggest
from .files import read_regular_file
from .turtle import IRI_ILLEGAL

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


#: A BCP 47-like language tag (``en``, ``en-GB``).
LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_PREFIX_NAME = re.compile(r"[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")

MAX_MAPPING_BYTES = 1 << 20  # a mapping is a few KB

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
                typo = close_matches(key, [k for k in self.data if k not in self.used], n=1)
                hint = f" (is {typo[0]!r} a misspelling of {key!r}?)" if typo else ""
                self.fail(f"missing required key {key!r}{hint}")
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
                + suggest(value, choices)
            )
        return value

    def done(self):
        for key in self.data:
            if key not in self.used:
                self.fail(f"unknown key {key!r}{suggest(key, self.used)}")


def _check_iri(iri: str, section: _Section, key: str) -> str:
    if not _SCHEME.match(iri) or IRI_ILLEGAL.search(iri):
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
        f"{key!r}: unknown prefix {prefix!r} in {name!r}{suggest(prefix, prefixes)} "
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
class ParentLevel:
    """One ``[[reference.parent]]`` level: the column naming the parent of the level
    below (its own base and type, e.g. article type -> sub-category -> master category)."""

    column: str
    base: str
    types: tuple[str, ...]
    label_column: str | None = None


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
    parents: tuple[ParentLevel, ...] = ()
    pattern: re.Pattern | None = None

    def key(self, value: str) -> str | None:
        """The node key a cell value names: the value itself, or with ``pattern`` the first
        non-empty capture group of its match at the start (the whole match without groups);
        ``None`` where it does not match (or matches only blanks)."""
        if self.pattern is None:
            return value
        found = self.pattern.match(value)
        if found is None:
            return None
        key = (next((g for g in found.groups() if g), None) or found.group(0)).strip()
        return key or None

    def parent_levels(self) -> tuple[ParentLevel, ...]:
        """The hierarchy above the node, nearest first (``parent_column`` is one level of
        the node's own base and type)."""
        if self.parent_column is None:
            return self.parents
        own = ParentLevel(self.parent_column, self.base, self.types, self.parent_label_column)
        return (own,)


@dataclass(frozen=True)
class Mapping:
    """A validated table -> RDF mapping (the format: ``docs/tabular-mapping.md``)."""

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
            raw = read_regular_file(path, MAX_MAPPING_BYTES)
        except OSError as e:
            raise MappingError(f"cannot read the mapping file: {e.strerror or e}", path=path) from e
        try:
            text = raw.decode("utf-8-sig")  # a UTF-8 BOM (Windows editors) is fine
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise MappingError(
                f"bytes {raw[e.start : e.end]!r} are not valid UTF-8 (byte {e.start}); TOML "
                "files are UTF-8: re-save the mapping as UTF-8",
                path=path,
                line=line,
            ) from e
        try:
            data = tomllib.loads(text)
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
                f"'format' must be 'csv' or 'jsonl' (got {fmt!r}){suggest(fmt, ['csv', 'jsonl'])}"
            )
        delimiter = table.get("delimiter", str)
        quotechar = table.get("quotechar", str, '"')
        for key, value in (("delimiter", delimiter), ("quotechar", quotechar)):
            if value is not None and len(value) != 1:
                table.fail(f"{key!r} must be one character (got {value!r}); use '\\t' for tab")
        encoding = table.get("encoding", str, "utf-8-sig")
        codec = _text_codec(table, "encoding", encoding)
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
            for level in ref.parents:
                cols += [level.column, level.label_column]
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
                cols |= {c for p in entry.parents for c in (p.column, p.label_column)}
            cols.discard(None)
            (optional if entry.optional else required).update(cols)
        return optional - required


def _text_codec(section: _Section, key: str, name: str) -> str:
    """The codec name of ``name``, refused unless it is a text encoding (bytes <-> str):
    ``base64``, ``rot13``, ``zlib`` are codecs too, but not text encodings."""
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a name holding NUL
        section.fail(f"{key!r}: unknown encoding {name!r} (e.g. 'utf-8', 'cp1252', 'latin-1')")
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_TABLE_ENCODINGS:
        section.fail(
            f"{key!r}: {name!r} is not a text encoding of files (e.g. 'utf-8', 'cp1252', 'latin-1')"
        )
    return info.name


# Text codecs in name only: they encode domain names or Python source, not files.
_NOT_TABLE_ENCODINGS = {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined"}


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
    if language is not None and not LANGUAGE_TAG.fullmatch(language):
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
    _text_codec(s, "file_encoding", file_encoding)
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
    if name_language is not None and not LANGUAGE_TAG.fullmatch(name_language):
        s.fail(f"'name_language' {name_language!r} is not a language tag (e.g. 'en')")
    label_column = s.get("label_column", str)
    parent_column = s.get("parent_column", str)
    parent_label_column = s.get("parent_label_column", str)
    parent_predicate = s.get("parent_predicate", str, "skos:broader")
    parent_predicate = _expand(parent_predicate, prefixes, s, "parent_predicate")
    parents = _parent_levels(s, prefixes)
    if parents and (parent_column is not None or hierarchy_separator is not None):
        s.fail("give [[reference.parent]] levels, 'parent_column' or 'hierarchy_separator': one")
    if name_predicate is None:
        for key in ("name_language", "label_column", "parent_label_column", "replace"):
            if key in s.data:
                s.fail(f"{key!r} needs 'name_predicate' (the predicate of the node's label)")
    if parent_column is not None and hierarchy_separator is not None:
        s.fail("give 'parent_column' or 'hierarchy_separator', not both")
    if parent_column is None and "parent_label_column" in s.data:
        s.fail("'parent_label_column' needs 'parent_column'")
    if (
        parent_column is None
        and hierarchy_separator is None
        and not parents
        and ("parent_predicate" in s.data)
    ):
        s.fail(
            "'parent_predicate' needs [[reference.parent]], 'parent_column' or 'hierarchy_separator'"
        )
    if label_column is not None and hierarchy_separator is not None:
        s.fail("'label_column' cannot label a path; the last path element is the label")
    pattern = _pattern(s)
    if pattern is not None and (label_column is not None or hierarchy_separator is not None):
        s.fail("'pattern' names the node by part of the cell; it cannot be combined with "
               "'label_column' or 'hierarchy_separator'")  # fmt: skip
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
        parents=parents,
        pattern=pattern,
    )
    s.done()
    return result


def _pattern(s: _Section) -> re.Pattern | None:
    """``pattern``: a Python regular expression matched at the start of each cell value
    (e.g. the brand at the head of a product name: ``'^(.+?) (?:Men|Women) |^(\\S+)'``)."""
    text = s.get("pattern", str)
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as e:
        s.fail(f"'pattern' {text!r} is not a regular expression: {e}")


def _parent_levels(s: _Section, prefixes: dict[str, str]) -> tuple[ParentLevel, ...]:
    """``[[reference.parent]]`` tables, nearest level first: column, base, type, label_column."""
    raw = s.get("parent", list, [])
    levels = []
    for n, item in enumerate(raw, 1):
        sub = _Section(item, f"{s.where} parent #{n}", s.source)
        column = sub.get("column", str, required=True)
        base = _check_iri(sub.get("base", str, required=True), sub, "base")
        levels.append(
            ParentLevel(column, base, _types(sub, prefixes), sub.get("label_column", str))
        )
        sub.done()
    return tuple(levels)

"""RDF ingestion: files in any common serialisation -> :class:`kg.ProductGraph`.

Every file is streamed through pyoxigraph's parser (Rust) straight into integer id maps:
one dictionary entry per distinct node and predicate, compact ``array`` buffers for edges,
types and literals, and no Python object kept per triple. Supported: N-Triples, N-Quads,
Turtle, TriG, N3, RDF/XML and JSON-LD, each optionally gzip-compressed (``.gz``); a folder
is read recursively, and several sources are merged into one graph (named graphs of
N-Quads / TriG are merged into the default graph).

What becomes what:

- ``rdf:type`` objects give node types (see :mod:`kg.graph` for the rule when a node has
  several); they are not nodes themselves.
- An object that is an IRI or a blank node gives an edge, typed by the predicate.
- A literal gives a value in a literal column; a value of an image predicate
  (``schema:image``, ``foaf:depiction``... configurable), IRI or literal, gives an image
  reference instead of an edge.
- Blank nodes are scoped to their file: ``_:b0`` in two files are two nodes; within a
  build a blank node keeps one id.

Safety: pyoxigraph never resolves XML external entities nor fetches remote JSON-LD
contexts; we also refuse RDF/XML with an ``<!ENTITY ... SYSTEM|PUBLIC`` declaration up
front, with a message saying so.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import warnings
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"

DEFAULT_IMAGE_PREDICATES = (
    "http://schema.org/image",
    "https://schema.org/image",
    "http://schema.org/thumbnailUrl",
    "http://xmlns.com/foaf/0.1/depiction",
    "http://xmlns.com/foaf/0.1/img",
)

#: File extension -> pyoxigraph format. ``.gz`` is stripped first.
FORMATS: dict[str, ox.RdfFormat] = {
    ".nt": ox.RdfFormat.N_TRIPLES,
    ".ntriples": ox.RdfFormat.N_TRIPLES,
    ".nq": ox.RdfFormat.N_QUADS,
    ".nquads": ox.RdfFormat.N_QUADS,
    ".ttl": ox.RdfFormat.TURTLE,
    ".turtle": ox.RdfFormat.TURTLE,
    ".trig": ox.RdfFormat.TRIG,
    ".n3": ox.RdfFormat.N3,
    ".rdf": ox.RdfFormat.RDF_XML,
    ".owl": ox.RdfFormat.RDF_XML,
    ".xml": ox.RdfFormat.RDF_XML,
    ".jsonld": ox.RdfFormat.JSON_LD,
    ".json": ox.RdfFormat.JSON_LD,
}
FORMAT_NAMES = {
    "nt": ".nt", "ntriples": ".nt", "n-triples": ".nt", "nq": ".nq", "nquads": ".nq",
    "n-quads": ".nq", "ttl": ".ttl", "turtle": ".ttl", "trig": ".trig", "n3": ".n3",
    "xml": ".rdf", "rdfxml": ".rdf", "rdf/xml": ".rdf", "jsonld": ".jsonld", "json-ld": ".jsonld",
}  # fmt: skip


class RdfError(ValueError):
    """Bad RDF input: the message names the file (and line) and what to do."""


class RdfSyntaxError(RdfError):
    """A syntax error, with ``path``, ``line``, ``column`` and the offending ``text``."""

    def __init__(self, path: Path, line: int | None, column: int | None, message: str):
        self.path, self.line, self.column = path, line, column
        self.text = _line_text(path, line) if line else None
        where = (
            f"{path}, line {line}" + (f", column {column}" if column else "") if line else str(path)
        )
        shown = f"\n    {self.text.rstrip()}" if self.text else ""
        super().__init__(f"{where}: {message}{shown}\nFix the file (or skip it) and build again.")


def _line_text(path: Path, line: int) -> str | None:
    try:
        with io.TextIOWrapper(_open(path), "utf-8", errors="replace") as text:
            for number, raw in enumerate(text, 1):
                if number == line:
                    return raw[:200]
    except OSError:
        return None
    return None


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def detect_format(path: Path, fmt: str | None = None) -> ox.RdfFormat:
    """The pyoxigraph format of ``path`` from ``fmt`` or the extension (``.gz`` stripped)."""
    if fmt is not None:
        key = FORMAT_NAMES.get(fmt.lower().lstrip("."), "." + fmt.lower().lstrip("."))
        if key in FORMATS:
            return FORMATS[key]
        raise RdfError(f"unknown RDF format {fmt!r}; supported: {supported_formats()}")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    raise RdfError(
        f"{path}: cannot tell the RDF format from the extension; supported: "
        f"{supported_formats()} (optionally .gz), or pass format=..."
    )


def supported_formats() -> str:
    return ", ".join(sorted(FORMATS))


def expand_sources(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly, plus every RDF file found (recursively, sorted) in folders."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_rdf_name(p))
            if not found:
                raise RdfError(f"{path}: folder holds no RDF file ({supported_formats()})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise RdfError(f"{path}: no such file or folder")
    return files


def _is_rdf_name(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in FORMATS


def _refuse_external_entities(path: Path) -> None:
    with _open(path) as fh:
        head = fh.read(1 << 16).decode("utf-8", errors="replace")
    if "<!ENTITY" in head and ("SYSTEM" in head or "PUBLIC" in head):
        raise RdfError(
            f"{path}: the RDF/XML declares an external entity (<!ENTITY ... SYSTEM/PUBLIC>); "
            "external entities are never resolved. Remove the DOCTYPE declaration."
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class RawTriples:
    """All triples of a build as integer arrays plus the vocabularies they index.

    ``nodes`` holds IRIs and blank nodes (``_:label``); edges are ``(src, pred, dst)`` node
    / predicate ids; ``type_node``/``type_class`` the ``rdf:type`` pairs; literals are
    ``(lit_node, lit_pred, lit_value, lit_dtype, lit_lang, lit_source)``. A literal whose
    ``datatypes`` entry is ``""`` is an IRI-valued image reference.
    """

    nodes: list[str] = field(default_factory=list)
    predicates: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    datatypes: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    src: array = field(default_factory=lambda: array("q"))
    pred: array = field(default_factory=lambda: array("i"))
    dst: array = field(default_factory=lambda: array("q"))
    type_node: array = field(default_factory=lambda: array("q"))
    type_class: array = field(default_factory=lambda: array("i"))
    lit_node: array = field(default_factory=lambda: array("q"))
    lit_pred: array = field(default_factory=lambda: array("i"))
    lit_dtype: array = field(default_factory=lambda: array("i"))
    lit_lang: array = field(default_factory=lambda: array("i"))
    lit_source: array = field(default_factory=lambda: array("i"))
    lit_value: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    skipped: int = 0


class TripleSink:
    """Streams quads into :class:`RawTriples` (the one place triples are interned)."""

    def __init__(self, image_predicates: Iterable[str] = DEFAULT_IMAGE_PREDICATES):
        self.raw = RawTriples()
        self._node_ids: dict[str, int] = {}
        self._pred_ids: dict[str, int] = {}
        self._class_ids: dict[str, int] = {}
        self._dtype_ids: dict[str, int] = {"": 0}
        self._lang_ids: dict[str, int] = {}
        self.raw.datatypes.append("")
        self._image_predicates = set(image_predicates)

    @staticmethod
    def _intern(table: dict[str, int], values: list[str], key: str) -> int:
        ident = table.get(key)
        if ident is None:
            ident = table[key] = len(values)
            values.append(key)
        return ident

    def add_quads(self, quads: Iterable, source: int, scope: str) -> int:
        """Add quads from one source; ``scope`` keeps its blank nodes apart. Returns count."""
        raw, nodes, node_ids = self.raw, self.raw.nodes, self._node_ids
        intern = self._intern
        named, blank, literal = ox.NamedNode, ox.BlankNode, ox.Literal
        src_add, pred_add, dst_add = raw.src.append, raw.pred.append, raw.dst.append
        pred_cache: dict[str, tuple[int, str]] = {}
        lang_ids, dtype_ids = self._lang_ids, self._dtype_ids
        lang_string = intern(dtype_ids, raw.datatypes, RDF_LANG_STRING)
        ln_add, lp_add, lv_add = raw.lit_node.append, raw.lit_pred.append, raw.lit_value.append
        ld_add, ll_add, ls_add = raw.lit_dtype.append, raw.lit_lang.append, raw.lit_source.append
        count = 0
        for quad in quads:
            count += 1
            s = quad.subject
            if type(s) is named:
                s_key = s.value
            elif type(s) is blank:
                s_key = f"_:{scope}{s.value}"
            else:  # RDF-star quoted triple as subject
                raw.skipped += 1
                continue
            sid = node_ids.get(s_key)
            if sid is None:
                sid = node_ids[s_key] = len(nodes)
                nodes.append(s_key)
            p = quad.predicate.value
            cached = pred_cache.get(p)
            if cached is None:
                role = "type" if p == RDF_TYPE else "image" if p in self._image_predicates else ""
                cached = pred_cache[p] = (intern(self._pred_ids, raw.predicates, p), role)
            pid, role = cached
            o = quad.object
            to = type(o)
            if to is literal:
                lang = o.language
                if lang is None:
                    lang_id = -1
                    dt = o.datatype.value
                    dtype_id = dtype_ids.get(dt)
                    if dtype_id is None:
                        dtype_id = intern(dtype_ids, raw.datatypes, dt)
                else:
                    dtype_id = lang_string
                    lang_id = lang_ids.get(lang)
                    if lang_id is None:
                        lang_id = intern(lang_ids, raw.languages, lang)
                ln_add(sid)
                lp_add(pid)
                lv_add(o.value)
                ld_add(dtype_id)
                ll_add(lang_id)
                ls_add(source)
            elif role == "type" and to is named:
                raw.type_node.append(sid)
                raw.type_class.append(intern(self._class_ids, raw.classes, o.value))
            elif role == "image" and to is named:
                self._add_value(sid, pid, o.value, 0, -1, source)
            elif to is named or to is blank:
                o_key = o.value if to is named else f"_:{scope}{o.value}"
                oid = node_ids.get(o_key)
                if oid is None:
                    oid = node_ids[o_key] = len(nodes)
                    nodes.append(o_key)
                src_add(sid)
                pred_add(pid)
                dst_add(oid)
            else:
                raw.skipped += 1
        return count

    def _add_value(self, sid, pid, value, dtype_id, lang_id, source) -> None:
        raw = self.raw
        raw.lit_node.append(sid)
        raw.lit_pred.append(pid)
        raw.lit_value.append(value)
        raw.lit_dtype.append(dtype_id)
        raw.lit_lang.append(lang_id)
        raw.lit_source.append(source)

    def add_file(
        self, path: Path, fmt: str | None = None, base_iri: str | None = None, lenient: bool = False
    ) -> None:
        """Parse one file (gzip transparently) into the sink; errors name file and line."""
        rdf_format = detect_format(path, fmt)
        if rdf_format == ox.RdfFormat.RDF_XML:
            _refuse_external_entities(path)
        source = len(self.raw.sources)
        base = base_iri or path.resolve().as_uri()
        try:
            with _open(path) as fh:
                count = self.add_quads(
                    ox.parse(fh, rdf_format, base_iri=base, lenient=lenient),
                    source,
                    scope=f"f{source}_",
                )
        except SyntaxError as err:
            message = str(err)
            if "LoadDocumentCallback" in message:
                message = "a remote JSON-LD @context is never fetched; inline the context"
            elif "IRI" in message and not lenient:
                message += " (to accept such IRIs as they are, use lenient=True / --lenient)"
            raise RdfSyntaxError(path, err.lineno, err.offset, message) from None
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise RdfError(f"{path}: cannot read ({err})") from None
        self.raw.sources.append(
            {
                "path": str(path.resolve()),
                "format": rdf_format.name,
                "sha256": sha256_file(path),
                "triples": count,
            }
        )


def load_rdf(
    paths,
    *,
    format: str | None = None,
    base_iri: str | None = None,
    image_predicates: Iterable[str] = DEFAULT_IMAGE_PREDICATES,
    lenient: bool = False,
    progress: bool = False,
    **graph_options,
):
    """Read RDF files or folders into one :class:`kg.ProductGraph`.

    Args:
        paths: a file, a folder (read recursively) or a list of them.
        format: force a format (``"nt"``, ``"ttl"``, ``"xml"``, ``"jsonld"``...);
            by default it comes from each file's extension.
        base_iri: base for relative IRIs (default: each file's ``file://`` URI).
        image_predicates: predicates whose values are image references.
        lenient: accept invalid IRIs (e.g. with spaces) instead of failing; such a graph
            may not serialise back to valid RDF.
        progress: show a progress bar over files.
        **graph_options: typing options of :class:`kg.graph.GraphOptions`
            (``default_type``, ``multi_type``, ``type_priority``).

    Raises:
        RdfError / RdfSyntaxError: unknown format, unreadable file, or a syntax error
        (the message gives file, line, column and the offending text).
    """
    from .graph import GraphOptions, ProductGraph

    files = expand_sources(paths)
    options = GraphOptions(image_predicates=tuple(image_predicates), **graph_options)
    sink = TripleSink(options.image_predicates)
    iterator = files
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(files, desc="parsing", unit="file", disable=None)
    for path in iterator:
        sink.add_file(path, format, base_iri, lenient)
    total = sum(s["triples"] for s in sink.raw.sources)
    if total == 0:
        warnings.warn(
            f"no triples in {', '.join(map(str, files))}: the graph is empty", stacklevel=2
        )
    return ProductGraph(sink.raw, options)

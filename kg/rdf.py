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
contexts. Before parsing, :mod:`kg.rdf_guard` scans RDF/XML and JSON-LD once and refuses
external, parameter and exploding ("billion laughs") entities and over-deep nesting, with
the file and line. Whatever goes wrong while reading (truncated gzip, a token over
pyoxigraph's 16 MiB buffer, a syntax error) is an :class:`RdfError` naming the file, the
line where it can be found, and what to do.
"""

from __future__ import annotations

import gzip
import os
import re
import warnings
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyoxigraph as ox

from .graph import GraphOptions, ProductGraph
from .nt_parallel import ChunkError, add_lines_file, pays_off
from .rdf_guard import SCANS, ScanError
from .triples import DEFAULT_IMAGE_PREDICATES as DEFAULT_IMAGE_PREDICATES
from .triples import RawTriples as RawTriples
from .triples import TripleSink as TripleSink
from .workspace import sha256_file

#: pyoxigraph refuses a token (a literal, an IRI) longer than this with a MemoryError.
MAX_TOKEN_BYTES = 16 << 20

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
    """The first 200 characters of line ``line`` of ``path`` (never reads a whole long line)."""
    try:
        with _open(path) as fh:
            number, start = 1, True
            while True:
                piece = fh.readline(1 << 16)
                if not piece:
                    return None
                if number == line and start:
                    return piece[:800].decode("utf-8", errors="replace")[:200]
                start = piece.endswith(b"\n")
                number += start
    except (OSError, EOFError, zlib.error):
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


def add_file(
    sink: TripleSink,
    path: Path,
    fmt: str | None = None,
    base_iri: str | None = None,
    lenient: bool = False,
    workers: int | None = None,
    unhashed: list | None = None,
) -> None:
    """Parse one file (gzip transparently) into ``sink``; errors name file and line.

    N-Triples and N-Quads are read in parallel chunks (:mod:`kg.nt_parallel`) by
    ``workers`` processes (``workers=1``: chunks in this process); by default, on every core
    for files of 16 MB and more (one core: chunks in this process), else streamed.
    The file's source record gets its sha256 here, or, given ``unhashed``, later: the
    record and the path are appended to it (:func:`load_rdf` hashes while it builds).

    Raises:
        RdfError: unreadable or truncated file, a token over pyoxigraph's 16 MiB buffer.
        RdfSyntaxError: a syntax error or an input refused by :mod:`kg.rdf_guard`.
    """
    rdf_format = detect_format(path, fmt)
    source = len(sink.raw.sources)
    base = base_iri or path.resolve().as_uri()
    odd_languages = len(sink.odd_languages)
    try:
        if rdf_format in LINE_FORMATS and (workers is not None or pays_off(path)):
            count = _add_lines(sink, path, rdf_format, source, lenient, workers)
        else:
            count = _add_streamed(sink, path, rdf_format, source, base, lenient)
    except ScanError as err:
        raise RdfSyntaxError(path, err.line, err.column, err.message) from None
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise RdfError(
            f"{path}: cannot read ({err}); the file is damaged or truncated: "
            "download or copy it again"
        ) from None
    if len(sink.odd_languages) > odd_languages:
        odd = sink.odd_languages[odd_languages:]
        warnings.warn(
            f"{path}: {len(odd)} invalid language tag(s) accepted by lenient reading were "
            f"fixed or dropped: {', '.join(odd[:3])}",
            stacklevel=3,
        )
    record = {
        "path": str(path.resolve()),
        "format": rdf_format.name,
        "sha256": None if unhashed is not None else sha256_file(path),
        "triples": count,
    }
    sink.raw.sources.append(record)
    if unhashed is not None:
        unhashed.append((record, path))


#: Line-based formats, read in parallel chunks.
LINE_FORMATS = (ox.RdfFormat.N_TRIPLES, ox.RdfFormat.N_QUADS)


def _add_lines(sink, path: Path, rdf_format, source: int, lenient, workers) -> int:
    try:
        quads = rdf_format == ox.RdfFormat.N_QUADS
        return add_lines_file(sink, path, quads, source, lenient, workers)
    except ChunkError as err:
        if err.kind == "token":
            raise _token_error(path, err.line) from None
        message = err.message + f" (line {err.line})"
        if "IRI" in message and not lenient:
            message += " (to accept such IRIs as they are, use lenient=True / --lenient)"
        raise RdfSyntaxError(path, err.line, err.column, message) from None


def _token_error(path: Path, line: int) -> RdfError:
    return RdfError(
        f"{path}, near line {line}: a literal or IRI longer than "
        f"{MAX_TOKEN_BYTES >> 20} MiB; store such data in a file and refer "
        "to it by IRI"
    )


def _add_streamed(sink, path: Path, rdf_format, source: int, base: str, lenient: bool) -> int:
    """Stream a file through pyoxigraph into ``sink`` (after its safety pre-scan)."""
    scan = SCANS.get(rdf_format.name)
    if scan is not None:
        with _open(path) as fh:
            scan(fh)
    with _open(path) as fh:
        try:
            count = sink.add_quads(
                ox.parse(fh, rdf_format, base_iri=base, lenient=lenient),
                source,
                scope=f"f{source}_",
            )
        except SyntaxError as err:
            raise _syntax_error(path, fh, err, lenient) from None
        except MemoryError as err:
            if "buffer maximal size" not in str(err):
                raise
            line = _line_at(path, max(0, fh.tell() - MAX_TOKEN_BYTES))
            raise _token_error(path, line) from None
    return count


_QUOTED = re.compile(r"'([^']{1,200})'|`([^`]{1,200})`")


def _syntax_error(path: Path, fh, err: SyntaxError, lenient: bool) -> RdfSyntaxError:
    """An :class:`RdfSyntaxError` from pyoxigraph's; when the parser gives no line (RDF/XML,
    JSON-LD semantics), the quoted text of its message is looked for where it stopped."""
    message = str(err)
    if "LoadDocumentCallback" in message:
        message = "a remote JSON-LD @context is never fetched; inline the context"
    elif "IRI" in message and not lenient:
        message += " (to accept such IRIs as they are, use lenient=True / --lenient)"
    line, column = err.lineno, err.offset
    if line is None:
        try:
            stopped = fh.tell()
        except (OSError, ValueError, EOFError):
            stopped = None
        if stopped is not None:
            found = _find_quoted(path, message, stopped)
            if found:
                line, column = found
            else:
                message += f" (the parser stopped near line {_line_at(path, stopped)})"
    return RdfSyntaxError(path, line, column, message)


def _find_quoted(path: Path, message: str, stopped: int, window: int = 1 << 16):
    """(line, column) of the first text quoted in ``message`` within ``window`` bytes
    before byte ``stopped`` of ``path``, or None."""
    tokens = [(a or b).encode("utf-8") for a, b in _QUOTED.findall(message)]
    first = message.split(maxsplit=1)[0] if message.strip() else ""
    if not first.isalpha():  # "1x is not a valid rdf:ID value": look for the attribute value
        tokens += [f'"{first}"'.encode(), f"'{first}'".encode()]
    if not tokens:
        return None
    start = max(0, stopped - window)
    try:
        with _open(path) as fh:
            fh.seek(start)
            data = fh.read(stopped - start)
    except (OSError, EOFError, zlib.error):
        return None
    for token in tokens:
        at = data.find(token)
        if at >= 0:
            line_start = data.rfind(b"\n", 0, at)
            known = line_start >= 0 or start == 0
            return _line_at(path, start + at), (at - line_start if known else None)
    return None


def _line_at(path: Path, offset: int) -> int:
    """1-based line number of byte ``offset`` of ``path`` (decompressed)."""
    newlines, seen = 0, 0
    try:
        with _open(path) as fh:
            while seen < offset:
                chunk = fh.read(min(1 << 20, offset - seen))
                if not chunk:
                    break
                newlines += chunk.count(b"\n")
                seen += len(chunk)
    except (OSError, EOFError, zlib.error):
        pass
    return newlines + 1


def load_rdf(
    paths,
    *,
    format: str | None = None,
    base_iri: str | None = None,
    image_predicates: Iterable[str] = DEFAULT_IMAGE_PREDICATES,
    lenient: bool = False,
    progress: bool = False,
    workers: int | None = None,
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
        workers: processes that parse N-Triples / N-Quads chunks (default: every core
            for files of 16 MB and more, chunks in this process on one core, else the file
            is streamed through pyoxigraph); other formats always stream.
        **graph_options: typing options of :class:`kg.graph.GraphOptions`
            (``default_type``, ``multi_type``, ``type_priority``).

    Raises:
        RdfError / RdfSyntaxError: unknown format, unreadable file, or a syntax error
        (the message gives file, line, column and the offending text).
    """
    files = expand_sources(paths)
    options = GraphOptions(image_predicates=tuple(image_predicates), **graph_options)
    sink = TripleSink(options.image_predicates)
    iterator = files
    if progress and len(files) > 1:
        from .progress import progress as bar

        iterator = bar(files, desc="parsing", unit="file")
    unhashed: list = []
    for path in iterator:
        add_file(sink, path, format, base_iri, lenient, workers, unhashed)
    total = sum(s["triples"] for s in sink.raw.sources)
    if total == 0:
        warnings.warn(
            f"no triples in {', '.join(map(str, files))}: the graph is empty", stacklevel=2
        )
    # the files' sha256 on a second core while this one builds the graph (hashlib and file
    # reads release the GIL): the build is the one serial step of a parallel read
    with ThreadPoolExecutor(max_workers=1) as hasher:
        hashes = [(record, hasher.submit(sha256_file, path)) for record, path in unhashed]
        graph = ProductGraph(sink.raw, options)
        for record, future in hashes:
            record["sha256"] = future.result()
    return graph

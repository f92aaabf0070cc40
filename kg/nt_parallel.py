"""Line-based RDF (N-Triples, N-Quads, gzipped too) read in parallel chunks.

A file is cut at line boundaries into chunks of about :data:`CHUNK_BYTES`; each chunk is
parsed by :func:`kg.nt_chunks.parse_chunk` (vectorised, pyoxigraph for what it cannot take)
in a pool of worker processes, and the chunks' local vocabularies are merged, in file
order, into the :class:`kg.triples.TripleSink`: a dictionary update per distinct term and
numpy remapping per triple. The result is the graph that streaming the file through
pyoxigraph gives (same node ids, edges and literal columns).

Plain files are read by the workers themselves (they get byte ranges); a gzip stream is
decompressed here and its chunks are sent to the workers, at most ``2 x workers`` in
flight, so memory stays bounded. Errors come back with the line relative to the chunk and
are reported with the file's line, the first in file order.
"""

from __future__ import annotations

import ctypes
import gzip
import multiprocessing as mp
import os
import re
from collections import deque
from itertools import compress, repeat
from pathlib import Path

import numpy as np

from .nt_chunks import Chunk, parse_chunk
from .triples import RDF_LANG_STRING, TripleSink

#: Target chunk size: big enough to amortise numpy calls, small for bounded memory.
CHUNK_BYTES = 8 << 20
#: Files under this many bytes are streamed (chunks and a pool cost more than they save).
PARALLEL_MIN_BYTES = 16 << 20
_LINE_IN_MESSAGE = re.compile(r"at line (\d+)")


class ChunkError(Exception):
    """A chunk's error at the file's ``line``: ``kind`` is ``"syntax"`` or ``"token"``."""

    def __init__(self, line: int, column: int | None, message: str, kind: str):
        super().__init__(message)
        self.line, self.column, self.message, self.kind = line, column, message, kind


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def pays_off(path: Path) -> bool:
    """Whether chunks beat streaming ``path`` through pyoxigraph: a chunk of canonical lines
    costs about 0.7x the CPU of streaming it (0.85x end to end, measured on one core), so
    for any file of :data:`PARALLEL_MIN_BYTES` and more (decompressed), on one core too
    (then in this process: :func:`add_lines_file` starts a pool only with several cores)."""
    size = path.stat().st_size * (4 if path.suffix == ".gz" else 1)
    return size >= PARALLEL_MIN_BYTES


def _boundaries(path: Path, chunk_bytes: int, workers: int = 1) -> list[tuple[int, int]]:
    """Byte ranges of ``path`` that each end after a newline (or at the end of file).

    Guided sizes (as OpenMP's ``schedule(guided)``): ``chunk_bytes`` while much is left,
    then a share of what is left (``remaining / (2 x workers)``, at least an eighth of
    ``chunk_bytes``), so the workers finish together and the last chunk merged alone in
    the parent is small."""
    size = path.stat().st_size
    smallest = max(1, chunk_bytes // 8)
    cuts = [0]
    with open(path, "rb") as fh:
        while True:
            target = min(chunk_bytes, max(smallest, (size - cuts[-1]) // (2 * workers)))
            if cuts[-1] + target >= size:
                break
            fh.seek(cuts[-1] + target)
            skipped = 0
            while True:
                piece = fh.read(1 << 16)
                at = piece.find(b"\n")
                if at >= 0 or not piece:
                    break
                skipped += len(piece)
            if not piece:
                break
            cuts.append(cuts[-1] + target + skipped + at + 1)
    if cuts[-1] < size:
        cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _gzip_chunks(path: Path, chunk_bytes: int):
    """Decompressed pieces of ``path`` that end after a newline (the last one may not)."""
    carry = b""
    with gzip.open(path, "rb") as fh:
        while True:
            piece = fh.read(chunk_bytes)
            if not piece:
                break
            data = carry + piece
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            carry = data[cut:]
            yield data[:cut]
    if carry:
        yield carry


def _run(task) -> Chunk:
    """Worker: ``task`` is ``(source, options)``, source bytes or ``(path, start, stop)``."""
    source, options = task
    if isinstance(source, tuple):
        path, start, stop = source
        with open(path, "rb") as fh:
            fh.seek(start)
            source = fh.read(stop - start)
    return parse_chunk(source, **options)


def _keep_freed_memory() -> None:
    """Worker start: glibc keeps freed memory (up to 32 MB blocks) for reuse instead of
    handing it back to the system, so each chunk's numpy temporaries do not page-fault
    again (a worker's system time halves). A no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks below it come from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep this much free at the top
    except (AttributeError, OSError):
        pass


FORK_MAX_THREADS = 4  # a plain process: main, a BLAS pool, the file hasher (kg.rdf)


def _start_method() -> str:
    """``fork`` (the fastest start: 1.00 s against 1.10 s for 1M triples) from a process
    running at most :data:`FORK_MAX_THREADS` threads; else ``forkserver``: forking a process
    that runs many threads (a notebook kernel client's ZMQ threads: 36 in the pytest run
    that hung) can leave a worker dead on a lock it inherited and the pool waiting for it
    forever (seen once in CI). ``spawn`` where neither exists."""
    methods = mp.get_all_start_methods()
    try:
        few = len(os.listdir("/proc/self/task")) <= FORK_MAX_THREADS
    except OSError:  # no /proc: cannot tell
        few = False
    if few and "fork" in methods:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _results(tasks, workers: int):
    """``_run`` over ``tasks`` in order; a pool with a bounded window when ``workers > 1``."""
    if workers <= 1:
        yield from map(_run, tasks)
        return
    context = mp.get_context(_start_method())
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([__name__])
    with context.Pool(workers, initializer=_keep_freed_memory) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.apply_async(_run, (task,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def add_lines_file(
    sink: TripleSink,
    path: Path,
    quads: bool,
    source: int,
    lenient: bool = False,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> int:
    """Parse one N-Triples / N-Quads file (``.gz`` too) into ``sink``; returns the count.

    Args:
        workers: processes (default: every core this process may use; files under
            :data:`PARALLEL_MIN_BYTES` and ``workers=1`` are read in this process).
        chunk_bytes: about how many bytes each chunk holds.

    Raises:
        ChunkError: the first syntax error (or over-long term) in file order, with the
            file's line; ``OSError`` / ``EOFError`` / ``zlib.error`` for unreadable files.
    """
    options = {
        "image_predicates": tuple(sink._image_predicates), "scope": f"f{source}_",
        "lenient": lenient, "quads": quads,
    }  # fmt: skip
    if workers is None:  # automatic: a pool only where it pays
        workers = default_workers() if pays_off(path) else 1
    if path.suffix == ".gz":
        tasks = ((data, options) for data in _gzip_chunks(path, chunk_bytes))
        several = True
    else:
        ranges = _boundaries(path, chunk_bytes, max(1, workers))
        tasks = (((str(path), a, b), options) for a, b in ranges)
        several = len(ranges) > 1
    workers = max(1, workers) if several else 1
    sink._intern(sink._dtype_ids, sink.raw.datatypes, RDF_LANG_STRING)  # as add_quads does
    count, line = 0, 0
    for chunk in _results(tasks, workers):
        if chunk.error is not None:
            relative, column, message, kind = chunk.error
            absolute = line + (relative or 1)
            message = _LINE_IN_MESSAGE.sub(f"at line {absolute}", message, count=1)
            raise ChunkError(absolute, column, message, kind)
        merge_chunk(sink, chunk, source)
        count += chunk.count
        line += chunk.lines
    return count


def _remap(table: dict[str, int], values: list[str], keys: list[str]) -> np.ndarray:
    """Global ids of the chunk's distinct ``keys``; new ones are appended to ``values``
    (one dictionary lookup per key, one insertion per new key)."""
    ids = np.fromiter(map(table.get, keys, repeat(-1)), np.int64, len(keys))
    new = ids < 0
    fresh = np.arange(len(values), len(values) + int(new.sum()))
    ids[new] = fresh
    added = list(compress(keys, new.tolist()))
    table.update(zip(added, fresh.tolist(), strict=True))
    values.extend(added)
    return ids


def _extend(buffer, values: np.ndarray) -> None:
    buffer.frombytes(np.ascontiguousarray(values, dtype=np.dtype(buffer.typecode)).view(np.uint8))


def merge_chunk(sink: TripleSink, chunk: Chunk, source: int) -> None:
    """Append a chunk's triples to ``sink``, interning its vocabularies in chunk order."""
    raw = sink.raw
    nodes = _remap(sink._node_ids, raw.nodes, chunk.nodes)
    preds = _remap(sink._pred_ids, raw.predicates, chunk.predicates)
    classes = _remap(sink._class_ids, raw.classes, chunk.classes)
    lang_string = sink._dtype_ids[RDF_LANG_STRING]
    dtype_of, lang_of = [], []
    for dtype, lang in chunk.lit_kinds:  # one step per distinct (datatype, language)
        if lang is None:
            lang_id = -1
            dtype_id = sink._intern(sink._dtype_ids, raw.datatypes, dtype) if dtype else 0
        else:
            lang_id = sink._lang_ids.get(lang)
            if lang_id is None:
                lang_id = sink._lang_ids[lang] = sink._language_id(lang)
            dtype_id = lang_string if lang_id >= 0 else sink._plain_string()
        dtype_of.append(dtype_id)
        lang_of.append(lang_id)
    _extend(raw.src, nodes[chunk.src])
    _extend(raw.pred, preds[chunk.pred])
    _extend(raw.dst, nodes[chunk.dst])
    _extend(raw.type_node, nodes[chunk.type_node])
    _extend(raw.type_class, classes[chunk.type_class])
    _extend(raw.lit_node, nodes[chunk.lit_node])
    _extend(raw.lit_pred, preds[chunk.lit_pred])
    _extend(raw.lit_dtype, np.asarray(dtype_of, np.int64)[chunk.lit_kind])
    _extend(raw.lit_lang, np.asarray(lang_of, np.int64)[chunk.lit_kind])
    _extend(raw.lit_source, np.full(len(chunk.lit_kind), source))
    raw.lit_value.extend(chunk.lit_value)
    raw.skipped += chunk.skipped
    sink.odd_languages.extend(chunk.odd_languages)

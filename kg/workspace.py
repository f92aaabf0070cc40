"""The workspace: one folder per graph, like a Hugging Face model folder.

Layout (format version 1)::

    manifest.json        format + version, options, counts, node types, relations,
                         literal columns, sources with their sha256
    graph.safetensors    integer arrays: edges, rdf:type pairs, literal ids
    vocab.json           predicates, classes, datatypes, languages
    nodes.txt            one IRI (or _:blank) per line, in node-id order; one that holds a
                         line break (read with lenient=True) or starts with '"' is written
                         as a JSON string (see :func:`write_nodes`)
    literals.jsonl       one JSON string per literal value, in literal-id order
    sparql/              a pyoxigraph store of every triple (read-only SPARQL)

and, added by later stages (the folder names are the constants below)::

    features.safetensors node features (``kgf encode``)
    models/RUN/          trained runs (``kgf train``; :mod:`fusion.runs`)
    index/               the entity index (``kgf index``; :class:`kg.index.EntityIndex`)
    linker/              the trained text linker (``kgf link-train``)
    image-linker/        the trained image linker (``kgf link-train --images``)

:func:`graph_version` is the graph's identity: what every later artefact records, so that
one built for another version of the graph is recognised.

Nothing is pickled. A workspace is written into a temporary sibling folder and renamed
into place at the end, so a build that fails or is killed leaves any previous workspace
intact; later stages add files with :func:`atomic_write_bytes` (temp file + rename).
A kill can still leave hidden siblings behind: the next build or open of the folder
repairs them (:func:`recover_folder`) and warns what it did.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from array import array
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

FORMAT = "kgfusion-workspace"
VERSION = 1
MANIFEST = "manifest.json"
SPARQL_DIR = "sparql"
MODELS_DIR = "models"
INDEX_DIR = "index"
LINKER_DIR = "linker"
IMAGE_LINKER_DIR = "image-linker"
_ARRAYS = (
    "src",
    "pred",
    "dst",
    "type_node",
    "type_class",
    "lit_node",
    "lit_pred",
    "lit_dtype",
    "lit_lang",
    "lit_source",
)


class WorkspaceError(RuntimeError):
    """A missing, foreign, or incompatible workspace; the message says what to run."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically (temp file + rename)."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False))


# ---------------------------------------------------------------------- folder swaps
# Hidden siblings of a folder being replaced: `.NAME.tmp-OWNER-TAG` (the new content being
# written) and `.NAME.old-OWNER-TAG` (the previous content, between the two renames of a
# swap). OWNER is `PID.HOST` (HOST: 6 hex digits of the host name's hash), so a later run
# can tell a live build's folder from a dead one's. Older versions wrote `tmp-TAG` alone.
_SIBLING = re.compile(r"(?P<kind>tmp|old)-(?:(?P<pid>\d+)\.(?P<host>[0-9a-f]{6})-)?[0-9a-f]{8}")
UNKNOWN_OWNER_AGE_S = 24 * 3600  # a sibling without an owner is stale after a day


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _sibling(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}.{_host()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # no cheap, safe probe: assume alive (never remove a live build)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _owner_gone(path: Path, match: re.Match) -> bool:
    """Whether the process that made ``path`` has ended: its pid is dead on this host;
    without an owner (older versions) or from another host, when it is a day old."""
    if match["pid"] is not None and match["host"] == _host():
        return not _pid_alive(int(match["pid"]))
    try:
        return time.time() - path.stat().st_mtime > UNKNOWN_OWNER_AGE_S
    except OSError:
        return False


def _size_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total / 1e6


def recover_folder(target) -> list[str]:
    """Repair what killed swaps left next to ``target`` (see :func:`atomic_directory`),
    warn about each repair and return the messages.

    - ``target`` missing and a ``.old-*`` sibling present (killed between the two renames of
      a swap): the newest ``.old-*`` is renamed back to ``target``.
    - ``.old-*`` siblings beside a present ``target`` (killed before the old copy was
      deleted), and ``.tmp-*`` siblings (killed builds): removed.

    Siblings of a process still running (pid alive on this host) are left alone, so a
    concurrent build is never disturbed. A ``.tmp-*`` sibling without a known owner (older
    versions, another host) is removed only when a day old; an ``.old-*`` one at once (a
    swap lasts an instant).
    """
    target = Path(target)
    prefix = f".{target.name}."
    try:
        entries = [p for p in target.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:  # no parent folder: nothing to recover
        return []
    found = []
    for path in entries:
        match = _SIBLING.fullmatch(path.name[len(prefix) :])
        if match and path.is_dir():
            found.append((path, match))
    messages = []
    olds = [(p, m) for p, m in found if m["kind"] == "old"]
    olds = [(p, m) for p, m in olds if m["pid"] is None or _owner_gone(p, m)]
    if olds and not target.exists():
        olds.sort(key=lambda x: x[0].stat().st_mtime)
        restored, _ = olds.pop()
        os.replace(restored, target)
        messages.append(
            f"restored {target} from {restored.name}: a replace of it was interrupted "
            "between its two renames (the new content, if any, is discarded)"
        )
    for path, match in olds + [(p, m) for p, m in found if m["kind"] == "tmp"]:
        if match["kind"] == "tmp" and not _owner_gone(path, match):
            continue
        size = _size_mb(path)
        shutil.rmtree(path, ignore_errors=True)
        what = "an interrupted build" if match["kind"] == "tmp" else "an interrupted replace"
        messages.append(f"removed {path} ({size:.1f} MB), left by {what}")
    for message in messages:
        warnings.warn(message, stacklevel=2)
    return messages


@contextlib.contextmanager
def atomic_directory(target, overwrite: bool = False):
    """Yield a temporary folder that replaces ``target`` only if the block succeeds.

    An existing ``target`` is refused unless ``overwrite``; on any error the temporary
    folder is removed and ``target`` is untouched. A kill leaves a hidden sibling
    (``.name.tmp-*``, or ``.name.old-*`` between the two renames of a replace) that the
    next build or open repairs (:func:`recover_folder`).
    """
    target = Path(target)
    recover_folder(target)
    if target.exists() and not overwrite:
        raise WorkspaceError(
            f"{target} already exists; pass --overwrite (overwrite=True) to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = _sibling(target, "old")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)  # put the previous content back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def manifest_of(graph) -> dict:
    from .version import __version__

    return {
        "format": FORMAT,
        "version": VERSION,
        "kgfusion": __version__,
        "options": {
            "default_type": graph.options.default_type,
            "multi_type": graph.options.multi_type,
            "type_priority": list(graph.options.type_priority),
            "image_predicates": list(graph.options.image_predicates),
        },
        "counts": {
            "nodes": graph.num_nodes,
            "edges": graph.num_edges,
            "literals": graph.num_literals,
            "type_triples": len(graph.type_node),
            "triples": graph.num_triples,
            "invalid_literals": graph.invalid_literals,
        },
        "node_types": dict(graph.num_nodes_dict),
        "relations": [
            {
                "name": r.name,
                "predicate": r.predicate,
                "src": r.src_type,
                "dst": r.dst_type,
                "count": r.count,
            }
            for r in graph.relations
        ],
        "literal_columns": [
            {
                "node_type": c.node_type,
                "name": c.name,
                "kind": c.kind,
                "count": c.count,
                "coverage": round(c.coverage, 4),
            }
            for c in graph.literal_columns()
        ],
        "sources": graph.sources,
    }


def write_graph(graph, folder: Path, sparql_store: bool = True) -> None:
    """Write the graph's files into ``folder`` (no atomicity: see :func:`save_graph`)."""
    folder = Path(folder)
    save_file(
        {name: np.ascontiguousarray(getattr(graph, name)) for name in _ARRAYS},
        str(folder / "graph.safetensors"),
    )
    vocab = {k: getattr(graph, k) for k in ("predicates", "classes", "datatypes", "languages")}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    write_nodes(graph.nodes, folder / "nodes.txt")
    with open(folder / "literals.jsonl", "w", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(v, ensure_ascii=False) for v in graph.lit_value))
    if sparql_store:
        build_sparql_store(graph, folder / SPARQL_DIR)
    (folder / MANIFEST).write_text(
        json.dumps(manifest_of(graph), indent=2, ensure_ascii=False), encoding="utf-8"
    )


# Characters that split a line for some reader: str.splitlines() and universal newlines.
_LINE_BREAKS = re.compile('[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]|^"', re.MULTILINE)


def write_nodes(nodes: list[str], path: Path) -> None:
    """One node per line; a node that holds a line break or starts with ``"`` is written as
    its JSON string (``"http://a/b\\nc"``) so that no IRI can shift the lines after it."""
    text = "\n".join(nodes)
    if _LINE_BREAKS.search(text):
        text = "\n".join(json.dumps(n) if _LINE_BREAKS.search(n) else n for n in nodes)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def read_nodes(path: Path) -> list[str]:
    """The node list written by :func:`write_nodes` (also reads plain one-per-line files)."""
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    if not text:
        return []
    lines = text.split("\n")
    if '"' in text:
        lines = [_decode_node(line) if line[:1] == '"' else line for line in lines]
    return lines


def _decode_node(line: str) -> str:
    try:
        return json.loads(line)
    except ValueError:  # a workspace written before nodes were escaped
        return line


def build_sparql_store(graph, path: Path) -> None:
    import pyoxigraph as ox

    store = ox.Store(str(path))
    store.bulk_extend(ox.Quad(t.subject, t.predicate, t.object) for t in graph.triples())
    store.flush()
    del store


def save_graph(graph, directory, overwrite: bool = False, sparql_store: bool = True) -> Path:
    """Save ``graph`` as a workspace folder, atomically (see module docstring)."""
    directory = Path(directory)
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        write_graph(graph, tmp, sparql_store=sparql_store)
    graph._store_path = directory / SPARQL_DIR if sparql_store else None
    return directory


def read_manifest(directory) -> dict:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise WorkspaceError(
            f"{directory} is not a kgfusion workspace (no {MANIFEST}); build one with `kgf build SOURCE -o {directory}`"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise WorkspaceError(f"{path}: not a kgfusion workspace manifest")
    if manifest.get("version", 0) > VERSION:
        raise WorkspaceError(
            f"{directory} has workspace format {manifest['version']}; this kgfusion reads up to {VERSION}: upgrade kgfusion"
        )
    return manifest


def load_graph(directory):
    """Load a workspace written by :func:`save_graph` (no unpickling anywhere)."""
    from .graph import GraphOptions, ProductGraph
    from .rdf import RawTriples

    directory = Path(directory)
    recover_folder(directory)
    manifest = read_manifest(directory)
    arrays = load_file(str(directory / "graph.safetensors"))
    vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
    literal_text = (directory / "literals.jsonl").read_text(encoding="utf-8")
    raw = RawTriples(
        nodes=read_nodes(directory / "nodes.txt"),
        lit_value=[json.loads(line) for line in literal_text.split("\n")] if literal_text else [],
        sources=manifest["sources"],
        **vocab,
        **{name: array(_typecode(arrays[name]), arrays[name].tobytes()) for name in _ARRAYS},
    )
    options = manifest["options"]
    with warnings.catch_warnings():  # said once, at build; `kgf info` counts them
        warnings.filterwarnings("ignore", message=r".*do not parse as their datatype")
        graph = ProductGraph(raw, GraphOptions(**options))
    if (directory / SPARQL_DIR).is_dir():
        graph._store_path = directory / SPARQL_DIR
    graph.workspace = directory
    return graph


def graph_version(source) -> str:
    """A short hash identifying a graph's content: a ProductGraph, a workspace manifest
    (dict) or a workspace folder. It covers the sources' sha256 (or path and triple count
    when a source has no hash) and the node, edge, literal and rdf:type counts, so a graph
    and the manifest it was saved with give the same version."""
    if isinstance(source, str | Path):
        source = read_manifest(source)
    if isinstance(source, Mapping):
        sources, c = source.get("sources", []), source.get("counts", {})
        counts = [c.get("nodes"), c.get("edges"), c.get("literals"), c.get("type_triples")]
    else:
        sources = source.sources
        counts = [source.num_nodes, source.num_edges, source.num_literals, len(source.type_node)]
    keys = [s.get("sha256") or f"{s.get('path')}:{s.get('triples')}" for s in sources]
    payload = json.dumps({"sources": keys, "counts": counts}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _typecode(values: np.ndarray) -> str:
    return {np.dtype(np.int64): "q", np.dtype(np.int32): "i"}[values.dtype]

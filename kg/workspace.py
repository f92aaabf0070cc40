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

Nothing is pickled. A workspace is written into a temporary sibling folder and renamed
into place at the end, so a build that fails or is killed leaves any previous workspace
intact; later stages add files with :func:`atomic_write_bytes` (temp file + rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from array import array
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

FORMAT = "kgfusion-workspace"
VERSION = 1
MANIFEST = "manifest.json"
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


@contextlib.contextmanager
def atomic_directory(target, overwrite: bool = False):
    """Yield a temporary folder that replaces ``target`` only if the block succeeds.

    An existing ``target`` is refused unless ``overwrite``; on any error (or a kill) the
    temporary folder is removed (or left as a hidden ``.name.tmp-*`` sibling) and ``target``
    is untouched.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise WorkspaceError(
            f"{target} already exists; pass --overwrite (overwrite=True) to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def manifest_of(graph) -> dict:
    from . import __version__

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
        build_sparql_store(graph, folder / "sparql")
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
    graph._store_path = directory / "sparql" if sparql_store else None
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
    graph = ProductGraph(raw, GraphOptions(**options))
    if (directory / "sparql").is_dir():
        graph._store_path = directory / "sparql"
    graph.workspace = directory
    return graph


def _typecode(values: np.ndarray) -> str:
    return {np.dtype(np.int64): "q", np.dtype(np.int32): "i"}[values.dtype]

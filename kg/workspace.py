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

from .triples import RawTriples

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


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

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
    text = _read_text(Path(path))
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


def damaged(path: Path, why: str) -> WorkspaceError:
    """The error for a workspace file that is corrupt or was edited: names it, says to rebuild."""
    return WorkspaceError(
        f"{path}: damaged workspace file ({why}); rebuild the workspace with "
        f"`kgf build SOURCE -o {path.parent} --overwrite`"
    )


def _read_json_file(path: Path, kind: type = dict):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise damaged(path, "missing") from None
    except UnicodeDecodeError as err:
        raise damaged(path, f"not UTF-8 at byte {err.start}") from None
    except (ValueError, RecursionError) as err:
        raise damaged(path, f"not valid JSON: {err}") from None
    except OSError as err:
        raise damaged(path, f"unreadable: {err.strerror or err}") from None
    if not isinstance(data, kind):
        raise damaged(path, f"expected a JSON {kind.__name__}, found {type(data).__name__}")
    return data


def read_manifest(directory) -> dict:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise WorkspaceError(
            f"{directory} is not a kgfusion workspace (no {MANIFEST}); build one with `kgf build SOURCE -o {directory}`"
        )
    manifest = _read_json_file(path)
    if manifest.get("format") != FORMAT:
        raise WorkspaceError(f"{path}: not a kgfusion workspace manifest")
    version = manifest.get("version", 0)
    if not isinstance(version, int):
        raise damaged(path, f"version {version!r}")
    if version > VERSION:
        raise WorkspaceError(
            f"{directory} has workspace format {manifest['version']}; this kgfusion reads up to {VERSION}: upgrade kgfusion"
        )
    for key, kind in _MANIFEST_KEYS.items():
        if key in manifest and not isinstance(manifest[key], kind):
            raise damaged(path, f"{key!r} is a {type(manifest[key]).__name__}")
    counts = manifest.get("counts", {})
    if any(not isinstance(v, int) or v < 0 for k, v in counts.items() if k in _COUNTED):
        raise damaged(path, f"counts {counts}")
    types = manifest.get("node_types", {})
    if any(not isinstance(v, int) or v < 0 for v in types.values()):
        raise damaged(path, f"node_types {types}")
    if not all(isinstance(s, dict) for s in manifest.get("sources", [])):
        raise damaged(path, "'sources' must be a list of objects")
    return manifest


_MANIFEST_KEYS = {"options": dict, "counts": dict, "node_types": dict, "sources": list,
                  "relations": list, "literal_columns": list}  # fmt: skip
_COUNTED = ("nodes", "edges", "literals", "type_triples")
# which array is indexed into which list, and which arrays share a length (a count)
_ARRAY_GROUPS = {
    "edges": ("src", "pred", "dst"),
    "type_triples": ("type_node", "type_class"),
    "literals": ("lit_node", "lit_pred", "lit_dtype", "lit_lang", "lit_source"),
}
_ARRAY_TARGETS = {
    "src": "nodes", "dst": "nodes", "type_node": "nodes", "lit_node": "nodes",
    "pred": "predicates", "lit_pred": "predicates", "type_class": "classes",
    "lit_dtype": "datatypes", "lit_lang": "languages", "lit_source": "sources",
}  # fmt: skip


def _check_arrays(path: Path, arrays: dict, counts: dict, sizes: dict[str, int]) -> None:
    """Every array present, 1-D int32 / int64, of its group's count, indexing in range."""
    for group, names in _ARRAY_GROUPS.items():
        for name in names:
            values = arrays.get(name)
            if values is None:
                raise damaged(path, f"no array {name!r}")
            if values.ndim != 1 or values.dtype not in (np.int64, np.int32):
                raise damaged(path, f"{name!r} is {values.dtype} {values.shape}")
            if group in counts and len(values) != counts[group]:
                raise damaged(
                    path, f"{name!r} has {len(values):,} entries, the manifest {counts[group]:,}"
                )
            if len(values):
                low = -1 if name in ("lit_lang", "lit_dtype", "lit_source") else 0
                high = sizes[_ARRAY_TARGETS[name]]
                if int(values.min()) < low or int(values.max()) >= high:
                    raise damaged(
                        path, f"{name!r} holds ids outside 0..{high - 1} ({_ARRAY_TARGETS[name]})"
                    )


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except FileNotFoundError:
        raise damaged(path, "missing") from None
    except UnicodeDecodeError as err:
        raise damaged(path, f"not UTF-8 at byte {err.start}") from None
    except OSError as err:
        raise damaged(path, f"unreadable: {err.strerror or err}") from None


def _read_literals(path: Path) -> list[str]:
    text = _read_text(path)
    values = []
    for number, line in enumerate(text.split("\n") if text else [], 1):
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as err:
            raise damaged(path, f"line {number} is not a JSON string ({err})") from None
        if not isinstance(value, str):
            raise damaged(path, f"line {number} is a {type(value).__name__}, not a string")
        values.append(value)
    return values


def read_graph(directory) -> tuple[RawTriples, dict, Path | None]:
    """Read the graph files of a workspace written by :func:`save_graph` (no unpickling
    anywhere): its triples, the typing options of its manifest, and its SPARQL store folder
    (None without one). :func:`kg.graph.load_graph` builds the ``ProductGraph`` from them."""
    directory = Path(directory)
    recover_folder(directory)
    manifest = read_manifest(directory)
    tensors = directory / "graph.safetensors"
    try:
        arrays = load_file(str(tensors))
    except FileNotFoundError:
        raise damaged(tensors, "missing") from None
    except Exception as err:  # SafetensorError, a bad header, OSError
        raise damaged(tensors, f"unreadable: {err}") from None
    vocab_path = directory / "vocab.json"
    vocab = _read_json_file(vocab_path)
    if set(vocab) != {"predicates", "classes", "datatypes", "languages"} or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in vocab.values()
    ):
        raise damaged(vocab_path, "expected lists predicates, classes, datatypes, languages")
    nodes_path = directory / "nodes.txt"
    nodes = read_nodes(nodes_path)
    counts = manifest.get("counts", {})
    if "nodes" in counts and len(nodes) != counts["nodes"]:
        raise damaged(nodes_path, f"{len(nodes):,} nodes, the manifest {counts['nodes']:,}")
    literals_path = directory / "literals.jsonl"
    literals = _read_literals(literals_path)
    if "literals" in counts and len(literals) != counts["literals"]:
        raise damaged(
            literals_path, f"{len(literals):,} literals, the manifest {counts['literals']:,}"
        )
    sizes = {k: len(v) for k, v in vocab.items()}
    sizes.update(nodes=len(nodes), sources=len(manifest.get("sources", [])))
    _check_arrays(tensors, arrays, counts, sizes)
    raw = RawTriples(
        nodes=nodes,
        lit_value=literals,
        sources=manifest.get("sources", []),
        **vocab,
        **{name: array(_typecode(arrays[name]), arrays[name].tobytes()) for name in _ARRAYS},
    )
    store = directory / SPARQL_DIR
    return raw, manifest["options"], store if store.is_dir() else None


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

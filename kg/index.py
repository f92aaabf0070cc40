"""The entity index: nearest-neighbour search over one vector per graph entity.

An :class:`EntityIndex` holds ``N`` entities, each an IRI with a float32 vector of
dimension ``d`` (row store: ``vectors`` [N, d], ``iris`` [N], stable int64 ``ids`` [N]),
and answers "the ``k`` entities closest to these vectors" under a metric:

- ``"cosine"`` (default): vectors and queries are L2-normalised, score = cosine in [-1, 1];
- ``"ip"``: score = inner product;
- ``"l2"``: score = minus the squared Euclidean distance.

Scores are always "higher is closer". Backends (``kind``; :mod:`kg.index_backends`):

- ``"exact"``: FAISS ``IndexFlatIP`` / ``IndexFlatL2`` under ``IndexIDMap2`` (brute force,
  SIMD and BLAS; Johnson, Douze & Jégou, "Billion-scale similarity search with GPUs",
  IEEE Trans. Big Data 2019, https://github.com/facebookresearch/faiss);
- ``"ivf"``: FAISS ``IndexIVFFlat``, an inverted file of ``nlist ~ 4 sqrt(N)`` k-means
  cells of which ``nprobe`` are scanned per query; ``nprobe`` is tuned on a sample of the
  stored vectors until recall@10 against exact search reaches ``target_recall``;
- ``"hnsw"``: FAISS ``IndexHNSWFlat`` (Malkov & Yashunin, "Efficient and robust
  approximate nearest neighbor search using Hierarchical Navigable Small World graphs",
  IEEE TPAMI 2018); ``efSearch`` tuned the same way. HNSW cannot delete, so removed ids
  are filtered out at search time (an ``IDSelector``) until half the graph is dead, then
  it is rebuilt;
- ``"torch"``: exact search without FAISS: ``queries @ vectors.T`` in chunks of rows
  (bounded memory, ``chunk_mb``) and a running ``topk``; removed rows are tombstones,
  compacted once they exceed a quarter of the rows;
- ``"auto"``: ``exact`` below :data:`APPROX_FROM` entities, ``ivf`` from there on, and
  ``torch`` whenever FAISS is not installed (it is the optional extra
  ``kgfusion[index]``). An explicit FAISS kind without FAISS falls back to ``torch`` with
  a warning: the answers are exact, only slower.

On disk (:meth:`EntityIndex.save`, one folder, written atomically, nothing pickled)::

    index.json            format, version, dim, metric, kind, count, graph_version, source,
                          params (``source``: JSON facts on where the vectors came from,
                          e.g. the trained run; set by the caller, kept as given)
    vectors.safetensors   "vectors" float32 [N, d] and "ids" int64 [N]
    iris.txt              one IRI per line, row order
    faiss.index           IVF / HNSW only: FAISS's own binary format (faiss.write_index)

``graph_version`` ties an index to the graph it was built for (:func:`graph_version`);
:meth:`EntityIndex.load` with ``expected_version`` refuses a stale index.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .index_backends import TRAIN_PER_LIST as TRAIN_PER_LIST
from .index_backends import FaissBackend, TorchBackend
from .workspace import graph_version  # noqa: F401  (re-exported: kg.index.graph_version)

FORMAT = "kgfusion-entity-index"
VERSION = 1
METRICS = ("cosine", "ip", "l2")
KINDS = ("auto", "exact", "ivf", "hnsw", "torch")
APPROX_FROM = 100_000  # "auto" switches from exact to IVF at this many entities
MAX_K = 10_000
BUILD_COMMAND = "kgf index DIR"
INDEX_FILE, VECTORS_FILE, IRIS_FILE, FAISS_FILE = (
    "index.json",
    "vectors.safetensors",
    "iris.txt",
    "faiss.index",
)


class EntityIndexError(ValueError):
    """Bad input to an entity index, or an index that cannot answer; says what to do."""


class StaleIndexError(EntityIndexError):
    """The index was built for another version of the graph."""


def _load_faiss():
    """The ``faiss`` module, or None when it is not installed (tests patch this)."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def faiss_available() -> bool:
    return _load_faiss() is not None


@dataclass
class IndexConfig:
    """Options of an :class:`EntityIndex` (saved in ``index.json``)."""

    metric: str = "cosine"
    kind: str = "auto"
    nlist: int | None = None  # IVF cells; None: round(4 sqrt(N)), at most N / 39
    nprobe: int | None = None  # IVF cells scanned; None: tuned to target_recall
    hnsw_m: int = 32  # HNSW links per node
    ef_construction: int = 80
    ef_search: int | None = None  # None: tuned to target_recall
    target_recall: float = 0.95  # recall@10 that tuning aims for
    chunk_mb: int = 256  # torch backend: bound on the [Q, chunk] score block

    def __post_init__(self):
        if self.metric not in METRICS:
            raise EntityIndexError(f"metric={self.metric!r}; choose one of {METRICS}")
        if self.kind not in KINDS:
            raise EntityIndexError(f"kind={self.kind!r}; choose one of {KINDS}")


class EntityIndex:
    """Nearest-neighbour search over entity vectors (see the module docstring).

    >>> index = EntityIndex.build(["ex:a", "ex:b", "ex:c"], np.eye(3, dtype="float32"))
    >>> scores, iris = index.search(np.array([1, 0.1, 0], "float32"), k=2)
    >>> iris
    [['ex:a', 'ex:b']]
    """

    def __init__(self, dim: int, metric: str = "cosine", kind: str = "auto", *,
                 graph_version: str | None = None, **options):  # fmt: skip
        if int(dim) <= 0:
            raise EntityIndexError(f"dim={dim}: the vectors need at least one dimension")
        self.config = IndexConfig(metric=metric, kind=kind, **options)
        self.dim = int(dim)
        self.graph_version = graph_version
        self.source: dict | None = None  # where the vectors came from (saved as given)
        self.recall_estimate: float | None = None
        self._vec = np.zeros((0, self.dim), np.float32)  # capacity rows; first _n used
        self._ids = np.zeros(0, np.int64)  # stable ids, ascending in row order
        self._alive = np.zeros(0, bool)
        self._iris: list[str] = []  # per row (dead rows keep theirs until compaction)
        self._row: dict[str, int] = {}  # live IRI -> row
        self._n = self._dead = self._next_id = self._version = 0
        self._backend = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, iris: Iterable[str], vectors, metric: str = "cosine", kind: str = "auto",
              *, graph_version: str | None = None, **options) -> EntityIndex:  # fmt: skip
        """An index over ``iris`` with ``vectors`` [N, d] (numpy, torch or lists)."""
        matrix = _as_matrix(vectors)
        index = cls(matrix.shape[1], metric, kind, graph_version=graph_version, **options)
        index.add(iris, matrix)
        if len(index):
            index._ensure_backend()
        return index

    @classmethod
    def from_embeddings(cls, graph, embeddings: Mapping, **options) -> EntityIndex:
        """An index over node embeddings per type, ``{node_type: [num_nodes_dict[t], d]}``
        (row ``i`` = the type's node ``i``), stamped with ``graph_version(graph)``."""
        iris, blocks = [], []
        for node_type, block in embeddings.items():
            block = _as_matrix(block)
            if len(block) != graph.num_nodes_dict.get(node_type, -1):
                raise EntityIndexError(
                    f"embeddings for {node_type!r} have {len(block)} rows; the graph has "
                    f"{graph.num_nodes_dict.get(node_type, 0)} {node_type} nodes"
                )
            iris += graph.node_iris(node_type)
            blocks.append(block)
        if not blocks:
            raise EntityIndexError("no embeddings given: pass {node_type: [n, d] array}")
        matrix = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)  # no copy for one
        return cls.build(iris, matrix, graph_version=graph_version(graph), **options)

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return self._n - self._dead

    def __contains__(self, iri: str) -> bool:
        return iri in self._row

    def __repr__(self) -> str:
        return f"EntityIndex(count={len(self)}, dim={self.dim}, metric={self.metric!r}, kind={self.kind!r})"

    @property
    def metric(self) -> str:
        return self.config.metric

    @property
    def kind(self) -> str:
        """The backend in use (``config.kind`` until the first search or build)."""
        return self._backend.kind if self._backend is not None else self.config.kind

    @property
    def iris(self) -> list[str]:
        return [self._iris[r] for r in np.nonzero(self._alive[: self._n])[0].tolist()]

    def vector(self, iri: str) -> np.ndarray:
        """The stored vector [d] of an IRI (normalised for ``cosine``)."""
        return self._vec[self._row_of(iri)].copy()

    def similarity(self, iri: str, others: Iterable[str]) -> np.ndarray:
        """Exact scores [len(others)] between one stored entity and others, as search gives."""
        q = self._vec[self._row_of(iri)]
        rows = [self._row_of(o) for o in others]
        x = self._vec[rows]
        if self.metric == "l2":
            return -((x - q) ** 2).sum(axis=1)
        return x @ q

    def _row_of(self, iri: str) -> int:
        row = self._row.get(iri)
        if row is None:
            raise EntityIndexError(
                f"{iri!r} is not in the entity index ({len(self)} entities); if the graph "
                f"changed since the index was built, rebuild it with `{BUILD_COMMAND}`"
            )
        return row

    # ------------------------------------------------------------------ updates
    def add(self, iris: Iterable[str], vectors) -> None:
        """Add entities (an IRI already present gets its vector replaced).

        ``vectors``: [M, d] (or [d] for one IRI). Backends are updated in place: FAISS
        ``add_with_ids`` (an IVF index keeps its trained cells), torch appends rows."""
        iris = [iris] if isinstance(iris, str) else list(iris)
        matrix = self._prepare(vectors)
        if len(iris) != len(matrix):
            raise EntityIndexError(f"{len(iris)} IRIs but {len(matrix)} vectors")
        if len(set(iris)) != len(iris):
            seen: set[str] = set()
            dup = next(i for i in iris if i in seen or seen.add(i))
            raise EntityIndexError(f"IRI {dup!r} appears twice in one add()")
        bad = next((i for i in iris if not i or "\n" in i or "\r" in i), None)
        if bad is not None:
            raise EntityIndexError(f"{bad!r} is not a valid IRI (empty or with a line break)")
        if not iris:
            return
        replaced = [i for i in iris if i in self._row]
        if replaced:
            self.remove(replaced)
        m, n = len(iris), self._n
        if n + m > len(self._vec):  # grow the row store geometrically
            cap = max(n + m, int(len(self._vec) * 1.5), 1024)
            self._vec = _resize(self._vec, cap)
            self._ids, self._alive = _resize(self._ids, cap), _resize(self._alive, cap)
        ids = np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        self._vec[n : n + m], self._ids[n : n + m], self._alive[n : n + m] = matrix, ids, True
        self._iris += iris
        self._row.update(zip(iris, range(n, n + m), strict=True))
        self._n, self._next_id, self._version = n + m, self._next_id + m, self._version + 1
        if self._backend is not None:
            self._backend.add(ids, matrix)

    def remove(self, iris: Iterable[str], missing_ok: bool = False) -> int:
        """Remove entities; returns how many were removed. FAISS flat and IVF delete the
        ids (``remove_ids``); HNSW and torch mark them dead (compacted lazily)."""
        iris = [iris] if isinstance(iris, str) else list(iris)
        missing = [i for i in iris if i not in self._row]
        if missing and not missing_ok:
            raise EntityIndexError(
                f"{len(missing)} IRI(s) not in the index, e.g. {missing[:3]}; "
                "pass missing_ok=True to ignore them"
            )
        rows = np.array([self._row.pop(i) for i in dict.fromkeys(iris) if i in self._row], np.int64)
        if len(rows):
            self._alive[rows] = False
            self._dead += len(rows)
            self._version += 1
            if self._backend is not None:
                self._backend.remove(self._ids[rows])
        return len(rows)

    def _compact(self) -> None:
        """Drop dead rows from the row store (ids are kept, so FAISS needs no change)."""
        keep = np.nonzero(self._alive[: self._n])[0]
        self._vec, self._ids = self._vec[keep], self._ids[keep]
        self._alive = np.ones(len(keep), bool)
        self._iris = [self._iris[r] for r in keep.tolist()]
        self._row = {iri: r for r, iri in enumerate(self._iris)}
        self._n, self._dead, self._version = len(keep), 0, self._version + 1

    # ------------------------------------------------------------------ backends
    def _ensure_backend(self):
        if self._dead > self._n // 4:
            self._compact()
        if self._backend is None or self._backend.stale():
            self._backend = _make_backend(self)
        return self._backend

    def tune(self, target_recall: float | None = None, k: int = 10, sample: int = 256,
             queries=None, seed: int = 0) -> float | None:  # fmt: skip
        """Pick the smallest IVF ``nprobe`` / HNSW ``efSearch`` (powers of two) whose
        recall@k against exact search reaches ``target_recall``; returns that recall
        (None for exact backends).

        Default queries: ``sample`` new points near stored ones (a stored vector moved in a
        random direction by its distance to its nearest neighbour), i.e. fresh queries from
        the data's own density. A stored vector itself would be too easy for HNSW, whose
        graph already links it to its neighbours. ``queries`` [Q, d]: tune on these instead.
        """
        backend = self._ensure_backend()
        if backend.kind not in ("ivf", "hnsw"):
            return None
        target = self.config.target_recall if target_recall is None else target_recall
        queries = (
            self._prepare(queries) if queries is not None else self._fresh_queries(sample, seed)
        )
        kk = min(k, len(self))
        _, truth = TorchBackend(self).search(queries, kk)
        name = "nprobe" if backend.kind == "ivf" else "ef_search"
        limit = backend.nlist if backend.kind == "ivf" else 4096
        value = 1 if backend.kind == "ivf" else 16
        while True:
            setattr(self.config, name, value)
            recall = _recall(backend.search(queries, kk)[1], truth)
            if recall >= target or value >= limit:
                break
            value = min(value * 2, limit)
        self.recall_estimate = recall
        return recall

    def _fresh_queries(self, sample: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        live = np.nonzero(self._alive[: self._n])[0]
        base = self._vec[rng.choice(live, min(sample, len(live)), replace=False)]
        if len(live) < 2:
            return base
        _, ids = TorchBackend(self).search(base, 2)  # itself and its nearest neighbour
        nearest = self._vec[np.searchsorted(self._ids[: self._n], ids[:, 1])]
        step = np.linalg.norm(base - nearest, axis=1, keepdims=True)
        noise = rng.standard_normal(base.shape).astype(np.float32)
        return self._prepare(base + noise * step / np.linalg.norm(noise, axis=1, keepdims=True))

    # ------------------------------------------------------------------ search
    def search(self, vectors, k: int = 10) -> tuple[np.ndarray, list[list[str]]]:
        """The ``k`` closest entities to each query.

        Args:
            vectors: queries [Q, d], or one query [d] (treated as Q = 1).
            k: neighbours per query, 1 <= k <= min(count, MAX_K).
        Returns:
            ``scores`` float32 [Q, k] (higher is closer) and ``iris`` [Q][k]. An approximate
            index may find fewer than ``k`` (scores padded with -inf, IRI lists shorter).
        """
        self._check_k(k, len(self))
        queries = self._prepare(vectors)
        scores, ids = self._ensure_backend().search(queries, k)
        return self._resolve(scores, ids)

    def search_iri(self, iri: str, k: int = 10) -> tuple[np.ndarray, list[str]]:
        """The ``k`` entities closest to a stored one, itself excluded: scores [k], IRIs."""
        self._check_k(k, len(self) - 1, others=True)
        row = self._row_of(iri)
        scores, ids = self._ensure_backend().search(self._vec[row : row + 1], k + 1)
        scores, iris = self._resolve(scores, ids)
        pairs = [(s, i) for s, i in zip(scores[0].tolist(), iris[0], strict=False) if i != iri]
        pairs = pairs[:k]
        return np.array([s for s, _ in pairs], np.float32), [i for _, i in pairs]

    def _check_k(self, k, available: int, others: bool = False) -> None:
        if self._n - self._dead == 0:
            raise EntityIndexError(
                f"the entity index is empty: build it from the graph's embeddings with "
                f"`{BUILD_COMMAND}` (or EntityIndex.build / add)"
            )
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise EntityIndexError(f"k={k!r}: expected an integer number of neighbours")
        if k <= 0:
            raise EntityIndexError(f"k={k}: ask for at least one neighbour (k >= 1)")
        if k > MAX_K:
            raise EntityIndexError(f"k={k} is over the limit of {MAX_K} neighbours per query")
        if k > available:
            what = "other entities" if others else "entities"
            raise EntityIndexError(f"k={k} but the index holds only {available} {what}")

    def _prepare(self, vectors) -> np.ndarray:
        matrix = _as_matrix(vectors)
        if matrix.shape[1] != self.dim:
            raise EntityIndexError(
                f"vectors have dimension {matrix.shape[1]}; this index has dimension {self.dim}"
            )
        if not np.isfinite(matrix).all():
            bad = np.nonzero(~np.isfinite(matrix).all(axis=1))[0][:5].tolist()
            raise EntityIndexError(f"vectors contain NaN or infinity (rows {bad})")
        if self.metric == "cosine":  # a zero vector stays zero (score 0 to everything)
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(matrix, dtype=np.float32)

    def _resolve(self, scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        live_ids = self._ids[: self._n]
        pos = np.clip(np.searchsorted(live_ids, ids), 0, max(self._n - 1, 0))
        ok = (ids >= 0) & (live_ids[pos] == ids) & self._alive[pos]
        scores = np.where(ok, scores, -np.inf).astype(np.float32)
        iris = [[self._iris[p] for p, f in zip(r, o, strict=True) if f]
                for r, o in zip(pos.tolist(), ok.tolist(), strict=True)]  # fmt: skip
        return scores, iris

    # ------------------------------------------------------------------ storage
    def save(self, folder, overwrite: bool = False) -> Path:
        """Write the index folder atomically (temp folder + rename; see module docstring)."""
        from .workspace import atomic_directory

        backend = self._ensure_backend() if len(self) else None
        if backend is not None and backend.kind == "hnsw" and backend.dead:
            self._backend = backend = _make_backend(self)  # write a graph without tombstones
        keep = np.nonzero(self._alive[: self._n])[0]
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "dim": self.dim,
            "metric": self.metric,
            "kind": self.kind,
            "count": len(keep),
            "graph_version": self.graph_version,
            "source": self.source,
            "next_id": self._next_id,
            "recall_estimate": self.recall_estimate,
            "config": asdict(self.config),
            "faiss_index": FAISS_FILE if backend is not None and backend.kind in ("ivf", "hnsw") else None,
        }  # fmt: skip
        with atomic_directory(folder, overwrite=overwrite) as tmp:
            save_file(
                {"vectors": np.ascontiguousarray(self._vec[keep]),
                 "ids": np.ascontiguousarray(self._ids[keep])},
                str(tmp / VECTORS_FILE),
            )  # fmt: skip
            (tmp / IRIS_FILE).write_text("\n".join(self._iris[r] for r in keep.tolist()), "utf-8")
            if meta["faiss_index"]:
                _load_faiss().write_index(backend.index, str(tmp / FAISS_FILE))
            (tmp / INDEX_FILE).write_text(json.dumps(meta, indent=2), "utf-8")
        return Path(folder)

    @classmethod
    def load(cls, folder, expected_version=None) -> EntityIndex:
        """Read a folder written by :meth:`save`.

        ``expected_version``: a :func:`graph_version` string, or a graph / manifest /
        workspace folder to compute it from; a different stored version is refused."""
        folder = Path(folder)
        path = folder / INDEX_FILE
        if not path.is_file():
            raise EntityIndexError(
                f"no entity index in {folder} (no {INDEX_FILE}); build one with `{BUILD_COMMAND}`"
            )
        def damaged(where: Path, why: str) -> EntityIndexError:
            return EntityIndexError(
                f"{where}: the entity index is damaged ({why}); rebuild it with `{BUILD_COMMAND}`"
            )

        try:
            meta = json.loads(path.read_text("utf-8"))
        except (ValueError, RecursionError) as err:  # bad JSON or bytes
            raise damaged(path, f"not valid JSON: {err}") from None
        if not isinstance(meta, dict):
            raise damaged(path, f"expected a JSON object, found {type(meta).__name__}")
        if meta.get("format") != FORMAT:
            raise EntityIndexError(f"{path}: not a kgfusion entity index")
        if meta.get("version", 0) > VERSION:
            raise EntityIndexError(
                f"{folder} has index format {meta['version']}; this kgfusion reads up to {VERSION}: upgrade kgfusion"
            )
        if expected_version is not None:
            want = (
                expected_version
                if isinstance(expected_version, str)
                else graph_version(expected_version)
            )
            if meta.get("graph_version") != want:
                raise StaleIndexError(
                    f"{folder} was built for graph version {meta.get('graph_version')}, the graph "
                    f"is now {want}: rebuild the index with `{BUILD_COMMAND}` (DIR: the workspace)"
                )
        try:
            config = dict(meta["config"])
            index = cls(meta["dim"], config.pop("metric"), config.pop("kind"),
                        graph_version=meta.get("graph_version"), **config)  # fmt: skip
            if not isinstance(meta["count"], int):
                raise TypeError(f"count {meta['count']!r}")
        except (KeyError, TypeError, ValueError) as err:
            raise damaged(path, f"{type(err).__name__}: {err}") from None
        vectors, ids, iris = _read_rows(folder, meta, damaged)
        index._vec, index._ids = np.ascontiguousarray(vectors, np.float32), ids.astype(np.int64)
        index._alive, index._iris = np.ones(len(ids), bool), iris
        index._row = {iri: r for r, iri in enumerate(iris)}
        index._n, index._next_id = len(ids), int(meta.get("next_id", len(ids)))
        index.recall_estimate = meta.get("recall_estimate")
        index.source = meta.get("source")
        faiss = _load_faiss()
        if meta.get("faiss_index") and faiss is not None:
            stored = faiss.read_index(str(folder / meta["faiss_index"]))
            if stored.ntotal != len(ids):
                raise EntityIndexError(f"{folder}: the FAISS file holds {stored.ntotal} vectors, "
                                       f"not {len(ids)}; rebuild it with `{BUILD_COMMAND}`")  # fmt: skip
            index._backend = FaissBackend(index, meta["kind"], stored, faiss=faiss)
        elif len(ids):
            index._ensure_backend()
        return index


def _read_rows(folder: Path, meta: dict, damaged) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The vectors, ids and IRIs of an index folder, verified against its metadata (shapes,
    types, finiteness, uniqueness, count); ``damaged(path, why)`` makes the error."""
    try:
        arrays = load_file(str(folder / VECTORS_FILE))
    except Exception as err:  # SafetensorError, a bad header, OSError
        raise damaged(folder / VECTORS_FILE, f"unreadable: {err}") from None
    try:
        text = (folder / IRIS_FILE).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise damaged(folder / IRIS_FILE, str(err)) from None
    iris = text.split("\n") if text else []
    vectors, ids = arrays.get("vectors"), arrays.get("ids")
    if vectors is None or ids is None:
        raise damaged(folder / VECTORS_FILE, f"tensors {sorted(arrays)}, expected vectors, ids")
    if vectors.ndim != 2 or vectors.shape[1] != meta["dim"] or ids.ndim != 1:
        raise damaged(folder / VECTORS_FILE, f"vectors {vectors.shape}, ids {ids.shape}, "
                      f"dim {meta['dim']}")  # fmt: skip
    if vectors.dtype.kind != "f" or ids.dtype.kind not in "iu":
        raise damaged(folder / VECTORS_FILE, f"vectors {vectors.dtype}, ids {ids.dtype}")
    if not np.isfinite(vectors).all():
        raise damaged(folder / VECTORS_FILE, "vectors that are not finite numbers")
    if len(set(iris)) != len(iris) or len(np.unique(ids)) != len(ids):
        raise damaged(folder, "repeated IRIs or ids")
    if not len(iris) == len(vectors) == len(ids) == meta["count"]:
        raise EntityIndexError(
            f"{folder}: {len(iris)} IRIs, {len(vectors)} vectors, {len(ids)} ids but "
            f"count={meta['count']}; the folder is damaged: rebuild it with `{BUILD_COMMAND}`"
        )
    return vectors, ids, iris


# ---------------------------------------------------------------------- backends
def _make_backend(index: EntityIndex):
    """Resolve ``kind`` and build the backend from the live rows."""
    kind, n = index.config.kind, len(index)
    faiss = _load_faiss()
    if kind == "auto":
        kind = "torch" if faiss is None else "exact" if n < APPROX_FROM else "ivf"
        if faiss is None and n >= APPROX_FROM:
            warnings.warn(
                f"faiss is not installed: exact torch search over {n} entities "
                "(pip install 'kgfusion[index]' for an IVF index)",
                stacklevel=3,
            )
    elif kind != "torch" and faiss is None:
        warnings.warn(
            f"kind={kind!r} needs faiss, which is not installed: using exact torch search "
            "(pip install 'kgfusion[index]')",
            stacklevel=3,
        )
        kind = "torch"
    if kind == "torch":
        return TorchBackend(index)
    backend = FaissBackend(index, kind, None, faiss=faiss)
    if kind in ("ivf", "hnsw") and (
        (kind == "ivf" and index.config.nprobe is None)
        or (kind == "hnsw" and index.config.ef_search is None)
    ):
        index._backend = backend
        index.tune()
    return backend


# ---------------------------------------------------------------------- helpers
def _as_matrix(vectors) -> np.ndarray:
    if hasattr(vectors, "detach"):  # a torch tensor
        vectors = vectors.detach().cpu().float().numpy()
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2:
        raise EntityIndexError(f"vectors must be [N, d] or [d]; got shape {matrix.shape}")
    return matrix


def _resize(array: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, *array.shape[1:]), array.dtype)
    out[: min(rows, len(array))] = array[:rows]
    return out


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean |found ∩ truth| / |truth| over queries (ids; -1 = nothing found)."""
    hits = [
        len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist(), strict=True)
    ]
    return float(np.mean(hits)) if hits else 0.0

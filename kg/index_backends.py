"""The search backends of :class:`kg.index.EntityIndex` (see its module docstring).

A backend serves one index: it reads the index's row store (``_vec``, ``_ids``, ``_alive``,
``_n``) and ``config``, and answers ``search(queries [Q, d] float32, k) -> (scores [Q, k],
ids [Q, k])`` with "higher is closer" scores and id -1 where nothing was found; ``add`` /
``remove`` keep it in step with the rows, ``stale()`` asks for a rebuild.
:func:`kg.index._make_backend` chooses one.
"""

from __future__ import annotations

import math

import numpy as np

TRAIN_PER_LIST = 50  # IVF k-means sample: this many vectors per cell (faiss wants >= 39)


class TorchBackend:
    """Exact search with torch: chunked ``queries @ vectors.T`` + a running top-k.

    Memory: one [Q, chunk] float32 score block, chunk = chunk_mb MiB / (4 Q) rows."""

    kind = "torch"

    def __init__(self, index):
        self.index, self._norms, self._norms_version = index, None, -1

    def stale(self) -> bool:
        return False

    def add(self, ids, vectors) -> None:  # the row store is the index
        pass

    def remove(self, ids) -> None:  # rows are already marked dead
        pass

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        ix, n = self.index, self.index._n
        x, q = torch.from_numpy(ix._vec[:n]), torch.from_numpy(queries)
        alive = torch.from_numpy(ix._alive[:n]) if ix._dead else None
        l2 = ix.metric == "l2"
        if l2 and self._norms_version != ix._version:
            self._norms, self._norms_version = (x * x).sum(1), ix._version
        chunk = max(1024, ix.config.chunk_mb * 2**20 // (4 * len(queries)))
        best_s = best_i = None
        with torch.inference_mode():
            for start in range(0, n, chunk):
                block = q @ x[start : start + chunk].T  # [Q, c]
                if l2:  # -|q - x|^2 = 2 q.x - |x|^2 - |q|^2 (|q|^2 added at the end)
                    block = 2 * block - self._norms[start : start + chunk]
                if alive is not None:
                    block.masked_fill_(~alive[start : start + chunk], -math.inf)
                s, i = block.topk(min(k, block.shape[1]), dim=1)
                i += start
                if best_s is not None:
                    s, j = torch.cat([best_s, s], 1).topk(k, dim=1)
                    i = torch.cat([best_i, i], 1).gather(1, j)
                best_s, best_i = s, i
            if l2:
                best_s = best_s - (q * q).sum(1, keepdim=True)
        scores, rows = best_s.numpy(), best_i.numpy()
        ids = np.where(np.isfinite(scores), ix._ids[rows], -1)
        return scores, ids


class FaissBackend:
    """FAISS exact (IDMap2 + Flat), IVF (IVFFlat with its own ids) or HNSW (IDMap2 + HNSW)."""

    def __init__(self, index, kind: str, stored=None, *, faiss):
        self.faiss, self.owner, self.kind = faiss, index, kind
        self.dead: set[int] = set()  # HNSW tombstones
        self._selector = None
        cfg, n = index.config, len(index)
        metric = self.faiss.METRIC_L2 if cfg.metric == "l2" else self.faiss.METRIC_INNER_PRODUCT
        if stored is not None:
            self.index = stored
            if kind == "ivf":
                self.nlist = stored.nlist
            return
        # no dead row: views, not copies (2.6 GB at 10M x 64-d)
        live = np.nonzero(index._alive[: index._n])[0] if index._dead else slice(0, index._n)
        vectors, ids = index._vec[live], index._ids[live]
        if kind == "exact":
            self.index = self.faiss.IndexIDMap2(self.faiss.IndexFlat(index.dim, metric))
        elif kind == "hnsw":
            inner = self.faiss.IndexHNSWFlat(index.dim, cfg.hnsw_m, metric)
            inner.hnsw.efConstruction = cfg.ef_construction
            self.index = self.faiss.IndexIDMap2(inner)
        else:
            nlist = cfg.nlist or round(4 * math.sqrt(n))
            self.nlist = max(1, min(nlist, n // 39))  # faiss wants >= 39 points per cell
            quantizer = self.faiss.IndexFlat(index.dim, metric)
            self.index = self.faiss.IndexIVFFlat(quantizer, index.dim, self.nlist, metric)
            sample = np.random.default_rng(0).choice(
                n, min(n, TRAIN_PER_LIST * self.nlist), replace=False
            )
            self.index.train(vectors[np.sort(sample)])
        if n:
            self.index.add_with_ids(vectors, ids)

    def stale(self) -> bool:  # rebuild HNSW once half its nodes are tombstones
        return self.kind == "hnsw" and len(self.dead) > self.index.ntotal // 2

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        if self.kind == "hnsw":  # HNSW cannot delete: filter at search time
            self.dead.update(ids.tolist())
            self._selector = None
        else:
            self.index.remove_ids(np.ascontiguousarray(ids, np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        cfg, faiss = self.owner.config, self.faiss
        params = None
        if self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=min(cfg.nprobe or 1, self.nlist))
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(cfg.ef_search or 16, k))
            if self.dead:
                if self._selector is None:  # keep both selectors alive while in use
                    batch = faiss.IDSelectorBatch(np.fromiter(self.dead, np.int64, len(self.dead)))
                    self._selector = (batch, faiss.IDSelectorNot(batch))
                params.sel = self._selector[1]
        distances, ids = self.index.search(queries, k, params=params)
        scores = -distances if cfg.metric == "l2" else distances
        return np.where(ids >= 0, scores, -np.inf).astype(np.float32), ids

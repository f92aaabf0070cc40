"""Candidate generation: lexical (BM25 over entity names) and dense (nearest neighbours).

For each mention the linker takes the union of

- the ``k_lexical`` best entities by **BM25** (Robertson & Zaragoza, "The Probabilistic
  Relevance Framework: BM25 and Beyond", 2009; ``k1 = 1.2``, ``b = 0.75``) of the mention's
  tokens against each entity's names and aliases, tokenised by
  :func:`align.text.analyse` (so ``PS-LX350H`` and ``pslx350h`` meet). The index is a
  term -> (entity, weight) posting list in CSR arrays; a query's scores over all entities
  are one ``bincount`` of its terms' postings;
- the ``k_dense`` nearest entities by cosine of the mention's text embedding to the
  entities' text embeddings (a bi-encoder retrieval step as in BLINK: Wu et al., "Scalable
  Zero-shot Entity Linking with Dense Entity Retrieval", EMNLP 2020), one
  :class:`kg.index.EntityIndex` per node type so that a type filter costs nothing. With a
  trained projection (:mod:`align.projection`) both sides are projected first.

:class:`Candidates` carries, per mention, the rows and the raw signals the pair features
need (cosines, BM25 scores) and the maxima over the candidate set.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from kg.index import EntityIndex

from . import text as T


class BM25Index:
    """BM25 over one bag of tokens per entity (see the module docstring)."""

    def __init__(self, docs: list[list[str]], k1: float = 1.2, b: float = 0.75):
        self.n = len(docs)
        vocab: dict[str, int] = {}
        term_ids, doc_ids, tfs = [], [], []
        lengths = np.zeros(self.n, np.float64)
        for d, doc in enumerate(docs):
            counts: dict[str, int] = {}
            for token in doc:
                counts[token] = counts.get(token, 0) + 1
            lengths[d] = len(doc)
            for token, c in counts.items():
                term_ids.append(vocab.setdefault(token, len(vocab)))
                doc_ids.append(d)
                tfs.append(c)
        term = np.asarray(term_ids, np.int64)
        doc = np.asarray(doc_ids, np.int64)
        tf = np.asarray(tfs, np.float64)
        avg = max(lengths.mean(), 1e-9) if self.n else 1.0
        df = np.bincount(term, minlength=len(vocab)).astype(np.float64)
        idf = np.log(1.0 + (self.n - df + 0.5) / (df + 0.5))
        weight = idf[term] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[doc] / avg))
        order = np.argsort(term, kind="stable")
        self.vocab = vocab
        self.docs = doc[order]
        self.weights = weight[order].astype(np.float32)
        self.ptr = np.searchsorted(term[order], np.arange(len(vocab) + 1))

    def scores(self, query: list[str]) -> np.ndarray:
        """BM25 of every entity for the query's distinct tokens: float32 [N]."""
        ids = [self.vocab[t] for t in set(query) if t in self.vocab]
        if not ids:
            return np.zeros(self.n, np.float32)
        docs = np.concatenate([self.docs[self.ptr[i] : self.ptr[i + 1]] for i in ids])
        weights = np.concatenate([self.weights[self.ptr[i] : self.ptr[i + 1]] for i in ids])
        return np.bincount(docs, weights=weights, minlength=self.n).astype(np.float32)


@dataclass
class Candidates:
    """The candidate entities of one mention, with their raw signals (all [C] arrays)."""

    rows: np.ndarray  # int64 entity rows, candidate-generation order
    dense: np.ndarray  # cosine, mention vs entity text embedding
    proj: np.ndarray  # cosine in the projected space (= dense without a projection)
    bm25: np.ndarray  # BM25 of the mention's tokens against the entity's names
    dense_max: float
    proj_max: float
    bm25_max: float


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first (ties: lower index first)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


class CandidateGenerator:
    """Lexical + dense candidates over an :class:`~align.entities.EntityTable`."""

    def __init__(self, entities, projection: np.ndarray | None = None):
        self.entities = entities
        self.bm25 = BM25Index([T.analyse(" ".join(a)) for a in entities.aliases])
        self.set_projection(projection)

    def set_projection(self, projection: np.ndarray | None) -> None:
        self.projection = projection
        vecs = self.entities.text_vecs
        self.search_vecs = _normalise(vecs @ projection) if projection is not None else vecs
        self._indexes: dict[str, EntityIndex] = {}

    def project(self, mention_vecs: np.ndarray) -> np.ndarray:
        if self.projection is None:
            return mention_vecs
        return _normalise(mention_vecs @ self.projection)

    def _index(self, node_type: str) -> EntityIndex:
        index = self._indexes.get(node_type)
        if index is None:
            rows = self.entities.type_rows[node_type]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # no FAISS: exact torch search, same answers
                index = EntityIndex.build(
                    [str(r) for r in rows.tolist()], self.search_vecs[rows], metric="cosine"
                )
            self._indexes[node_type] = index
        return index

    def allowed_rows(self, types) -> np.ndarray | None:
        if not types:
            return None
        unknown = [t for t in types if t not in self.entities.type_rows]
        if unknown:
            have = ", ".join(self.entities.type_rows)
            raise ValueError(f"no linkable entities of type {unknown[0]!r}; types: {have}")
        return np.concatenate([self.entities.type_rows[t] for t in types])

    def generate(
        self,
        mentions,
        mention_vecs: np.ndarray,
        *,
        k_dense: int = 20,
        k_lexical: int = 20,
        types=None,
        extra: list[list[int]] | None = None,
        exclude: list[list[int]] | None = None,
    ) -> list[Candidates]:
        """Candidates for each mention; ``extra[i]`` rows are added to mention ``i``'s set
        (pair scoring: the entity of the pair, whether retrieved or not); ``exclude[i]`` rows
        are taken out of the catalogue for mention ``i`` (as if it lacked them: the NIL
        calibration of :mod:`align.calibrate` removes a mention's true match)."""
        entities = self.entities
        type_list = list(types) if types else list(entities.type_rows)
        allowed = self.allowed_rows(types)
        mask = None
        if allowed is not None:
            mask = np.zeros(len(entities), bool)
            mask[allowed] = True
        projected = self.project(mention_vecs)
        dense_rows: list[list[np.ndarray]] = [[] for _ in mentions]
        if k_dense > 0 and len(mentions):
            for node_type in type_list:
                index = self._index(node_type)
                k = min(k_dense + _most(exclude), len(index))
                _, ids = index.search(projected, k)
                for i, found in enumerate(ids):
                    dense_rows[i].append(np.array([int(x) for x in found], np.int64))
        out = []
        for i, mention in enumerate(mentions):
            tokens = getattr(mention, "tokens", None)  # a Mention's analysed tokens, cached
            bm25 = self.bm25.scores(list(tokens) if tokens is not None else T.analyse(mention.text))
            if mask is not None:
                bm25 = np.where(mask, bm25, 0.0)
            gone = np.asarray(exclude[i] if exclude is not None else [], np.int64)
            if len(gone):
                bm25[gone] = 0.0
            lexical = top_k(bm25, k_lexical) if k_lexical > 0 else np.zeros(0, np.int64)
            lexical = lexical[bm25[lexical] > 0]
            dense_parts = dense_rows[i]
            if len(gone):  # the excluded rows are not in the catalogue for this mention
                dense_parts = [p[~np.isin(p, gone)][:k_dense] for p in dense_parts]
            parts = [*dense_parts, lexical]
            if extra is not None and extra[i]:
                more = np.asarray(extra[i], np.int64)
                parts.append(more[~np.isin(more, gone)] if len(gone) else more)
            rows = np.asarray(list(dict.fromkeys(np.concatenate(parts).tolist())), np.int64)
            dense = entities.text_vecs[rows] @ mention_vecs[i]
            proj = self.search_vecs[rows] @ projected[i] if self.projection is not None else dense
            scores = bm25[rows]
            out.append(
                Candidates(
                    rows, dense.astype(np.float32), proj.astype(np.float32), scores,
                    float(dense.max(initial=-1.0)), float(proj.max(initial=-1.0)),
                    float(bm25.max(initial=0.0)),
                )
            )  # fmt: skip
        return out


def _most(lists) -> int:
    return max((len(x) for x in lists), default=0) if lists is not None else 0


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim == 1:
        return x / max(float(np.linalg.norm(x)), 1e-12)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


__all__ = ["BM25Index", "CandidateGenerator", "Candidates", "top_k"]

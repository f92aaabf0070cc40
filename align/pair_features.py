"""Pair features: what the scorer sees about one (mention, candidate entity) pair.

One row of :data:`FEATURES` per pair, float32 [P, F], all in about [-1, 1]:

=================  =======================================================================
``dense_cos``      cosine of the mention's text embedding and the entity's text feature
``dense_margin``   ``dense_cos`` minus the best ``dense_cos`` over the mention's candidates
``proj_cos``       cosine after the trained projection (:mod:`align.projection`; equal to
                   ``dense_cos`` without one); ``proj_margin`` likewise
``graph_cos``      cosine of the mention embedding (mapped into the graph space when the
                   graph vectors are GNN embeddings) and the entity's graph-enriched vector
                   (:class:`align.entities.EntityTable`)
``bm25_rel``       BM25 of the mention against the entity's names / the best BM25 over the
                   catalogue (1 for the lexical top-1)
``fuzzy_set``      rapidfuzz ``token_set_ratio`` / 100 of the mention title and entity name;
                   ``fuzzy_sort`` (``token_sort_ratio``), ``fuzzy_partial``
                   (``partial_ratio``) likewise
``tfidf_title``    IDF-weighted cosine of the token sets of the mention title and the
                   entity's names (binary tf, IDF over the catalogue's texts);
                   ``tfidf_text`` the same over the whole mention and entity texts
``title_unmatched`` IDF mass of the mention title's tokens missing from the entity's names,
                   as a fraction of the title's mass; ``name_unmatched`` the converse
``unmatched_idf``  the largest normalised IDF of a token on one side only (``upgrade``,
                   ``mac``, ``5-user``: the rare word that makes two titles differ)
``model_match``    1 if the mention title and the entity names share a model number
                   (squashed: ``ps-lx350h`` = ``pslx350h``)
``model_idf``      the largest normalised IDF (``idf / log(1 + 2N)``) of a model number
                   shared by the whole texts; 0 if none
``model_contained`` 1 if a model number (>= 5 characters) of one side occurs inside the
                   other side's squashed text (``am53bk`` in ``...am53bkblack...``)
``model_conflict`` 1 if both titles have model numbers and none is shared or contained
``number_jaccard`` Jaccard of the stand-alone numbers of mention title and entity name;
                   ``number_known`` 1 if both have numbers
``price_agree``    ``min(p_m, p_e) / max(p_m, p_e)`` when both prices are known, else 0;
                   ``price_known`` 1 if both are known
``brand_known``    1 if the graph gives the entity a brand (:attr:`EntityTable.brands`)
``brand_match``    1 if one of those brand names occurs in the mention (all its tokens)
=================  =======================================================================

Hand-made string and number agreement features of this kind are what classical entity
matchers learn from (Konda et al., "Magellan: Toward Building Entity Matching Management
Systems", VLDB 2016); Ditto injects the same knowledge (numbers, model codes) as span
markup for a transformer (Li et al., "Deep Entity Matching with Pre-Trained Language
Models", VLDB 2021 / arXiv 2020).
"""

from __future__ import annotations

import math

import numpy as np
from rapidfuzz import fuzz

FEATURES = (
    "dense_cos",
    "dense_margin",
    "proj_cos",
    "proj_margin",
    "graph_cos",
    "bm25_rel",
    "fuzzy_set",
    "fuzzy_sort",
    "fuzzy_partial",
    "tfidf_title",
    "tfidf_text",
    "title_unmatched",
    "name_unmatched",
    "unmatched_idf",
    "model_match",
    "model_idf",
    "model_contained",
    "model_conflict",
    "number_jaccard",
    "number_known",
    "price_agree",
    "price_known",
    "brand_known",
    "brand_match",
)
F = {name: i for i, name in enumerate(FEATURES)}


def _tfidf(a: set[str], b: set[str], idf) -> float:
    if not a or not b:
        return 0.0
    common = sum(idf(t) ** 2 for t in a & b)
    if not common:
        return 0.0
    na = math.sqrt(sum(idf(t) ** 2 for t in a))
    nb = math.sqrt(sum(idf(t) ** 2 for t in b))
    return common / (na * nb)


def _mass(tokens: set[str], idf) -> float:
    return sum(idf(t) for t in tokens)


def _contained(models: set[str], squashed: str) -> bool:
    return any(len(m) >= 5 and m in squashed for m in models)


def pair_features(entities, mention, cands, graph_vec: np.ndarray, rows=None) -> np.ndarray:
    """Features [len(rows), F] of ``mention`` against candidate ``rows`` (default: all of
    ``cands.rows``); ``graph_vec`` is the mention embedding in the graph space [d_g]."""
    if rows is None:
        positions = np.arange(len(cands.rows))
    else:
        where = {int(r): j for j, r in enumerate(cands.rows.tolist())}
        positions = np.array([where[int(r)] for r in rows], np.int64)
    rows = cands.rows[positions]
    out = np.zeros((len(rows), len(FEATURES)), np.float32)
    if not len(rows):
        return out
    out[:, F["dense_cos"]] = cands.dense[positions]
    out[:, F["dense_margin"]] = cands.dense[positions] - cands.dense_max
    out[:, F["proj_cos"]] = cands.proj[positions]
    out[:, F["proj_margin"]] = cands.proj[positions] - cands.proj_max
    out[:, F["graph_cos"]] = entities.graph_vecs[rows] @ graph_vec
    if cands.bm25_max > 0:
        out[:, F["bm25_rel"]] = cands.bm25[positions] / cands.bm25_max
    idf = entities.idf
    n = len(entities)
    idf_top = math.log(1.0 + 2.0 * n)
    title_norm = mention.title_norm
    for j, row in enumerate(rows.tolist()):
        e = entities.info(row)
        x = out[j]
        x[F["fuzzy_set"]] = fuzz.token_set_ratio(title_norm, e.name_norm) / 100.0
        x[F["fuzzy_sort"]] = fuzz.token_sort_ratio(title_norm, e.name_norm) / 100.0
        x[F["fuzzy_partial"]] = fuzz.partial_ratio(title_norm, e.name_norm) / 100.0
        x[F["tfidf_title"]] = _tfidf(mention.title_tokens, e.name_tokens, idf)
        x[F["tfidf_text"]] = _tfidf(mention.tokens, e.text_tokens, idf)
        only_m = mention.title_tokens - e.name_tokens
        only_e = e.name_tokens - mention.title_tokens
        x[F["title_unmatched"]] = _mass(only_m, idf) / max(_mass(mention.title_tokens, idf), 1e-9)
        x[F["name_unmatched"]] = _mass(only_e, idf) / max(_mass(e.name_tokens, idf), 1e-9)
        x[F["unmatched_idf"]] = max((idf(t) for t in only_m | only_e), default=0.0) / idf_top
        shared_title = mention.title_models & e.name_models
        x[F["model_match"]] = float(bool(shared_title))
        shared = mention.models & e.text_models
        if shared:
            x[F["model_idf"]] = max(idf(m) for m in shared) / idf_top
        contained = _contained(mention.title_models, e.squashed) or _contained(
            e.name_models, mention.squashed
        )
        x[F["model_contained"]] = float(contained)
        x[F["model_conflict"]] = float(
            bool(mention.title_models) and bool(e.name_models) and not shared_title
            and not contained
        )  # fmt: skip
        a, b = mention.title_numbers, e.name_numbers
        if a and b:
            x[F["number_jaccard"]] = len(a & b) / len(a | b)
            x[F["number_known"]] = 1.0
        price = entities.prices[row]
        if mention.price is not None and price == price:
            x[F["price_agree"]] = min(mention.price, price) / max(mention.price, price)
            x[F["price_known"]] = 1.0
        if e.brand_tokens:
            x[F["brand_known"]] = 1.0
            x[F["brand_match"]] = float(any(b and b <= mention.word_tokens for b in e.brand_tokens))
    return out

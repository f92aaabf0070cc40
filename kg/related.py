"""Related entities from the entity index, re-scored and explained by the graph.

:func:`related` answers "what is related to this product?":

1. **Candidates** come from the :class:`kg.index.EntityIndex` (``search_iri``, over-fetching
   ``5 k`` and more until ``k`` candidates of the wanted type remain; the query itself is
   never one), plus, when a ``relation`` is given, the query's direct neighbours by it,
   plus the scorer's own proposals when it has a ``propose`` method (a link-prediction
   model finds accessories that the index, which finds look-alikes, would not).
2. **Score** of a candidate ``c`` for the query ``q`` (the terms are the ``parts``)::

       score = similarity + scorer + relation + evidence
       similarity = the index score (cosine for the default metric), times the
                    scorer's ``similarity_weight`` when it has one (0 for a link
                    model whose score already holds the text similarity)
       scorer     = scorer(q, candidates, relation)[c]  (a trained model's probability)
       relation   = RELATION_BOOST if q and c share an edge of `relation`
                    (either direction), else 0           (when a relation is given)
       evidence   = min(EVIDENCE_CAP, EVIDENCE_SHARED * shared neighbours
                                      + EVIDENCE_DIRECT * direct edges)

   ``RELATION_BOOST`` is 1.0, more than any cosine gap: known links come first, ordered
   by the rest of their score, then the other candidates. A *shared neighbour* is a node
   that ``q`` and ``c`` reach by the same relation in the same direction (same brand, same
   category); a *direct edge* links ``q`` and ``c``. Paths do not change the score.
   The scorer is the hook for a trained link-prediction model (``fusion.scoring.
   LinkScorer``): any callable ``scorer(query_iri, candidate_iris, relation) -> scores
   [len(candidate_iris)]``, optionally with ``propose(query_iri, relation, k) -> iris``.
3. **Evidence** (``explain=True``) lists direct edges, shared neighbours and paths of
   length <= 3 between ``q`` and ``c``, found by a bounded breadth-first search over the
   graph's adjacency in both directions (nodes with more than ``HUB_DEGREE`` edges are not
   expanded; at most ``max_expansions`` adjacency entries are read per query). A path reads
   ``A -brand-> B <-brand- C``: arrows follow the RDF edges.

Entity names (``RelatedItem.name``, the labels in evidence lines) come from
:func:`kg.labels.display_name`; finding an entity by name is :func:`kg.labels.lexical_lookup`.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .graph import GraphLookupError
from .index import MAX_K, EntityIndexError, StaleIndexError, graph_version
from .labels import display_name
from .naming import REV_PREFIX, split_iri

RELATION_BOOST = 1.0  # a known edge outranks any cosine gap: known links first
EVIDENCE_SHARED = 0.02
EVIDENCE_DIRECT = 0.05
EVIDENCE_CAP = 0.1
HUB_DEGREE = 1000
Scorer = Callable[[str, list[str], "str | None"], Sequence[float]]


@dataclass(frozen=True)
class RelatedItem:
    """One answer: the entity, its score, the score's parts and the graph evidence."""

    iri: str
    node_type: str
    score: float
    parts: dict[str, float]
    evidence: list[str] = field(default_factory=list)
    name: str | None = None


# ---------------------------------------------------------------------- adjacency
class _Adjacency:
    """Both directions of every edge, grouped by node (CSR): for node ``u``, entries
    ``ptr[u]:ptr[u+1]`` give neighbour ``nbr``, predicate id ``rel`` and ``out`` (True:
    ``u -rel-> nbr``; False: ``nbr -rel-> u``)."""

    def __init__(self, graph):
        owner = np.concatenate([graph.src, graph.dst])
        order = np.argsort(owner, kind="stable")
        self.nbr = np.concatenate([graph.dst, graph.src])[order]
        self.rel = np.concatenate([graph.pred, graph.pred])[order]
        self.out = np.concatenate([np.ones(graph.num_edges, bool), np.zeros(graph.num_edges, bool)])[order]  # fmt: skip
        self.ptr = np.searchsorted(owner[order], np.arange(graph.num_nodes + 1))
        self.edges = graph.num_edges

    def degree(self, node: int) -> int:
        return int(self.ptr[node + 1] - self.ptr[node])

    def of(self, node: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = self.ptr[node], self.ptr[node + 1]
        return self.nbr[a:b], self.rel[a:b], self.out[a:b]


_ADJACENCY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _adjacency(graph) -> _Adjacency:
    cached = _ADJACENCY.get(graph)
    if cached is None or cached.edges != graph.num_edges:
        cached = _ADJACENCY[graph] = _Adjacency(graph)
    return cached


def _gid(graph, iri: str) -> int:
    node_type, local = graph.node(iri)  # raises GraphLookupError with close names
    return int(graph.global_ids(node_type)[local])


# ---------------------------------------------------------------------- related
def related(graph, index, iri: str, k: int = 10, relation: str | None = None,
            node_type: str | Iterable[str] | None = None, explain: bool = True,
            scorer: Scorer | None = None, *, max_paths: int = 3,
            max_expansions: int = 20_000) -> list[RelatedItem]:  # fmt: skip
    """The ``k`` entities most related to ``iri`` (see the module docstring for the score).

    Args:
        graph: the :class:`kg.ProductGraph` the index was built for.
        index: a :class:`kg.index.EntityIndex` holding ``iri``.
        relation: a relation name (``"isAccessoryOrSparePartFor"``; ``rev_`` names and
            predicate IRIs too) whose edges, in either direction, boost a candidate, or are
            passed to ``scorer``; it also sets the default ``node_type``.
        node_type: type(s) of the answers; default: the types at the other end of
            ``relation`` from the query's type, else the query's own type; ``"*"``: any.
        explain: list the graph evidence of each answer (paths cost a bounded search).
        scorer: ``scorer(query_iri, candidate_iris, relation) -> scores``, e.g. a trained
            link-prediction model (:class:`fusion.scoring.LinkScorer`); with a
            ``propose(query_iri, relation, k)`` method its proposals join the candidates.
    Raises:
        GraphLookupError: unknown IRI, relation or type (with the closest names).
        EntityIndexError: bad ``k``, query not in the index; StaleIndexError: the index
        was built for another version of the graph.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise EntityIndexError(f"k={k!r}: ask for at least one related entity (k >= 1)")
    query_type, _ = graph.node(iri)
    if index.graph_version is not None and index.graph_version != graph_version(graph):
        raise StaleIndexError(
            f"the entity index was built for graph version {index.graph_version}, this graph "
            f"is {graph_version(graph)}: rebuild it with `kgf index DIR`"
        )
    preds = _relation_predicates(graph, relation) if relation is not None else set()
    types = _answer_types(graph, query_type, node_type, preds)
    adj, q = _adjacency(graph), _gid(graph, iri)
    q_nbr, q_rel, q_out = adj.of(q)
    linked = {n for n, r in zip(q_nbr.tolist(), q_rel.tolist(), strict=True) if r in preds}
    pool = _candidates(graph, index, iri, k, types, [graph.nodes[n] for n in linked if n != q])
    if scorer is not None and hasattr(scorer, "propose"):
        proposed = [c for c in scorer.propose(iri, relation, max(5 * k, 50))
                    if c not in pool and c != iri and c in index and _wanted(graph, c, types)]  # fmt: skip
        if proposed:
            pool.update(zip(proposed, index.similarity(iri, proposed).tolist(), strict=True))
    if not pool:
        return []

    # score: similarity + scorer + boost for linked candidates + evidence
    candidates = list(pool)
    if scorer is not None:
        relation_part = np.asarray(scorer(iri, candidates, relation), dtype=np.float64)
        if relation_part.shape != (len(candidates),):
            raise ValueError(
                f"scorer returned shape {relation_part.shape} for {len(candidates)} candidates"
            )
    # a scorer whose score already holds the similarity (fusion.scoring.LinkScorer with
    # its text prior) says so with similarity_weight = 0: it is not counted twice
    weight = float(getattr(scorer, "similarity_weight", 1.0)) if scorer is not None else 1.0
    q_keys, q_direct = _edge_keys(q_nbr, q_rel, q_out), Counter(q_nbr.tolist())
    rows = []
    for j, c in enumerate(candidates):
        g = _gid(graph, c)
        shared = [key for key in _edge_keys(*adj.of(g)) & q_keys if key[0] not in (q, g)]
        bonus = EVIDENCE_SHARED * len(shared) + EVIDENCE_DIRECT * q_direct.get(g, 0)
        parts = {"similarity": weight * pool[c], "evidence": min(EVIDENCE_CAP, bonus)}
        if scorer is not None:
            parts["scorer"] = float(relation_part[j])
        if preds:
            parts["relation"] = RELATION_BOOST if g in linked else 0.0
        rows.append((sum(parts.values()), pool[c], c, g, parts, shared))
    rows.sort(key=lambda r: (-r[0], -r[1], r[2]))

    paths = _PathFinder(graph, adj, q, max_expansions) if explain else None
    names: dict[int, str] = {}
    return [
        RelatedItem(
            c, _type_of(graph, c), float(score), parts,
            paths.explain(g, shared, max_paths, names) if paths is not None else [],
            display_name(graph, c),
        )
        for score, _, c, g, parts, shared in rows[:k]
    ]  # fmt: skip


def _candidates(graph, index, iri: str, k: int, types, linked: list[str]) -> dict[str, float]:
    """IRI -> similarity: the index's nearest entities of the wanted types (over-fetching
    5 k, then 4x more until k remain or the index is exhausted), plus ``linked`` ones."""
    available, pool = min(len(index) - 1, MAX_K), {}
    fetch = min(available, max(5 * k, 50))
    while fetch > 0:
        scores, iris = index.search_iri(iri, fetch)
        pool = {c: float(s) for c, s in zip(iris, scores.tolist(), strict=False)
                if _wanted(graph, c, types)}  # fmt: skip
        if len(pool) >= k or fetch >= available:
            break
        fetch = min(available, fetch * 4)
    extra = [c for c in linked if c not in pool and c in index and _wanted(graph, c, types)]
    if extra:
        pool.update(zip(extra, index.similarity(iri, extra).tolist(), strict=True))
    return pool


def _relation_predicates(graph, relation: str) -> set[int]:
    base = relation.removeprefix(REV_PREFIX)
    preds = {
        i for i, p in enumerate(graph.predicates)
        if relation == p or base == graph.predicate_names[p]
    }  # fmt: skip
    if not preds or not any(
        r.predicate in {graph.predicates[i] for i in preds} for r in graph.relations
    ):
        names = sorted({r.name for r in graph.relations})
        raise GraphLookupError(f"no relation {relation!r}; relations: {', '.join(names)}")
    return preds


def _answer_types(graph, query_type: str, node_type, preds: set[int]) -> set[str] | None:
    if node_type == "*":
        return None
    if node_type is not None:
        wanted = {node_type} if isinstance(node_type, str) else set(node_type)
        for t in wanted:
            graph.type_id(t)  # raises GraphLookupError with the closest names
        return wanted
    names = {graph.predicates[p] for p in preds}
    ends = {
        r.dst_type for r in graph.relations if r.predicate in names and r.src_type == query_type
    }
    ends |= {
        r.src_type for r in graph.relations if r.predicate in names and r.dst_type == query_type
    }
    return ends or {query_type}


def _wanted(graph, iri: str, types: set[str] | None) -> bool:
    node_type = _type_of(graph, iri)
    return node_type is not None and (types is None or node_type in types)


def _type_of(graph, iri: str) -> str | None:
    try:
        return graph.node(iri)[0]
    except GraphLookupError:  # in the index but not in the graph: never an answer
        return None


def _edge_keys(nbr: np.ndarray, rel: np.ndarray, out: np.ndarray) -> set[tuple[int, int, bool]]:
    return set(zip(nbr.tolist(), rel.tolist(), out.tolist(), strict=True))


# ---------------------------------------------------------------------- evidence
class _PathFinder:
    """Paths q - x - y - c of length <= 3, by a bounded search from both ends.

    From the query: every non-hub neighbour ``x`` is expanded once (``reach``: y -> the
    two-edge paths q-x-y). From a candidate ``c``: its neighbours ``y`` meet ``reach``
    (length 3 via a non-hub x); a non-hub ``y`` is also expanded to meet hub ``x``."""

    def __init__(self, graph, adj: _Adjacency, q: int, max_expansions: int):
        self.graph, self.adj, self.q = graph, adj, q
        self.budget = max_expansions
        nbr, rel, out = adj.of(q)
        self.first: dict[int, list[tuple[int, bool]]] = {}  # x -> edges q-x
        for x, r, o in zip(nbr.tolist(), rel.tolist(), out.tolist(), strict=True):
            self.first.setdefault(x, []).append((r, o))
        self.reach: dict[int, list[tuple[int, int, bool, int, bool]]] = {}
        for x, edges in self.first.items():
            if x == q or adj.degree(x) > HUB_DEGREE or not self._spend(adj.degree(x)):
                continue
            xn, xr, xo = adj.of(x)
            for y, r2, o2 in zip(xn.tolist(), xr.tolist(), xo.tolist(), strict=True):
                if y != q:
                    r1, o1 = edges[0]
                    self.reach.setdefault(y, []).append((x, r1, o1, r2, o2))
        self.hubs = {x for x in self.first if x != q and adj.degree(x) > HUB_DEGREE}

    def _spend(self, cost: int) -> bool:
        if cost > self.budget:
            return False
        self.budget -= cost
        return True

    def explain(self, c: int, shared, max_paths: int, names: dict[int, str]) -> list[str]:
        """Evidence lines for candidate ``c``: direct edges, shared neighbours, paths."""
        graph, q, adj = self.graph, self.q, self.adj
        label = lambda n: _label(graph, n, names)
        relname = lambda r: graph.predicate_names[graph.predicates[r]]

        def path(*hops) -> str:  # hops: (relation, edge points forward, node reached)
            arrows = (f" -{relname(r)}-> " if fwd else f" <-{relname(r)}- " for r, fwd, _ in hops)
            return label(q) + "".join(
                a + label(n) for a, (_, _, n) in zip(arrows, hops, strict=True)
            )

        lines = [f"direct: {path((r, o, c))}" for r, o in self.first.get(c, [])][:max_paths]
        for x, r, o in sorted(shared)[:max_paths]:
            lines.append(
                f"shared {relname(r)}: {label(x)}" if o else f"both {relname(r)} of {label(x)}"
            )
        shared_edges = set(shared)
        found: list[str] = []
        c_nbr, c_rel, c_out = adj.of(c)
        for y, r3, o3 in zip(c_nbr.tolist(), c_rel.tolist(), c_out.tolist(), strict=True):
            if len(found) >= max_paths or y == q:
                continue
            last = (r3, not o3, c)  # the edge y - c, read from y
            # length 2 through a common neighbour y, unless reported as a shared neighbour
            found += [f"path: {path((r1, o1, y), last)}" for r1, o1 in self.first.get(y, [])
                      if (y, r1, o1) not in shared_edges]  # fmt: skip
            # length 3 through a non-hub x expanded from the query
            found += [f"path: {path((r1, o1, x), (r2, o2, y), last)}"
                      for x, r1, o1, r2, o2 in self.reach.get(y, []) if x != c]  # fmt: skip
            # length 3 through a hub x: expand y (from the candidate's side) instead
            if self.hubs and adj.degree(y) <= HUB_DEGREE and self._spend(adj.degree(y)):
                yn, yr, yo = adj.of(y)
                for x, r2, o2 in zip(yn.tolist(), yr.tolist(), yo.tolist(), strict=True):
                    if x in self.hubs and x != c:
                        r1, o1 = self.first[x][0]
                        found.append(f"path: {path((r1, o1, x), (r2, not o2, y), last)}")
        return lines + found[:max_paths]


def _label(graph, node: int, cache: dict[int, str]) -> str:
    if node not in cache:
        iri = graph.nodes[node]
        cache[node] = display_name(graph, iri) or split_iri(iri)[1]
    return cache[node]

"""The typed product graph: nodes by type, typed relations, literal columns.

A :class:`ProductGraph` is built from :class:`kg.triples.RawTriples` (integer arrays) and
derives everything else with vectorised numpy:

- **Node types.** A node's type comes from its ``rdf:type``; untyped IRIs and blank nodes
  get ``options.default_type`` (``"Entity"``). When a node has several types, the rule
  ``options.multi_type`` decides, after ``options.type_priority`` (a list of class IRIs or
  local names tried first):

  - ``"rarest"`` (default): the class with the fewest instances in the graph, i.e. the
    most specific one (``schema:Product`` + ``gr:ProductOrServiceModel`` -> the rarer);
    ties go to the lexically smaller IRI;
  - ``"lexical"``: the lexically smallest class IRI;
  - ``"join"``: a combined type named by the sorted local names joined with ``+``.

  Type names are the classes' local names, made unique (:mod:`kg.naming`).
- **Relations.** Edges are grouped into PyG edge types ``(src_type, relation, dst_type)``;
  the relation is the predicate's unique local name. :meth:`to_pyg` adds the inverse
  ``rev_<relation>`` of each for message passing.
- **Literal columns** per ``(node_type, predicate name, kind)`` with kind one of
  ``text`` (with language tag), ``number``, ``boolean``, ``date`` (days since 1970-01-01)
  and ``image`` (a reference, resolved relative to the file it came from). A lexical form
  that does not parse as its datatype is kept as text and counted in a warning
  (:mod:`kg.literals`).

The graph is a data object: queries over it are functions of their own modules,
:func:`kg.related.related` (related products), :func:`kg.sparql.run_query` (SPARQL),
:func:`kg.labels.display_name` / :func:`kg.labels.lexical_lookup` (names).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from .hints import did_you_mean
from .literals import KINDS, ColumnData, LiteralColumn, LiteralValue, classify_literals
from .naming import REV_PREFIX, split_iri, unique_local_names
from .terms import graph_triples
from .triples import DEFAULT_IMAGE_PREDICATES, RawTriples, TripleSink
from .workspace import MANIFEST, damaged, read_graph, save_graph

MULTI_TYPE_RULES = ("rarest", "lexical", "join")


class GraphLookupError(KeyError):
    """An IRI, type or relation that the graph does not have; the message suggests names."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0])


@dataclass(frozen=True)
class GraphOptions:
    """How triples become a typed graph (recorded in the workspace manifest)."""

    default_type: str = "Entity"
    multi_type: str = "rarest"
    type_priority: tuple[str, ...] = ()
    image_predicates: tuple[str, ...] = DEFAULT_IMAGE_PREDICATES

    def __post_init__(self):
        if self.multi_type not in MULTI_TYPE_RULES:
            raise ValueError(f"multi_type={self.multi_type!r}; choose one of {MULTI_TYPE_RULES}")
        object.__setattr__(self, "type_priority", tuple(self.type_priority))
        object.__setattr__(self, "image_predicates", tuple(self.image_predicates))


@dataclass(frozen=True)
class Relation:
    name: str
    predicate: str
    src_type: str
    dst_type: str
    count: int

    @property
    def edge_type(self) -> tuple[str, str, str]:
        return (self.src_type, self.name, self.dst_type)


@dataclass(frozen=True)
class Neighbor:
    relation: str
    iri: str
    node_type: str
    direction: str  # "out" (iri is the object) or "in" (iri is the subject; relation rev_*)


def _array(buffer, dtype) -> np.ndarray:
    return np.frombuffer(buffer, dtype=dtype).copy() if len(buffer) else np.zeros(0, dtype)


def _mix(key: np.ndarray, part: np.ndarray) -> np.ndarray:
    """FNV-1a-style step: ``key`` (uint64 [n]) with ``part`` (int [n]) folded in."""
    return (key ^ part.astype(np.uint64)) * np.uint64(1099511628211)


def _unique_bounded(key: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)`` for int keys in ``[0, bound)``: by counting,
    without a sort, where ``bound`` is not much above ``len(key)``."""
    if bound > 4 * len(key) + 1024:
        return np.unique(key, return_inverse=True)
    present = np.flatnonzero(np.bincount(key, minlength=bound))
    rank = np.zeros(bound, np.int64)
    rank[present] = np.arange(len(present))
    return present, rank[key]


def _repeats(key: np.ndarray) -> np.ndarray:
    """Mask (bool [n]) of the entries of ``key`` that occur more than once (``np.sort``,
    a third cheaper than ``argsort``, tells whether any do; only then ``argsort``)."""
    if not (np.diff(np.sort(key)) == 0).any():
        return np.zeros(len(key), bool)
    order = np.argsort(key)
    same = key[order[1:]] == key[order[:-1]]
    mask = np.zeros(len(key), bool)
    mask[order[1:][same]] = True
    mask[order[:-1][same]] = True
    return mask


class ProductGraph:
    """A typed, heterogeneous graph of catalogue entities (see the module docstring)."""

    def __init__(self, raw: RawTriples, options: GraphOptions | None = None):
        self.options = options or GraphOptions()
        self.nodes: list[str] = raw.nodes
        self.predicates, self.classes = raw.predicates, raw.classes
        self.datatypes, self.languages = raw.datatypes, raw.languages
        self.sources: list[dict] = raw.sources
        self.skipped = raw.skipped
        self.src, self.dst = _array(raw.src, np.int64), _array(raw.dst, np.int64)
        self.pred = _array(raw.pred, np.int32)
        self.type_node, self.type_class = (
            _array(raw.type_node, np.int64),
            _array(raw.type_class, np.int32),
        )
        self.lit_node, self.lit_pred = (
            _array(raw.lit_node, np.int64),
            _array(raw.lit_pred, np.int32),
        )
        self.lit_dtype = _array(raw.lit_dtype, np.int32)
        self.lit_lang = _array(raw.lit_lang, np.int32)
        self.lit_source = _array(raw.lit_source, np.int32)
        self.lit_value: list[str] = raw.lit_value
        self.duplicates = self._drop_duplicates()
        self.predicate_names = unique_local_names(self.predicates)
        self._assign_types()
        self._group_edges()
        self._classify_literals()
        self._index: dict[str, int] | None = None
        self._csr: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._store_path: Path | None = None
        self._memory_store = None

    # ------------------------------------------------------------------ derivation
    def _drop_duplicates(self) -> int:
        """RDF graphs are sets: keep the first of repeated triples (input order kept).

        Rows are compared through one uint64 key each, mixed from their ids; only rows whose
        keys repeat are looked at again: literal rows get their value's ``hash()`` mixed in
        (most catalogues have one value per node, predicate, datatype and language, so few
        values are hashed), and the rows whose keys still repeat are compared exactly.
        Vectorised for the common case of no or few duplicates.
        """
        literal_cols = ("lit_node", "lit_pred", "lit_dtype", "lit_lang")
        groups = [  # (columns compared, columns filtered, compare literal values too)
            (("src", "pred", "dst"), ("src", "pred", "dst"), False),
            (("type_node", "type_class"), ("type_node", "type_class"), False),
            (literal_cols, (*literal_cols, "lit_source"), True),
        ]
        dropped = 0
        for compared, filtered, with_values in groups:
            parts = [getattr(self, c) for c in compared]
            if len(parts[0]) < 2:
                continue
            key = np.zeros(len(parts[0]), dtype=np.uint64)
            for part in parts:  # FNV-style mixing; exactness is checked below
                key = _mix(key, part)
            repeated = np.flatnonzero(_repeats(key))
            if with_values and len(repeated):
                values = [self.lit_value[i] for i in repeated.tolist()]
                key[repeated] = _mix(key[repeated], np.fromiter(map(hash, values), np.int64))
                repeated = np.flatnonzero(_repeats(key))
            seen: set = set()
            drop = []
            for i in repeated.tolist():  # increasing: the first of equal rows is kept
                row = tuple(int(p[i]) for p in parts) + (
                    (self.lit_value[i],) if with_values else ()
                )
                if row in seen:
                    drop.append(i)
                seen.add(row)
            if drop:
                keep = np.ones(len(key), dtype=bool)
                keep[drop] = False
                dropped += len(drop)
                for c in filtered:
                    setattr(self, c, getattr(self, c)[keep])
                if with_values:
                    self.lit_value = [
                        v for v, k in zip(self.lit_value, keep.tolist(), strict=True) if k
                    ]
        return dropped

    def _assign_types(self) -> None:
        opts, n = self.options, len(self.nodes)
        classes = np.array(self.classes, dtype=object)
        count = np.bincount(self.type_class, minlength=len(self.classes))
        name_rank = (
            np.argsort(np.argsort(classes.astype(str))) if len(classes) else np.zeros(0, int)
        )
        priority = np.full(len(self.classes), len(opts.type_priority), dtype=np.int64)
        for rank, wanted in enumerate(reversed(opts.type_priority)):
            for c, iri in enumerate(self.classes):
                if wanted in (iri, split_iri(iri)[1]):
                    priority[c] = len(opts.type_priority) - 1 - rank
        tn, tc = self.type_node, self.type_class
        chosen = np.full(n, -1, dtype=np.int64)
        if len(tn):
            by_count = count[tc] if opts.multi_type == "rarest" else np.zeros(len(tc), int)
            order = np.lexsort((name_rank[tc], by_count, priority[tc], tn))
            first_nodes, first = np.unique(tn[order], return_index=True)
            chosen[first_nodes] = tc[order][first]
        class_names = unique_local_names(self.classes)
        key_of_class = [class_names[c] for c in self.classes]
        if opts.multi_type == "join" and len(tn):
            pairs = sorted(set(zip(tn.tolist(), tc.tolist(), strict=True)))
            joined: dict[int, list[str]] = {}
            for node, c in pairs:
                joined.setdefault(node, []).append(key_of_class[c])
            extra = {}
            for node, names in joined.items():
                if len(names) > 1:
                    label = "+".join(sorted(names))
                    chosen[node] = extra.setdefault(label, len(key_of_class) + len(extra))
            key_of_class += list(extra)
        default = opts.default_type
        if default in key_of_class:
            default = default + "_untyped"
        present = np.flatnonzero(np.bincount(chosen[chosen >= 0]))  # np.unique imports np.ma
        used = sorted({key_of_class[c] for c in present.tolist()})
        if (chosen < 0).any():
            used = sorted([*used, default])
        self.node_types: list[str] = used
        position = {name: i for i, name in enumerate(used)}
        lookup = np.array([position.get(k, -1) for k in key_of_class] + [position.get(default, -1)])
        self.node_type_id = lookup[chosen].astype(np.int32) if n else np.zeros(0, np.int32)
        counts = np.bincount(self.node_type_id, minlength=len(used))
        order = np.argsort(self.node_type_id, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.node_local = np.empty(n, dtype=np.int64)
        self.node_local[order] = np.arange(n) - starts[self.node_type_id[order]]
        self._type_order, self._type_starts = order, starts
        self.num_nodes_dict: dict[str, int] = {t: int(c) for t, c in zip(used, counts, strict=True)}
        self.type_class_iri = {class_names[c]: c for c in self.classes}

    def _group_edges(self) -> None:
        n_types, n_preds = max(len(self.node_types), 1), max(len(self.predicates), 1)
        st, dt = self.node_type_id[self.src], self.node_type_id[self.dst]
        key = (st.astype(np.int64) * n_preds + self.pred) * n_types + dt
        uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        self._edge_order = np.argsort(inverse, kind="stable")
        self._edge_bounds = np.concatenate([[0], np.cumsum(counts)])
        self.relations: list[Relation] = []
        for k, c in zip(uniq.tolist(), counts.tolist(), strict=True):
            d, rest = k % n_types, k // n_types
            p, s = rest % n_preds, rest // n_preds
            iri = self.predicates[p]
            self.relations.append(
                Relation(self.predicate_names[iri], iri, self.node_types[s], self.node_types[d], c)
            )

    def _classify_literals(self) -> None:
        image_preds = set(self.options.image_predicates)
        is_image = np.isin(
            self.lit_pred, [i for i, p in enumerate(self.predicates) if p in image_preds]
        )
        kind, numbers, invalid = classify_literals(
            self.lit_value, self.lit_dtype, self.datatypes, is_image
        )
        if invalid:
            warnings.warn(
                f"{len(invalid)} literal(s) do not parse as their datatype and were kept as "
                f"text, e.g. {', '.join(invalid[:3])}",
                stacklevel=3,
            )
        self.invalid_literals = len(invalid)
        self.lit_kind, self.lit_num = kind, numbers  # int8 [L] codes into KINDS, float64 [L]
        n_preds = max(len(self.predicates), 1)
        key = (self.node_type_id[self.lit_node].astype(np.int64) * n_preds + self.lit_pred) * len(
            KINDS
        ) + self.lit_kind
        bound = max(len(self.node_types), 1) * n_preds * len(KINDS)
        self._col_keys, self._col_inverse = _unique_bounded(key, bound)

    # ------------------------------------------------------------------ sizes
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.src)

    @property
    def num_literals(self) -> int:
        return len(self.lit_value)

    @property
    def num_triples(self) -> int:
        return self.num_edges + self.num_literals + len(self.type_node)

    @property
    def edge_types(self) -> list[tuple[str, str, str]]:
        return [r.edge_type for r in self.relations]

    def __repr__(self) -> str:
        return (
            f"ProductGraph(nodes={self.num_nodes}, node_types={len(self.node_types)}, "
            f"edges={self.num_edges}, relations={len(self.relations)}, literals={self.num_literals})"
        )

    # ------------------------------------------------------------------ lookups
    def _node_id(self, iri: str) -> int:
        if self._index is None:
            self._index = {key: i for i, key in enumerate(self.nodes)}
        found = self._index.get(iri)
        if found is None:
            pool = [k for k in self.nodes if k[:12] == iri[:12]] or self.nodes
            hint = did_you_mean(iri, pool[:50000], n=3, cutoff=0.5, quote=False)
            raise GraphLookupError(f"no node {iri!r} in the graph{hint}")
        return found

    def node(self, iri: str) -> tuple[str, int]:
        """``(node_type, index within the type)`` of an IRI (blank nodes: ``_:label``)."""
        i = self._node_id(iri)
        return self.node_types[self.node_type_id[i]], int(self.node_local[i])

    def type_id(self, node_type: str) -> int:
        """Index of ``node_type`` in :attr:`node_types`; :class:`GraphLookupError` (with the
        closest names) for an unknown type."""
        if node_type not in self.num_nodes_dict:
            raise GraphLookupError(
                f"no node type {node_type!r}; types: {', '.join(self.node_types)}"
                + did_you_mean(node_type, self.node_types, paren=True, quote=False)
            )
        return self.node_types.index(node_type)

    def global_ids(self, node_type: str) -> np.ndarray:
        """Global node ids of a type, in index order (int64 [num_nodes_dict[type]])."""
        t = self.type_id(node_type)
        start = self._type_starts[t]
        return self._type_order[start : start + self.num_nodes_dict[node_type]]

    def iri(self, node_type: str, index: int) -> str:
        ids = self.global_ids(node_type)
        if not 0 <= index < len(ids):
            raise GraphLookupError(
                f"{node_type} has {len(ids)} nodes; index {index} is out of range"
            )
        return self.nodes[ids[index]]

    def node_iris(self, node_type: str) -> list[str]:
        return [self.nodes[i] for i in self.global_ids(node_type).tolist()]

    def _csr_lookup(self, name: str, keys: np.ndarray, node: int) -> np.ndarray:
        if name not in self._csr:
            order = np.argsort(keys, kind="stable")
            self._csr[name] = (order, np.searchsorted(keys[order], np.arange(self.num_nodes + 1)))
        order, ptr = self._csr[name]
        return order[ptr[node] : ptr[node + 1]]

    def neighbors(self, iri: str, relation: str | None = None) -> list[Neighbor]:
        """Nodes linked to ``iri``; incoming edges appear as ``rev_<relation>``.

        ``relation`` filters by relation name, ``rev_`` name, or predicate IRI.
        """
        i = self._node_id(iri)
        if relation is not None and not any(
            relation in (r.name, REV_PREFIX + r.name, r.predicate) for r in self.relations
        ):
            names = sorted({r.name for r in self.relations})
            raise GraphLookupError(f"no relation {relation!r}; relations: {', '.join(names)}")
        out: list[Neighbor] = []
        for direction, keys, others in (("out", self.src, self.dst), ("in", self.dst, self.src)):
            for e in self._csr_lookup(direction, keys, i).tolist():
                iri_p = self.predicates[self.pred[e]]
                name = self.predicate_names[iri_p]
                label = name if direction == "out" else REV_PREFIX + name
                if relation is None or relation in (label, iri_p):
                    other = int(others[e])
                    out.append(
                        Neighbor(
                            label,
                            self.nodes[other],
                            self.node_types[self.node_type_id[other]],
                            direction,
                        )
                    )
        return out

    def literals(self, iri: str) -> list[LiteralValue]:
        """Every literal (and image reference) of a node, in input order."""
        i = self._node_id(iri)
        result = []
        for j in self._csr_lookup("literal", self.lit_node, i).tolist():
            pred = self.predicates[self.lit_pred[j]]
            lang = self.lit_lang[j]
            dtype = self.datatypes[self.lit_dtype[j]]
            result.append(
                LiteralValue(
                    pred, self.predicate_names[pred], self.lit_value[j], KINDS[self.lit_kind[j]],
                    self.languages[lang] if lang >= 0 else None, dtype or None,
                )
            )  # fmt: skip
        return result

    # ------------------------------------------------------------------ literal columns
    def _decode_column(self, key: int) -> tuple[str, str, str]:
        n_preds = max(len(self.predicates), 1)
        kind, rest = key % len(KINDS), key // len(KINDS)
        p, t = rest % n_preds, rest // n_preds
        return self.node_types[t], self.predicates[p], KINDS[kind]

    def literal_columns(self) -> list[LiteralColumn]:
        """One entry per ``(node type, predicate, kind)`` with counts and coverage."""
        columns = []
        for c, key in enumerate(self._col_keys.tolist()):
            node_type, pred, kind = self._decode_column(key)
            rows = np.nonzero(self._col_inverse == c)[0]
            nodes = len(np.unique(self.lit_node[rows]))
            langs = Counter(self.languages[x] for x in self.lit_lang[rows].tolist() if x >= 0)
            columns.append(
                LiteralColumn(
                    node_type, self.predicate_names[pred], pred, kind, len(rows), nodes,
                    nodes / max(self.num_nodes_dict[node_type], 1), dict(sorted(langs.items())),
                )
            )  # fmt: skip
        return columns

    def column(self, node_type: str, name: str, kind: str | None = None) -> ColumnData:
        """The values of one literal column (``name``: predicate name or IRI)."""
        matches = [
            c
            for c, key in enumerate(self._col_keys.tolist())
            if (d := self._decode_column(key))[0] == node_type
            and name in (self.predicate_names[d[1]], d[1])
            and kind in (None, d[2])
        ]
        if not matches:
            have = sorted(
                {f"{c.name}:{c.kind}" for c in self.literal_columns() if c.node_type == node_type}
            )
            raise GraphLookupError(
                f"no literal column {name!r}{f' of kind {kind}' if kind else ''} on {node_type!r}; "
                f"columns: {', '.join(have) or 'none'}"
            )
        rows = np.nonzero(np.isin(self._col_inverse, matches))[0]
        langs = [self.languages[x] if x >= 0 else None for x in self.lit_lang[rows].tolist()]
        values = [self.lit_value[r] for r in rows.tolist()]
        paths = None
        if kind == "image" or all(KINDS[self.lit_kind[r]] == "image" for r in rows[:1].tolist()):
            paths = [
                self.resolve_image(v, s)
                for v, s in zip(values, self.lit_source[rows].tolist(), strict=True)
            ]
        return ColumnData(
            self.node_local[self.lit_node[rows]], values, langs, self.lit_num[rows], paths
        )

    def resolve_image(self, ref: str, source: int) -> Path | None:
        """A local file for an image reference, or None for remote (http/https) ones.

        ``file:`` IRIs become paths; relative paths are relative to the source file's folder.
        """
        parsed = urlparse(ref)
        if parsed.scheme in ("http", "https"):
            return None
        if parsed.scheme == "file":
            return Path(unquote(parsed.path))
        path = Path(ref)
        if not path.is_absolute() and 0 <= source < len(self.sources):
            base = self.sources[source].get("path", "")
            if base and not base.startswith("<"):
                path = Path(base).parent / path
        return path

    # ------------------------------------------------------------------ exports
    def edge_index(self, relation: Relation) -> np.ndarray:
        """Local ``[2, E]`` indices of one relation (int64)."""
        r = self.relations.index(relation)
        rows = self._edge_order[self._edge_bounds[r] : self._edge_bounds[r + 1]]
        return np.stack([self.node_local[self.src[rows]], self.node_local[self.dst[rows]]])

    def to_pyg(self, inverse: bool = True, literal_nodes: bool = False, type_edges: bool = False):
        """A ``torch_geometric.data.HeteroData``: ``num_nodes`` per type and an
        ``edge_index`` [2, E] per ``(src, relation, dst)``; with ``inverse``, also
        ``(dst, rev_<relation>, src)`` for message passing both ways. ``literal_nodes`` /
        ``type_edges`` add literal nodes and ``rdf:type`` edges: the R-GCN view of RDF
        (:func:`kg.views.edge_tensors`)."""
        from torch_geometric.data import HeteroData

        from .views import edge_tensors

        edges, num_nodes = edge_tensors(self, inverse, literal_nodes, type_edges)
        data = HeteroData()
        for node_type, count in num_nodes.items():
            data[node_type].num_nodes = count
        for edge_type, index in edges.items():
            data[edge_type].edge_index = index
        return data

    def to_networkx(self):
        """A ``networkx.MultiDiGraph``: nodes keyed by IRI with a ``type`` attribute, edges
        keyed by relation name with ``relation`` and ``predicate`` attributes."""
        import networkx as nx

        graph = nx.MultiDiGraph()
        types = self.node_type_id.tolist()
        graph.add_nodes_from(
            (iri, {"type": self.node_types[t]}) for iri, t in zip(self.nodes, types, strict=True)
        )
        names = [self.predicate_names[p] for p in self.predicates]
        graph.add_edges_from(
            (
                self.nodes[s],
                self.nodes[d],
                names[p],
                {"relation": names[p], "predicate": self.predicates[p]},
            )
            for s, p, d in zip(
                self.src.tolist(), self.pred.tolist(), self.dst.tolist(), strict=True
            )
        )
        return graph

    def triples(self):
        """Every triple as a ``pyoxigraph.Triple`` (types, edges, literals, image refs;
        :func:`kg.terms.graph_triples`)."""
        return graph_triples(self)

    def to_ntriples(self) -> bytes:
        import pyoxigraph as ox

        return ox.serialize(self.triples(), format=ox.RdfFormat.N_TRIPLES) or b""

    def to_rdflib(self):
        """An ``rdflib.Graph`` with every triple of this graph."""
        import rdflib

        graph = rdflib.Graph()
        graph.parse(data=self.to_ntriples(), format="nt")
        return graph

    @classmethod
    def from_rdflib(cls, graph, **options) -> ProductGraph:
        """Build from an ``rdflib.Graph`` (serialised and re-read through pyoxigraph)."""
        import pyoxigraph as ox

        opts = GraphOptions(**options)
        sink = TripleSink(opts.image_predicates)
        data = graph.serialize(format="nt", encoding="utf-8")
        count = sink.add_quads(ox.parse(data, ox.RdfFormat.N_TRIPLES), 0, scope="f0_")
        sink.raw.sources.append({"path": "<rdflib.Graph>", "format": "N_TRIPLES", "triples": count})
        return cls(sink.raw, opts)

    # ------------------------------------------------------------------ storage, queries
    def save(self, directory, overwrite: bool = False, sparql_store: bool = True) -> Path:
        """Write a workspace folder (see :mod:`kg.workspace`); atomic."""
        return save_graph(self, directory, overwrite=overwrite, sparql_store=sparql_store)

    @classmethod
    def load(cls, directory) -> ProductGraph:
        """Load a workspace folder written by :meth:`save` (no unpickling anywhere)."""
        directory = Path(directory)
        raw, options, store = read_graph(directory)
        try:
            with warnings.catch_warnings():  # said once, at build; `kgf info` counts them
                warnings.filterwarnings("ignore", message=r".*do not parse as their datatype")
                graph = cls(raw, GraphOptions(**options))
        except (TypeError, ValueError, KeyError, IndexError) as err:
            raise damaged(directory / MANIFEST, f"{type(err).__name__}: {err}") from None
        if store is not None:
            graph._store_path = store
        graph.workspace = directory
        return graph


def load_graph(directory) -> ProductGraph:
    """Load a workspace folder written by :meth:`ProductGraph.save` or ``kgf build``."""
    return ProductGraph.load(directory)

"""The linkable entities of a workspace: names, texts, prices, brands and vectors per entity.

An :class:`EntityTable` has one row per graph node that has a text feature (every node type
encoded by ``kgf encode``: products, brands, categories...). Row ``r`` holds:

- ``iris[r]``, ``types[r]``, ``gids[r]`` (global node id in the :class:`~kg.ProductGraph`);
- ``names[r]``: the preferred name-like literal (:func:`kg.labels.is_name_column`: columns
  ``name``, ``title``, ``label``, ``prefLabel``, ``altLabel``...; English, then untagged, then
  any language), or the node's
  text when it has none; ``aliases[r]``: every name-like literal value (all languages);
- ``texts[r]``: the text the features were encoded from (:func:`fusion.features.node_texts`);
- ``prices[r]``: the first ``number`` literal whose column name contains ``price`` (NaN);
- ``brands[r]``: names of the nodes it reaches by a relation named like ``brand``,
  ``manufacturer``, ``maker`` or ``vendor``, or that are of a type named like ``Brand`` /
  ``Manufacturer`` (the graph's brand evidence for pair features);
- ``text_vecs`` float32 [E, d]: the encoded text features (L2-normalised);
- ``graph_vecs`` float32 [E, d_g]: the *graph-enriched* entity vectors, L2-normalised:

  * when a trained GNN run exists (``WORKSPACE/models/<run>/embeddings.safetensors``, read
    by :func:`fusion.embeddings.run_embeddings`, as the entity index reads them; the newest
    complete run unless one is named; ``workspace=None`` never looks), its final node
    embeddings. A run trained on another version of the graph is refused when named and
    skipped with a warning otherwise.
    They live in the GNN's space, so mentions are mapped into it by a ridge regression
    from entity text features to entity GNN embeddings (``graph_map`` [d, d_g], fitted in
    closed form on the entities that have both);
  * otherwise the **neighbour mean**: the entity's own text feature averaged with the text
    features of its 1-hop neighbours in either direction (its brand, its category, the
    products of a brand...), ``g_e = normalise(mean({t_e} U {t_n : n in N(e)}))``; mentions
    are compared to it directly (``graph_map`` is None). One round of mean aggregation is a
    parameter-free stand-in for a GNN layer (Hamilton et al., "Inductive Representation
    Learning on Large Graphs", NeurIPS 2017, mean aggregator).

Token-level views (token sets, model numbers, numbers) are computed per row on first use
and cached, so a million-entity table costs only what the candidates touch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from fusion.features import NodeFeatures, node_texts
from kg.labels import is_name_column, language_priority, name_column_priority

from . import text as T

_BRAND_RELATION = re.compile(r"brand|manufacturer|maker|vendor", re.I)
_BRAND_TYPE = re.compile(r"brand|manufacturer", re.I)
RIDGE = 1e-2


def _name_rank(column: str, language: str | None, languages: tuple[str, ...]) -> tuple:
    """Language first (the features' languages, untagged, others), then the column's
    preference (:data:`kg.labels.NAME_COLUMNS`)."""
    return (language_priority(language, languages), name_column_priority(column))


@dataclass
class EntityInfo:
    """Token-level views of one entity (see :meth:`EntityTable.info`)."""

    name_tokens: set[str]
    text_tokens: set[str]
    name_models: set[str]
    text_models: set[str]
    name_numbers: set[str]
    squashed: str
    name_norm: str
    brand_tokens: list[set[str]] = field(default_factory=list)


def _normalised_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class EntityTable:
    """One row per linkable entity (see the module docstring)."""

    def __init__(self, graph, features: NodeFeatures, workspace=None, graph_run: str | None = None):
        self.graph = graph
        spec = features.spec
        iris, types, gids, texts, vecs = [], [], [], [], []
        for node_type, modalities in features.features.items():
            if "text" not in modalities:
                continue
            x, mask = modalities["text"]
            keep = np.nonzero(mask.numpy())[0]
            if not len(keep):
                continue
            type_texts = node_texts(graph, node_type, spec)
            type_gids = graph.global_ids(node_type)
            gids.append(type_gids[keep])
            iris += [graph.nodes[g] for g in type_gids[keep].tolist()]
            types += [node_type] * len(keep)
            texts += [type_texts[i] or "" for i in keep.tolist()]
            vecs.append(x.numpy()[keep])
        if not iris:
            raise ValueError(
                "the workspace's features have no text modality, so there is nothing to link "
                "to; run `kgf encode DIR --text minilm` (or another text encoder)"
            )
        self.iris: list[str] = iris
        self.types: list[str] = types
        self.gids = np.concatenate(gids).astype(np.int64)
        self.texts: list[str] = texts
        self.text_vecs = _normalised_rows(np.concatenate(vecs).astype(np.float32))
        self.row_of = {iri: r for r, iri in enumerate(iris)}
        self.type_rows = {
            t: np.array([r for r, x in enumerate(types) if x == t], np.int64)
            for t in dict.fromkeys(types)
        }
        self._names(spec.languages)
        self.prices = self._prices()
        self.brands = self._brands()
        self.graph_source, self.graph_vecs, self.graph_map = self._graph_vectors(
            workspace, graph_run
        )
        self._info: dict[int, EntityInfo] = {}

    def __len__(self) -> int:
        return len(self.iris)

    # ------------------------------------------------------------------ literals
    def _names(self, languages: tuple[str, ...]) -> None:
        graph = self.graph
        best: dict[int, tuple[tuple, str]] = {}
        aliases: dict[int, list[str]] = {}
        for column in graph.literal_columns():
            if column.kind != "text" or not is_name_column(column.name):
                continue
            data = graph.column(column.node_type, column.predicate, "text")
            type_gids = graph.global_ids(column.node_type)
            for index, value, lang in zip(
                data.index.tolist(), data.values, data.languages, strict=True
            ):
                value = value.strip()
                if not value:
                    continue
                gid = int(type_gids[index])
                rank = _name_rank(column.name, lang, languages)
                if gid not in best or rank < best[gid][0]:
                    best[gid] = (rank, value)
                names = aliases.setdefault(gid, [])
                if value not in names:
                    names.append(value)
        self.node_names = {gid: value for gid, (_, value) in best.items()}  # every node type
        self.names = [
            self.node_names.get(int(g), text[:200])
            for g, text in zip(self.gids, self.texts, strict=True)
        ]
        self.aliases = [
            aliases.get(int(g)) or [name] for g, name in zip(self.gids, self.names, strict=True)
        ]

    def _prices(self) -> np.ndarray:
        graph = self.graph
        by_gid = np.full(graph.num_nodes, np.nan)
        for column in graph.literal_columns():
            if column.kind == "number" and "price" in column.name.lower():
                data = graph.column(column.node_type, column.predicate, "number")
                gids = graph.global_ids(column.node_type)[data.index]
                fresh = np.isnan(by_gid[gids])
                by_gid[gids[fresh]] = data.numbers[fresh]
        prices = by_gid[self.gids]
        prices[~(prices > 0)] = np.nan
        return prices

    def _brands(self) -> list[tuple[str, ...]]:
        graph = self.graph
        if not len(graph.src):
            return [()] * len(self)
        rel_ok = np.array(
            [bool(_BRAND_RELATION.search(graph.predicate_names[p])) for p in graph.predicates],
            bool,
        )
        type_ok = np.array([bool(_BRAND_TYPE.search(t)) for t in graph.node_types], bool)
        edge_ok = rel_ok[graph.pred] | type_ok[graph.node_type_id[graph.dst]]
        src, dst = graph.src[edge_ok], graph.dst[edge_ok]
        found: dict[int, list[str]] = {}
        for s, d in zip(src.tolist(), dst.tolist(), strict=True):
            name = self.node_names.get(d)
            if name and name not in found.setdefault(s, []):
                found[s].append(name)
        return [tuple(found.get(int(g), ())) for g in self.gids]

    # ------------------------------------------------------------------ graph vectors
    def _graph_vectors(self, workspace, graph_run: str | None):
        import warnings

        from fusion.embeddings import StaleRunError, run_embeddings

        found = None
        if workspace is not None:
            try:  # the same run finder and staleness check as the entity index
                found = run_embeddings(workspace, self.graph, graph_run)
            except StaleRunError as err:
                if graph_run is not None:
                    raise
                warnings.warn(f"graph vectors from the neighbour mean: {err}", stacklevel=3)
        if found is not None:
            run, stored = found
            dims = {t.shape[1] for t in stored.values()}
            if len(dims) == 1:
                dim = dims.pop()
                out = np.zeros((len(self), dim), np.float32)
                has = np.zeros(len(self), bool)
                for node_type, rows in self.type_rows.items():
                    block = stored.get(node_type)
                    if block is None:
                        continue
                    local = self.graph.node_local[self.gids[rows]]
                    out[rows] = block.numpy()[local]
                    has[rows] = True
                if has.sum() >= 2:
                    x = self.text_vecs[has].astype(np.float64)
                    y = out[has].astype(np.float64)
                    gram = x.T @ x + RIDGE * len(x) * np.eye(x.shape[1])
                    mapping = np.linalg.solve(gram, x.T @ y).astype(np.float32)
                    out[~has] = self.text_vecs[~has] @ mapping  # no embedding: mapped text
                    return f"gnn:{run.name}", _normalised_rows(out), mapping
        return "neighbour-mean", self._neighbour_mean(), None

    def _neighbour_mean(self) -> np.ndarray:
        graph = self.graph
        d = self.text_vecs.shape[1]
        node_vec = torch.zeros(graph.num_nodes, d)
        has = torch.zeros(graph.num_nodes)
        node_vec[torch.from_numpy(self.gids)] = torch.from_numpy(self.text_vecs)
        has[torch.from_numpy(self.gids)] = 1.0
        total, count = node_vec.clone(), has.clone()
        if len(graph.src):
            src, dst = torch.from_numpy(graph.src), torch.from_numpy(graph.dst)
            total.index_add_(0, src, node_vec[dst])
            total.index_add_(0, dst, node_vec[src])
            count.index_add_(0, src, has[dst])
            count.index_add_(0, dst, has[src])
        mean = total[torch.from_numpy(self.gids)] / count[torch.from_numpy(self.gids)].clamp(
            min=1
        ).unsqueeze(1)
        return _normalised_rows(mean.numpy().astype(np.float32))

    def to_graph_space(self, mention_vecs: np.ndarray) -> np.ndarray:
        """Mention text vectors [M, d] -> the graph vectors' space [M, d_g], normalised."""
        if self.graph_map is None:
            return mention_vecs
        return _normalised_rows(mention_vecs @ self.graph_map)

    # ------------------------------------------------------------------ token views
    def info(self, row: int) -> EntityInfo:
        found = self._info.get(row)
        if found is None:
            name = self.names[row]
            alias_text = " ".join(self.aliases[row])
            full = f"{alias_text} {self.texts[row]}"
            found = self._info[row] = EntityInfo(
                name_tokens=set(T.analyse(alias_text)),
                text_tokens=set(T.analyse(full)),
                name_models=T.model_tokens(alias_text),
                text_models=T.model_tokens(full),
                name_numbers=T.numbers(name),
                squashed=T.squash(full),
                name_norm=" ".join(T.tokens(name)),
                brand_tokens=[set(T.tokens(b)) for b in self.brands[row]],
            )
        return found

    @cached_property
    def _idf_table(self) -> tuple[dict[str, float], float]:
        """IDF ``log(1 + N / (df + 0.5))`` of analysed tokens over entity names + texts,
        and the IDF of a token no entity has."""
        df: dict[str, int] = {}
        for row in range(len(self)):
            for token in self.info(row).text_tokens:
                df[token] = df.get(token, 0) + 1
        n = len(self)
        return {t: math.log(1.0 + n / (c + 0.5)) for t, c in df.items()}, math.log(1.0 + n / 0.5)

    def idf(self, token: str) -> float:
        table, unknown = self._idf_table
        return table.get(token, unknown)

"""R-GCN over the homogeneous relational view of a heterogeneous graph.

:class:`RGCN` (registered as ``"rgcn"``) stacks :class:`RGCNLayer` s; featureless node types
enter the first layer as one-hot input through :class:`RGCNInputLayer` (the paper's
featureless setting) or as learned embeddings (``featureless=``). The layers are in
:mod:`fusion.gnn.rgcn_layers`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import GNNS, EdgeType, HeteroGNN
from .relational import RelationalGraph, relational_graph
from .rgcn_layers import IMPLS as IMPLS
from .rgcn_layers import MixedFirstLayer, RGCNInputLayer, RGCNLayer, onehot_input_size

__all__ = ["RGCN", "RGCNInputLayer", "RGCNLayer", "onehot_input_size"]

FEATURELESS = ("auto", "onehot", "embedding")
RELATIONS = ("predicate", "edge_type")
#: ``featureless="auto"`` takes one-hot input while :func:`onehot_input_size` is at most this
#: many floats (64 MiB in float32; Adam and the gradient hold three more copies), and
#: learned embeddings above it.
ONEHOT_AUTO_MAX = 2**24


def relation_ids(edge_types: Sequence[EdgeType], relations: str) -> tuple[list[str], list[int]]:
    """``(names, ids)``: the relations and the relation of each edge type; ``"edge_type"``:
    one per edge type, ``"predicate"``: one per relation name (``edge_type[1]``), shared by
    the edge types of that name whatever their node types."""
    if relations == "edge_type":
        return [str(e) for e in edge_types], list(range(len(edge_types)))
    names: dict[str, int] = {}
    ids = [names.setdefault(e[1], len(names)) for e in edge_types]
    return list(names), ids


@GNNS.register("rgcn")
class RGCN(HeteroGNN):
    r"""Relational GCN (Schlichtkrull et al., ESWC 2018) on the heterogeneous graph.

    Node types are stacked into one index space (cached per graph, see
    :mod:`fusion.gnn.relational`) and each layer is an :class:`RGCNLayer`. Every node type
    gets an output through the root weight :math:`W_0`, so types that receive no messages
    need no extra transform. Add the inverse edge types to the metadata for messages to flow
    both ways (as R-GCN does).

    **Relations** (``relations``): ``"predicate"`` (default, the paper's): one relation
    per relation name, so edge types of one predicate between different node types
    (``(Article, author, Person)``, ``(Book, author, Person)``) share :math:`W_r` and one
    neighbour mean :math:`1/c_{i,r}`; ``"edge_type"``: one relation per edge type.

    **Featureless node types** (``featureless``): ``"onehot"``: the paper's featureless
    input, the first layer is an :class:`RGCNInputLayer` (per-relation, per-node input
    weights :math:`W^{(0)}_r[j]`, with the basis decomposition when ``num_bases`` is set,
    and a root row per node) for them, added to the :class:`RGCNLayer` of the types with
    features; ``"embedding"``: a learned ``nn.Embedding(N_t, hidden)`` row per node, then
    shared :math:`W_r` (``hidden x hidden``), as the other GNNs do; ``"auto"`` (default):
    one-hot while :func:`onehot_input_size` is at most :data:`ONEHOT_AUTO_MAX` floats,
    embeddings above it (and with ``num_layers=0``). One-hot input holds ``hidden`` floats
    per node and relation it sends, plus a root row per node (with bases: ``num_bases x
    hidden`` per node, plus the relation weights materialised in each forward pass), where
    an embedding holds ``hidden`` per node; the R-GCN graph of AIFB (8,306 nodes, 90
    relations, hidden 16) takes 2.7M floats without bases, 6.7M with 30 (Adam and the
    gradient add three times the parameters). On AIFB (``benchmarks/aifb.py``, 10 seeds)
    one-hot input and per-predicate relations reach 97.2 % test accuracy where embeddings
    give 89.7 % and per-edge-type relations 84.2 % (paper: 95.8 %); the paper's
    architecture also needs ``out_proj=False`` (the last layer outputs the class logits)
    and ``task.head = false``, see ``examples/aifb_rgcn.toml``.

    Args:
        metadata, in_dims, hidden, out_dim, num_layers, dropout, residual, norm, num_nodes,
        act, out_proj: see :class:`~fusion.gnn.base.HeteroGNN`.
        num_bases: basis decomposition with this many bases (default: none), in every
            layer including the one-hot input layer.
        num_blocks: block-diagonal decomposition with this many blocks (must divide
            ``hidden``; default: none). At most one of the two. Not applied to one-hot
            input (full per-relation input weights, as PyG).
        impl: ``"csr"`` (default, fast) or ``"pyg"`` (``RGCNConv.forward``; same weights;
            the one-hot input layer has one implementation).
        featureless: ``"auto"`` (default), ``"onehot"`` or ``"embedding"`` (above).
        relations: ``"predicate"`` (default) or ``"edge_type"`` (above).
        node_ids: every node type, also those with features, takes its one-hot node id as
            input too: the first layer's input is the features concatenated with the one-hot
            vector, :math:`W_r [x_j; e_j] = W_r^x x_j + W_r^{(0)}[j]` (the one-hot part in
            the :class:`RGCNInputLayer`). Needs ``num_nodes`` of every type and full-batch
            input for the types with features (default ``False``).

    Shapes:
        ``x_dict[t]: [N_t, in_dims[t]]``, ``edge_index_dict[e]: [2, E_e]`` ->
        ``{t: [N_t, out_dim]}``.
    """

    self_types = "none"
    cache_size = 2

    option_defaults = {
        "num_bases": None, "num_blocks": None, "impl": "csr", "featureless": "auto",
        "relations": "predicate", "node_ids": False,
    }  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._graphs = _GraphCache()

    def check_options(self) -> None:
        o = self.options
        if o["num_bases"] is not None and o["num_blocks"] is not None:
            raise ValueError("gnn 'rgcn': pass num_bases or num_blocks, not both")
        if o["num_blocks"] is not None and self.hidden % o["num_blocks"]:
            raise ValueError(
                f"gnn 'rgcn': num_blocks={o['num_blocks']} must divide hidden={self.hidden}"
            )
        if o["impl"] not in IMPLS:
            raise ValueError(f"gnn 'rgcn': impl must be one of {IMPLS}, got {o['impl']!r}")
        if o["featureless"] not in FEATURELESS:
            raise ValueError(
                f"gnn 'rgcn': featureless must be one of {FEATURELESS}, got {o['featureless']!r}"
            )
        if o["relations"] not in RELATIONS:
            raise ValueError(
                f"gnn 'rgcn': relations must be one of {RELATIONS}, got {o['relations']!r}"
            )
        o["node_ids"] = bool(o["node_ids"])
        if o["node_ids"]:
            missing = [t for t in self.node_types if not self.num_nodes.get(t)]
            if missing or self.num_layers == 0:
                raise ValueError(
                    f"gnn 'rgcn': node_ids=True needs num_layers >= 1 and num_nodes of every "
                    f"node type (missing: {missing})"
                )

    def onehot_input_types(self) -> list[str]:
        """The featureless types that take one-hot input (see ``featureless``)."""
        self.relation_names, self.relation_of = relation_ids(
            self.edge_types, self.options["relations"]
        )
        featureless = [t for t in self.node_types if self.in_dims[t] is None]
        mode = self.options["featureless"]
        if mode == "embedding" or not featureless:
            return []
        if self.num_layers == 0:
            if mode == "onehot":
                raise ValueError("gnn 'rgcn': featureless='onehot' needs num_layers >= 1")
            return []
        if mode == "auto":
            size = onehot_input_size(
                {t: self.num_nodes[t] for t in featureless},
                self._sources(featureless),
                self.hidden,
                self.options["num_bases"],
            )
            if size > ONEHOT_AUTO_MAX:
                return []
        return featureless

    def _sources(self, types: Sequence[str]) -> list[list[str]]:
        """Per relation, the node types of ``types`` that send it."""
        sources: list[list[str]] = [[] for _ in self.relation_names]
        for (s, _, _), r in zip(self.edge_types, self.relation_of, strict=True):
            if s in types and s not in sources[r]:
                sources[r].append(s)
        return sources

    @property
    def id_types(self) -> list[str]:
        """The node types whose one-hot ids enter the first layer (:class:`RGCNInputLayer`):
        the one-hot featureless types, and with ``node_ids`` every type."""
        if self.options["node_ids"]:
            return list(self.node_types)
        return list(self.onehot_types)

    def build_conv(self, layer: int) -> nn.Module:
        conv = RGCNLayer(
            self.hidden,
            self.layer_out(layer),
            len(self.relation_names),
            num_bases=self.options["num_bases"],
            num_blocks=self.options["num_blocks"],
            impl=self.options["impl"],
        )
        id_types = self.id_types
        if layer > 0 or not id_types:
            return conv
        only_ids = len(self.onehot_types) == len(self.node_types)
        onehot = RGCNInputLayer(
            {t: self.num_nodes[t] for t in id_types},
            self._sources(id_types),
            self.layer_out(0),
            num_bases=self.options["num_bases"],
            bias=only_ids,
        )
        return onehot if only_ids else MixedFirstLayer(conv, onehot)

    def prepare(self, h: dict[str, Tensor], edges: dict[EdgeType, Tensor]) -> RelationalGraph:
        """The relational view of ``edges``, built once per graph: cached by the identity
        and version of the edge tensors and the node counts (the last
        :attr:`cache_size` graphs, e.g. a training and an evaluation graph)."""
        counts = {t: h[t].shape[0] for t in self.node_types}
        tensors = list(edges.values())
        key = (
            tuple((id(t), _version(t), t.device) for t in tensors),
            tuple(counts.values()),
        )
        hit = self._graphs.get(key)
        if hit is not None:
            self._graphs.move_to_end(key)
            return hit[1]
        offsets, total = {}, 0
        for t in self.node_types:
            offsets[t] = total
            total += counts[t]
        graph = relational_graph(tensors, self.edge_types, offsets, counts, self.relation_of)
        self._graphs[key] = (tensors, graph)  # holding the tensors keeps their ids unique
        while len(self._graphs) > self.cache_size:
            self._graphs.popitem(last=False)
        return graph

    def propagate(
        self, layer: int, h: dict[str, Tensor], edges: dict[EdgeType, Tensor], graph: Any
    ) -> dict[str, Tensor]:
        conv = self.convs[layer]
        sizes = [h[t].shape[0] for t in self.node_types]
        if layer == 0 and isinstance(conv, (RGCNInputLayer, MixedFirstLayer)):
            onehot = self.onehot_types
            ids = {t: (None if h[t] is self._all_ids(t) else h[t]) for t in onehot}
            for t in self.id_types:
                if t not in onehot and h[t].shape[0] != self.num_nodes[t]:
                    raise ValueError(
                        f"gnn 'rgcn': node_ids=True needs all {self.num_nodes[t]} rows of "
                        f"x_dict[{t!r}] (full batch), got {h[t].shape[0]}"
                    )
            if isinstance(conv, RGCNInputLayer):
                out = conv(graph, ids)
            else:
                like = next(h[t] for t in self.node_types if t not in onehot)
                x = torch.cat(
                    [
                        like.new_zeros(h[t].shape[0], self.hidden) if t in onehot else h[t]
                        for t in self.node_types
                    ]
                )
                out = conv.conv(x, graph) + conv.onehot(graph, ids)
        else:
            x = torch.cat([h[t] for t in self.node_types]) if len(h) > 1 else h[self.node_types[0]]
            out = conv(x, graph)
        return dict(zip(self.node_types, out.split(sizes), strict=True))

    def clear_cache(self) -> None:
        """Forget the cached relational graphs."""
        self._graphs.clear()


class _GraphCache(OrderedDict):
    """The cached relational graphs; never copied or pickled with the module (a deep copy
    or a copy on another device starts empty and rebuilds on first use)."""

    def __deepcopy__(self, memo) -> _GraphCache:
        return _GraphCache()

    def __reduce__(self):
        return (_GraphCache, ())


def _version(t: Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # inference tensors have no version counter
        return -1

"""R-GCN over the homogeneous relational view of a heterogeneous graph."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn import RGCNConv

from .base import GNNS, EdgeType, HeteroGNN
from .relational import RelationalGraph, relational_graph, relational_messages

__all__ = ["RGCN", "RGCNLayer"]

IMPLS = ("csr", "pyg")


class RGCNLayer(RGCNConv):
    r"""One R-GCN layer (Schlichtkrull et al., "Modeling Relational Data with Graph
    Convolutional Networks", ESWC 2018):

    .. math::
        h_i' = W_0 h_i + b + \sum_{r \in R} \sum_{j \in N_i^r} \frac{1}{c_{i,r}} W_r h_j,
        \qquad c_{i,r} = |N_i^r|

    with basis decomposition :math:`W_r = \sum_b a_{rb} V_b` (``num_bases``) or
    block-diagonal :math:`W_r = \operatorname{diag}(Q_{r1}, \dots, Q_{rB})` (``num_blocks``).

    A :class:`torch_geometric.nn.RGCNConv` (same parameters, same initialisation, same
    ``state_dict``) with a second forward path. ``impl="csr"`` (default) computes the
    relational sum as one autograd node
    (:func:`~fusion.gnn.relational.relational_messages`): one sparse product ``A @ x`` gives
    the neighbour mean of every non-empty (relation, destination) pair ("slot"), each
    :math:`W_r` multiplies only its relation's contiguous block of slots, and a second
    sparse product sums the slots into their destinations. Cost
    :math:`O(E d + S d^2)` for :math:`S \le \min(E, R N)` slots, where ``RGCNConv``
    without pyg-lib pays :math:`O(R E)` for masking the edge list once per relation plus
    :math:`O(R N d^2)` for multiplying all N rows by every :math:`W_r`. ``impl="pyg"``
    calls ``RGCNConv.forward``.

    Shapes:
        ``x: [N, in_channels]`` and a :class:`~fusion.gnn.relational.RelationalGraph`
        over N nodes -> ``[N, out_channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        impl: str = "csr",
    ):
        if impl not in IMPLS:
            raise ValueError(f"RGCNLayer: impl must be one of {IMPLS}, got {impl!r}")
        super().__init__(
            in_channels,
            out_channels,
            num_relations,
            num_bases=num_bases,
            num_blocks=num_blocks,
            aggr="mean",
            root_weight=True,
            bias=True,
        )
        self.impl = impl

    def relation_weights(self) -> Tensor:
        """``[R, in, out]``, or ``[R, blocks, in/blocks, out/blocks]`` for block decomposition."""
        if self.num_bases is not None:
            return (self.comp @ self.weight.view(self.num_bases, -1)).view(
                self.num_relations, self.in_channels_l, self.out_channels
            )
        return self.weight

    def forward(self, x: Tensor, graph: RelationalGraph) -> Tensor:  # type: ignore[override]
        if self.impl == "pyg":
            edge_index, edge_type = graph.homogeneous()
            return super().forward(x, edge_index, edge_type)
        out = torch.addmm(self.bias, x, self.root)
        return out + relational_messages(x, self.relation_weights(), graph)


@GNNS.register("rgcn")
class RGCN(HeteroGNN):
    r"""Relational GCN (Schlichtkrull et al., ESWC 2018) on the heterogeneous graph.

    Every edge type is one relation; node types are stacked into one index space (cached
    per graph, see :mod:`fusion.gnn.relational`) and each layer is an :class:`RGCNLayer`.
    Every node type gets an output through the root weight :math:`W_0`, so types that
    receive no messages need no extra transform. Add the inverse edge types to the
    metadata for messages to flow both ways (as R-GCN does).

    Args:
        metadata, in_dims, hidden, out_dim, num_layers, dropout, residual, norm, num_nodes,
        act: see :class:`~fusion.gnn.base.HeteroGNN`.
        num_bases: basis decomposition with this many bases (default: none).
        num_blocks: block-diagonal decomposition with this many blocks (must divide
            ``hidden``; default: none). At most one of the two.
        impl: ``"csr"`` (default, fast) or ``"pyg"`` (``RGCNConv.forward``; same weights).

    Shapes:
        ``x_dict[t]: [N_t, in_dims[t]]``, ``edge_index_dict[e]: [2, E_e]`` ->
        ``{t: [N_t, out_dim]}``.
    """

    self_types = "none"
    cache_size = 2

    def __init__(
        self,
        metadata: Any,
        in_dims: dict[str, int | None],
        hidden: int,
        out_dim: int,
        num_layers: int = 2,
        dropout: float = 0.0,
        residual: bool = False,
        norm: str | None = None,
        num_nodes: dict[str, int] | None = None,
        act: str = "relu",
        *,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        impl: str = "csr",
    ):
        if num_bases is not None and num_blocks is not None:
            raise ValueError("gnn 'rgcn': pass num_bases or num_blocks, not both")
        if num_blocks is not None and hidden % num_blocks:
            raise ValueError(f"gnn 'rgcn': num_blocks={num_blocks} must divide hidden={hidden}")
        if impl not in IMPLS:
            raise ValueError(f"gnn 'rgcn': impl must be one of {IMPLS}, got {impl!r}")
        super().__init__(
            metadata,
            in_dims,
            hidden,
            out_dim,
            num_layers=num_layers,
            dropout=dropout,
            residual=residual,
            norm=norm,
            num_nodes=num_nodes,
            act=act,
            num_bases=num_bases,
            num_blocks=num_blocks,
            impl=impl,
        )
        self._graphs = _GraphCache()

    def build_conv(self, layer: int) -> RGCNLayer:
        return RGCNLayer(
            self.hidden,
            self.hidden,
            len(self.edge_types),
            num_bases=self.options["num_bases"],
            num_blocks=self.options["num_blocks"],
            impl=self.options["impl"],
        )

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
        graph = relational_graph(tensors, self.edge_types, offsets, counts)
        self._graphs[key] = (tensors, graph)  # holding the tensors keeps their ids unique
        while len(self._graphs) > self.cache_size:
            self._graphs.popitem(last=False)
        return graph

    def propagate(
        self, layer: int, h: dict[str, Tensor], edges: dict[EdgeType, Tensor], graph: Any
    ) -> dict[str, Tensor]:
        x = torch.cat([h[t] for t in self.node_types]) if len(h) > 1 else h[self.node_types[0]]
        out = self.convs[layer](x, graph)
        parts = out.split([h[t].shape[0] for t in self.node_types])
        return dict(zip(self.node_types, parts, strict=True))

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

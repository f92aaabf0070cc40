"""The R-GCN layers: :class:`RGCNLayer` (relation-specific weights, optional basis
decomposition) and :class:`RGCNInputLayer` (the first layer for featureless node types:
one-hot input, per-node weights), stacked into a model by :class:`fusion.gnn.rgcn.RGCN`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import RGCNConv

from .relational import RelationalGraph, _bags, relational_messages, spmm

__all__ = ["MixedFirstLayer", "RGCNInputLayer", "RGCNLayer", "onehot_input_size"]

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


def onehot_input_size(
    num_nodes: Mapping[str, int],
    sources: Sequence[Sequence[str]],
    out_channels: int,
    num_bases: int | None = None,
) -> int:
    """Floats an :class:`RGCNInputLayer` holds: its parameters, plus (with bases) the
    relation weights it materialises in every forward pass (``rows x out_channels``, rows
    = the sum over relations of the node counts of their featureless source types)."""
    rows = sum(num_nodes[t] for types in sources for t in types)
    n = sum(num_nodes.values())
    size = (n + rows) * out_channels  # root + relation weights
    if num_bases:
        relations = sum(1 for types in sources if types)
        size += num_bases * (n * out_channels + relations)
    return size


class RGCNInputLayer(nn.Module):
    r"""The first R-GCN layer for featureless nodes: one-hot input, per-node weights.

    R-GCN's featureless setting (Schlichtkrull et al., "Modeling Relational Data with Graph
    Convolutional Networks", ESWC 2018, eq. 2 with :math:`h^{(0)}_j = e_j`, the one-hot
    vector of node :math:`j`): the message that node :math:`j` sends along relation
    :math:`r` is row :math:`j` of a per-relation input weight matrix, and every node has
    its own root row:

    .. math::
        h_i' = W_0[i] + b + \sum_{r \in R} \sum_{j \in N_i^r} \frac{1}{c_{i,r}} W_r[j],
        \qquad c_{i,r} = |N_i^r|,

    optionally with the basis decomposition of eq. 3, :math:`W_r = \sum_b a_{rb} V_b`
    (``num_bases``). This is :class:`torch_geometric.nn.RGCNConv` called with ``x=None``
    (``in_channels`` = node count; block-diagonal decomposition does not apply to one-hot
    input, as in PyG), with one difference of storage only: :math:`W_r` keeps the rows of
    the node types that send relation :math:`r` (``sources[r]``), since the others are never
    read. Parameters: ``weight`` ``[rows, out]`` (blocks of :math:`W_r[\text{type } t]`,
    type-major) or, with bases, ``weight`` ``[B, N, out]`` (:math:`V_b`) and ``comp``
    ``[R', B]`` (:math:`a_{rb}` of the :math:`R'` relations with sources here); ``root``
    ``[N, out]``; ``bias`` ``[out]``. Initialised as ``RGCNConv`` (Glorot over
    ``[N, out]``, zero bias). See :func:`onehot_input_size` for the memory.

    The messages are one sparse product (:func:`~fusion.gnn.relational.spmm`) of the
    per-graph matrix ``[N_graph, rows]`` (entry :math:`1 / c_{i,r}` at row :math:`i`,
    column of :math:`W_r[j]`, for each edge :math:`j \to_r i` whose source is of these
    types; built once per graph and cached on it) with the weight rows, backward included
    (a mini-batch of node ids: a gather and a scatter instead).

    Args:
        num_nodes: ``{node_type: N_t}`` of the featureless node types, in order
            (one-hot index space: the types stacked in this order, ``N = sum N_t``).
        sources: per relation ``r`` of the graph, the featureless node types that send it.
        out_channels: output size.
        num_bases: basis decomposition with this many bases (default: none).
        bias: add a learned bias (default ``True``).

    Shapes:
        a :class:`~fusion.gnn.relational.RelationalGraph` whose node types include these
        (at ``graph.offsets[t]``, ``graph.counts[t]`` rows) and ``ids[t]`` (``None``: all
        ``N_t`` nodes in order; else the ``LongTensor [graph.counts[t]]`` of their node ids)
        -> ``[graph.num_nodes, out_channels]``: the messages from featureless sources to
        every node, plus the root rows (and bias) of the featureless nodes; the other
        rows get the bias only.
    """

    def __init__(
        self,
        num_nodes: Mapping[str, int],
        sources: Sequence[Sequence[str]],
        out_channels: int,
        num_bases: int | None = None,
        bias: bool = True,
    ):
        super().__init__()
        self.types = list(num_nodes)
        self.num_nodes = {t: int(num_nodes[t]) for t in self.types}
        unknown = sorted({t for ts in sources for t in ts} - set(self.types))
        if unknown:
            raise ValueError(f"RGCNInputLayer: sources name unknown node types {unknown}")
        self.sources = [[t for t in self.types if t in ts] for ts in sources]
        self.out_channels = out_channels
        self.num_relations = len(self.sources)
        self.num_bases = num_bases
        self.node_start: dict[str, int] = {}
        total = 0
        for t in self.types:
            self.node_start[t] = total
            total += self.num_nodes[t]
        self.in_channels = total
        block = torch.full((self.num_relations, len(self.types)), -1, dtype=torch.long)
        rows = 0
        for k, t in enumerate(self.types):  # blocks type-major: (t, r) for every r t sends
            for r, ts in enumerate(self.sources):
                if t in ts:
                    block[r, k] = rows
                    rows += self.num_nodes[t]
        self.rows = rows
        self.register_buffer("block_start", block, persistent=False)
        self._key = ("onehot-input", tuple(self.num_nodes.items()), str(self.sources))
        if num_bases:
            used = [r for r, ts in enumerate(self.sources) if ts]
            comp_row = {r: i for i, r in enumerate(used)}
            sent = [comp_row[r] for t in self.types for r in used if t in self.sources[r]]
            self.register_buffer(
                "comp_rows", torch.tensor(sent, dtype=torch.long), persistent=False
            )
            self.sent_counts = [sum(t in ts for ts in self.sources) for t in self.types]
            self.weight = nn.Parameter(torch.empty(num_bases, total, out_channels))
            self.comp = nn.Parameter(torch.empty(len(used), num_bases))
        else:
            self.weight = nn.Parameter(torch.empty(rows, out_channels))
        self.root = nn.Parameter(torch.empty(total, out_channels))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As ``RGCNConv``: Glorot over ``[N, out]`` (``weight``, ``root``) and
        ``[R, B]`` (``comp``), zero bias."""
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.root, -bound, bound)
        if self.num_bases:
            cb = math.sqrt(6.0 / (self.num_relations + self.num_bases))
            nn.init.uniform_(self.comp, -cb, cb)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def relation_weights(self) -> Tensor:
        """``[rows, out]``: :math:`W_r[j]` for every relation and every node of the types
        that send it, in ``block_start`` order (with bases: computed from ``comp`` and
        ``weight``)."""
        if not self.num_bases:
            return self.weight
        parts, at = [], 0
        for t, sent in zip(self.types, self.sent_counts, strict=True):
            if sent:
                comp = self.comp[self.comp_rows[at : at + sent]]  # [sent, B]
                start, n = self.node_start[t], self.num_nodes[t]
                v = self.weight[:, start : start + n]  # [B, N_t, out]
                parts.append(torch.einsum("rb,bno->rno", comp, v).reshape(-1, self.out_channels))
                at += sent
        if not parts:
            return self.weight.new_zeros(0, self.out_channels)
        return torch.cat(parts)

    def _plan(self, graph: RelationalGraph) -> dict:
        """The per-graph structures (cached on ``graph``)."""
        plan = graph.cache.get(self._key)
        if plan is not None:
            return plan
        device = graph.src.device
        n = graph.num_nodes
        type_of = torch.full((n,), -1, dtype=torch.long, device=device)
        first = torch.zeros(len(self.types), dtype=torch.long, device=device)
        root_rows, local_start = [], []
        at = 0
        for k, t in enumerate(self.types):
            if t not in graph.offsets:
                raise KeyError(f"RGCNInputLayer: the graph has no node type {t!r}")
            off, count = graph.offsets[t], graph.counts[t]
            type_of[off : off + count] = k
            first[k] = off
            root_rows.append(torch.arange(off, off + count, device=device))
            local_start.append(at)
            at += count
        te = type_of[graph.src]
        keep = te >= 0
        te, src, dst = te[keep], graph.src[keep], graph.dst[keep]
        rel, norm = graph.rel[keep], graph.norm[keep]
        local = src - first[te]
        block = self.block_start.to(device)[rel, te]
        node_start = torch.tensor([self.node_start[t] for t in self.types], device=device)
        if bool((block < 0).any()):
            raise RuntimeError(
                "RGCNInputLayer: the graph has edges of a relation whose featureless source "
                "type the layer was not built for (a graph of other metadata?)"
            )
        plan = {
            "dst": dst,
            "shift": block - node_start[te],  # column = shift + one-hot index of the source
            "pos": torch.tensor(local_start, dtype=torch.long, device=device)[te] + local,
            "norm": norm,
            "root_rows": torch.cat(root_rows),
            "full": all(graph.counts[t] == self.num_nodes[t] for t in self.types),
        }
        if plan["full"]:
            col = block + local
            plan["A"] = _bags(dst, col, norm, (n, self.rows))
            plan["AT"] = _bags(col, dst, norm, (self.rows, n))
            plan["root_index"] = torch.cat(
                [
                    self.node_start[t] + torch.arange(graph.counts[t], device=device)
                    for t in self.types
                ]
            )
        graph.cache[self._key] = plan
        return plan

    def forward(
        self, graph: RelationalGraph, ids: Mapping[str, Tensor | None] | None = None
    ) -> Tensor:
        plan = self._plan(graph)
        ids = {t: v for t, v in (ids or {}).items() if v is not None}
        table = self.relation_weights()
        if plan["full"] and not ids:
            out = (
                spmm(plan["A"], plan["AT"], table)
                if plan["dst"].numel()
                else table.new_zeros(graph.num_nodes, self.out_channels)
            )
            root_index = plan["root_index"]
        else:
            real = []
            for t in self.types:
                count = graph.counts[t]
                v = ids.get(t)
                if v is None:
                    if count != self.num_nodes[t]:
                        raise ValueError(
                            f"the graph has {count} of the {self.num_nodes[t]} {t!r} nodes: "
                            f"pass ids[{t!r}], the node ids of its rows"
                        )
                    v = torch.arange(count, device=table.device)
                if v.shape != (count,):
                    raise ValueError(f"ids[{t!r}] has shape {tuple(v.shape)}, expected [{count}]")
                if count and (int(v.min()) < 0 or int(v.max()) >= self.num_nodes[t]):
                    raise IndexError(
                        f"ids[{t!r}] out of range: node ids {int(v.min())}..{int(v.max())} "
                        f"for {self.num_nodes[t]} {t!r} nodes"
                    )
                real.append(v.long() + self.node_start[t])
            real = torch.cat(real)  # the one-hot index of each row of these types
            col = plan["shift"] + real[plan["pos"]]
            msgs = table.index_select(0, col) * plan["norm"].to(table.dtype)[:, None]
            out = table.new_zeros(graph.num_nodes, self.out_channels).index_add(
                0, plan["dst"], msgs
            )
            root_index = real
        out = out.index_add(0, plan["root_rows"], self.root.index_select(0, root_index))
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return (
            f"types={len(self.types)}, nodes={self.in_channels}, out={self.out_channels}, "
            f"relations={self.num_relations}, rows={self.rows}, num_bases={self.num_bases}"
        )


class MixedFirstLayer(nn.Module):
    """The first layer when some node types have features and some take one-hot input:
    ``conv(x) + onehot(graph, ids)`` (the one-hot rows of ``x`` are zero)."""

    def __init__(self, conv: RGCNLayer, onehot: RGCNInputLayer):
        super().__init__()
        self.conv = conv
        self.onehot = onehot

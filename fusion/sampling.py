"""Neighbour sampling for mini-batch GNN training, in plain torch (no pyg-lib, no torch-sparse).

GraphSAGE-style sampling (Hamilton et al., "Inductive Representation Learning on Large
Graphs", NeurIPS 2017) over a heterogeneous graph, with the interface and the output of
PyG's ``NeighborSampler`` / ``NeighborLoader`` (``torch_geometric.loader``), which need
pyg-lib or torch-sparse for their sampling kernels::

    loader = NeighborLoader(data, num_neighbors=[15, 10], input_nodes=("Product", None),
                            batch_size=1024, shuffle=True, seed=0)
    for batch in loader:                      # a HeteroData per mini-batch
        out = gnn(batch.x_dict, batch.edge_index_dict)["Product"][: batch["Product"].batch_size]

**What is sampled.** Messages flow along edges ``src -> dst``, so a node's neighbours under
edge type ``(s, r, d)`` are the sources of its incoming edges of that type. Hop 0 is the
seed nodes; hop ``i`` samples, for every node added at hop ``i - 1`` and every edge type
that ends at its type, up to ``num_neighbors[i]`` of its incoming edges *without
replacement*, uniformly (all of them when it has at most that many, or when the fanout is
-1). The sources that are new join the subgraph (each node once, across hops and edge
types) and are the frontier of the next hop. With the fanouts at least the in-degrees, an
L-layer GNN computes the seeds' full-graph outputs exactly on the L-hop subgraph.

**Output** (as PyG's, ``disjoint=False``): a :class:`torch_geometric.data.HeteroData` with,
for every node type of the graph (empty ones included), ``n_id [n_t]`` (global ids; the seeds
first, then each hop's new nodes, each hop sorted by id) and ``num_sampled_nodes`` (per
hop); for every seed type also ``batch_size`` (seeds) and, from the loader, ``input_id``;
for every edge type ``edge_index [2, e]`` in *local* ids (row ``k`` of ``n_id``),
``e_id [e]`` (the edges' columns in the input ``edge_index``) and ``num_sampled_edges``
(per hop). The loader also slices every node attribute with ``N_t`` rows (``x``, ``y``, ...)
by ``n_id`` and every edge attribute with ``E`` rows by ``e_id``.

**How** (vectorised, on the edges' device): each edge type is stored once in CSC form (the
edges sorted by destination: ``colptr [N_dst + 1]``, ``row [E]`` source ids, ``perm [E]``
edge ids). Nodes of degree at most the fanout contribute their whole CSC ranges; for the
others every candidate edge gets a random 31-bit key, one sort by ``(node, key)`` orders
each node's candidates randomly, and the first ``k`` of each are kept (a uniform k-subset:
ties between keys, probability below ``degree / 2**31``, keep CSC order). The cost of a hop
is O(sampled edges + sum of the degrees of its nodes whose degree exceeds the fanout); new
nodes are found through a ``[N_t]`` global-to-local table per node type, allocated once and
reset after each call (so a sampler is not thread-safe: one per worker). Random numbers come
from the sampler's own ``torch.Generator`` on the edges' device, seeded by ``seed`` (or from
torch's global generator when ``seed`` is None), so a seeded sampler repeats its batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

__all__ = ["NeighborLoader", "NeighborSampler", "Subgraph"]

EdgeType = tuple[str, str, str]
KEY_BITS = 31


def _ranges(start: Tensor, length: Tensor) -> tuple[Tensor, Tensor]:
    """``(segment, position)`` of every element of the ranges ``start[i] .. start[i] +
    length[i]``, concatenated in order of ``i``."""
    total = int(length.sum()) if length.numel() else 0
    seg = torch.repeat_interleave(torch.arange(length.numel(), device=start.device), length)
    first = torch.cumsum(length, 0) - length  # exclusive prefix sum
    pos = start[seg] + torch.arange(total, device=start.device) - first[seg]
    return seg, pos


class NeighborSampler:
    """Samples the L-hop neighbourhood of seed nodes (see the module docstring).

    Args:
        edge_index_dict: ``{(src, rel, dst): [2, E]}`` local node ids per type (as
            ``HeteroData.edge_index_dict``); the sampler works on their device.
        num_nodes: ``{node_type: N_t}`` for every node type.
        num_neighbors: fanout per hop, ``[k_1, ..., k_L]`` for every edge type, or
            ``{edge_type: [k_1, ..., k_L]}`` (types left out get 0: never sampled);
            ``-1`` = all neighbours.
        seed: seeds the sampler's generator; ``None``: drawn from torch's global generator
            (so ``torch.manual_seed`` makes it repeatable too).

    Shapes: :meth:`sample` ``(input_type, seeds [B])`` -> a ``HeteroData`` (module docstring).
    """

    def __init__(
        self,
        edge_index_dict: Mapping[EdgeType, Tensor],
        num_nodes: Mapping[str, int],
        num_neighbors: Sequence[int] | Mapping[EdgeType, Sequence[int]],
        seed: int | None = None,
    ):
        self.num_nodes = {str(t): int(n) for t, n in num_nodes.items()}
        self.edge_types: list[EdgeType] = [tuple(e) for e in edge_index_dict]  # type: ignore[misc]
        for et in self.edge_types:
            for t in (et[0], et[2]):
                if t not in self.num_nodes:
                    raise KeyError(f"NeighborSampler: edge type {et!r}: no num_nodes[{t!r}]")
        self.fanouts = self._fanouts(num_neighbors)
        self.num_hops = len(next(iter(self.fanouts.values()), []))
        tensors = list(edge_index_dict.values())
        self.device = tensors[0].device if tensors else torch.device("cpu")
        self.csc: dict[EdgeType, tuple[Tensor, Tensor, Tensor]] = {}
        for et, ei in zip(self.edge_types, tensors, strict=True):
            self.csc[et] = self._to_csc(et, ei.to(self.device))
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.generator.manual_seed(int(seed))
        self._local: dict[str, Tensor] = {}  # node type -> [N_t] global -> local id, or -1

    def _fanouts(self, num_neighbors) -> dict[EdgeType, list[int]]:
        if isinstance(num_neighbors, Mapping):
            given = {tuple(k): [int(v) for v in vs] for k, vs in num_neighbors.items()}
            unknown = [k for k in given if k not in self.edge_types]
            if unknown:
                raise KeyError(f"NeighborSampler: num_neighbors names unknown edge types {unknown}")
            hops = {len(v) for v in given.values()}
            if len(hops) > 1:
                raise ValueError(
                    f"NeighborSampler: num_neighbors lists differ in length (hops): {given}"
                )
            depth = hops.pop() if hops else 0
            fanouts = {et: given.get(et, [0] * depth) for et in self.edge_types}
        else:
            fanouts = {et: [int(k) for k in num_neighbors] for et in self.edge_types}
        for et, ks in fanouts.items():
            if any(k < -1 for k in ks):
                raise ValueError(
                    f"NeighborSampler: fanouts of {et!r} must be >= 0 or -1 (all), got {ks}"
                )
        return fanouts  # type: ignore[return-value]

    def _to_csc(self, et: EdgeType, ei: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(colptr [N_dst + 1], row [E] source ids, perm [E] edge ids)``, by destination."""
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise ValueError(
                f"NeighborSampler: edge_index of {et!r} has shape {tuple(ei.shape)}, "
                "expected [2, E]"
            )
        ei = ei.long()
        n_src, n_dst = self.num_nodes[et[0]], self.num_nodes[et[2]]
        if ei.numel():
            lo, hi = ei.min(dim=1).values.tolist(), ei.max(dim=1).values.tolist()
            if min(lo) < 0 or hi[0] >= n_src or hi[1] >= n_dst:
                raise IndexError(
                    f"NeighborSampler: edge type {et!r}: ids out of range (sources "
                    f"{lo[0]}..{hi[0]} of {n_src}, destinations {lo[1]}..{hi[1]} of {n_dst})"
                )
        perm = torch.sort(ei[1], stable=True).indices
        colptr = torch.zeros(n_dst + 1, dtype=torch.long, device=ei.device)
        colptr[1:] = torch.cumsum(torch.bincount(ei[1], minlength=n_dst), 0)
        return colptr, ei[0, perm], perm

    def _table(self, node_type: str) -> Tensor:
        table = self._local.get(node_type)
        if table is None:
            table = torch.full(
                (self.num_nodes[node_type],), -1, dtype=torch.long, device=self.device
            )
            self._local[node_type] = table
        return table

    def _pick(self, et: EdgeType, nodes: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Up to ``k`` incoming edges of each of ``nodes`` (global dst ids) under ``et``:
        ``(segment [e], csc position [e])``, ``segment`` indexing ``nodes``."""
        colptr, _, _ = self.csc[et]
        start = colptr[nodes]
        deg = colptr[nodes + 1] - start
        if k < 0:
            return _ranges(start, deg)
        small = deg <= k
        seg_s, pos_s = _ranges(start[small], deg[small])
        big = (~small).nonzero().flatten()
        if big.numel() == 0:
            return small.nonzero().flatten()[seg_s], pos_s
        seg_b, pos_b = _ranges(start[big], deg[big])
        keys = torch.randint(
            0, 2**KEY_BITS, (seg_b.numel(),), generator=self.generator, device=self.device
        )
        order = torch.sort((seg_b << KEY_BITS) | keys, stable=True).indices
        seg_b, pos_b = seg_b[order], pos_b[order]
        first = torch.cumsum(deg[big], 0) - deg[big]
        rank = torch.arange(seg_b.numel(), device=self.device) - first[seg_b]
        keep = rank < k
        seg = torch.cat([small.nonzero().flatten()[seg_s], big[seg_b[keep]]])
        return seg, torch.cat([pos_s, pos_b[keep]])

    def sample(self, input_type: str, seeds: Tensor) -> HeteroData:
        """The sampled subgraph around ``seeds`` (``[B]`` distinct ids of ``input_type``)."""
        if input_type not in self.num_nodes:
            raise KeyError(
                f"NeighborSampler: unknown input node type {input_type!r}; "
                f"known: {sorted(self.num_nodes)}"
            )
        return self.sample_dict({input_type: seeds})

    def sample_dict(self, seeds: Mapping[str, Tensor]) -> HeteroData:
        """The sampled subgraph around seeds of several node types at once (``{node_type:
        [B_t]}`` distinct ids; the seeds of a link batch are its head and tail nodes, as in
        PyG's ``LinkNeighborLoader``): every seed type gets ``batch_size`` ``B_t`` and its
        seeds first in ``n_id``."""
        return self.sample_parts(seeds).to_hetero()

    def sample_parts(self, seeds: Mapping[str, Tensor]) -> Subgraph:
        """:meth:`sample_dict` as a :class:`Subgraph` (plain dicts)."""
        unknown = sorted(set(seeds) - set(self.num_nodes))
        if unknown:
            raise KeyError(
                f"NeighborSampler: unknown input node type {unknown[0]!r}; "
                f"known: {sorted(self.num_nodes)}"
            )
        seeds = {t: s.to(self.device).long().flatten() for t, s in seeds.items()}
        for t, ids in seeds.items():
            self._check_seeds(t, ids)
        empty = torch.empty(0, dtype=torch.long, device=self.device)
        # per node type and hop (hop 0: the seeds), the nodes added; per edge type and hop
        # (from 1), the sampled edges as (local src, local dst, edge id)
        n_ids = {t: [seeds.get(t, empty)] for t in self.num_nodes}
        counts = {t: int(n_ids[t][0].numel()) for t in self.num_nodes}
        edges: dict[EdgeType, list[tuple[Tensor, Tensor, Tensor]]] = {
            et: [] for et in self.edge_types
        }
        try:
            for t, ids in seeds.items():
                self._table(t)[ids] = torch.arange(ids.numel(), device=self.device)
            for hop in range(self.num_hops):
                frontier = {t: parts[-1] for t, parts in n_ids.items()}
                found: dict[str, list[Tensor]] = {}
                picked = []
                for et in self.edge_types:
                    k, nodes = self.fanouts[et][hop], frontier[et[2]]
                    if k == 0 or nodes.numel() == 0:
                        picked.append((et, empty, empty, empty))
                        continue
                    seg, pos = self._pick(et, nodes, k)
                    _, row, perm = self.csc[et]
                    src = row[pos]
                    picked.append((et, src, self._local[et[2]][nodes[seg]], perm[pos]))
                    found.setdefault(et[0], []).append(src)
                for t in self.num_nodes:
                    new = empty
                    if t in found:
                        cand = torch.cat(found[t])
                        table = self._table(t)
                        new = torch.unique(cand[table[cand] < 0])
                        table[new] = counts[t] + torch.arange(new.numel(), device=self.device)
                        counts[t] += int(new.numel())
                    n_ids[t].append(new)
                for et, src, dst_local, e_id in picked:
                    src_local = self._local[et[0]][src] if src.numel() else empty
                    edges[et].append((src_local, dst_local, e_id))
        finally:
            for t, table in self._local.items():
                table[torch.cat(n_ids[t])] = -1
        return self._output(seeds, n_ids, edges)

    def _check_seeds(self, node_type: str, seeds: Tensor) -> None:
        n = self.num_nodes[node_type]
        if seeds.numel():
            lo, hi = int(seeds.min()), int(seeds.max())
            if lo < 0 or hi >= n:
                raise IndexError(
                    f"NeighborSampler: seeds of {node_type!r} out of range ({lo}..{hi} "
                    f"for {n} nodes)"
                )
            if torch.unique(seeds).numel() != seeds.numel():
                raise ValueError(f"NeighborSampler: seeds of {node_type!r} repeat a node")

    def _output(
        self,
        seeds: dict[str, Tensor],
        n_ids: dict[str, list[Tensor]],
        edges: dict[EdgeType, list[tuple[Tensor, Tensor, Tensor]]],
    ) -> Subgraph:
        empty = torch.empty(0, dtype=torch.long, device=self.device)
        out = Subgraph({}, {}, {}, {}, {}, {t: int(ids.numel()) for t, ids in seeds.items()})
        for t, parts in n_ids.items():
            out.n_id[t] = torch.cat(parts)
            out.num_sampled_nodes[t] = [int(p.numel()) for p in parts]
        for et, parts in edges.items():
            if parts:
                src, dst, e_id = (torch.cat([p[i] for p in parts]) for i in range(3))
            else:
                src = dst = e_id = empty
            out.edge_index[et] = torch.stack([src, dst])
            out.e_id[et] = e_id
            out.num_sampled_edges[et] = [int(p[2].numel()) for p in parts]
        return out


@dataclass
class Subgraph:
    """A sampled subgraph as plain dicts (:meth:`NeighborSampler.sample_parts`; building a
    ``HeteroData`` costs more than sampling on graphs with hundreds of edge types):
    ``n_id[t]`` [n_t], ``edge_index[et]`` [2, e] local ids, ``e_id[et]`` [e],
    ``num_sampled_nodes[t]`` / ``num_sampled_edges[et]`` per hop, ``batch_size[t]`` per seed
    type."""

    n_id: dict[str, Tensor]
    edge_index: dict[EdgeType, Tensor]
    e_id: dict[EdgeType, Tensor]
    num_sampled_nodes: dict[str, list[int]]
    num_sampled_edges: dict[EdgeType, list[int]]
    batch_size: dict[str, int]

    def to_hetero(self) -> HeteroData:
        """The same subgraph as PyG's loaders give it (module docstring)."""
        out = HeteroData()
        for t, n_id in self.n_id.items():
            out[t].n_id = n_id
            out[t].num_nodes = int(n_id.numel())
            out[t].num_sampled_nodes = self.num_sampled_nodes.get(t, [])
        for t, size in self.batch_size.items():
            out[t].batch_size = size
        for et, ei in self.edge_index.items():
            out[et].edge_index = ei
            out[et].e_id = self.e_id[et]
            out[et].num_sampled_edges = self.num_sampled_edges.get(et, [])
        return out


class NeighborLoader:
    """Mini-batches of seed nodes with their sampled neighbourhoods (PyG's
    ``NeighborLoader`` for a ``HeteroData``, sampled by :class:`NeighborSampler`).

    Args:
        data: the full graph (``HeteroData``; its edges' device is where sampling runs).
        num_neighbors: fanout per hop (see :class:`NeighborSampler`).
        input_nodes: ``node_type`` or ``(node_type, ids)``: the seeds to iterate over
            (``ids`` ``None``: all nodes of the type; a bool mask or an index tensor).
        batch_size: seeds per mini-batch.
        shuffle: visit the seeds in a random order each epoch (from the sampler's seeded
            generator).
        drop_last: skip a last, smaller batch.
        seed: seeds the sampling and the shuffling (see :class:`NeighborSampler`).

    Each batch is the sampler's ``HeteroData`` plus every node attribute of ``data`` with
    ``N_t`` rows sliced by ``n_id`` (``x``, ``y``, ...), every edge attribute with ``E`` rows
    sliced by ``e_id``, and ``input_id`` (the batch's positions in ``input_nodes``).
    """

    def __init__(
        self,
        data: HeteroData,
        num_neighbors: Sequence[int] | Mapping[EdgeType, Sequence[int]],
        input_nodes: str | tuple[str, Tensor | None],
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"NeighborLoader: batch_size must be >= 1, got {batch_size}")
        self.data = data
        num_nodes = {t: int(data[t].num_nodes) for t in data.node_types}
        self.sampler = NeighborSampler(data.edge_index_dict, num_nodes, num_neighbors, seed)
        input_type, ids = (input_nodes, None) if isinstance(input_nodes, str) else input_nodes
        if input_type not in num_nodes:
            raise KeyError(f"NeighborLoader: unknown input node type {input_type!r}")
        device = self.sampler.device
        if ids is None:
            ids = torch.arange(num_nodes[input_type], device=device)
        elif ids.dtype == torch.bool:
            ids = ids.to(device).nonzero().flatten()
        self.input_type, self.input_nodes = input_type, ids.to(device).long()
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last

    def __len__(self) -> int:
        n = self.input_nodes.numel()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[HeteroData]:
        n = self.input_nodes.numel()
        gen = self.sampler.generator
        order = (
            torch.randperm(n, generator=gen, device=gen.device).to(self.input_nodes.device)
            if self.shuffle
            else torch.arange(n, device=self.input_nodes.device)
        )
        for i in range(len(self)):
            positions = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.collate(positions)

    def collate(self, positions: Tensor) -> HeteroData:
        """The batch of the seeds at ``positions`` of ``input_nodes``, attributes sliced."""
        batch = self.sampler.sample(self.input_type, self.input_nodes[positions])
        batch[self.input_type].input_id = positions
        for t in self.data.node_types:
            store, n_id = self.data[t], batch[t].n_id
            for key, value in store.items():
                if isinstance(value, Tensor) and value.dim() and value.shape[0] == store.num_nodes:
                    batch[t][key] = value[n_id.to(value.device)]
        for et in self.data.edge_types:
            store, e_id = self.data[et], batch[et].e_id
            num_edges = store.edge_index.shape[1]
            for key, value in store.items():
                if key == "edge_index" or not isinstance(value, Tensor) or not value.dim():
                    continue
                if value.shape[0] == num_edges:
                    batch[et][key] = value[e_id.to(value.device)]
        return batch

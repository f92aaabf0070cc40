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

**How** (vectorised, on the edges' device): all edge types share one CSC (edges sorted by
edge type, then destination: ``colptr``, ``row`` source ids, ``perm`` edge ids), so a hop
costs a fixed number of tensor operations however many edge types the graph has (RDF
graphs have hundreds): the frontier's (node, edge type ending at its type) pairs are
expanded at once; nodes of degree at most the fanout contribute their whole CSC ranges; for
the others every candidate edge gets a random 31-bit key, one sort by ``(pair, key)`` orders
each pair's candidates randomly, and the first ``k`` of each are kept (a uniform k-subset:
ties between keys, probability below ``degree / 2**31``, keep CSC order). The cost of a hop
is O(sampled edges + sum of the degrees of its nodes whose degree exceeds the fanout); new
nodes are found through one global-to-local table over all node types, allocated once and
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
        self._index_graph([self._to_csc(et, ei.to(self.device)) for et, ei in
                           zip(self.edge_types, tensors, strict=True)])  # fmt: skip
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.generator.manual_seed(int(seed))
        # global id -> id in the subgraph being sampled (within its type), or -1
        self._local = torch.full((self._num_global,), -1, dtype=torch.long, device=self.device)

    def _index_graph(self, cscs: list[tuple[Tensor, Tensor, Tensor]]) -> None:
        """Every edge type in one CSC, so a hop is a few tensor operations whatever the
        number of edge types: node type ``t`` holds global ids ``node_offset[t] ..``, and
        edge type ``k``'s destination ``v`` is slot ``slot_offset[k] + v`` of ``colptr``
        (``row``: source ids within their type, ``perm``: edge ids within the edge type)."""
        device, long = self.device, torch.long
        self.node_types = list(self.num_nodes)
        type_id = {t: i for i, t in enumerate(self.node_types)}
        sizes = [self.num_nodes[t] for t in self.node_types]
        self._node_offset = torch.tensor([0, *sizes], device=device).cumsum(0)
        self._num_global = int(sum(sizes))
        self._src_type = torch.tensor([type_id[s] for s, _, _ in self.edge_types], dtype=long,
                                      device=device)  # fmt: skip
        dst_type = torch.tensor([type_id[d] for _, _, d in self.edge_types], dtype=long,
                                device=device)  # fmt: skip
        slots = torch.tensor([0] + [c.numel() - 1 for c, _, _ in cscs], device=device)
        self._slot_offset = slots.cumsum(0)[:-1]
        edges = torch.tensor([0] + [r.numel() for _, r, _ in cscs], device=device).cumsum(0)
        shifted = [c[:-1] + e for (c, _, _), e in zip(cscs, edges.tolist()[:-1], strict=True)]
        self._colptr = torch.cat([*shifted, edges[-1:]])
        self._row = torch.cat([r for _, r, _ in cscs]) if cscs else edges[:0]
        self._perm = torch.cat([p for _, _, p in cscs]) if cscs else edges[:0]
        # the edge types that end at each node type: into[start[t] : start[t] + count[t]]
        self._into = torch.sort(dst_type, stable=True).indices
        self._into_count = torch.bincount(dst_type, minlength=len(sizes))
        self._into_start = self._into_count.cumsum(0) - self._into_count
        self._fanout = torch.tensor(
            [[self.fanouts[et][h] for et in self.edge_types] for h in range(self.num_hops)],
            dtype=long, device=device,
        ).reshape(self.num_hops, len(self.edge_types))

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

    def _pick(self, slots: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Up to ``k[i]`` (-1: all) incoming edges of each slot ``slots[i]``, uniformly
        without replacement: ``(segment [e], csc position [e])``, ``segment`` indexing
        ``slots``."""
        start = self._colptr[slots]
        deg = self._colptr[slots + 1] - start
        small = (k < 0) | (deg <= k)
        seg_s, pos_s = _ranges(start[small], deg[small])
        whole = small.nonzero().flatten()[seg_s]
        big = (~small).nonzero().flatten()
        if big.numel() == 0:
            return whole, pos_s
        seg_b, pos_b = _ranges(start[big], deg[big])
        keys = torch.randint(
            0, 2**KEY_BITS, (seg_b.numel(),), generator=self.generator, device=self.device
        )
        order = torch.sort((seg_b << KEY_BITS) | keys, stable=True).indices
        seg_b, pos_b = seg_b[order], pos_b[order]
        first = torch.cumsum(deg[big], 0) - deg[big]
        rank = torch.arange(seg_b.numel(), device=self.device) - first[seg_b]
        keep = rank < k[big][seg_b]
        return torch.cat([whole, big[seg_b[keep]]]), torch.cat([pos_s, pos_b[keep]])

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
        offset, local = self._node_offset, self._local
        counts = torch.zeros(len(self.node_types), dtype=torch.long, device=self.device)
        hop_nodes, hop_edges = [], []  # per hop: new global ids; (edge type, src, dst, e_id)
        try:
            frontier = []
            for t, ids in seeds.items():
                i = self.node_types.index(t)
                local[offset[i] + ids] = torch.arange(ids.numel(), device=self.device)
                counts[i] = ids.numel()
                frontier.append(offset[i] + ids)
            frontier = torch.cat(frontier) if frontier else offset[:0]
            hop_nodes.append(frontier)
            for hop in range(self.num_hops):
                new, edges = self._hop(frontier, hop, counts)
                hop_nodes.append(new)
                hop_edges.append(edges)
                frontier = new
            return self._output(seeds, hop_nodes, hop_edges)
        finally:
            for ids in hop_nodes:
                local[ids] = -1

    def _hop(self, frontier: Tensor, hop: int, counts: Tensor) -> tuple[Tensor, tuple]:
        """One hop from ``frontier`` (global ids): the new nodes (global ids, sorted; given
        their subgraph ids, ``counts`` per type updated) and the sampled edges
        ``(edge type [e], local src [e], local dst [e], e_id [e])``."""
        offset, local = self._node_offset, self._local
        node_type = torch.searchsorted(offset, frontier, right=True) - 1
        # every (frontier node, edge type ending at its type) pair with a fanout
        member, at = _ranges(self._into_start[node_type], self._into_count[node_type])
        edge_type = self._into[at]
        k = self._fanout[hop, edge_type]
        wanted = k != 0
        member, edge_type, k = member[wanted], edge_type[wanted], k[wanted]
        dst = frontier[member]
        slots = self._slot_offset[edge_type] + dst - offset[node_type[member]]
        pair, pos = self._pick(slots, k)
        edge_type, dst = edge_type[pair], dst[pair]
        src_type = self._src_type[edge_type]
        src = offset[src_type] + self._row[pos]
        new = torch.unique(src[local[src] < 0])
        new_type = torch.searchsorted(offset, new, right=True) - 1
        added = torch.bincount(new_type, minlength=len(self.node_types))
        rank = torch.arange(new.numel(), device=self.device) - (added.cumsum(0) - added)[new_type]
        local[new] = counts[new_type] + rank
        counts += added
        return new, (edge_type, local[src], local[dst], self._perm[pos])

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

    def _output(self, seeds: dict[str, Tensor], hop_nodes: list[Tensor],
                hop_edges: list[tuple]) -> Subgraph:  # fmt: skip
        """Split the hops' global results by node and edge type (views of one sort each)."""
        offset = self._node_offset
        types, n_types = len(self.node_types), len(self.edge_types)
        out = Subgraph({}, {}, {}, {}, {}, {t: int(ids.numel()) for t, ids in seeds.items()})
        per_hop = []
        for ids in hop_nodes:  # each hop's ids: grouped by type (seeds: in input order)
            node_type = torch.searchsorted(offset, ids, right=True) - 1
            order = torch.sort(node_type, stable=True).indices
            sizes = torch.bincount(node_type, minlength=types).tolist()
            per_hop.append(((ids - offset[node_type])[order].split(sizes), sizes))
        for i, t in enumerate(self.node_types):
            out.n_id[t] = torch.cat([parts[i] for parts, _ in per_hop])
            out.num_sampled_nodes[t] = [sizes[i] for _, sizes in per_hop]
        hops = len(hop_edges)
        columns = [torch.cat(c) for c in zip(*hop_edges, strict=True)] if hops else [offset[:0]] * 4
        edge_type, src, dst, e_id = columns
        hop = torch.repeat_interleave(  # each edge's hop
            torch.arange(hops, device=self.device),
            torch.tensor([int(e[0].numel()) for e in hop_edges], dtype=torch.long,
                         device=self.device),
        )  # fmt: skip
        key = edge_type * hops + hop  # edges by type, then by hop
        order = torch.sort(key, stable=True).indices
        per_type = torch.bincount(key, minlength=n_types * hops).reshape(n_types, hops)
        sizes = per_type.sum(1).tolist()
        pairs = torch.stack([src, dst])[:, order].split(sizes, dim=1)
        ids = e_id[order].split(sizes)
        for k, et in enumerate(self.edge_types):
            out.edge_index[et], out.e_id[et] = pairs[k], ids[k]
            out.num_sampled_edges[et] = per_type[k].tolist()
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

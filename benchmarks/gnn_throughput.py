"""R-GCN training-step throughput: ``fusion.gnn`` "rgcn" vs a plain PyG ``RGCNConv`` model.

A synthetic relational graph (``--nodes`` nodes of one type, ``--edges`` uniformly random
edges spread over ``--relations`` edge types, ``--dim``-d features) and three models with the
same layers (input linear -> ``--layers`` x [R-GCN layer, ReLU] -> output linear, hidden =
out = ``--dim``), all holding the same weights:

  ours      ``get_gnn("rgcn", ...)`` (default ``impl="csr"``)
  pyg-impl  the same model with ``impl="pyg"`` (each layer calls ``RGCNConv.forward``)
  pyg       a plain PyG model: ``torch.nn.Linear`` + ``torch_geometric.nn.RGCNConv`` on the
            homogeneous graph from ``HeteroData.to_homogeneous()`` (built once, untimed)

One training step = zero_grad, forward, MSE loss against a fixed random target, backward,
Adam step. Steps are interleaved across the models (``--reps`` rounds after one warm-up
step each); the median and minimum per model are reported with the ratios baseline / ours
(> 1: ours is faster; on a shared machine the minima are the less disturbed figures). Our
one-off graph preparation (the cached relational view) is reported separately; the
baselines' homogeneous conversion is not timed either. On CUDA, peak memory per step is
reported too. "ours" uses the CSR path of :class:`fusion.gnn.RGCNLayer`
(``torch.nn.functional.embedding_bag`` sparse products, see :mod:`fusion.gnn.relational`).

    python benchmarks/gnn_throughput.py                         # 100k nodes, 1M edges, 10 relations, 64-d
    python benchmarks/gnn_throughput.py --num-bases 4           # basis decomposition in all models
    python benchmarks/gnn_throughput.py --nodes 20000 --edges 200000 --reps 3
    python benchmarks/gnn_throughput.py --featureless --nodes 20000 --edges 200000

``--featureless``: no node features, R-GCN's one-hot input (the AIFB setting): ours is
``get_gnn("rgcn", ..., in_dims={"node": 0}, featureless="onehot")`` (an
:class:`fusion.gnn.RGCNInputLayer`, then R-GCN layers), the baseline a plain PyG model whose
first ``RGCNConv(N, dim, R)`` is called with ``x=None`` (``[R, N, dim]`` input weights),
both without the input linear; ``pyg-impl`` is left out (the one-hot layer has one
implementation).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import RGCNConv

from fusion.gnn import get_gnn
from fusion.gnn.relational import relational_graph


class PlainPyG(nn.Module):
    """Linear -> L x (RGCNConv, ReLU) -> Linear on a homogeneous graph; with ``nodes``
    (featureless): no input linear, the first RGCNConv takes one-hot input (``x=None``)."""

    def __init__(
        self, dim: int, layers: int, relations: int, num_bases: int | None, nodes: int = 0
    ):
        super().__init__()
        self.inp = None if nodes else nn.Linear(dim, dim)
        self.convs = nn.ModuleList(
            RGCNConv(nodes if (nodes and i == 0) else dim, dim, relations, num_bases=num_bases)
            for i in range(layers)
        )
        self.out = nn.Linear(dim, dim)

    def forward(self, x, edge_index, edge_type):
        h = self.inp(x) if self.inp is not None else None
        for conv in self.convs:
            h = torch.relu(conv(h, edge_index, edge_type))
        return self.out(h)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--relations", type=int, default=10)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--num-bases", type=int, default=None)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--skip-pyg-impl", action="store_true", help="time only ours and plain PyG")
    ap.add_argument(
        "--featureless", action="store_true", help="no features: one-hot input (R-GCN on AIFB)"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n, e, r, d = args.nodes, args.edges, args.relations, args.dim

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(0, n, (e,), generator=gen)
    dst = torch.randint(0, n, (e,), generator=gen)
    rel = torch.randint(0, r, (e,), generator=gen)
    data = HeteroData()
    data["node"].x = torch.randn(n, d, generator=gen)
    for i in range(r):
        keep = rel == i
        data["node", f"r{i}", "node"].edge_index = torch.stack([src[keep], dst[keep]])
    data = data.to(device)
    x_dict, edge_index_dict = data.x_dict, data.edge_index_dict
    homo = data.to_homogeneous()  # the baseline's input, built once, not timed
    target = torch.randn(n, d, generator=gen).to(device)

    featureless = {"in_dims": {"node": 0}, "num_nodes": {"node": n}, "featureless": "onehot"}
    kw = featureless if args.featureless else {"in_dims": {"node": d}}
    ours = get_gnn(
        "rgcn", data.metadata(), hidden=d, out_dim=d, num_layers=args.layers,
        num_bases=args.num_bases, **kw,
    ).to(device)  # fmt: skip
    pyg_impl = get_gnn(
        "rgcn", data.metadata(), hidden=d, out_dim=d, num_layers=args.layers,
        num_bases=args.num_bases, impl="pyg", **kw,
    ).to(device)  # fmt: skip
    pyg_impl.load_state_dict(ours.state_dict())
    plain = PlainPyG(d, args.layers, r, args.num_bases, n if args.featureless else 0).to(device)
    if args.featureless:
        x_dict = {}
        first, mine = plain.convs[0], ours.convs[0]  # RGCNConv(x=None) vs RGCNInputLayer
        with torch.no_grad():
            first.weight.copy_(mine.weight.view(first.weight.shape))
            first.root.copy_(mine.root)
            first.bias.copy_(mine.bias)
            if args.num_bases:
                first.comp.copy_(mine.comp)
    else:
        plain.inp.load_state_dict(ours.encoders["node"].state_dict())
        plain.convs[0].load_state_dict(ours.convs[0].state_dict())
    plain.out.load_state_dict(ours.heads["node"].state_dict())
    for conv, mine in zip(plain.convs[1:], ours.convs[1:], strict=True):
        conv.load_state_dict(mine.state_dict())
    homo_x = None if args.featureless else homo.x

    # one-off preparation of ours: the relational (CSR) view, cached by the model
    sync(device)
    t = time.perf_counter()
    graph = relational_graph(
        list(edge_index_dict.values()), list(edge_index_dict), {"node": 0}, {"node": n}
    )
    sync(device)
    prep = time.perf_counter() - t
    del graph

    def step_fn(model, forward):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            out = forward(model)
            loss = torch.nn.functional.mse_loss(out, target)
            loss.backward()
            opt.step()
            return out

        return step

    runs = {
        "ours": step_fn(ours, lambda m: m(x_dict, edge_index_dict)["node"]),
        "pyg-impl": step_fn(pyg_impl, lambda m: m(x_dict, edge_index_dict)["node"]),
        "pyg": step_fn(plain, lambda m: m(homo_x, homo.edge_index, homo.edge_type)),
    }
    if args.skip_pyg_impl or args.featureless:
        del runs["pyg-impl"]

    # same weights, so the first (warm-up) outputs must agree
    outs = {}
    for name, step in runs.items():
        outs[name] = step().detach()
    for name in outs:
        if name != "ours":
            diff = (outs[name] - outs["ours"]).abs().max().item()
            print(f"max |{name} - ours| after the first step: {diff:.2e}")
    del outs

    times: dict[str, list[float]] = {name: [] for name in runs}
    peak: dict[str, int] = {}
    for _ in range(args.reps):
        for name, step in runs.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sync(device)
            t = time.perf_counter()
            step()
            sync(device)
            times[name].append(time.perf_counter() - t)
            if device.type == "cuda":
                peak[name] = max(peak.get(name, 0), torch.cuda.max_memory_allocated(device))

    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (f"cpu, {torch.get_num_threads()} threads")
    )
    print(
        f"R-GCN training step: {n:,} nodes, {e:,} edges, {r} relations, {d}-d, "
        f"{'featureless (one-hot input), ' if args.featureless else ''}"
        f"{args.layers} layers, num_bases={args.num_bases}; {where}; torch {torch.__version__}"
    )
    print(f"ours: one-off relational view (cached) {prep:.3f} s")
    med = {name: statistics.median(v) for name, v in times.items()}
    for name, v in times.items():
        mem = f"  peak {peak[name] / 2**20:,.0f} MiB" if name in peak else ""
        print(
            f"{name:9s} median {med[name]:.3f} s  min {min(v):.3f} s  "
            f"({', '.join(f'{s:.3f}' for s in v)}){mem}"
        )
    for name in med:
        if name != "ours":
            best = min(times[name]) / min(times["ours"])
            print(
                f"ratio {name} / ours: {med[name] / med['ours']:.2f}x (medians), {best:.2f}x (minima)"
            )


if __name__ == "__main__":
    main()

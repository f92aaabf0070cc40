"""Entity-index benchmark: query latency, throughput and recall, FAISS vs the torch fallback.

For each catalogue size N and dimension d, synthetic product embeddings are drawn from a
Gaussian mixture (N / 1000 clusters, like products in categories: centres ~ N(0, 1),
points = centre + N(0, 1), so same-cluster cosine ~ 0.5; isotropic noise would be the worst
case for any approximate index) and indexed with ``kg.index.EntityIndex`` (cosine):

  exact   FAISS IndexFlatIP (the baseline every ratio refers to)
  ivf     FAISS IndexIVFFlat, nlist = 4 sqrt(N), nprobe tuned at build for recall@10 >= 0.95
  hnsw    FAISS IndexHNSWFlat (M=32), efSearch tuned the same way (slow to build: by default
          only up to --hnsw-max entities)
  torch   the exact fallback without FAISS (chunked matmul + top-k)

Queries are fresh draws from the mixture (``--data isotropic``: plain N(0, I) instead). Reported: build seconds, single-query latency
p50 / p99 (one query at a time, ``index.search(q, 10)``, end to end), batched throughput
(``--batch`` queries per call), recall@10 against FAISS exact, and the ratios to exact.
Then ``kg.related.related()`` end to end on a synthetic graph (``--graph-products``
products with brand, category and accessory edges): latency with and without the graph
evidence, as a ratio to the index lookup alone.

    python benchmarks/related.py                                   # 100k and 1M, 64-d and 384-d
    python benchmarks/related.py --sizes 20000 --dims 32 --queries 100 --graph-products 5000
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import kg
from kg.index import EntityIndex, faiss_available
from kg.related import related

ISOTROPIC = False  # --data isotropic


def mixture(n: int, d: int, seed: int, centres: np.ndarray | None = None, block: int = 200_000):
    """``n`` points [n, d] float32 around ``centres`` (made when None); returns both.
    With ``ISOTROPIC`` set, the one centre is 0: plain N(0, I), the worst case."""
    rng = np.random.default_rng(seed)
    if centres is None:
        shape = (1, d) if ISOTROPIC else (max(n // 1000, 16), d)
        centres = (
            np.zeros(shape, np.float32)
            if ISOTROPIC
            else rng.standard_normal(shape, dtype=np.float32)
        )
    out = np.empty((n, d), np.float32)
    for start in range(0, n, block):  # in blocks: no float64 temporaries of the full matrix
        m = min(block, n - start)
        out[start : start + m] = centres[rng.integers(len(centres), size=m)]
        out[start : start + m] += rng.standard_normal((m, d), dtype=np.float32)
    return out, centres


def latency(index: EntityIndex, queries: np.ndarray, k: int = 10) -> tuple[float, float]:
    index.search(queries[0], k)  # warm-up
    times = []
    for q in queries:
        start = time.perf_counter()
        index.search(q, k)
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def throughput(index: EntityIndex, queries: np.ndarray, k: int = 10) -> tuple[float, list]:
    start = time.perf_counter()
    _, found = index.search(queries, k)
    return len(queries) / (time.perf_counter() - start), found


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def bench_index(n: int, d: int, kinds: list[str], args) -> list[list]:
    vectors, centres = mixture(n, d, seed=n + d)
    queries, _ = mixture(max(args.queries, args.batch), d, seed=1, centres=centres)
    iris = [f"http://shop.example/product/{i}" for i in range(n)]
    rows, base, truth = [], None, None
    baseline = "exact" if faiss_available() else "torch"  # ground truth and ratios
    for kind in [baseline, *[k for k in kinds if k != baseline]]:
        if kind == "hnsw" and n > args.hnsw_max:
            print(f"  skip hnsw at N={n:,} (> --hnsw-max {args.hnsw_max:,})", flush=True)
            continue
        start = time.perf_counter()
        index = EntityIndex.build(iris, vectors, kind=kind)
        build = time.perf_counter() - start
        single = args.queries if kind in ("ivf", "hnsw") else min(args.queries, args.exact_queries)
        p50, p99 = latency(index, queries[:single])
        qps, found = throughput(index, queries[: args.batch])
        if kind == baseline:
            truth, base = found, (p50, qps)
        r = recall(found, truth)
        tuned = {"ivf": f"nlist={getattr(index._backend, 'nlist', '-')} nprobe={index.config.nprobe}",
                 "hnsw": f"M={index.config.hnsw_m} efSearch={index.config.ef_search}"}.get(kind, "")  # fmt: skip
        rows.append([f"{n:,}", d, kind, tuned, f"{build:.1f}", f"{p50:.2f}", f"{p99:.2f}",
                     f"{qps:,.0f}", f"{r:.3f}", f"{base[0] / p50:.1f}x", f"{qps / base[1]:.2f}x"])  # fmt: skip
        print("  " + " | ".join(map(str, rows[-1])), flush=True)
        del index
        gc.collect()
    return rows


def synthetic_graph(folder: Path, products: int, seed: int = 0) -> Path:
    """N-Triples: products with a name, a brand, a category and (1 in 5) an accessory edge."""
    rng = np.random.default_rng(seed)
    s, ex = "http://schema.org/", "http://shop.example/"
    brands, cats = max(products // 200, 5), max(products // 500, 5)
    lines = [f"<{ex}b{b}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{s}Brand> ." for b in range(brands)]  # fmt: skip
    lines += [f"<{ex}c{c}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{s}CategoryCode> ." for c in range(cats)]  # fmt: skip
    brand, cat = rng.integers(brands, size=products), rng.integers(cats, size=products)
    for p in range(products):
        lines.append(f"<{ex}p{p}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{s}Product> .")
        lines.append(f'<{ex}p{p}> <{s}name> "Product {p}"@en .')
        lines.append(f"<{ex}p{p}> <{s}brand> <{ex}b{brand[p]}> .")
        lines.append(f"<{ex}p{p}> <{s}category> <{ex}c{cat[p]}> .")
        if p % 5 == 0 and p:
            lines.append(f"<{ex}p{p}> <{s}isAccessoryOrSparePartFor> <{ex}p{rng.integers(p)}> .")
    path = folder / "catalogue.nt"
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_related(products: int, d: int, queries: int) -> list[list]:
    with tempfile.TemporaryDirectory() as tmp:
        graph = kg.load_rdf(synthetic_graph(Path(tmp), products))
    embeddings = {t: mixture(n, d, seed=i)[0] for i, (t, n) in enumerate(graph.num_nodes_dict.items())}  # fmt: skip
    index = EntityIndex.from_embeddings(graph, embeddings)
    iris = graph.node_iris("Product")
    picks = [iris[i] for i in np.random.default_rng(2).choice(len(iris), queries, replace=False)]
    cases = {
        "index.search_iri (baseline)": lambda q: index.search_iri(q, 10),
        "related(explain=False)": lambda q: related(graph, index, q, 10, explain=False),
        "related(explain=True)": lambda q: related(graph, index, q, 10),
        "related(relation=..., explain=True)": lambda q: related(
            graph, index, q, 10, relation="isAccessoryOrSparePartFor"
        ),
    }
    rows, base = [], None
    for name, call in cases.items():
        call(picks[0])  # warm-up (adjacency cache, type lookups)
        times = []
        for q in picks:
            start = time.perf_counter()
            call(q)
            times.append(time.perf_counter() - start)
        p50, p99 = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3
        base = base or p50
        rows.append(
            [f"{products:,}", index.kind, name, f"{p50:.2f}", f"{p99:.2f}", f"{p50 / base:.1f}x"]
        )
    return rows


def markdown(header: list[str], rows: list[list]) -> str:
    right = {i for i, h in enumerate(header) if h not in ("kind", "tuned", "call", "N", "index")}
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated N")
    parser.add_argument("--dims", default="64,384", help="comma-separated d")
    parser.add_argument("--kinds", default="exact,ivf,hnsw,torch")
    parser.add_argument("--queries", type=int, default=500, help="single queries (ivf, hnsw)")
    parser.add_argument(
        "--exact-queries", type=int, default=100, help="single queries, exact/torch"
    )
    parser.add_argument("--batch", type=int, default=1000, help="queries per batched call")
    parser.add_argument("--hnsw-max", type=int, default=200_000)
    parser.add_argument("--graph-products", type=int, default=100_000, help="0: skip related()")
    parser.add_argument("--graph-dim", type=int, default=64)
    parser.add_argument("--data", choices=["mixture", "isotropic"], default="mixture",
                        help="isotropic N(0, I): the worst case for IVF / HNSW")  # fmt: skip
    args = parser.parse_args()
    global ISOTROPIC
    ISOTROPIC = args.data == "isotropic"
    kinds = args.kinds.split(",")
    if not faiss_available():
        print("faiss is not installed: torch only (pip install 'kgfusion[index]')")
        kinds = ["torch"]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; faiss: {faiss_available()}"
    )
    header = ["N", "d", "kind", "tuned", "build s", "p50 ms", "p99 ms", "QPS (batch)",
              "recall@10", "p50 vs exact", "QPS vs exact"]  # fmt: skip
    rows = []
    for n in map(int, args.sizes.split(",")):
        for d in map(int, args.dims.split(",")):
            print(f"N={n:,} d={d}", flush=True)
            rows += bench_index(n, d, kinds, args)
    print("\n" + markdown(header, rows))
    if args.graph_products:
        print(f"\nrelated() on a synthetic graph, d={args.graph_dim}, k=10, 200 queries")
        rows = bench_related(args.graph_products, args.graph_dim, 200)
        print(
            markdown(["products", "index", "call", "p50 ms", "p99 ms", "p50 vs search_iri"], rows)
        )


if __name__ == "__main__":
    main()

"""Ingestion benchmark: RDF catalogue -> HeteroData, ours vs the rdflib baseline, one run.

Generates a synthetic schema.org product catalogue of N triples (N-Triples and Turtle),
then, each in a fresh process (so peak memory is its own):

  (a) ours:     ``kg.load_rdf(path).to_pyg()``: N-Triples in parallel chunks on every core
                (:mod:`kg.nt_parallel`), Turtle streamed through pyoxigraph
  (b) streamed: the previous N-Triples path, pyoxigraph's parser streamed through a
                ``TripleSink`` (one Python step per triple) + ``ProductGraph`` + ``to_pyg()``
  (c) baseline: ``rdflib.Graph().parse(path)`` + a HeteroData built by hand the way PyG's
                ``torch_geometric.datasets.Entities`` builds its graph (sorted node and
                relation sets, dict lookups, typed edge lists)

and prints the best of ``--repeat`` runs (the machine may be shared): seconds, triples/s,
CPU seconds (the process plus its parser workers; the workers' share apart), peak memory
above the post-import baseline (the parent; its workers' peak is printed apart), and the
ratios.

    python benchmarks/ingest.py                 # 1,000,000 triples (a few minutes: rdflib is slow)
    python benchmarks/ingest.py --triples 200000 --formats nt
    python benchmarks/ingest.py --triples 10000000 --formats nt --skip-baseline  # memory goal
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import tempfile
import time
from pathlib import Path

TRIPLES_PER_PRODUCT = 12
S = "http://schema.org/"


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def generate(path_nt: Path, path_ttl: Path, triples: int, seed: int = 0) -> int:
    """Write the same catalogue as N-Triples and Turtle; returns the triple count."""
    rng = random.Random(seed)
    products = triples // TRIPLES_PER_PRODUCT
    brands, categories = max(products // 200, 10), max(products // 500, 10)
    base = "http://shop.example/"
    nt, ttl = [], [f"@prefix s: <{S}> .", f"@prefix ex: <{base}> .", "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .",
                   "@prefix skos: <http://www.w3.org/2004/02/skos/core#> ."]  # fmt: skip
    count = 0
    for b in range(brands):
        nt.append(
            f"<{base}brand/{b}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{S}Brand> ."
        )
        nt.append(f'<{base}brand/{b}> <{S}name> "Brand {b}" .')
        ttl.append(f'ex:brand{b} a s:Brand ; s:name "Brand {b}" .')
        count += 2
    for c in range(categories):
        nt.append(
            f"<{base}category/{c}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{S}CategoryCode> ."
        )
        nt.append(
            f"<{base}category/{c}> <http://www.w3.org/2004/02/skos/core#broader> <{base}category/{c // 10}> ."
        )
        ttl.append(f"ex:category{c} a s:CategoryCode ; skos:broader ex:category{c // 10} .")
        count += 2
    for p in range(products):
        brand, category = rng.randrange(brands), rng.randrange(categories)
        price = f"{rng.uniform(1, 500):.2f}"
        similar, accessory = rng.randrange(products), rng.randrange(products)
        iri = f"<{base}product/{p}>"
        rows = [
            ("<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", f"<{S}Product>"),
            (f"<{S}name>", f'"Product {p} by brand {brand}"@en'),
            (f"<{S}name>", f'"Produkt {p} von Marke {brand}"@de'),
            (f"<{S}description>", f'"A fine product number {p}, category {category}, with \\"quotes\\"."@en'),
            (f"<{S}sku>", f'"SKU-{p:07d}"'),
            (f"<{S}price>", f'"{price}"^^<http://www.w3.org/2001/XMLSchema#decimal>'),
            (f"<{S}brand>", f"<{base}brand/{brand}>"),
            (f"<{S}category>", f"<{base}category/{category}>"),
            (f"<{S}image>", f'"images/{p}.jpg"'),
            (f"<{S}isSimilarTo>", f"<{base}product/{similar}>"),
            (f"<{S}isAccessoryOrSparePartFor>", f"<{base}product/{accessory}>"),
            (f"<{S}releaseDate>", f'"20{rng.randrange(10, 25)}-0{rng.randrange(1, 10)}-1{rng.randrange(0, 9)}"^^<http://www.w3.org/2001/XMLSchema#date>'),
        ]  # fmt: skip
        nt.extend(f"{iri} {pred} {obj} ." for pred, obj in rows)
        ttl.append(f"{iri} " + " ;\n    ".join(f"{pred} {obj}" for pred, obj in rows) + " .")
        count += len(rows)
    path_nt.write_text("\n".join(nt) + "\n", encoding="utf-8")
    path_ttl.write_text("\n".join(ttl) + "\n", encoding="utf-8")
    return count


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """CPU seconds of this process (``RUSAGE_SELF``) or its finished children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def ours(path: str, queue) -> None:
    import torch_geometric  # noqa: F401

    import kg  # noqa: F401  (imports are outside the timing, as for the baseline)

    before, cpu = _status_kib("VmRSS"), _cpu_seconds()
    workers_cpu = _cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    data = kg.load_rdf(path).to_pyg()
    seconds = time.perf_counter() - start
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    workers_cpu = _cpu_seconds(resource.RUSAGE_CHILDREN) - workers_cpu
    queue.put((seconds, (_status_kib("VmHWM") - before) / 1024, len(data.edge_types),
               _cpu_seconds() - cpu + workers_cpu, workers_mb, workers_cpu))  # fmt: skip


def streamed(path: str, queue) -> None:
    import pyoxigraph as ox
    import torch_geometric  # noqa: F401

    import kg
    from kg.rdf import detect_format
    from kg.triples import TripleSink

    before, cpu = _status_kib("VmRSS"), _cpu_seconds()
    start = time.perf_counter()
    sink = TripleSink()
    sink.add_quads(ox.parse(path=path, format=detect_format(Path(path))), 0, scope="f0_")
    data = kg.ProductGraph(sink.raw).to_pyg()
    seconds = time.perf_counter() - start
    queue.put((seconds, (_status_kib("VmHWM") - before) / 1024, len(data.edge_types),
               _cpu_seconds() - cpu, 0.0, 0.0))  # fmt: skip


def baseline(path: str, queue) -> None:
    import rdflib
    import torch
    from torch_geometric.data import HeteroData

    before, cpu = _status_kib("VmRSS"), _cpu_seconds()
    start = time.perf_counter()
    graph = rdflib.Graph()
    graph.parse(path)
    # As torch_geometric.datasets.Entities.process: sorted node / relation sets, then
    # dict lookups per triple; here hetero: node types from rdf:type, literals skipped.
    subjects = set(graph.subjects())
    objects = {o for o in graph.objects() if not isinstance(o, rdflib.Literal)}
    types = {s: o for s, o in graph.subject_objects(rdflib.RDF.type)}
    nodes = sorted(subjects | (objects - set(types.values())))
    node_type = {n: str(types.get(n, "Entity")).rsplit("/", 1)[-1] for n in nodes}
    local, counts = {}, {}
    for n in nodes:
        t = node_type[n]
        local[n] = counts.get(t, 0)
        counts[t] = local[n] + 1
    edges: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for s, p, o in graph:
        if p == rdflib.RDF.type or isinstance(o, rdflib.Literal):
            continue
        key = (node_type[s], str(p).rsplit("/", 1)[-1], node_type[o])
        edges.setdefault(key, []).append((local[s], local[o]))
    data = HeteroData()
    for t, c in counts.items():
        data[t].num_nodes = c
    for (st, rel, dt), pairs in edges.items():
        index = torch.tensor(pairs, dtype=torch.long).t().contiguous()
        data[st, rel, dt].edge_index = index
        data[dt, "rev_" + rel, st].edge_index = index.flip(0)
    seconds = time.perf_counter() - start
    queue.put((seconds, (_status_kib("VmHWM") - before) / 1024, len(data.edge_types),
               _cpu_seconds() - cpu, 0.0, 0.0))  # fmt: skip


def run_isolated(target, path: Path, repeat: int = 1) -> tuple:
    """The fastest of ``repeat`` runs, each in a fresh process."""
    results = []
    for _ in range(repeat):
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        process = ctx.Process(target=target, args=(str(path), queue))
        process.start()
        results.append(queue.get())
        process.join()
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--triples", type=int, default=1_000_000)
    parser.add_argument("--formats", nargs="+", default=["nt", "ttl"], choices=["nt", "ttl"])
    parser.add_argument("--skip-baseline", action="store_true", help="no rdflib baseline")
    parser.add_argument("--repeat", type=int, default=3, help="runs per pipeline; the best")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"nt": Path(tmp) / "catalogue.nt", "ttl": Path(tmp) / "catalogue.ttl"}
        start = time.perf_counter()
        n = generate(paths["nt"], paths["ttl"], args.triples)
        print(f"generated {n:,} triples in {time.perf_counter() - start:.1f}s "
              f"({paths['nt'].stat().st_size / 1e6:.0f} MB N-Triples, {paths['ttl'].stat().st_size / 1e6:.0f} MB Turtle)\n")  # fmt: skip
        print(f"{'format':6} {'pipeline':9} {'seconds':>8} {'triples/s':>11} {'CPU s':>6} "
              f"{'workers CPU s':>13} {'peak MB':>8} {'workers MB':>10} {'edge types':>10}")  # fmt: skip
        for fmt in args.formats:
            results = {"ours": run_isolated(ours, paths[fmt], args.repeat)}
            results["streamed"] = run_isolated(streamed, paths[fmt], args.repeat)
            if not args.skip_baseline:
                results["rdflib"] = run_isolated(baseline, paths[fmt])
            for name, (seconds, peak, edge_types, cpu, workers, workers_cpu) in results.items():
                print(f"{fmt:6} {name:9} {seconds:8.2f} {n / seconds:11,.0f} {cpu:6.2f} "
                      f"{workers_cpu:13.2f} {peak:8.0f} {workers:10.0f} {edge_types:10}")  # fmt: skip
            ours_s, ours_mb = results["ours"][0], results["ours"][1]
            for name in ("streamed", "rdflib"):
                if name in results:
                    their_s, their_mb = results[name][0], results[name][1]
                    print(f"{fmt:6} vs {name:9} speed-up {their_s / ours_s:.1f}x, "
                          f"peak memory {ours_mb / their_mb:.2f} of its")  # fmt: skip
            print()


if __name__ == "__main__":
    main()

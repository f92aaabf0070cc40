"""Load test of the HTTP service (`kgf serve`) against the same calls made in-process.

Builds the sample catalogue (``--products``) into a workspace with an entity index of
random product vectors (``--dim``), starts the real service in a subprocess (uvicorn on
127.0.0.1, a free port) and sends a fixed mix of requests, half ``GET /related?iri=..&k=10``
(with graph evidence) and half ``GET /entities/{iri}``, over products drawn with a fixed seed:

  in-process   the service's own functions (``kgfusion.service.related`` / ``entity``, the
               response models included), one call at a time: the baseline; FAISS on one
               OpenMP thread, as the service sets it (also shown with FAISS's default threads)
  http x1      one httpx client, one request at a time: latency with the HTTP stack
  http xN      ``--clients`` threads with their own httpx client, until ``--requests``
               requests or ``--seconds`` have passed: throughput under load

Reported per mode and endpoint: requests, requests/s, p50 / p99 latency (ms), errors
(non-200 answers or failed requests), and the p50 ratio to in-process. The client threads
share the machine with the server, so on few cores the figures are a lower bound.

    python benchmarks/service_load.py                       # 500 products, 2,000 requests, 4 clients
    python benchmarks/service_load.py --products 120 --requests 400 --clients 2 --seconds 10
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

import kg
from kg.index import EntityIndex
from kg.report import format_table
from kg.samples import write_sample_catalogue
from kgfusion.service import entity, load_workspace, related, single_threaded_faiss

SERVER = (
    "import sys; from kgfusion.service import serve; "
    "serve(sys.argv[1], port=int(sys.argv[2]), log_level='warning')"
)


def build_workspace(folder: Path, products: int, dim: int) -> Path:
    """Sample catalogue -> workspace with an entity index of random product vectors."""
    sample = write_sample_catalogue(folder / "catalogue", n_products=products)
    graph = kg.load_rdf(sample.path)
    ws = graph.save(folder / "ws")
    vectors = np.random.default_rng(0).standard_normal((graph.num_nodes_dict["Product"], dim))
    EntityIndex.from_embeddings(graph, {"Product": vectors}).save(ws / "index")
    return ws


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(ws: Path, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """The service in a subprocess; returns once /health answers (polled every 50 ms)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(ws), str(port)], stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=0.5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s")


def workload(iris: list[str], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` requests ``(endpoint, iri)``: alternately /related and /entities."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(iris), size=n).tolist()
    return [("related" if i % 2 == 0 else "entities", iris[p]) for i, p in enumerate(picks)]


def run_in_process(ws, requests) -> list[tuple[str, float, bool]]:
    out = []
    for endpoint, iri in requests:
        start = time.perf_counter()
        if endpoint == "related":
            related(ws, iri, k=10)
        else:
            entity(ws, iri)
        out.append((endpoint, time.perf_counter() - start, True))
    return out


def run_http(base: str, requests, clients: int, seconds: float) -> list[tuple[str, float, bool]]:
    """Send ``requests`` from ``clients`` threads (each takes the next one) until all are
    sent or ``seconds`` have passed; returns (endpoint, latency, ok) per request."""
    next_index, results, lock = itertools.count(), [], threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.monotonic() < stop_at:
                i = next(next_index)
                if i >= len(requests):
                    return
                endpoint, iri = requests[i]
                start = time.perf_counter()
                try:
                    if endpoint == "related":
                        r = http.get("/related", params={"iri": iri, "k": 10})
                    else:
                        r = http.get("/entities/" + iri)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    results.append((endpoint, time.perf_counter() - start, ok))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def summarise(mode: str, results, wall: float, baseline: dict | None) -> list[list]:
    rows = []
    for endpoint in ("related", "entities", "all"):
        chosen = [r for r in results if endpoint in ("all", r[0])]
        if not chosen:
            continue
        ms = np.array([r[1] for r in chosen]) * 1e3
        p50 = float(np.percentile(ms, 50))
        ratio = f"{p50 / baseline[endpoint]:.1f}x" if baseline else "1.0x"
        rate = f"{len(chosen) / wall:,.0f}" if endpoint == "all" else ""  # a mix: total only
        rows.append([
            mode, endpoint, len(chosen), rate, f"{p50:.2f}",
            f"{np.percentile(ms, 99):.2f}", sum(not r[2] for r in chosen), ratio,
        ])  # fmt: skip
        if baseline is None:
            rows[-1].append(p50)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000, help="requests under load")
    parser.add_argument("--seconds", type=float, default=20.0, help="time bound under load")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws_path = build_workspace(Path(tmp), args.products, args.dim)
        ws = load_workspace(ws_path)
        iris = ws.graph.node_iris("Product")
        print(f"workspace: {ws.graph!r}, index {len(ws.index)} x {args.dim}")
        sequential = workload(iris, max(args.requests // 4, 2), seed=1)
        loaded = workload(iris, args.requests, seed=2)

        run_in_process(ws, sequential[:20])  # warm-up
        start = time.perf_counter()
        default_threads = run_in_process(ws, sequential)
        wall = time.perf_counter() - start
        single_threaded_faiss()  # as the service does in its request threads
        start = time.perf_counter()
        direct = run_in_process(ws, sequential)
        rows = summarise("in-process", direct, time.perf_counter() - start, None)
        baseline = {r[1]: r.pop() for r in rows}
        rows += summarise("in-process, FAISS default threads", default_threads, wall, baseline)

        proc, base = start_server(ws_path)
        try:
            run_http(base, sequential[:20], 1, 30)  # warm-up
            for mode, requests, clients in (
                ("http x1", sequential, 1),
                (f"http x{args.clients}", loaded, args.clients),
            ):
                start = time.perf_counter()
                results = run_http(base, requests, clients, args.seconds)
                rows += summarise(mode, results, time.perf_counter() - start, baseline)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    header = ["mode", "endpoint", "requests", "req/s", "p50 ms", "p99 ms", "errors", "p50 / in-process"]  # fmt: skip
    print("\n".join(format_table(header, rows)))
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )


if __name__ == "__main__":
    main()

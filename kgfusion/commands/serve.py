"""``kgf serve``, ``kgf demo``: the HTTP service and the end-to-end demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..session import Session
from .registry import CliError, command


# --------------------------------------------------------------------------- serve
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Serve a workspace over HTTP (read-only): /entities, /related, /link, /ask, /predict, "
        "/search, /sparql and /health, "
        "with OpenAPI docs at /docs. The workspace and its entity index are loaded once at start-up; "
        "/related needs the index that `kgf index DIR` builds."
    )
    p.epilog = (
        "examples:\n  kgf serve ws/                                   # http://127.0.0.1:8000/docs\n"
        "  kgf serve ws/ --port 9000 --max-k 50\n"
        "  curl 'http://127.0.0.1:8000/related?name=gold%20ring&k=5'\n"
        "  curl 'http://127.0.0.1:8000/predict?relation=season&limit=20'   # after kgf train --task attribute"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it)",
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument(
        "--max-k", type=int, default=100, help="most related entities per request (default 100)"
    )
    p.add_argument(
        "--query-timeout", type=float, default=5.0, help="SPARQL time limit in seconds (default 5)"
    )


@command(
    "serve", "serve a workspace over HTTP: entities, related, link, ask, predict, search, SPARQL (FastAPI)", _serve_args
)
def serve_cmd(args) -> int:
    try:
        from kgfusion.service import serve
    except ImportError as err:
        raise CliError(
            f"kgf serve needs fastapi and uvicorn ({err}): pip install 'kgfusion[serve]'"
        ) from None
    if args.max_k < 1:
        raise CliError(f"--max-k {args.max_k}: allow at least 1")
    serve(
        Session(args.workspace),
        host=args.host,
        port=args.port,
        max_k=args.max_k,
        query_timeout_s=args.query_timeout,
    )
    return 0


# --------------------------------------------------------------------------- demo
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("kgf-demo"),
        help="demo folder (default ./kgf-demo)",
    )
    p.add_argument("--products", type=int, default=120, help="number of sample products")


@command(
    "demo",
    "end to end on the built-in multilingual sample catalogue, offline: build, encode, train "
    "link prediction, index, related products, multilingual text linking",
    _demo_args,
)
def demo(args) -> int:
    from ..demo import run_demo

    run_demo(args.output, args.products)
    return 0

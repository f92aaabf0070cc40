"""``kgf``: the kgfusion command line.

Each subcommand is one function registered in ``COMMANDS`` with its argument parser;
``kgf --help`` lists them with an example each, ``kgf CMD --help`` teaches the options.
The commands parse arguments and print; the work is done by :class:`kgfusion.session.Session`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from .display import print_encode_report, quiet_transformers, related_records, related_table
from .session import Session, SessionError

EPILOG = """\
typical session:
  kgf demo                                             # sample catalogue, end to end
  kgf build catalogue.ttl -o ws/                       # RDF (nt, nq, ttl, trig, rdf/xml, jsonld, .gz)
  kgf build products.csv --mapping map.toml -o ws/     # a table, mapped to schema.org RDF
  kgf info ws/                                         # types, relations, literal coverage, images
  kgf sparql ws/ 'SELECT ?p ?n WHERE { ?p <http://schema.org/name> ?n } LIMIT 5'
"""

COMMANDS: dict[str, tuple[Callable, Callable, str]] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``kgf NAME``: ``add_arguments`` fills its parser, the decorated function runs it."""

    def decorate(run):
        COMMANDS[name] = (add_arguments, run, help)
        return run

    return decorate


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


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
            stats = table_to_rdf(table, Mapping.from_toml(args.mapping), tmp / "catalogue.ttl")
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
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")


@command("sparql", "run a read-only SPARQL query over a workspace", _sparql_args)
def sparql(args) -> int:
    query = (
        Path(args.query[1:]).read_text(encoding="utf-8")
        if args.query.startswith("@")
        else args.query
    )
    result = Session(args.workspace).sparql(query)
    print(
        {"table": result.to_table, "csv": result.to_csv, "json": result.to_json}[
            args.format
        ]().rstrip("\n")
    )
    return 0


# --------------------------------------------------------------------------- encode
def _encode_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Turn literal columns into node features per type and modality, with masks: text "
        "(name/title/label/description), images (image references), numbers. Results are "
        "cached by content hash in the workspace: re-encoding an unchanged catalogue runs no "
        "model, and a changed product re-encodes only itself."
    )
    p.epilog = (
        "examples:\n"
        "  kgf encode ws                                    # minilm text + efficientnet-lite0 images\n"
        "  kgf encode ws --text e5-multilingual             # mixed-language catalogues\n"
        "  kgf encode ws --text hf:/models/my-bert --image none --languages de en"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument(
        "--text", default="minilm", help="text encoder: minilm, e5-multilingual, hf:PATH, or none"
    )
    p.add_argument(
        "--image",
        default="efficientnet-lite0",
        help="image encoder: efficientnet-lite0, hf:PATH, or none",
    )
    p.add_argument("--no-numeric", action="store_true", help="skip numeric columns")
    p.add_argument(
        "--languages", nargs="+", default=["en"], help="preferred languages for text, in order"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=64)


@command("encode", "encode text, images and numbers into cached node features", _encode_args)
def encode(args) -> int:
    from fusion.features import FeatureSpec

    none = lambda v: None if v in (None, "none", "") else v
    spec = FeatureSpec(
        text_encoder=none(args.text), image_encoder=none(args.image), numeric=not args.no_numeric,
        languages=tuple(args.languages), batch_size=args.batch_size, device=args.device,
    )  # fmt: skip
    quiet_transformers()
    print_encode_report(*Session(args.workspace).encode(spec))
    return 0


# --------------------------------------------------------------------------- train / evaluate
def _train_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Train a fusion x GNN model on the workspace's graph (and its features, if `kgf encode` "
        "wrote some; featureless types get the R-GCN paper's one-hot input with rgcn, learnable "
        "embeddings otherwise). AIFB with the paper's settings: --config examples/aifb_rgcn.toml. "
        "Checkpoints "
        "(config.json + model.safetensors), metrics.jsonl and final node embeddings go to "
        "WORKSPACE/models/RUN."
    )
    p.epilog = (
        "examples:\n"
        "  kgf train /tmp/aifb --task node --labels ../shared/data/rdf/aifb/trainingSet.tsv \\\n"
        "      --test ../shared/data/rdf/aifb/testSet.tsv --entity-col person \\\n"
        "      --label-col label_affiliation --gnn rgcn --fusion attention\n"
        "  kgf train ws --task link --relation isAccessoryOrSparePartFor --gnn sage\n"
        "  kgf train ws --config cfg.toml --set trainer.lr=0.005 --set model.hidden=64\n"
        "  kgf evaluate ws RUN --split test"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument(
        "--task", choices=["node", "link"], help="node classification or link prediction"
    )
    p.add_argument("--labels", type=Path, help="node task: TSV/CSV of training labels")
    p.add_argument(
        "--valid", type=Path, help="node task: validation labels (else carved from --labels)"
    )
    p.add_argument("--test", type=Path, help="node task: test labels")
    p.add_argument("--entity-col", help="column naming the entity IRI")
    p.add_argument(
        "--label-col", action="append", help="label column (repeat for multi-task heads)"
    )
    p.add_argument(
        "--relation", action="append", help="link task: relation to predict (repeatable)"
    )
    p.add_argument("--gnn", help="rgcn, hgt, sage, gat or mlp (default rgcn)")
    p.add_argument(
        "--fusion", help="concat, mean, attention, gated, tensor or lowrank (default attention)"
    )
    p.add_argument(
        "--mode", choices=["early", "late"], help="fuse then propagate (early) or the reverse"
    )
    p.add_argument("--config", type=Path, help="TOML config; flags override it")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    p.add_argument("--run", help="run name (default: derived from task, gnn, fusion)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--resume", action="store_true", help="continue the run from its last checkpoint"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run")


def _parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--set {pair!r}: expected KEY=VALUE, e.g. trainer.lr=0.01")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


@command("train", "train a fusion x GNN model: node classification or link prediction", _train_args)
def train_cmd(args) -> int:
    result = Session(args.workspace).train(
        task=args.task, labels=args.labels, valid=args.valid, test=args.test,
        entity_col=args.entity_col, label_cols=args.label_col, relations=args.relation,
        gnn=args.gnn, fusion=args.fusion, mode=args.mode, config_path=args.config,
        overrides=_parse_overrides(args.set), run_name=args.run, device=args.device,
        seed=args.seed, resume=args.resume, overwrite=args.overwrite,
    )  # fmt: skip
    print(
        f"run {result.run_dir} (best epoch {result.best_epoch} of {result.epochs}, {result.seconds:.1f}s)"
    )
    for key, value in sorted(result.metrics.items()):
        print(f"  {key:28} {value:.4f}")
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace", type=Path)
    p.add_argument("run", help="run name under WORKSPACE/models (see `ls WORKSPACE/models`)")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


@command("evaluate", "re-evaluate a trained run on a split", _evaluate_args)
def evaluate_cmd(args) -> int:
    metrics = Session(args.workspace).evaluate(args.run, args.split, args.device)
    for key, value in sorted(metrics.items()):
        print(f"{key:28} {value:.4f}")
    return 0


# --------------------------------------------------------------------------- link
def _link_train_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Train the linker of a workspace.\n\n"
        "Text: the scorer (and a contrastive projection) from labelled pairs in the DeepMatcher\n"
        "layout: a mentions table (tableB.csv) and pairs (ltable_id = catalogue id, rtable_id =\n"
        "mention id, label). The NIL threshold is calibrated on --valid. Saved as\n"
        "WORKSPACE/linker/config.json + model.safetensors.\n\n"
        "Photos: --images LIST, one `image path, entity` line per labelled photo (the entity a\n"
        "catalogue id or an IRI; paths relative to the list). Contrastive photo <-> entity\n"
        "training, the products of the same category as hard negatives; the epoch and the NIL\n"
        "threshold are chosen on a hold-out taken from the list. Saved as\n"
        "WORKSPACE/image-linker/config.json + model.safetensors. Run `kgf encode` first."
    )
    p.epilog = (
        "examples:\n"
        "  kgf link-train /tmp/abt --mentions abt_buy/tableB.csv --pairs abt_buy/train.csv "
        "--valid abt_buy/valid.csv\n"
        "  kgf link-train /tmp/grocery --images ../shared/data/images/grocery/train.txt"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    text = p.add_argument_group("text linker (labelled pairs)")
    text.add_argument("--mentions", type=Path, help="table of mention records (CSV)")
    text.add_argument("--pairs", type=Path, help="training pairs (ltable_id, rtable_id, label)")
    text.add_argument("--valid", type=Path, help="validation pairs: NIL threshold calibration")
    text.add_argument("--id-col", default="id", help="id column of the mentions table")
    photos = p.add_argument_group("image linker (labelled photos)")
    photos.add_argument(
        "--images", type=Path, metavar="LIST", help="photo list: `image path, entity` per line"
    )
    photos.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    photos.add_argument("--base", help="IRI prefix of the entity ids (default: from the mapping)")
    photos.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


@command(
    "link-train",
    "train the text linker from labelled pairs, or the image linker from labelled photos",
    _link_train_args,
)
def link_train_cmd(args) -> int:
    if args.images is None and args.mentions is None and args.pairs is None:
        raise CliError("give --mentions and --pairs (text), or --images LIST (photos)")
    if (args.mentions is None) != (args.pairs is None):
        raise CliError("the text linker needs both --mentions and --pairs")
    if args.mentions is not None:
        from align import train_linker

        report = train_linker(
            args.workspace, args.mentions, args.pairs, args.valid, id_col=args.id_col
        )
        print(f"linker saved to {report.path}")
        for key, value in report.metrics.items():
            print(f"  {key:28} {value:.4f}" if isinstance(value, float) else f"  {key:28} {value}")
    if args.images is not None:
        from align import train_image_linker

        image_report = train_image_linker(
            args.workspace, args.images, base=args.base, epochs=args.epochs, device=args.device,
            progress=True,
        )  # fmt: skip
        print(f"image linker saved to {image_report.path}")
        for key, value in image_report.metrics.items():
            if key in ("history", "refit_history"):
                value = ", ".join(
                    f"{h['epoch']}: {h.get('holdout_accuracy', h['loss']):.3f}" for h in value
                )
            print(f"  {key:28} {value:.4f}" if isinstance(value, float) else f"  {key:28} {value}")
    return 0


def _link_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "examples:\n"
        '  kgf link ws "looking for a sony ps-lx350h turntable"\n'
        "  kgf link ws --table offers.csv -o links.csv\n"
        "  kgf link ws --image photo.jpg                # trained with `kgf link-train --images`\n"
        "  kgf link ws --image photos/ -o links.csv      # every image in a folder\n"
        "  kgf link ws --image photo.jpg --untrained     # nearest catalogue image"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("text", nargs="?", help="free text: mentions are detected and linked")
    p.add_argument("--table", type=Path, help="CSV of records, each linked as one mention")
    p.add_argument(
        "--image", type=Path, nargs="+", metavar="PATH",
        help="photos (files or folders of images) to link, each to the entity it shows",
    )  # fmt: skip
    p.add_argument(
        "--untrained", action="store_true",
        help="--image without a trained image linker: link by the nearest catalogue image",
    )  # fmt: skip
    p.add_argument("-o", "--output", type=Path, help="where --table / --image write links (CSV)")
    p.add_argument("-k", type=int, default=5, help="alternatives per link")
    p.add_argument("--json", action="store_true")


@command("link", "link text mentions, a table of records or photos to graph entities", _link_args)
def link_cmd(args) -> int:
    quiet_transformers()
    given = [x is not None for x in (args.text, args.table, args.image)]
    if sum(given) > 1:
        raise CliError("give one of: a text, --table, --image")
    session = Session(args.workspace)
    _ = session.linker  # a missing step (e.g. `kgf encode`) is reported before the input
    if args.image is not None:
        return _link_images(session, args)
    if args.table is not None:
        if args.output is None:
            raise CliError("--table needs -o OUTPUT.csv")
        count = session.link_table(args.table, args.output, k=args.k)
        print(f"linked {count:,} records -> {args.output}")
        return 0
    if args.text is None:
        raise CliError("give a text to link, --table or --image")
    links = session.link_text(args.text, k=args.k)
    if args.json:
        print(json.dumps([link.to_dict() for link in links], indent=2, ensure_ascii=False))
        return 0
    from kg.report import format_table

    rows = [
        [ln.mention, ln.start, ln.end, "NIL" if ln.nil else ln.iri, f"{ln.score:.3f}"]
        for ln in links
    ]
    print(
        "\n".join(format_table(["mention", "start", "end", "entity", "score"], rows))
        if rows
        else "no mentions found"
    )
    return 0


def _link_images(session: Session, args) -> int:
    """``kgf link WS --image ...``: a table (or JSON, or a CSV with -o) of photo links."""
    import csv
    import io

    from align import image_files

    paths = image_files(args.image)
    many = len(paths) > 1
    links = session.link_images(paths, k=args.k, untrained=args.untrained, progress=many)
    if args.output is not None:
        from kg.workspace import atomic_write_bytes

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["image", "iri", "type", "score", "nil", "alternatives"])
        for ln in links:
            alternatives = json.dumps([[iri, round(s, 6)] for iri, s in ln.alternatives])
            writer.writerow([ln.mention, ln.iri or "", ln.type or "", f"{ln.score:.6f}",
                             int(ln.nil), alternatives])  # fmt: skip
        atomic_write_bytes(args.output, buffer.getvalue().encode("utf-8"))
        print(f"linked {len(links):,} images -> {args.output}")
        return 0
    if args.json:
        print(json.dumps([link.to_dict() for link in links], indent=2, ensure_ascii=False))
        return 0
    from kg.report import format_table

    graph = session.graph
    rows = []
    for ln in links:
        best = ln.alternatives[0][0] if ln.alternatives else None
        name = _entity_name(graph, best) if best else ""
        entity = f"NIL (best: {best})" if ln.nil else ln.iri
        rows.append([ln.mention, entity, name[:40], f"{ln.score:.3f}"])
    print("\n".join(format_table(["image", "entity", "name", "score"], rows)))
    return 0


def _entity_name(graph, iri: str) -> str:
    from kg.labels import display_name

    return display_name(graph, iri) or ""


# --------------------------------------------------------------------------- index
def _index_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Build the entity index (FAISS when installed: exact below 100k entities, IVF above; "
        "exact torch search otherwise) over node vectors: the final embeddings of a trained "
        "run (default: the newest complete run), else the encoded features (kgf encode)."
    )
    p.add_argument("workspace", type=Path)
    p.add_argument(
        "--node-type", nargs="*", help="node types to index (default: every type with vectors)"
    )
    p.add_argument("--kind", default="auto", choices=["auto", "exact", "ivf", "hnsw", "torch"])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--run", help="the trained run whose embeddings to index (default: newest)")
    source.add_argument("--features", action="store_true",
                        help="index the encoded features, not a run's embeddings")  # fmt: skip


@command("index", "build the entity index (FAISS or torch) over node vectors", _index_args)
def index_cmd(args) -> int:
    session = Session(args.workspace)
    index, node_types = session.build_index(args.node_type, args.kind, run=args.run,
                                            features=args.features)  # fmt: skip
    src = index.source or {}
    if src.get("kind") == "run":
        origin = f"embeddings of run {src['run']}" + ("" if args.run else " (the newest complete run)")
    else:
        origin = "encoded features" + ("" if args.features else " (no trained run)")
        if src.get("structural"):
            origin += f"; {src['structural']:,} without features get their neighbours' mean"
    print(f"indexed {len(index):,} entities ({', '.join(node_types)}), dim {index.dim}, "
          f"{index.kind}, from the {origin}")  # fmt: skip
    return 0


# --------------------------------------------------------------------------- related
def _related_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "examples:\n"
        "  kgf related ws https://example.org/kgf/product/lumo-racing-car-lm-4821 -k 5\n"
        "  kgf related ws --name 'lumo racing car' --relation isAccessoryOrSparePartFor --json"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("iri", nargs="?", help="the product's IRI (or use --name)")
    p.add_argument("--name", help="find the product by name (lexical match over names)")
    p.add_argument("-k", type=int, default=10, help="number of answers (default 10)")
    p.add_argument("--relation", help="rank for this relation, e.g. isAccessoryOrSparePartFor")
    p.add_argument(
        "--node-type", help="answer type (default: the query's, or the relation's target)"
    )
    p.add_argument(
        "--model",
        help="link-prediction run that scores the relation (default: the newest `kgf train "
        "--task link` run trained for --relation, if any)",
    )
    p.add_argument(
        "--no-model", action="store_true", help="do not score with a link-prediction run"
    )
    p.add_argument("--json", action="store_true", help="print JSON")


@command("related", "related products for an IRI or a name, with explanations", _related_args)
def related_cmd(args) -> int:
    from kg.report import format_table

    if (args.iri is None) == (args.name is None):
        raise CliError("give either an IRI or --name")
    session = Session(args.workspace)
    iri = args.iri
    if args.name is not None:
        match = session.resolve_name(args.name)
        how = (
            f"text linker, score {match.score:.2f}"
            if match.method == "linker"
            else f"name {match.text!r}, lexical score {match.score:.2f}"
        )
        print(f"{args.name!r} -> {match.iri} ({how})")
        iri = match.iri
    items = session.related(iri, k=args.k, relation=args.relation, node_type=args.node_type,
                            run=args.model, use_model=not args.no_model)  # fmt: skip
    if args.json:
        print(json.dumps(related_records(items), indent=2, ensure_ascii=False))
        return 0
    print("\n".join(format_table(*related_table(items))))
    return 0


# --------------------------------------------------------------------------- serve
def _serve_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Serve a workspace over HTTP (read-only): /entities, /related, /link, /sparql and /health, "
        "with OpenAPI docs at /docs. The workspace and its entity index are loaded once at start-up; "
        "/related needs the index that `kgf index DIR` builds."
    )
    p.epilog = (
        "examples:\n  kgf serve ws/                                   # http://127.0.0.1:8000/docs\n"
        "  kgf serve ws/ --port 9000 --max-k 50\n"
        "  curl 'http://127.0.0.1:8000/related?name=gold%20ring&k=5'"
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
    "serve", "serve a workspace over HTTP: entities, related, link, SPARQL (FastAPI)", _serve_args
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
    from .demo import run_demo

    run_demo(args.output, args.products)
    return 0


# --------------------------------------------------------------------------- main
def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgf",
        description="kgfusion: product knowledge graphs with multimodal fusion.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kgfusion {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (add_arguments, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(handler=run)
    return parser


def _version() -> str:
    from kg import __version__

    return __version__


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that explain bad input themselves: printed without a traceback (exit 2).

    Packages that were never imported cannot have raised, so they are not imported here.
    """
    from kg.graph import GraphLookupError
    from kg.index import EntityIndexError
    from kg.rdf import RdfError
    from kg.sparql import SparqlError
    from kg.tabular import TableError
    from kg.workspace import WorkspaceError

    errors: tuple[type[BaseException], ...] = (
        CliError, SessionError, FileNotFoundError, EntityIndexError, GraphLookupError, RdfError, SparqlError,
        TableError, WorkspaceError,
    )  # fmt: skip
    if "fusion.artifacts" in sys.modules:  # configs, runs and saved artefacts of fusion
        from fusion.artifacts import ConfigError

        errors += (ConfigError,)
    if "fusion.trainer" in sys.modules:
        from fusion.labels import LabelError
        from fusion.registry import UnknownNameError
        from fusion.trainer import TrainingError

        errors += (LabelError, TrainingError, UnknownNameError)
    if "align" in sys.modules:
        from align import LinkerError

        errors += (LinkerError,)
    if "fusion.encoders" in sys.modules:
        from fusion.encoders import EncoderError

        errors += (EncoderError,)
    return errors


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault(
        "HF_HUB_OFFLINE", "1"
    )  # defaults run offline: models come from PyPI packages
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    warnings.simplefilter("default")
    warnings.formatwarning = lambda message, category, *a, **k: f"warning: {message}\n"
    try:
        return args.handler(args)
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise
        print(f"kgf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

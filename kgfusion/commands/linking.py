"""``kgf link-train``, ``kgf link``, ``kgf index``, ``kgf related``: entity linking and retrieval."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..display import (
    RELATED_COLUMNS,
    Rows,
    add_format_argument,
    chosen_format,
    emit,
    emit_for_args,
    format_for_path,
    link_rows,
    link_summary,
    quiet_transformers,
    related_output,
    related_rows,
)
from ..session import Session, SessionError
from .registry import CliError, add_precision_argument, command


# --------------------------------------------------------------------------- link
def _reranker_args(p: argparse.ArgumentParser) -> None:
    """`kgf link-train`'s cross-encoder options."""
    rr = p.add_argument_group("cross-encoder reranker (with the text linker)")
    rr.add_argument("--reranker", action="store_true",
                    help="also train the cross-encoder reranker (WORKSPACE/reranker)")  # fmt: skip
    rr.add_argument("--reranker-base", metavar="hf:FOLDER",
                    help="model to fine-tune: a transformers folder or another workspace's "
                         "reranker folder (its encoder, a new head; default: the offline MiniLM)")  # fmt: skip
    rr.add_argument("--reranker-epochs", type=int, default=3, help="epochs (default 3)")
    rr.add_argument("--reranker-max-length", type=int, default=128,
                    help="tokens per (mention, entity) pair (default 128)")  # fmt: skip
    rr.add_argument("--reranker-layers", type=int, metavar="N",
                    help="keep only the base model's first N layers (faster on a CPU)")  # fmt: skip
    rr.add_argument("--reranker-precision", default="auto", choices=["auto", "fp32", "bf16", "int8"],
                    help="arithmetic the saved reranker scores in (stored in its config): auto "
                    "= bf16 on a CPU with native bf16 (AMX / AVX512-BF16; about 3x fp32), "
                    "else fp32; int8 = dynamic quantisation (slower than bf16, about 1 F1 "
                    "point lower on Amazon-Google)")  # fmt: skip
    rr.add_argument("--reranker-train-precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="arithmetic of fine-tuning: auto = bf16 autocast (float32 weights "
                    "and loss) on a CPU with native bf16, else fp32")  # fmt: skip
    rr.add_argument("--reranker-no-cascade", action="store_true",
                    help="rerank every mention; by default only those whose feature-based "
                    "decision probability falls in the uncertain band chosen on --valid "
                    "(the others keep the features' decision)")  # fmt: skip
    rr.add_argument("--reranker-soup", action="store_true",
                    help="keep the greedy soup of the epochs (the best one weight-averaged "
                    "with each other epoch that does not lower the validation AP; Wortsman "
                    "et al. 2022) instead of the best epoch; one model, same scoring cost")  # fmt: skip
    rr.add_argument("--reranker-known-matches", default="auto", choices=["auto", "on", "off"],
                    help="compare a pair also with the records the training pairs match to its "
                    "entity, as decision evidence; auto = when the catalogue holds several "
                    "entries per product (5 %% or more of the matched training records match "
                    "several entities, as in offer catalogues like WDC)")  # fmt: skip


def _link_train_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Train the linker of a workspace.\n\n"
        "Text: the scorer (and a contrastive projection) from labelled pairs in the DeepMatcher\n"
        "layout: a mentions table (tableB.csv) and pairs (ltable_id = catalogue id, rtable_id =\n"
        "mention id, label). The pair decision (calibrated probability >= 0.5, no threshold\n"
        "tuned per data set) and the NIL threshold of linking are calibrated apart on --valid.\n"
        "Saved as WORKSPACE/linker/config.json + model.safetensors.\n\n"
        "Reranker: --reranker also fine-tunes a cross-encoder (a transformers encoder with a\n"
        "one-logit head on its mean-pooled states, like a sentence-transformers CrossEncoder;\n"
        "base: the offline MiniLM, --reranker-base hf:FOLDER, or another workspace's reranker\n"
        "folder, a matcher trained on another product set) on the same pairs plus hard\n"
        "negatives, calibrated with the linker's scores on --valid. Saved as\n"
        "WORKSPACE/reranker/config.json + model.safetensors (+ tokenizer files); `kgf link`,\n"
        "`kgf link-evaluate` and `kgf serve` use it from then on, until the linker is retrained.\n\n"
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
        "  kgf link-train /tmp/abt --mentions abt_buy/tableB.csv --pairs abt_buy/train.csv "
        "--valid abt_buy/valid.csv --reranker --reranker-epochs 2\n"
        "  kgf link-train /tmp/wdc --mentions wdc/tableB.csv --pairs wdc/train.csv "
        "--valid wdc/valid.csv --reranker --reranker-base /tmp/abt/reranker\n"
        "  kgf link-train /tmp/grocery --images ../shared/data/images/grocery/train.txt"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    text = p.add_argument_group("text linker (labelled pairs)")
    text.add_argument("--mentions", type=Path, help="table of mention records (CSV)")
    text.add_argument("--pairs", type=Path, help="training pairs (ltable_id, rtable_id, label)")
    text.add_argument("--valid", type=Path, help="validation pairs: NIL threshold calibration")
    text.add_argument("--id-col", default="id", help="id column of the mentions table")
    _reranker_args(p)
    photos = p.add_argument_group("image linker (labelled photos)")
    photos.add_argument(
        "--images", type=Path, metavar="LIST", help="photo list: `image path, entity` per line"
    )
    photos.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    photos.add_argument("--base", help="IRI prefix of the entity ids (default: from the mapping)")
    photos.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    photos.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run from its last finished epoch (photo features are "
        "kept in the workspace cache in any case)",
    )  # fmt: skip


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
    if args.reranker and args.mentions is None:
        raise CliError("--reranker trains with the text linker: give --mentions and --pairs")
    if args.mentions is not None:
        _train_text(args)
    if args.images is not None:
        from align import train_image_linker

        image_report = train_image_linker(
            args.workspace, args.images, base=args.base, epochs=args.epochs, device=args.device,
            progress=True, resume=args.resume,
        )  # fmt: skip
        print(f"image linker saved to {image_report.path}")
        for key, value in image_report.metrics.items():
            if key in ("history", "refit_history"):
                value = ", ".join(
                    f"{h['epoch']}: {h.get('holdout_accuracy', h['loss']):.3f}" for h in value
                )
            print(f"  {key:28} {value:.4f}" if isinstance(value, float) else f"  {key:28} {value}")
    return 0


def _print_metrics(metrics: dict) -> None:
    for key, value in metrics.items():
        print(f"  {key:28} {value:.4f}" if isinstance(value, float) else f"  {key:28} {value}")


def _train_text(args) -> None:
    """The text linker, then (``--reranker``) the cross-encoder reranker."""
    from align import train_linker
    from align.rerank import RERANKER_DIR

    report = train_linker(args.workspace, args.mentions, args.pairs, args.valid,
                          id_col=args.id_col, progress=True)  # fmt: skip
    print(f"linker saved to {report.path}")
    _print_metrics(report.metrics)
    if not args.reranker:
        if (args.workspace / RERANKER_DIR).is_dir():
            print(f"note: {args.workspace / RERANKER_DIR} was trained against the previous "
                  "linker and is no longer used; add --reranker to retrain it", file=sys.stderr)
        return
    from align.rerank_train import train_reranker

    reranker = train_reranker(
        args.workspace, args.mentions, args.pairs, args.valid, id_col=args.id_col,
        base_model=args.reranker_base, epochs=args.reranker_epochs,
        max_length=args.reranker_max_length, layers=args.reranker_layers, progress=True,
        precision=args.reranker_precision, train_precision=args.reranker_train_precision,
        cascade=not args.reranker_no_cascade, soup=args.reranker_soup,
        known_matches=args.reranker_known_matches,
    )  # fmt: skip
    print(f"reranker saved to {args.workspace / RERANKER_DIR}")
    m = reranker.config.metrics
    _print_metrics({"valid": m.get("valid"), "nil": m.get("nil"), "pairs": m.get("pairs"),
                    "known_matches": m.get("known_matches"), "seconds": m.get("seconds")})  # fmt: skip


def _precision_argument(p: argparse.ArgumentParser) -> None:
    add_precision_argument(p, "auto", "the mention encoder",
                           "default auto; fp32 for float32 bit for bit")  # fmt: skip


def _link_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "examples:\n"
        '  kgf link ws "looking for a sony ps-lx350h turntable"\n'
        "  kgf link ws --table offers.csv -o links.csv\n"
        "  kgf link ws --image photo.jpg                # trained with `kgf link-train --images`\n"
        "  kgf link ws --image photos/ -o links.csv      # every image in a folder\n"
        "  kgf link ws --image photo.jpg --untrained     # nearest catalogue image\n"
        "  kgf link ws 'sony turntable' --format csv      # one row per mention and candidate\n"
        "  kgf link ws 'hp 45 ink cartridge' --threshold 0.3   # link more, less sure\n"
        "  kgf link ws 'hp 45 ink cartridge' --no-nil --top-k 3\n"
        "Every mention the catalogue supports is found, as the longest span it supports. Each\n"
        "output names the entity (its display name) beside its IRI. Files and the csv / jsonl\n"
        "formats hold one row per link and candidate (rank 1 is the best; `linked` is 1 on the\n"
        "row that is the link, `nil` is 1 when the mention was left unlinked); json holds one\n"
        "object per link with its alternatives as [iri, score, name]: what `kgf serve` answers\n"
        "on GET /link (under `links`)."
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
    p.add_argument(
        "-o", "--output", type=Path,
        help="write the links to a file (.csv, .tsv, .json, .jsonl); needed by --table",
    )  # fmt: skip
    p.add_argument(
        "-k", "--top-k", dest="k", type=int, default=5, metavar="K",
        help="candidates listed per mention, best first (default 5); the link is the first "
        "unless it is NIL",
    )  # fmt: skip
    decision = p.add_mutually_exclusive_group()
    decision.add_argument(
        "--threshold", type=float, metavar="T",
        help="NIL cut in [0, 1] for this call: a mention whose best candidate's match "
        "probability is below T is left unlinked (NIL). Default: the threshold `kgf "
        "link-train` calibrated for linking (see `kgf link-evaluate`); untrained: 0.5. "
        "Lower T links more mentions, higher T links only sure ones",
    )  # fmt: skip
    decision.add_argument(
        "--no-nil", action="store_true",
        help="never answer NIL: link every mention to its best candidate, however weak "
        "(the score still says how sure it is)",
    )  # fmt: skip
    p.add_argument("--id-col", default="id", help="--table: the column of record ids")
    _precision_argument(p)
    add_format_argument(p)


@command("link", "link text mentions, a table of records or photos to graph entities", _link_args)
def link_cmd(args) -> int:
    quiet_transformers()
    given = [x is not None for x in (args.text, args.table, args.image)]
    if sum(given) > 1:
        raise CliError("give one of: a text, --table, --image")
    if args.text is not None and not args.text.strip():
        print('note: the text is empty, so there is nothing to link; give the text, e.g. '
              'kgf link WS "sony turntable"', file=sys.stderr)  # fmt: skip
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise CliError(f"--threshold {args.threshold}: give a match probability in [0, 1]")
    if args.k < 1:
        raise CliError(f"--top-k {args.k}: ask for at least one candidate")
    decision = {"threshold": args.threshold, "nil": not args.no_nil}
    session = Session(args.workspace, precision=args.precision)
    _ = session.linker  # a missing step (e.g. `kgf encode`) is reported before the input
    if args.image is not None:
        from align import image_files

        paths = image_files(args.image)
        links = session.link_images(paths, k=args.k, untrained=args.untrained,
                                    progress=len(paths) > 1)  # fmt: skip
        keys = {"image": [str(p) for p in paths]}
    elif args.table is not None:
        if args.output is None:
            raise CliError("--table needs -o OUTPUT (.csv, .tsv, .json or .jsonl)")
        from align import iter_table_links

        found = list(iter_table_links(session.linker, args.table, id_col=args.id_col, k=args.k,
                                      **decision))  # fmt: skip
        keys = {"id": [key for key, _ in found]}
        links = [link for _, link in found]
    elif args.text is None:
        raise CliError("give a text to link, --table or --image")
    else:
        links, keys = session.link_text(args.text, k=args.k, **decision), None
    fmt = format_for_path(args.output) if args.output is not None else chosen_format(args)
    if fmt == "table":
        emit(link_summary(session.graph, links, keys))
        return 0
    emit_for_args(link_rows(session.graph, links, keys), args, what="link rows")
    return 0


# --------------------------------------------------------------------------- link-evaluate
def _link_evaluate_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Evaluate the workspace's text linker on labelled pairs (DeepMatcher layout:\n"
        "ltable_id = catalogue id, rtable_id = mention id, label 1 = same product).\n\n"
        "Pair decisions (Ditto's protocol): a pair is a match when its calibrated probability\n"
        "reaches the linker's pair threshold (0.5; the cross-encoder's decision when the\n"
        "workspace has one, `kgf link-train --reranker`); precision P, recall R and F1.\n"
        "Linking, for the mentions with a label-1 pair, against the whole catalogue: acc@1 (the\n"
        "top candidate is a match), recall@K (a match is in the top K), linked right (linked,\n"
        "not NIL, to a match) and the NIL rate among these true matches (NIL threshold).\n\n"
        "Pairs naming unknown ids are counted and skipped (with examples); a file with one\n"
        "class only is evaluated as far as it can be."
    )
    p.epilog = (
        "examples:\n"
        "  kgf link-evaluate /tmp/abt --pairs ../shared/data/matching/abt_buy/test.csv\n"
        "  kgf link-evaluate /tmp/abt --pairs test.csv --mentions tableB.csv --json"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("--pairs", type=Path, required=True, help="labelled pairs (CSV)")
    p.add_argument(
        "--mentions", type=Path,
        help="the mention records the rtable_id column names (default: tableB.csv beside "
        "--pairs)",
    )  # fmt: skip
    p.add_argument("--id-col", default="id", help="id column of the mentions table")
    p.add_argument("--base", help="IRI prefix of the catalogue ids (default: from the mapping)")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=10, metavar="K",
                   help="K of recall@K (default 10)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    _precision_argument(p)


@command("link-evaluate", "P / R / F1 of pair decisions and acc@1 of linking on labelled pairs",
         _link_evaluate_args)  # fmt: skip
def link_evaluate_cmd(args) -> int:
    import json

    from align.evaluate import evaluate_pairs

    quiet_transformers()
    if args.k < 1:
        raise CliError(f"--top-k {args.k}: ask for at least one candidate")
    session = Session(args.workspace, precision=args.precision)
    report = evaluate_pairs(session.linker, args.pairs, args.mentions, id_col=args.id_col,
                            base=args.base, k=args.k)  # fmt: skip
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    m = report.metrics
    if args.json:
        print(json.dumps({**m, "notes": report.notes}, indent=2))
        return 0
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f}"  # noqa: E731
    print(f"{args.pairs}: {m['pairs']:,} pairs ({m['matches']:,} matches"
          + (f", {m['skipped_pairs']:,} skipped" if m["skipped_pairs"] else "") + ")")
    print(f"pairs   P {pct(m['precision'])}  R {pct(m['recall'])}  F1 {pct(m['f1'])}  "
          f"(pair threshold {m['pair_threshold']:.3f}"
          + (", cross-encoder reranker)" if m.get("reranked") else ")"))  # fmt: skip
    print(f"linking acc@1 {pct(m['acc@1'])}  recall@{args.k} {pct(m[f'recall@{args.k}'])}  "
          f"linked right {pct(m['linked_right'])}  NIL {pct(m['nil_rate'])}  over "
          f"{m['mentions']:,} matched mentions (NIL threshold {m['nil_threshold']:.3f})")  # fmt: skip
    return 0


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
    p.description = (
        "The entities most related to a product: the entity index's nearest neighbours, "
        "re-scored by the graph (shared neighbours, paths) and, for --relation, by the newest "
        "link-prediction run trained for it. Every answer lists its evidence."
    )
    p.epilog = (
        "examples:\n"
        "  kgf related ws https://example.org/kgf/product/lumo-racing-car-lm-4821 -k 5\n"
        "  kgf related ws --name 'lumo racing car' --relation isAccessoryOrSparePartFor --json\n"
        "  kgf related ws --name 'gold ring' --format csv > related.csv\n"
        "  kgf related ws --table queries.csv -k 5 -o related.csv   # one row per query and answer\n"
        "--table reads a CSV (or .tsv) with an `iri` or a `name` column, one query per row; rows\n"
        "that cannot be answered get their reason in the `error` column."
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("iri", nargs="?", help="the product's IRI (or use --name, --table)")
    p.add_argument(
        "--name",
        help="find the product by name: with align's text linker when the workspace has text "
        "features (`kgf encode`), else by a lexical match over names",
    )  # fmt: skip
    p.add_argument(
        "--table", type=Path,
        help="CSV/TSV of queries with an `iri` or `name` column: one row per query and answer",
    )  # fmt: skip
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
    add_format_argument(p)
    p.add_argument("-o", "--output", type=Path, help="write to a .csv/.tsv/.json/.jsonl file")


@command("related", "related products for an IRI, a name or a table of them, with explanations",
         _related_args)  # fmt: skip
def related_cmd(args) -> int:
    if sum(x is not None for x in (args.iri, args.name, args.table)) != 1:
        raise CliError("give one of: an IRI, --name NAME, --table QUERIES.csv")
    session = Session(args.workspace)
    options = dict(k=args.k, relation=args.relation, node_type=args.node_type, run=args.model,
                   use_model=not args.no_model)  # fmt: skip
    if args.table is not None:
        return _related_table(session, args, options)
    iri = args.iri
    if args.name is not None:
        match = session.resolve_name(args.name)
        how = (
            f"text linker, score {match.score:.2f}"
            if match.method == "linker"
            else f"name {match.text!r}, lexical score {match.score:.2f}"
        )
        machine = args.output is not None or chosen_format(args) != "table"
        print(f"{args.name!r} -> {match.iri} ({how})", file=sys.stderr if machine else sys.stdout)
        iri = match.iri
    emit_for_args(related_output(session.related(iri, **options)), args, what="related entities")
    return 0


def read_queries(path: Path) -> list[tuple[int, str, str]]:
    """``(line, column, value)`` per query row of a CSV/TSV with an ``iri`` or ``name``
    column (``iri`` wins when a row has both); blank rows are skipped."""
    import csv

    if not path.is_file():
        raise CliError(f"{path}: no such query table")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    queries = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "iri" not in columns and "name" not in columns:
            raise CliError(f"{path}: no `iri` or `name` column (columns: "
                           f"{', '.join(reader.fieldnames or []) or 'none'})")  # fmt: skip
        reader.fieldnames = columns
        for row in reader:
            for column in ("iri", "name"):
                value = (row.get(column) or "").strip()
                if value:
                    queries.append((reader.line_num, column, value))
                    break
    return queries


def _related_table(session: Session, args, options: dict) -> int:
    """``kgf related WS --table QUERIES``: one row per query and answer."""
    from kg.index import EntityIndexError

    _ = session.index  # a missing or stale index stops here, not on every row
    queries = read_queries(args.table)
    records, failed = [], 0
    for line, column, value in queries:
        query = {"line": line, "query": value, "query_iri": None}
        try:
            iri = value if column == "iri" else session.resolve_name(value).iri
            query["query_iri"] = iri
            found = related_rows(session.related(iri, **options), query)
        except (SessionError, KeyError, EntityIndexError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            records.append({**query, "error": str(message)})
            failed += 1
            continue
        records.extend(found or [{**query, "error": "no related entities"}])
    columns = ["line", "query", "query_iri", *RELATED_COLUMNS, "error"]
    emit_for_args(Rows(columns, records, digits=3, empty=f"{args.table}: no queries"), args)
    if failed:
        print(f"{failed} of {len(queries)} queries failed: see the error column",
              file=sys.stderr)  # fmt: skip
    return 0

"""``kgf link-train``, ``kgf link``, ``kgf index``, ``kgf related``: entity linking and retrieval."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..display import quiet_transformers, related_records, related_table
from ..session import Session
from .registry import CliError, command


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
    if args.mentions is not None:
        from align import train_linker

        report = train_linker(
            args.workspace, args.mentions, args.pairs, args.valid, id_col=args.id_col,
            progress=True,
        )
        print(f"linker saved to {report.path}")
        for key, value in report.metrics.items():
            print(f"  {key:28} {value:.4f}" if isinstance(value, float) else f"  {key:28} {value}")
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

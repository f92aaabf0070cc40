"""Grocery photo -> product linking: the image half of ``align`` against its baselines.

The Grocery catalogue (``classes.csv``: 81 products with an iconic image and a description,
under 43 coarse classes) is built into a workspace with ``examples/grocery.toml`` (the
mapping is recorded, so the class ids of the photo lists resolve to product IRIs) and
encoded with the defaults (minilm text, EfficientNet-Lite0 images; cached in the
workspace). The store photos of ``train/`` (``train.txt``: path, fine id, coarse id) are
the labelled image mentions; accuracy is measured on the ``val/`` photos, which are never
used for training or for any choice: the epoch and the NIL threshold are selected on a
hold-out taken from ``train/`` (:func:`align.image_train.cluster_holdout`).

Reported, in one run, fine accuracy (photo -> product: the top-ranked entity, NIL flags
counted apart) and coarse accuracy (the predicted product's ``schema:category`` in the
graph):

  (a) nearest iconic image: ``Linker.link_images(untrained=True)``, no training;
  (b) linear probe on frozen EfficientNet-Lite0 features (``benchmarks/grocery_probe.py``);
  (c) the trained image linker: ``align.train_image_linker(ws, train.txt)`` (contrastive
      photo <-> entity representation, hard negatives through ``schema:category``,
      last EfficientNet stages fine-tuned on cached trunk maps; epoch and NIL threshold
      chosen on the hold-out, then refit on all train photos), then ``Linker.link_images``
      on the val photos (two views x five windows each).

Plus training seconds (trunk pass + training; the trunk maps are cached in the workspace,
so a re-run skips the trunk unless ``--fresh``) and linking throughput (photos/s, files to
links: decoding, two views through the whole network, scoring).

    python benchmarks/grocery_link.py                        # ../shared/data/images/grocery
    python benchmarks/grocery_link.py /path/to/GroceryStoreDataset/dataset --epochs 8
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from grocery_probe import linear_probe, read_split  # noqa: E402

import kg  # noqa: E402
from align import Linker, train_image_linker  # noqa: E402
from align.images import IMAGE_LINKER_DIR  # noqa: E402
from fusion.features import FeatureSpec, build_features, encode_images  # noqa: E402
from kg.tabular import Mapping, table_to_rdf  # noqa: E402
from kg.workspace import atomic_directory, write_graph  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "images" / "grocery"
MAPPING = ROOT / "examples" / "grocery.toml"
ANCHOR = (86.04, 91.99)


def build_workspace(folder: Path, workspace: Path, device: str) -> None:
    """``kgf build classes.csv --mapping examples/grocery.toml -o WS`` + ``kgf encode WS``."""
    if not (workspace / "manifest.json").is_file():
        with atomic_directory(workspace, overwrite=True) as tmp:
            table_to_rdf(folder / "classes.csv", Mapping.from_toml(MAPPING), tmp / "catalogue.ttl")
            graph = kg.load_rdf(tmp / "catalogue.ttl")
            graph.sources[0].update(
                path=str(workspace.resolve() / "catalogue.ttl"),
                table=str((folder / "classes.csv").resolve()),
                mapping=str(MAPPING.resolve()),
            )
            write_graph(graph, tmp, sparql_store=False)
    build_features(kg.load_graph(workspace), workspace, FeatureSpec(device=device))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT,
                        help="Grocery layout: classes.csv, train.txt, val.txt")  # fmt: skip
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/kgf-grocery-link"),
                        help="workspace (kept: its caches make re-runs fast)")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fresh", action="store_true", help="drop the cached trunk maps first")
    args = parser.parse_args()
    for name in ("classes.csv", "train.txt", "val.txt"):
        if not (args.folder / name).is_file():
            parser.error(f"{args.folder} has no {name}: not the Grocery layout")

    started = time.perf_counter()
    ws = args.workspace
    build_workspace(args.folder, ws, args.device)
    if args.fresh:
        for cache in (ws / "features" / "cache").glob("*trunk*"):
            cache.unlink()
    shutil.rmtree(ws / IMAGE_LINKER_DIR, ignore_errors=True)
    graph = kg.load_graph(ws)
    base = Mapping.from_toml(MAPPING).base
    products = graph.node_iris("Product")
    category = {iri: graph.neighbors(iri, relation="category")[0].iri for iri in products}
    coarse_id = {iri: int(cat.rsplit("/", 1)[1]) for iri, cat in category.items()}
    train_paths, train_fine, _ = read_split(args.folder, "train")
    val_paths, val_fine, val_coarse = read_split(args.folder, "val")
    val_iris = [base + str(f) for f in val_fine.tolist()]
    print(
        f"Grocery: catalogue {len(products)} products / {len(set(category.values()))} coarse "
        f"classes; {len(train_paths)} train photos (labelled mentions); {len(val_paths)} val "
        f"photos; torch threads {torch.get_num_threads()}"
    )
    rows = []

    def score(name: str, predicted: list[str | None], extra: str = "") -> None:
        fine = sum(p == t for p, t in zip(predicted, val_iris, strict=True)) / len(val_iris)
        coarse = sum(
            p is not None and coarse_id[p] == c
            for p, c in zip(predicted, val_coarse.tolist(), strict=True)
        ) / len(val_iris)
        rows.append((name, fine, coarse, extra))
        print(f"{name:44} fine {fine:7.2%}   coarse {coarse:7.2%}   {extra}", flush=True)

    # (a) nearest iconic image
    linker = Linker(ws)
    links = linker.link_images(val_paths, untrained=True)
    score("(a) nearest iconic image (no training)", [ln.alternatives[0][0] for ln in links])

    # (b) linear probe on frozen features (as benchmarks/grocery_probe.py)
    encoder = linker.image_linker(untrained=True).tower.encoder
    cache = ws / "features" / "cache"
    t0 = time.perf_counter()
    train_x, _ = encode_images(encoder, train_paths, cache)
    val_x, _ = encode_images(encoder, val_paths, cache)
    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    z_train, z_val = (train_x - mean) / std, (val_x - mean) / std
    hold = torch.arange(len(train_paths)) % 10 == 0
    best = max(
        (1e-4, 1e-3, 1e-2),
        key=lambda wd: float(
            (linear_probe(z_train[~hold], train_fine[~hold], 81, wd)(z_train[hold]).argmax(1)
             == train_fine[hold]).float().mean()
        ),
    )  # fmt: skip
    probe = linear_probe(z_train, train_fine, 81, best)
    with torch.no_grad():
        predicted = probe(z_val).argmax(1).tolist()
    score(
        f"(b) linear probe, frozen features (wd={best:g})", [base + str(p) for p in predicted],
        f"{time.perf_counter() - t0:.0f} s",
    )  # fmt: skip
    del linker

    # (c) the trained image linker
    t0 = time.perf_counter()
    report = train_image_linker(ws, args.folder / "train.txt", epochs=args.epochs,
                                device=args.device, progress=True)  # fmt: skip
    train_seconds = time.perf_counter() - t0
    m = report.metrics
    refit = f", then refit on all {m['refit_photos']} photos" if "refit_photos" in m else ""
    print(
        f"trained in {train_seconds:.0f} s (trunk pass {m['trunk_seconds']:.0f} s): "
        f"{m['train_photos']} photos trained, {m['holdout_photos']} held out (hold-out accuracy "
        f"{m.get('holdout_accuracy', float('nan')):.2%}; per epoch "
        + ", ".join(f"{h.get('holdout_accuracy', 0):.3f}" for h in m["history"])
        + f"){refit}; NIL threshold {m['threshold']:.3f}"
    )
    linker = Linker(ws)
    linker.image_linker()  # load the model outside the timed part
    t0 = time.perf_counter()
    links = linker.link_images(val_paths, progress=True)
    link_seconds = time.perf_counter() - t0
    nil = sum(ln.nil for ln in links)
    score(
        "(c) align image linker (trained)", [ln.alternatives[0][0] for ln in links],
        f"train {train_seconds:.0f} s, {len(val_paths) / link_seconds:.1f} photos/s, "
        f"{nil} NIL",
    )  # fmt: skip
    print(f"\nanchor (fine-tuned CNNs, 2021): fine {ANCHOR[0]:.2f} %, coarse {ANCHOR[1]:.2f} %")
    ours = rows[-1]
    print(
        f"ours vs anchor: fine {ours[1] * 100 - ANCHOR[0]:+.2f} points, coarse "
        f"{ours[2] * 100 - ANCHOR[1]:+.2f}; vs linear probe: fine "
        f"{(ours[1] - rows[1][1]) * 100:+.2f}, coarse {(ours[2] - rows[1][2]) * 100:+.2f}"
    )
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

"""Grocery photo -> product baseline in EfficientNet-Lite0 space (the bar for `align`).

Builds the Grocery catalogue (81 products with iconic image and description under 43
coarse classes) with ``examples/grocery.toml``, embeds every image with the workspace's
image encoder (cached in the workspace), and reports accuracy on the ``val/`` store photos:

  (a) nearest iconic image: a photo is linked to the product whose catalogue image is
      closest (cosine) -- no training at all;
  (b) linear probe: a softmax classifier trained on the ``train/`` photos' features
      (full-batch Adam, weight decay chosen on a held-out tenth of train).

Coarse accuracy is derived through the graph: predicted product -> its ``schema:category``.

    python benchmarks/grocery_probe.py                       # ../shared/data/images/grocery
    python benchmarks/grocery_probe.py /path/to/GroceryStoreDataset/dataset
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "images" / "grocery"


def read_split(folder: Path, name: str) -> tuple[list[Path], torch.Tensor, torch.Tensor]:
    """``path, fine id, coarse id`` lines -> paths and label tensors."""
    paths, fine, coarse = [], [], []
    for line in (folder / f"{name}.txt").read_text().splitlines():
        if line.strip():
            path, f, c = (part.strip() for part in line.split(","))
            paths.append(folder / path.lstrip("/"))
            fine.append(int(f))
            coarse.append(int(c))
    return paths, torch.tensor(fine), torch.tensor(coarse)


def linear_probe(
    x: torch.Tensor, y: torch.Tensor, classes: int, weight_decay: float, epochs: int = 300
) -> torch.nn.Linear:
    torch.manual_seed(0)
    probe = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=weight_decay)
    for _ in range(epochs):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(probe(x), y).backward()
        optimizer.step()
    return probe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=DEFAULT,
        help="Grocery layout: classes.csv, train.txt, val.txt",
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=Path("/tmp/kgf-grocery"),
        help="workspace (kept: its cache makes re-runs fast)",
    )
    parser.add_argument("--image-encoder", default="efficientnet-lite0")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import kg
    from fusion.encoders import get_encoder
    from fusion.features import FeatureSpec, NodeFeatures, build_features, encode_images
    from kg.tabular import table_to_rdf
    from kg.workspace import atomic_directory, write_graph

    started = time.perf_counter()
    ws = args.workspace
    if not (ws / "manifest.json").is_file():
        with atomic_directory(ws) as tmp:
            table_to_rdf(
                args.folder / "classes.csv",
                ROOT / "examples" / "grocery.toml",
                tmp / "catalogue.ttl",
            )
            write_graph(kg.load_rdf(tmp / "catalogue.ttl"), tmp, sparql_store=False)
    graph = kg.load_graph(ws)
    build_features(
        graph,
        ws,
        FeatureSpec(text_encoder=None, image_encoder=args.image_encoder, device=args.device),
    )
    image_x, image_mask = NodeFeatures.load(ws).features["Product"]["image"]
    assert bool(image_mask.all()), "every Grocery product has an iconic image"

    # product index -> fine class id (IRIs end with the Class ID) and coarse id via the graph
    product_iris = graph.node_iris("Product")
    fine_of_product = torch.tensor([int(iri.rsplit("/", 1)[1]) for iri in product_iris])
    coarse_of_fine = {}
    for iri, fine in zip(product_iris, fine_of_product.tolist(), strict=True):
        (category,) = [n.iri for n in graph.neighbors(iri, relation="category")]
        coarse_of_fine[fine] = int(category.rsplit("/", 1)[1])

    encoder = get_encoder(args.image_encoder, device=args.device)
    cache = ws / "features" / "cache"
    train_paths, train_fine, _ = read_split(args.folder, "train")
    val_paths, val_fine, val_coarse = read_split(args.folder, "val")
    train_x, train_ok = encode_images(encoder, train_paths, cache)
    val_x, val_ok = encode_images(encoder, val_paths, cache)
    assert bool(train_ok.all() and val_ok.all())

    def report(name: str, predicted_fine: torch.Tensor) -> None:
        fine_acc = (predicted_fine == val_fine).float().mean().item()
        coarse = torch.tensor([coarse_of_fine[f] for f in predicted_fine.tolist()])
        coarse_acc = (coarse == val_coarse).float().mean().item()
        print(f"{name:32} fine {fine_acc:6.2%}   coarse (through the graph) {coarse_acc:6.2%}")

    print(
        f"Grocery val: {len(val_paths)} photos, train: {len(train_paths)} photos, catalogue: {len(product_iris)} products"
    )
    norm = torch.nn.functional.normalize
    nearest = (norm(val_x, dim=1) @ norm(image_x, dim=1).T).argmax(dim=1)
    report("(a) nearest iconic image", fine_of_product[nearest])

    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    z_train, z_val = (train_x - mean) / std, (val_x - mean) / std
    hold = torch.arange(len(train_paths)) % 10 == 0
    best = max(
        (1e-4, 1e-3, 1e-2),
        key=lambda wd: (
            (
                linear_probe(z_train[~hold], train_fine[~hold], 81, wd)(z_train[hold]).argmax(1)
                == train_fine[hold]
            )
            .float()
            .mean()
            .item()
        ),
    )
    probe = linear_probe(z_train, train_fine, 81, best)
    with torch.no_grad():
        report(f"(b) linear probe (wd={best:g})", probe(z_val).argmax(dim=1))
    print(f"seconds: {time.perf_counter() - started:.0f} (image features cached in {cache})")


if __name__ == "__main__":
    main()

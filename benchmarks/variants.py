"""Fusion x GNN grid: link-prediction MRR on the sample catalogue's accessory relation.

Builds the sample catalogue, encodes it (minilm text, EfficientNet-Lite0 images, prices),
then trains every registered fusion module with every registered GNN on
``isAccessoryOrSparePartFor`` (same seeded edge split for all) and prints the filtered test
MRR and Hits@10 (PyKEEN-style realistic ranks), mean over seeds.

    python benchmarks/variants.py --products 200 --seeds 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--fusions", nargs="*", help="default: every registered fusion module")
    parser.add_argument("--gnns", nargs="*", help="default: every registered GNN")
    args = parser.parse_args()

    import kg
    from fusion.features import FeatureSpec, build_features
    from fusion.fuse import FUSIONS
    from fusion.gnn import GNNS
    from fusion.trainer import train
    from kg.samples import write_sample_catalogue

    fusions = args.fusions or FUSIONS.names()
    gnns = args.gnns or GNNS.names()
    with tempfile.TemporaryDirectory() as tmp:
        sample = write_sample_catalogue(Path(tmp) / "cat", n_products=args.products, seed=0)
        graph = kg.load_rdf(sample.path)
        ws = graph.save(Path(tmp) / "ws", sparql_store=False)
        features, _ = build_features(graph, ws, FeatureSpec())
        print(
            f"{args.products} products, relation isAccessoryOrSparePartFor, {args.seeds} seeds, up to {args.epochs} epochs"
        )
        print(f"{'fusion':10} {'gnn':6} {'test MRR':>9} {'Hits@10':>8} {'s/run':>6}")
        for fusion in fusions:
            for gnn in gnns:
                mrr, hits, seconds = [], [], []
                for seed in range(args.seeds):
                    started = time.perf_counter()
                    result = train(
                        ws, task="link", relations=["isAccessoryOrSparePartFor"], gnn=gnn, fusion=fusion,
                        seed=seed, progress=False, run_name=f"{fusion}-{gnn}-{seed}", overwrite=True,
                        overrides={"trainer.epochs": args.epochs}, graph=graph, features=features,
                    )  # fmt: skip
                    seconds.append(time.perf_counter() - started)
                    mrr.append(result.metrics["test/mrr"])
                    hits.append(result.metrics["test/hits@10"])
                print(
                    f"{fusion:10} {gnn:6} {np.mean(mrr):9.3f} {np.mean(hits):8.3f} {np.mean(seconds):6.1f}"
                )


if __name__ == "__main__":
    main()

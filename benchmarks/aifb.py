"""AIFB entity classification: R-GCN and fused variants, standard split, several seeds.

The task of Schlichtkrull et al. (2018), "Modeling Relational Data with Graph Convolutional
Networks", Table 2: predict the research group (``label_affiliation``, 4 classes) of 176
AIFB members (140 train / 36 test, the ``trainingSet.tsv`` / ``testSet.tsv`` split), from
``aifb_stripped.nt.gz`` (the affiliation / employs triples removed). The paper reports
95.83 % test accuracy for R-GCN.

Variants (all with ``gnn="rgcn"``, 2 layers, hidden 16, Adam lr 0.01, weight decay 5e-4,
50 epochs, as the PyG ``rgcn.py`` example):

- ``rgcn``: featureless nodes (learned embeddings), the graph as :mod:`kg` builds it
  (literals are columns, not nodes); basis decomposition with 30 bases;
- ``rgcn-rdf``: the same, on the graph as the R-GCN paper sees it: every distinct literal a
  node and every ``rdf:type`` an edge (``[data] literal_nodes``, ``type_edges``);
- ``fused``: ``rgcn`` plus the text literals (names, titles, labels) encoded with MiniLM
  (``FeatureSpec(text_encoder="minilm", image_encoder=None)``), early attention fusion;
  skipped with a message when the encoder cannot be loaded.

Protocols: ``paper`` (train on all 140 training rows for 50 epochs, report the test
accuracy of the last epoch) or ``valid`` (hold out 20 % of the training rows, stratified,
train up to 100 epochs, keep the epoch with the best validation accuracy, patience 20).

Run::

    python benchmarks/aifb.py                      # 10 seeds, all variants, paper protocol
    python benchmarks/aifb.py --seeds 3 --variants rgcn-rdf --protocol valid

Prints one row per variant: mean +- std test accuracy over the seeds, CPU seconds (process
time, all threads) and wall seconds per run (training + evaluation, after graph loading).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import kg  # noqa: E402
from fusion.trainer import train  # noqa: E402

DATA = Path(os.environ.get("KGF_SHARED_DATA", ROOT.parent / "shared" / "data")) / "rdf" / "aifb"
PAPER = 95.83
COMMON = {"hidden": 16, "out_dim": 16, "layers": 2, "lr": 0.01, "weight_decay": 5e-4}
VARIANTS = {
    "rgcn": {"gnn_kwargs": {"num_bases": 30}, "data.features": False},
    "rgcn-rdf": {
        "gnn_kwargs": {"num_bases": 30},
        "data.features": False,
        "literal_nodes": True,
        "type_edges": True,
    },
    "fused": {"gnn_kwargs": {"num_bases": 30}, "fusion": "attention", "mode": "early"},
}
PROTOCOLS = {
    "paper": {"epochs": 50, "valid_fraction": 0.0, "patience": 0},
    "valid": {"epochs": 100, "valid_fraction": 0.2, "patience": 20},
}


def encode_text(graph, workspace: Path):
    """MiniLM features of the text literals, or None (with the reason) if unavailable."""
    try:
        from fusion.features import FeatureSpec, build_features

        features, report = build_features(
            graph, workspace, FeatureSpec(text_encoder="minilm", image_encoder=None, numeric=False)
        )
    except Exception as err:  # noqa: BLE001 - any failure to load the encoder skips (b)
        return None, f"{type(err).__name__}: {err}"
    return (
        features,
        f"encoded {report.encoded} texts ({report.cached} cached) in {report.seconds:.1f} s",
    )


def run(variant: str, protocol: str, seeds: int, graph, workspace: Path, features) -> dict:
    overrides = {
        **COMMON,
        **VARIANTS[variant],
        **PROTOCOLS[protocol],
        "checkpoint_every": 1000,
    }
    accs, cpu, wall = [], [], []
    for seed in range(seeds):
        c0, w0 = time.process_time(), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = train(
                workspace,
                labels=DATA / "trainingSet.tsv",
                test=DATA / "testSet.tsv",
                label_cols=["label_affiliation"],
                gnn="rgcn",
                seed=seed,
                overrides=overrides,
                run_name=f"{variant}-{protocol}-s{seed}",
                overwrite=True,
                progress=False,
                graph=graph,
                features=features,
            )
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        accs.append(100 * result.metrics["test/acc"])
    return {
        "variant": variant,
        "protocol": protocol,
        "accs": accs,
        "mean": statistics.mean(accs),
        "std": statistics.pstdev(accs),
        "cpu": statistics.mean(cpu),
        "wall": statistics.mean(wall),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--variants", default="rgcn,rgcn-rdf,fused")
    parser.add_argument("--protocol", default="paper", choices=sorted(PROTOCOLS))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if not (DATA / "aifb_stripped.nt.gz").is_file():
        print(f"AIFB not found under {DATA}; nothing to do")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    graph = kg.load_rdf(DATA / "aifb_stripped.nt.gz")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgf-aifb-") as tmp:
        workspace = graph.save(Path(tmp) / "aifb", sparql_store=False)
        for variant in variants:
            features = None
            if variant == "fused":
                features, note = encode_text(graph, workspace)
                print(f"fused: {note}")
                if features is None:
                    print("fused: skipped (the text encoder is not available)")
                    continue
            row = run(variant, args.protocol, args.seeds, graph, workspace, features)
            rows.append(row)
            print(
                f"{variant:9s} {row['mean']:6.2f} +- {row['std']:5.2f} %  "
                f"({', '.join(f'{a:.1f}' for a in row['accs'])})",
                flush=True,
            )
    print()
    print(
        f"AIFB, {args.seeds} seeds, protocol {args.protocol}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print("| variant | test accuracy (%) | CPU s / run | wall s / run |")
    print("|---|---|---|---|")
    print(f"| R-GCN paper (Schlichtkrull et al. 2018) | {PAPER:.2f} | | |")
    for row in rows:
        print(
            f"| {row['variant']} | {row['mean']:.2f} +- {row['std']:.2f} | "
            f"{row['cpu']:.1f} | {row['wall']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

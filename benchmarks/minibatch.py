"""AIFB entity classification: neighbour-sampled mini-batches against full batch.

The R-GCN setting of ``examples/aifb_rgcn.toml`` (Schlichtkrull et al., 2018: 2 R-GCN
layers, 16 hidden units, one-hot input, Adam lr 0.01, 50 epochs, the 140 / 36 split) trained
full batch and with ``trainer.batch_size`` / ``trainer.fanout`` (:mod:`fusion.minibatch`),
several seeds each, in the same process run. Prints per setting the test accuracy (mean +-
std over the seeds), training seeds per second (labelled training nodes x epochs / training
seconds; evaluation and export excluded), CPU seconds (process time) and wall seconds per
run, and which sampler ran (PyG's with pyg-lib / torch-sparse, else the torch-only one).

Run::

    python benchmarks/minibatch.py                           # 10 seeds
    python benchmarks/minibatch.py --seeds 3 --settings full mb32:15,10
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "rdf" / "aifb"
CONFIG = ROOT / "examples" / "aifb_rgcn.toml"
#: name -> (batch size, fanout); batch size 0 = full batch
SETTINGS = {
    "full": (0, []),
    "mb32:15,10": (32, [15, 10]),
    "mb32:5,5": (32, [5, 5]),
    "mb64:all": (64, [-1, -1]),
}


def run(setting: str, seeds: int, graph, workspace: Path) -> dict:
    from fusion.trainer import train

    batch, fanout = SETTINGS[setting]
    accs, cpu, wall, rates = [], [], [], []
    for seed in range(seeds):
        overrides = {"trainer.batch_size": batch, "trainer.fanout": fanout,
                     "trainer.progress": False}  # fmt: skip
        c0, w0 = time.process_time(), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = train(
                workspace, task="node", labels=DATA / "trainingSet.tsv",
                test=DATA / "testSet.tsv", entity_col="person",
                label_cols=["label_affiliation"], gnn="rgcn", config_path=CONFIG, seed=seed,
                overrides=overrides, run_name=f"{setting}-s{seed}", overwrite=True, graph=graph,
            )  # fmt: skip
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        accs.append(100 * result.metrics["test/acc"])
        lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
        epochs = [json.loads(x) for x in lines if '"final"' not in x]
        seconds = sum(e["seconds"] for e in epochs)
        rates.append(140 * len(epochs) / seconds)
    return {
        "setting": setting, "acc": statistics.mean(accs),
        "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "seeds_per_s": statistics.mean(rates), "cpu_s": statistics.mean(cpu),
        "wall_s": statistics.mean(wall), "accs": [round(a, 2) for a in accs],
    }  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args(argv)
    import kg
    from fusion.minibatch import pyg_sampling_available

    sampler = "PyG (pyg-lib / torch-sparse)" if pyg_sampling_available() else "torch-only"
    print(f"sampler: {sampler}; {args.seeds} seeds; examples/aifb_rgcn.toml")
    graph = kg.load_rdf(DATA / "aifb_stripped.nt.gz")
    with tempfile.TemporaryDirectory(prefix="kgf-minibatch-") as tmp:
        workspace = graph.save(Path(tmp) / "aifb", sparql_store=False)
        print(f"{'setting':12} {'test acc %':>15} {'seeds/s':>9} {'cpu s':>7} {'wall s':>7}")
        for setting in args.settings:
            row = run(setting, args.seeds, graph, workspace)
            print(
                f"{row['setting']:12} {row['acc']:8.2f} +- {row['std']:4.2f} "
                f"{row['seeds_per_s']:9.0f} {row['cpu_s']:7.1f} {row['wall_s']:7.1f}  "
                f"{row['accs']}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

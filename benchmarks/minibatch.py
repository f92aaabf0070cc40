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

``--fashion DIR``: the Fashion catalogue instead (``../shared/data/products/fashion``), the
product's season predicted from the graph without its season edges (node task, GraphSAGE,
structure only, 50 epochs, lr 0.01, 20 % of the training rows for early stopping), in DIR:
``mapping.toml`` (``examples/fashion.toml`` without the ``season`` reference), ``ws/`` (built
with it) and ``train.tsv`` / ``test.tsv`` (a 70 / 30 split of the products with a season,
``random.Random(0)``), made by :func:`prepare_fashion`.
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


FASHION = ROOT.parent / "shared" / "data" / "products" / "fashion"
FASHION_SETTINGS = {"full": (0, []), "mb512:10,5": (512, [10, 5]), "mb512:all": (512, [-1, -1])}


def prepare_fashion(folder: Path) -> None:
    """The Fashion workspace without season edges, and season labels (module docstring)."""
    import csv
    import random
    import subprocess
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "examples" / "fashion.toml").read_text(encoding="utf-8")
    blocks = text.split("\n[[reference]]\n")
    mapping = "\n[[reference]]\n".join(b for b in blocks if 'column = "season"' not in b)
    mapping = mapping.replace('root = "table:images"', f'root = "{FASHION / "images"}"')
    (folder / "mapping.toml").write_text(mapping, encoding="utf-8")
    with open(FASHION / "styles.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["season"]]
    random.Random(0).shuffle(rows)
    cut = int(0.7 * len(rows))
    for name, part in (("train", rows[:cut]), ("test", rows[cut:])):
        lines = ["entity\tseason"] + [
            f"https://example.org/fashion/product/{r['id']}\t{r['season']}" for r in part
        ]
        (folder / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not (folder / "ws").is_dir():
        subprocess.run([sys.executable, "-m", "kgfusion.cli", "build", str(FASHION / "styles.csv"),
                        "--mapping", str(folder / "mapping.toml"), "-o", str(folder / "ws"),
                        "--no-sparql"], check=True, cwd=ROOT)  # fmt: skip


def run_fashion(setting: str, seeds: int, folder: Path) -> dict:
    from fusion.trainer import train

    batch, fanout = FASHION_SETTINGS[setting]
    rows = (folder / "train.tsv").read_text().count("\n") - 1
    accs, cpu, wall, rates = [], [], [], []
    for seed in range(seeds):
        overrides = {"trainer.batch_size": batch, "trainer.fanout": fanout, "epochs": 50,
                     "lr": 0.01, "trainer.progress": False}  # fmt: skip
        c0, w0 = time.process_time(), time.perf_counter()
        result = train(folder / "ws", task="node", labels=folder / "train.tsv",
                       test=folder / "test.tsv", gnn="sage", seed=seed, overrides=overrides,
                       run_name=f"{setting}-s{seed}", overwrite=True)  # fmt: skip
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        accs.append(100 * result.metrics["test/acc"])
        lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
        epochs = [json.loads(x) for x in lines if '"final"' not in x]
        rates.append(0.8 * rows * len(epochs) / sum(e["seconds"] for e in epochs))
    return _row(setting, accs, cpu, wall, rates)


def _row(setting, accs, cpu, wall, rates) -> dict:
    return {
        "setting": setting, "acc": statistics.mean(accs),
        "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "seeds_per_s": statistics.mean(rates), "cpu_s": statistics.mean(cpu),
        "wall_s": statistics.mean(wall), "accs": [round(a, 2) for a in accs],
    }  # fmt: skip


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
    return _row(setting, accs, cpu, wall, rates)


def _print(row: dict) -> None:
    print(
        f"{row['setting']:12} {row['acc']:8.2f} +- {row['std']:4.2f} "
        f"{row['seeds_per_s']:9.0f} {row['cpu_s']:7.1f} {row['wall_s']:7.1f}  {row['accs']}",
        flush=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--settings", nargs="+",
                        choices=sorted({*SETTINGS, *FASHION_SETTINGS}))  # fmt: skip
    parser.add_argument("--fashion", type=Path, metavar="DIR", help="the Fashion task, in DIR")
    args = parser.parse_args(argv)
    import kg
    from fusion.minibatch import pyg_sampling_available

    warnings.simplefilter("ignore")
    sampler = "PyG (pyg-lib / torch-sparse)" if pyg_sampling_available() else "torch-only"
    header = f"{'setting':12} {'test acc %':>15} {'seeds/s':>9} {'cpu s':>7} {'wall s':>7}"
    if args.fashion:
        print(f"sampler: {sampler}; {args.seeds} seeds; Fashion season, sage")
        prepare_fashion(args.fashion)
        print(header)
        for setting in args.settings or list(FASHION_SETTINGS):
            _print(run_fashion(setting, args.seeds, args.fashion))
        return 0
    print(f"sampler: {sampler}; {args.seeds} seeds; examples/aifb_rgcn.toml")
    graph = kg.load_rdf(DATA / "aifb_stripped.nt.gz")
    with tempfile.TemporaryDirectory(prefix="kgf-minibatch-") as tmp:
        workspace = graph.save(Path(tmp) / "aifb", sparql_store=False)
        print(header)
        for setting in args.settings or list(SETTINGS):
            _print(run(setting, args.seeds, graph, workspace))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
  skipped with a message when the encoder cannot be loaded;
- ``reference`` (the baseline, not the project's model): R-GCN exactly as the paper and
  the PyG example build it -- one-hot (featureless) input, so that the first layer's
  messages are rows of per-relation weight matrices ``W_r^(0)`` (``N x 16``)
  (30 bases), one relation per predicate (not per typed edge type), on the ``rgcn-rdf``
  graph; a small pure-torch implementation (:func:`reference_run`), same optimiser,
  epochs and protocol.

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


class ReferenceRGCN(torch.nn.Module):
    """Two R-GCN layers over one-hot node inputs with basis decomposition (Schlichtkrull
    et al. 2018, eq. 2-3): ``h1 = relu(sum_r mean_{j in N_i^r} W1_r[j] + W1_0[i] + b1)``,
    ``out = sum_r mean_{j in N_i^r} h1_j W2_r + h1_i W2_0 + b2``; ``W_r = sum_b a_rb V_b``.
    ``src, dst, rel, norm``: [E] edges with ``norm = 1 / |N_i^r|``."""

    def __init__(self, n: int, relations: int, classes: int, hidden=16, bases=30):
        super().__init__()

        def glorot(*shape):
            w = torch.empty(*shape)
            torch.nn.init.xavier_uniform_(w.view(-1, shape[-1]) if len(shape) > 2 else w)
            return torch.nn.Parameter(w)

        self.v1, self.a1 = glorot(bases, n, hidden), glorot(relations, bases)
        self.v2, self.a2 = glorot(bases, hidden, classes), glorot(relations, bases)
        self.root1, self.root2 = glorot(n, hidden), glorot(hidden, classes)
        self.b1 = torch.nn.Parameter(torch.zeros(hidden))
        self.b2 = torch.nn.Parameter(torch.zeros(classes))

    def forward(self, src, dst, rel, norm):
        n, hidden = self.root1.shape
        msg = torch.einsum("eb,beh->eh", self.a1[rel], self.v1[:, src]) * norm[:, None]
        h1 = torch.relu(torch.zeros(n, hidden).index_add(0, dst, msg) + self.root1 + self.b1)
        w2 = torch.einsum("rb,bhc->rhc", self.a2, self.v2)
        msg = torch.einsum("eh,ehc->ec", h1[src], w2[rel]) * norm[:, None]
        out = h1 @ self.root2 + self.b2
        return out.index_add(0, dst, msg)


def reference_run(protocol: str, seeds: int, graph) -> dict:
    """The baseline: :class:`ReferenceRGCN` on the R-GCN view of the graph."""
    import csv

    from fusion.labels import stratified_split
    from fusion.trainer import DataConfig, graph_tensors

    edges, num_nodes = graph_tensors(graph, DataConfig(literal_nodes=True, type_edges=True))
    offset, n = {}, 0
    for t, count in num_nodes.items():
        offset[t], n = n, n + count
    names = sorted({e[1] for e in edges})
    src = torch.cat([ei[0] + offset[e[0]] for e, ei in edges.items()])
    dst = torch.cat([ei[1] + offset[e[2]] for e, ei in edges.items()])
    rel = torch.cat([torch.full((ei.shape[1],), names.index(e[1])) for e, ei in edges.items()])
    key = rel * n + dst
    norm = 1.0 / torch.bincount(key)[key].float()

    def labelled(name, classes=None):
        text = (DATA / name).read_text(encoding="utf-8")
        rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
        classes = classes or sorted({r["label_affiliation"] for r in rows})
        ids = [graph.node(r["person"]) for r in rows]
        return (
            torch.tensor([offset[t] + i for t, i in ids]),
            torch.tensor([classes.index(r["label_affiliation"]) for r in rows]),
            classes,
        )

    train_x, train_y, classes = labelled("trainingSet.tsv")
    test_x, test_y, _ = labelled("testSet.tsv", classes)
    settings = PROTOCOLS[protocol]
    accs, cpu, wall = [], [], []
    for seed in range(seeds):
        c0, w0 = time.process_time(), time.perf_counter()
        torch.manual_seed(seed)
        fit_x, fit_y, val_x, val_y = train_x, train_y, None, None
        if settings["valid_fraction"]:
            keep, held = stratified_split(train_y, settings["valid_fraction"], 0)
            fit_x, fit_y, val_x, val_y = train_x[keep], train_y[keep], train_x[held], train_y[held]
        model = ReferenceRGCN(n, len(names), len(classes))
        opt = torch.optim.Adam(
            model.parameters(), lr=COMMON["lr"], weight_decay=COMMON["weight_decay"]
        )
        best, best_state, bad = -1.0, None, 0
        for _ in range(settings["epochs"]):
            model.train()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(src, dst, rel, norm)[fit_x], fit_y)
            loss.backward()
            opt.step()
            if val_x is not None:
                with torch.no_grad():
                    pred = model(src, dst, rel, norm)[val_x].argmax(-1)
                acc = (pred == val_y).float().mean().item()
                if acc > best:
                    best, bad = acc, 0
                    best_state = {k: v.clone() for k, v in model.state_dict().items()}
                else:
                    bad += 1
                    if bad >= settings["patience"]:
                        break
        if best_state is not None:
            model.load_state_dict(best_state)
        with torch.no_grad():
            pred = model(src, dst, rel, norm)[test_x].argmax(-1)
        accs.append(100 * (pred == test_y).float().mean().item())
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return _summary("reference", protocol, accs, cpu, wall)


def _summary(variant, protocol, accs, cpu, wall) -> dict:
    return {
        "variant": variant,
        "protocol": protocol,
        "accs": accs,
        "mean": statistics.mean(accs),
        "std": statistics.pstdev(accs),
        "cpu": statistics.mean(cpu),
        "wall": statistics.mean(wall),
    }


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
    return _summary(variant, protocol, accs, cpu, wall)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--variants", default="rgcn,rgcn-rdf,fused,reference")
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
        if v not in VARIANTS and v != "reference":
            parser.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}, reference")
    graph = kg.load_rdf(DATA / "aifb_stripped.nt.gz")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgf-aifb-") as tmp:
        workspace = graph.save(Path(tmp) / "aifb", sparql_store=False)
        for variant in variants:
            if variant == "reference":
                rows.append(reference_run(args.protocol, args.seeds, graph))
                row = rows[-1]
                print(f"reference {row['mean']:6.2f} +- {row['std']:5.2f} %", flush=True)
                continue
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
    reference = next((r["mean"] for r in rows if r["variant"] == "reference"), None)
    print("| variant | test accuracy (%) | / reference | CPU s / run | wall s / run |")
    print("|---|---|---|---|---|")
    print(f"| R-GCN paper (Schlichtkrull et al. 2018) | {PAPER:.2f} | | | |")
    for row in rows:
        ratio = f"{row['mean'] / reference:.3f}" if reference else ""
        print(
            f"| {row['variant']} | {row['mean']:.2f} +- {row['std']:.2f} | {ratio} | "
            f"{row['cpu']:.1f} | {row['wall']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

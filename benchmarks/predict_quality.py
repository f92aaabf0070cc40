"""How far to trust `kgf predict`: its answers on the run's own test split, by probability.

`kgf predict` fills a catalogue's gaps with an attribute-completion run
(:mod:`fusion.predict`). The gaps have no known answer, so this script asks the same code
path about the run's **test edges** (held out from its training, so never seen by the
model): for each relation, every test product is predicted at once (its edges of the
relation out of the pass, as for a gap) and the best value is compared with the
catalogue's. Per relation and probability cut (``--min-probability``): the share of
products the cut keeps (coverage) and the accuracy on them, so a user can pick the cut that
fills gaps at the accuracy they need. The first row (cut 0) is the plain accuracy@1 of the
prediction path, next to the run's own test accuracy (``kgf train``'s figure; they differ
a little: the prediction pass also sees the other held-out edges, which are catalogue
facts, where training and evaluation do not).

    python benchmarks/predict_quality.py WORKSPACE [--run RUN] [--json out.json] [--plot out.png]

Last stdout line::

    summary: RUN accuracy A | at p>=0.9: coverage C accuracy B | at p>=0.99: coverage C2 accuracy B2

(means over the run's relations, %, calibrated probabilities). A node-classification run
(``kgf train WS --labels FILE``) is measured the same way on its test labels. Both the raw softmax and the
calibrated probabilities (the default, :mod:`fusion.predict`) are shown, with their
expected calibration error (ECE, 10 bins) and each relation's temperature.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CUTS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)


def relation_table(predictor, relation_index: int, name: str) -> dict:
    """Coverage and accuracy per cut of the run's test split of one relation (label column;
    ``relation_index`` is the task's index of the target ``name``)."""
    base = name.split("[")[0]  # a relation leaving several node types: "r[source type]"
    found = predictor.predict(predictor.test_nodes(relation_index), [base], k=1)
    found = [p for p in found if p.relation == name]
    rows = {}
    confidence = [p.values[0][1] for p in found]
    correct = [p.values[0][0] in p.known for p in found]
    pairs = list(zip(confidence, correct, strict=True))
    for cut in CUTS:
        kept = [p for p in found if p.values[0][1] >= cut]
        right = sum(p.values[0][0] in p.known for p in kept)
        rows[cut] = {"coverage": len(kept) / max(len(found), 1),
                     "accuracy": right / len(kept) if kept else float("nan"), "n": len(kept)}  # fmt: skip
    return {"relation": name, "products": len(found), "cuts": rows,
            "ece": expected_calibration_error(confidence, correct), "pairs": pairs,
            "temperature": predictor.temperature(relation_index),
            "run_test_accuracy": predictor.test_accuracy(name)}  # fmt: skip


def reliability_plot(figures: dict, path: Path) -> None:
    """One panel per relation: accuracy against confidence in 10 bins, raw and calibrated,
    the diagonal being perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(figures)
    names = [t["relation"] for t in figures[labels[0]]]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False)
    for ax, i in zip(axes[0], range(len(names)), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for label in labels:
            pairs = figures[label][i]["pairs"]
            xs, ys = [], []
            for b in range(10):
                inside = [(c, ok) for c, ok in pairs if b / 10 < c <= (b + 1) / 10]
                if inside:
                    xs.append(sum(c for c, _ in inside) / len(inside))
                    ys.append(sum(ok for _, ok in inside) / len(inside))
            ax.plot(xs, ys, marker="o", ms=3, label=f"{label.split(' (')[0]} "
                    f"(ECE {100 * figures[label][i]['ece']:.1f})")  # fmt: skip
        ax.set_title(names[i], fontsize=9)
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def expected_calibration_error(confidence: list[float], correct: list[bool], bins: int = 10) -> float:
    """ECE of top-1 predictions: the mean |accuracy - confidence| over 10 equal-width
    confidence bins, weighted by their share (Guo et al., 2017)."""
    total, n = 0.0, len(confidence)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [i for i, c in enumerate(confidence) if lo < c <= hi or (b == 0 and c == 0)]
        if inside:
            acc = sum(correct[i] for i in inside) / len(inside)
            conf = sum(confidence[i] for i in inside) / len(inside)
            total += len(inside) / n * abs(acc - conf)
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--run", help="the attribute or node run (default: the newest of them)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--plot", type=Path, help="save a reliability diagram (PNG) here")
    args = parser.parse_args(argv)
    from fusion.predict import open_predictor

    started = time.perf_counter()
    raw = open_predictor(args.workspace, args.run, calibrate=False)
    predictor = open_predictor(args.workspace, raw.run, graph=raw.graph)
    print(f"run {predictor.run}: relations {', '.join(predictor.relations)}", flush=True)
    figures = {}
    for label, which in (("raw softmax (calibrate=False)", raw), ("calibrated (the default)", predictor)):
        tables = [relation_table(which, i, name)
                  for i, name in zip(which.target_indices(), which.targets, strict=True)]
        figures[label] = tables
        print(f"\n{label}:")
        print("relation".ljust(14) + "".join(f"  p>={c:<4} cov / acc".ljust(22) for c in CUTS)
              + "  ECE   T")  # fmt: skip
        for t in tables:
            cells = "".join(f"  {100 * r['coverage']:5.1f} / {100 * r['accuracy']:5.1f}".ljust(22)
                            for r in t["cuts"].values())  # fmt: skip
            run_acc = t["run_test_accuracy"]
            said = f"  (run's test acc {100 * run_acc:.1f}, {t['products']} products)" if run_acc is not None else ""
            print(t["relation"].ljust(14) + cells + f"  {100 * t['ece']:4.1f}  {t['temperature']:.2f}" + said)

    tables = figures["calibrated (the default)"]  # the summary's

    def mean(cut, key):
        return 100 * sum(t["cuts"][cut][key] for t in tables) / len(tables)

    ece = {label: 100 * sum(t["ece"] for t in ts) / len(ts) for label, ts in figures.items()}
    print(f"\nmean ECE: raw {ece['raw softmax (calibrate=False)']:.1f} -> calibrated "
          f"{ece['calibrated (the default)']:.1f} ({time.perf_counter() - started:.0f}s)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"run": predictor.run, "figures": figures}, indent=2))
    if args.plot:
        reliability_plot(figures, args.plot)
        print(f"reliability diagram -> {args.plot}")
    print(f"summary: {predictor.run} accuracy {mean(0.0, 'accuracy'):.1f} | at p>=0.9: coverage "
          f"{mean(0.9, 'coverage'):.1f} accuracy {mean(0.9, 'accuracy'):.1f} | at p>=0.99: "
          f"coverage {mean(0.99, 'coverage'):.1f} accuracy {mean(0.99, 'accuracy'):.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the graph model already know what similar products' labels say? A kNN label vote
mixed into the trained models' predictions (the "smooth" step of Correct & Smooth, Huang
et al., 2021), on the Fashion benchmark's own runs.

For ``--relation`` (default ``usage``) and each seed, the per-relation runs that
``fashion.py --per-relation --workspace WS`` saved (the R-GCN row of the graph group and the
concat row of the non-graph group) are reopened; each valid / test product's softmax ``P``
over the values is mixed with ``V``, the vote of its ``--k`` most similar *training*
products (cosine of the raw MiniLM text and, weighted ``--image-weight``, EfficientNet
photo vectors; each neighbour's vote ``exp(cos / --tau)``) on their known value:
``(1 - a) P + a V``, ``a`` chosen on validation among 0, 0.1, ..., 0.6. Only the relation's
training edges vote, so nothing held out is read::

    python benchmarks/fashion_knn.py --workspace WS --relation usage

A gain for the non-graph model and none for the graph model says the graph model already
propagates what look-alike products' labels hold (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fashion import PER_RELATION, RELATIONS, run_name, standardized  # noqa: E402

from fusion.features import NodeFeatures  # noqa: E402
from fusion.run_setup import open_run  # noqa: E402

ROWS = ("rgcn/attention/early/3 layers +res", "concat (no graph) +res")
MIXES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-9)


def vote(vectors: np.ndarray, heads: np.ndarray, train: np.ndarray, n_values: int, k: int,
         tau: float) -> np.ndarray:  # fmt: skip
    """``[B, n_values]`` normalised vote of each head's ``k`` nearest training products
    (``train`` ``[n, 2]`` (product, value) pairs)."""
    sims = vectors[heads] @ vectors[train[:, 0]].T
    nearest = np.argpartition(-sims, k, axis=1)[:, :k]
    out = np.zeros((len(heads), n_values))
    rows = np.arange(len(heads))
    for j in range(k):
        np.add.at(out, (rows, train[nearest[:, j], 1]), np.exp(sims[rows, nearest[:, j]] / tau))
    return out / out.sum(1, keepdims=True)


def mixed_accuracy(ws: Path, run: str, relation: str, raw, feats, args) -> dict:
    """``{"valid": {a: acc}, "test": {a: acc}}`` of one saved run (module docstring)."""
    setup, _ = open_run(ws, run, features=feats)
    task = setup.task
    i = task.names.index(relation)
    source = task.etypes[i][0]
    mods = raw.features[source]
    vectors = unit(np.concatenate([unit(mods["text"][0].numpy()),
                                   args.image_weight * unit(mods["image"][0].numpy())], 1))  # fmt: skip
    train = task.split.of("train", i).cpu().numpy()
    with torch.no_grad():
        out = setup.output(False)
        found = {}
        for split in ("valid", "test"):
            pairs = task.split.of(split, i)
            p = torch.softmax(task.scores(out, i, pairs[:, 0]).float(), 1).cpu().numpy()
            pairs = pairs.cpu().numpy()
            v = vote(vectors, pairs[:, 0], train, p.shape[1], args.k, args.tau)
            found[split] = {a: float((((1 - a) * p + a * v).argmax(1) == pairs[:, 1]).mean())
                            for a in MIXES}  # fmt: skip
    return found


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, required=True, help="with fashion.py --per-relation runs")
    p.add_argument("--relation", default="usage", choices=RELATIONS)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--k", type=int, default=20, help="neighbours that vote")
    p.add_argument("--tau", type=float, default=0.05, help="vote temperature")
    p.add_argument("--image-weight", type=float, default=0.5)
    args = p.parse_args(argv)
    raw = NodeFeatures.load(args.workspace)
    feats = standardized(raw)
    for row in ROWS:
        before, after = [], []
        for seed in range(args.seeds):
            run = run_name(f"{row}{PER_RELATION} {args.relation}", seed, False)
            acc = mixed_accuracy(args.workspace, run, args.relation, raw, feats, args)
            a = max(MIXES, key=lambda m: acc["valid"][m])
            before.append(100 * acc["test"][0.0])
            after.append(100 * acc["test"][a])
            print(f"{row} seed {seed}: test {before[-1]:.1f} -> {after[-1]:.1f} with the vote "
                  f"(a = {a}, chosen on validation)", flush=True)  # fmt: skip
        gain = np.mean(after) - np.mean(before)
        print(f"{row}: {np.mean(before):.1f} -> {np.mean(after):.1f} ({gain:+.1f}) on "
              f"{args.relation}, transductive", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

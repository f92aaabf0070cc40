"""How much can the graph add to text + image for one Fashion relation? A linear probe on
the benchmark's own splits.

For ``--relation`` (default ``usage``) and each seed, the split of
:mod:`fashion` (:func:`fusion.tasks.attribute_split.split_attributes`, the seed = split seed;
transductive and inductive) and an L2-regularised logistic regression (scikit-learn,
``C = --C``) on the products' standardised frozen features (:func:`fashion.standardized`),
trained on the relation's training edges and scored (accuracy@1) on its test edges, with:

- ``text+image``: the two modalities only (what the non-graph fusion sees);
- ``+attributes``: plus a one-hot of every value node the product links to in the graph the
  GNN sees at test time (the message-passing graph, plus, inductively, the arriving
  product's edges), **except the predicted relation's** (its training edges would leak);
- ``+pairs``: plus one-hots of (article type, other value) pairs: the article type's
  (year / season / colour / gender) subgroups, a linear stand-in for the siblings' values
  (the 3-hop path product -> article type -> sibling -> value).

Prints one line per seed and setting, then the means::

    python benchmarks/fashion_ceiling.py --workspace WS --relation usage

The gap ``+attributes - text+image`` bounds what the graph's own attribute edges give a
linear model; a GNN that must beat the non-graph fusion by more than twice the seed std
on the relation needs a gap of that size in the data.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fashion import RELATIONS, standardized  # noqa: E402
from scipy.sparse import csr_matrix, hstack  # noqa: E402

import kg  # noqa: E402
from fusion.config import DataConfig  # noqa: E402
from fusion.features import NodeFeatures  # noqa: E402
from fusion.tasks.attribute import relation_edge_types  # noqa: E402
from fusion.tasks.attribute_split import (  # noqa: E402
    arrival_edges,
    merge_edges,
    split_attributes,
    training_edges,
)
from fusion.trainer import graph_tensors  # noqa: E402
from kg.naming import REV_PREFIX  # noqa: E402

SETS = ("text+image", "+attributes", "+pairs")


def value_onehots(edges, num, source: str, skip: str) -> tuple[csr_matrix, dict]:
    """``[N_source, sum of value counts]`` one-hot of the source's out-edges (every edge
    type from ``source`` but ``skip`` and the ``rev_`` inverses); the column blocks by
    relation."""
    blocks, mats, offset = {}, [], 0
    n = num[source]
    for (s, r, d), ei in sorted(edges.items()):
        if s != source or r == skip or r.startswith(REV_PREFIX):
            continue
        m = csr_matrix((np.ones(ei.shape[1]), (ei[0].numpy(), ei[1].numpy())), shape=(n, num[d]))
        mats.append(m)
        blocks[r] = (offset, num[d])
        offset += num[d]
    return hstack(mats).tocsr(), blocks


def pair_onehots(onehots: csr_matrix, blocks: dict, ids: dict, anchor: str = "articleType"):
    """One-hot of (anchor value, other value) for every other relation; ``ids`` maps a pair
    to its column (shared by the calls of one split, grown as new pairs occur)."""
    if anchor not in blocks:
        return csr_matrix((onehots.shape[0], 0))
    a0, an = blocks[anchor]
    anchor_of = np.asarray(onehots[:, a0:a0 + an].argmax(1)).ravel()
    has = np.asarray(onehots[:, a0:a0 + an].sum(1)).ravel() > 0
    rows, cols = [], []
    for r, (o, k) in blocks.items():
        if r == anchor:
            continue
        sub = onehots[:, o:o + k].tocoo()
        for p, v in zip(sub.row, sub.col, strict=True):
            if has[p]:
                rows.append(p)
                cols.append(ids.setdefault((r, int(anchor_of[p]), int(v)), len(ids)))
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(onehots.shape[0], len(ids)))


def designs(x, graphs: dict, rows: dict, num, source: str, relation: str) -> dict:
    """``{set: {part: design matrix of the part's rows}}``: ``x`` ``[N, d]`` features, then
    the value one-hots and the pair one-hots of each part's graph (module docstring), the
    one-hots weighted 3 (their columns are sparse next to unit-variance features)."""
    ids: dict = {}
    parts = {}
    for part, g in graphs.items():
        onehots, blocks = value_onehots(g, num, source, relation)
        parts[part] = (onehots, pair_onehots(onehots, blocks, ids))
    out: dict = {s: {} for s in SETS}
    for part, (onehots, pairs) in parts.items():
        pairs = csr_matrix((pairs.data, pairs.indices, pairs.indptr), shape=(pairs.shape[0], len(ids)))
        r = rows[part]
        base = csr_matrix(x[r])
        out["text+image"][part] = base
        out["+attributes"][part] = hstack([base, 3.0 * onehots[r]]).tocsr()
        out["+pairs"][part] = hstack([base, 3.0 * onehots[r], 3.0 * pairs[r]]).tocsr()
    return out


def probe(ws: Path, relation: str, seeds: int, c: float) -> dict:
    """``{(setting, set): [accuracy per seed]}`` (module docstring)."""
    from sklearn.linear_model import LogisticRegression

    graph = kg.load_graph(ws)
    feats = standardized(NodeFeatures.load(ws))
    edges, num = graph_tensors(graph, DataConfig())
    etypes = relation_edge_types(edges, RELATIONS)
    i = [e[1] for e in etypes].index(relation)
    source = etypes[i][0]
    x = torch.cat([feats.features[source][m][0] for m in ("text", "image")], 1).numpy()
    out: dict = {}
    for setting in ("transductive", "inductive"):
        for seed in range(seeds):
            split = split_attributes(edges, etypes, num, seed=seed, inductive=setting == "inductive")
            seen = training_edges(edges, split)
            train, test = split.of("train", i).numpy(), split.of("test", i).numpy()
            arrived = merge_edges(seen, arrival_edges(edges, split, "test", i))
            mats = designs(x, {"train": seen, "test": arrived if split.inductive else seen},
                           {"train": train[:, 0], "test": test[:, 0]}, num, source, relation)  # fmt: skip
            for s in SETS:
                clf = LogisticRegression(C=c, max_iter=300)
                clf.fit(mats[s]["train"], train[:, 1])
                acc = float((clf.predict(mats[s]["test"]) == test[:, 1]).mean())
                out.setdefault((setting, s), []).append(acc)
                print(f"{setting} seed {seed} {relation} {s}: test acc {100 * acc:.1f}", flush=True)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", type=Path, required=True, help="built + encoded (fashion.py)")
    p.add_argument("--relation", default="usage", choices=RELATIONS)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--C", type=float, default=0.1, help="inverse L2 strength")
    args = p.parse_args(argv)
    started = time.process_time()
    res = probe(args.workspace, args.relation, args.seeds, args.C)
    for (setting, s), accs in res.items():
        mean = 100 * statistics.mean(accs)
        std = 100 * statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"{setting} {args.relation} {s}: {mean:.1f} ± {std:.1f}")
    print(f"CPU s: {time.process_time() - started:.0f}")


if __name__ == "__main__":
    main()

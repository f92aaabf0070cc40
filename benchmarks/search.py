"""Multimodal product search on a Fashion-layout catalogue: alignment and attribute search.

    python benchmarks/search.py [DIR]        # default ../shared/data/products/fashion

``DIR`` holds ``styles.csv`` (id, gender, masterCategory, subCategory, articleType,
baseColour, season, year, usage, productDisplayName, image) and ``images/<id>.jpg``: any
sample of the shop in this layout. The workspace is built with ``examples/fashion.toml``
and encoded (minilm + efficientnet-lite0) under ``--work`` (reused when present: the
embedding cache makes a second run cheap). Nothing is tuned per data set: the methods'
defaults and the search's weights are those of the library.

(a) **Cross-modal retrieval on held-out products.** The products with a name and a photo
are split 80 / 20 (seeded); every alignment method (``align.alignment.ALIGNMENTS``) is
fitted on the 80 % and, among the held-out 20 %, each name retrieves its photo
(text->image) and each photo its name (image->text): Recall@1/5/10. ``cosine`` is the
untrained baseline: a name's top photos are those closest (cosine of image features) to
the photos of the 10 training products whose names are closest (cosine of text
features) - nothing fitted, only the training pairs looked up. ``infonce-graph``'s towers
also read each held-out product's graph neighbours (its colour, type, season... nodes).

(b) **Attribute search.** Queries are generated from the attribute combinations of
randomly drawn products (gender, articleType, baseColour, season, usage; season and usage
rarely appear in names), in several phrasings ("casual summer tshirt for men in blue",
"women's winter heels"...); a product is relevant when it has every attribute of the
query (from ``styles.csv``). Over the whole catalogue: NDCG@10 and Recall@100 for BM25
over the names (``align.candidates.BM25Index``), dense text (cosine of the query's and the
names' minilm vectors) and our search (``align.search.ProductSearch``: text + photo through
the ``infonce-graph`` alignment fitted on the training split + graph facts).

The last stdout line is the summary::

    summary: search NDCG@10 S | bm25 B | dense-text D | retrieval R@10 text->image: cca C lstsq L infonce I infonce-graph G
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "products" / "fashion"
ATTRIBUTES = ("gender", "articleType", "baseColour", "season", "usage")
KS = (1, 5, 10)
#: phrasings: (template, attributes); {x} is the value lowercased, {x_s} singularised
TEMPLATES = [
    ("{baseColour} {articleType} for {gender}", ("baseColour", "articleType", "gender")),
    ("{usage} {season} {articleType_s} for {gender} in {baseColour}", ATTRIBUTES),
    ("{gender}'s {season} {articleType}", ("gender", "season", "articleType")),
    ("{baseColour} {usage} {articleType_s}", ("baseColour", "usage", "articleType")),
    ("{articleType} for {season} in {baseColour}", ("articleType", "season", "baseColour")),
    ("{season} {usage} wear for {gender}", ("season", "usage", "gender")),
    ("{gender} {articleType_s} {baseColour}", ("gender", "articleType", "baseColour")),
    ("{usage} {articleType} for {gender}", ("usage", "articleType", "gender")),
]


def build_workspace(folder: Path, work: Path):
    """Build (once) and encode the workspace of ``folder``; returns ``(graph, features)``."""
    from fusion.features import FeatureSpec, build_features
    from kg.graph import load_graph
    from kgfusion.cli import main as kgf

    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:10]
    ws = work / f"fashion-{digest}"
    if not (ws / "manifest.json").is_file():
        code = kgf(["build", str(folder / "styles.csv"), "--mapping",
                    str(ROOT / "examples" / "fashion.toml"), "-o", str(ws),
                    "--data-root", str(folder.resolve()),
                    "--data-root", str((folder / "images").resolve())])  # fmt: skip
        if code:
            raise SystemExit(f"kgf build {folder / 'styles.csv'} failed ({code})")
    graph = load_graph(ws)
    features, _ = build_features(graph, ws, FeatureSpec())
    return ws, graph, features


def read_styles(folder: Path) -> dict[str, dict]:
    with open(folder / "styles.csv", encoding="utf-8", newline="") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


def recall(zq: torch.Tensor, zc: torch.Tensor) -> dict[str, float]:
    from align.alignment import recall_at

    return recall_at(zq, zc, KS)


def bridge_baseline(pairs, train, test) -> tuple[dict, dict]:
    """The untrained ``cosine`` baseline (module docstring), both directions."""
    t = F.normalize(pairs.text, dim=-1)
    v = F.normalize(pairs.image, dim=-1)
    out = []
    for q, c_train, c_target in ((t, t, v), (v, v, t)):
        sims = q[test] @ c_train[train].T
        near = sims.topk(10, dim=1).indices
        proxy = F.normalize(c_target[train][near].mean(1), dim=-1)
        out.append(recall(proxy, c_target[test]))
    return out[0], out[1]


def retrieval(ws, graph, features, pairs, train, test, seed: int, epochs: int | None = None):
    """(a): ``{method: (text->image, image->text, seconds)}``, and the fitted infonce-graph."""
    from align.alignment import ALIGNMENTS, fit_alignment

    results, fitted = {}, {}
    started = time.process_time()
    results["cosine"] = (*bridge_baseline(pairs, train, test), time.process_time() - started)
    context = pairs.context()
    for name in ALIGNMENTS.names():
        started, wall = time.process_time(), time.perf_counter()
        options = {"epochs": epochs} if epochs and name.startswith("infonce") else {}
        model = fit_alignment(ws, name, graph=graph, features=features, rows=train, save=False,
                              seed=seed, **options)  # fmt: skip
        with torch.no_grad():
            zt = model.embed_text(pairs.text[test], context[test])
            zv = model.embed_image(pairs.image[test], context[test])
        results[name] = (recall(zt, zv), recall(zv, zt), time.process_time() - started)
        fitted[name] = model
        print(f"  {name:14} fitted in {time.perf_counter() - wall:.0f} s wall, "
              f"{results[name][2]:.0f} s CPU", flush=True)
    return results, fitted


def phrase(template: str, row: dict) -> str:
    values = {a: row[a].lower() for a in ATTRIBUTES}
    values["articleType_s"] = values["articleType"][:-1] if values["articleType"].endswith("s") else values["articleType"]
    return template.format(**values)


def make_queries(styles: dict, n: int, seed: int) -> list[tuple[str, tuple, set]]:
    """``(query, attributes, relevant ids)``: ``n`` queries, several phrasings each drawn
    from a random product's attributes (module docstring)."""
    rng = random.Random(seed)
    ids = sorted(styles)
    index: dict[tuple, set] = {}
    queries, seen = [], set()
    while len(queries) < n:
        row = styles[rng.choice(ids)]
        template, attrs = rng.choice(TEMPLATES)
        if any(not row[a].strip() for a in attrs):
            continue
        key = tuple((a, row[a]) for a in attrs)
        text = phrase(template, row)
        if text in seen:
            continue
        seen.add(text)
        if key not in index:
            index[key] = {i for i in ids if all(styles[i][a] == v for a, v in key)}
        queries.append((text, key, index[key]))
    return queries


def ndcg_recall(ranked: list[str], relevant: set, k: int = 10, deep: int = 100) -> tuple[float, float]:
    dcg = sum(1 / math.log2(i + 2) for i, x in enumerate(ranked[:k]) if x in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal, len(set(ranked[:deep]) & relevant) / len(relevant)


def attribute_search(graph, features, pairs, search, queries) -> dict[str, tuple[float, float]]:
    """(b): mean NDCG@10 and Recall@100 of BM25, dense text and our search."""
    from align.candidates import BM25Index
    from align.text import analyse
    from fusion.encoders import get_encoder
    from kg.labels import display_name

    iris = graph.node_iris(pairs.node_type)
    ids = [iri.rsplit("/", 1)[-1] for iri in iris]
    names = [display_name(graph, iri) or "" for iri in iris]
    bm25 = BM25Index([analyse(n) for n in names])
    encoder = get_encoder(features.spec.text_encoder)
    q_vecs = F.normalize(encoder.encode([q for q, _, _ in queries]).float(), dim=-1)
    text = F.normalize(pairs.text, dim=-1)
    scores = {"bm25": [], "dense-text": [], "search": []}
    for (query, _, relevant), qv in zip(queries, q_vecs, strict=True):
        ranked_bm25 = np.argsort(-bm25.scores(analyse(query)), kind="stable")[:100]
        ranked_dense = torch.topk(text @ qv, 100).indices.tolist()
        hits = search.search(query, k=100).hits
        for name, ranked in (("bm25", [ids[i] for i in ranked_bm25]),
                             ("dense-text", [ids[i] for i in ranked_dense]),
                             ("search", [h.iri.rsplit("/", 1)[-1] for h in hits])):
            scores[name].append(ndcg_recall(ranked, relevant))
    return {name: tuple(np.mean(values, axis=0).tolist()) for name, values in scores.items()}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, side, title in ((axes[0], 0, "name -> photo"), (axes[1], 1, "photo -> name")):
        for name, found in results.items():
            ax.plot(KS, [found[side][f"r@{k}"] for k in KS], marker="o", label=name)
        ax.set_title(f"{title} (held-out products)")
        ax.set_xlabel("k")
        ax.set_xticks(KS)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Recall@k")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kgf-bench-search"))
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="infonce methods' epochs (default: theirs, 40)")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "search_recall.png")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    from align.alignment.workspace import workspace_pairs
    from align.search import ProductSearch

    cpu0, wall0 = time.process_time(), time.perf_counter()
    ws, graph, features = build_workspace(args.dir, args.work)
    pairs = workspace_pairs(graph, features)
    paired = pairs.paired
    order = np.random.default_rng(args.seed).permutation(len(paired))
    cut = int(0.8 * len(paired))
    train, test = paired[order[:cut]], paired[order[cut:]]
    print(f"{args.dir}: {len(pairs.text)} products, {len(paired)} with a name and a photo; "
          f"{len(train)} train / {len(test)} held out")
    results, fitted = retrieval(ws, graph, features, pairs, train, test, args.seed, args.epochs)
    print("\n(a) cross-modal retrieval on held-out products (Recall@k)")
    print(f"  {'method':14} " + " ".join(f"t->i@{k:<3}" for k in KS) + " " + " ".join(f"i->t@{k:<3}" for k in KS) + "  CPU s")
    for name, (ti, it, cpu) in results.items():
        print(f"  {name:14} " + " ".join(f"{ti[f'r@{k}']:.3f}   " for k in KS)
              + " " + " ".join(f"{it[f'r@{k}']:.3f}   " for k in KS) + f"  {cpu:.0f}")
    plot(results, args.plot)
    print(f"  plot: {args.plot}")
    queries = make_queries(read_styles(args.dir), args.queries, args.seed)
    search = ProductSearch(graph, features, fitted["infonce-graph"], workspace=ws)
    found = attribute_search(graph, features, pairs, search, queries)
    print(f"\n(b) attribute search: {len(queries)} queries over {len(pairs.text)} products, "
          f"e.g. {queries[0][0]!r}, {queries[1][0]!r}")
    for name, (ndcg, rec) in found.items():
        print(f"  {name:12} NDCG@10 {ndcg:.3f}  Recall@100 {rec:.3f}")
    best = max(found["bm25"][0], found["dense-text"][0])
    print(f"  search / best baseline NDCG@10: {found['search'][0] / max(best, 1e-9):.2f}x (goal >= 1.2x)")
    print(f"\ntotal {time.perf_counter() - wall0:.0f} s wall, {time.process_time() - cpu0:.0f} s CPU "
          f"(this process)")
    r10 = {name: results[name][0]["r@10"] for name in results}
    print(f"summary: search NDCG@10 {found['search'][0]:.3f} | bm25 {found['bm25'][0]:.3f} | "
          f"dense-text {found['dense-text'][0]:.3f} | retrieval R@10 text->image: "
          f"cca {r10['cca']:.3f} lstsq {r10['lstsq']:.3f} infonce {r10['infonce']:.3f} "
          f"infonce-graph {r10['infonce-graph']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

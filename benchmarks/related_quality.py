"""Related-product quality on the sample catalogue: held-out accessory links.

A fifth of the ``isAccessoryOrSparePartFor`` edges of the sample catalogue are held out
(removed from the graph before anything is built); for each held-out edge
``accessory -> product`` we ask for the accessory's related products under that relation
and rank the true product among the candidate products (every product that is the target of
an accessory link, held out or not; ``--candidates held-out``: only the products of held-out
links). Two protocols, every method ranked under both:

  filtered    the query's other known links (its training edges) are not counted above
              the true product (the filtered setting of Bordes et al., 2013, as the link
              task and PyKEEN rank): ``related()`` lists known links first by design, and a
              held-out link is not missed because the known ones are listed
  raw         every candidate counts (what the figures before 2026-12-04 evening were)

Hits@10 and MRR for

  popularity  products ranked by how many accessories they already have (train edges)
  text-only   cosine of the products' text features (minilm), no graph
  related()   ``ProductGraph.related`` over the entity index of fused text + image vectors,
              re-scored with graph evidence (shared brand / category, paths)
  link model  the trained link-prediction run alone (``kgf train --task link``, default
              variant: rgcn, attention fusion, DistMult), its probability for each candidate
  related() + link model
              ``related()`` with that run as its scorer (``kgf related --relation``
              picks it up): candidates from the index and the model, model-led score
  oracle      the ceiling: brand and category of the true product known exactly, the
              products sharing both ranked first in random order (``kg.samples._link`` draws
              an accessory's products at random among those of its brand and target
              category, so nothing in the data orders them); with ``--product-lines``, its
              product line known too

The catalogue has product lines (``kg.samples``, step 8; default): an accessory fits the
products of one line of its brand and target category, the line is a ``schema:isVariantOf``
edge and is in no name or description, so which products an accessory fits is a graph fact
text cannot carry. ``--no-product-lines``: the accessory's products are drawn among all the
products of its brand and category, both in the names, so text alone is within 0.01 MRR of
the ceiling there and no model can beat it by more.

Per-seed MRR lines, then the last line (filtered figures)::

    summary: related+model H@10 X MRR Y | text-only H@10 X MRR Y

    python benchmarks/related_quality.py --products 400 --seeds 3
    python benchmarks/related_quality.py --products 400 --seeds 3 --no-product-lines
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

RELATION = "http://schema.org/isAccessoryOrSparePartFor"
PROTOCOLS = ("filtered", "raw")
METHODS = ("popularity", "text-only", "related()", "link model", "related() + link model")
CEILING = "oracle (brand + category [+ line])"


def held_out_graph(folder: Path, products: int, seed: int, product_lines: bool = False):
    import kg
    from kg.samples import write_sample_catalogue

    sample = write_sample_catalogue(
        folder / "catalogue", n_products=products, seed=seed, product_lines=product_lines
    )
    full = kg.load_rdf(sample.path)
    lines = full.to_ntriples().decode().splitlines()
    links = [line for line in lines if f"<{RELATION}>" in line]
    random.Random(seed).shuffle(links)
    test = set(links[: len(links) // 5])
    (folder / "train.nt").write_text("\n".join(line for line in lines if line not in test) + "\n")
    pairs = [tuple(part.strip("<>") for part in line.split(" ")[:3:2]) for line in sorted(test)]
    graph = kg.load_rdf(folder / "train.nt")
    for source in graph.sources:  # images are relative to the sample's folder
        source["path"] = str(sample.path)
    return graph, pairs


def rank_metrics(ranks: list[float]) -> tuple[float, float]:
    ranks_array = np.array(ranks, dtype=float)
    return float((ranks_array <= 10).mean()), float((1.0 / ranks_array).mean())


def rank_of(order: list[int], true: int, known: set[int], filtered: bool) -> int:
    """1-based rank of ``true`` in ``order`` (candidate positions, best first); ``filtered``:
    the query's other known links (``known``, training edges) are not counted above it
    (the filtered setting of Bordes et al., 2013); a candidate missing from ``order`` ranks
    last."""
    if true not in order:
        return len(order) + 1
    above = order[: order.index(true)]
    return 1 + sum(1 for c in above if not (filtered and c in known))


def order_of(scores: torch.Tensor) -> list[int]:
    """Candidate positions by decreasing score, ties broken by position."""
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))


def oracle_mrr(m: int) -> float:
    """Expected reciprocal rank of one of ``m`` equally likely candidates ranked first."""
    return float(np.mean([1.0 / r for r in range(1, m + 1)])) if m else 1.0


def evaluate(
    products: int, seed: int, candidates: str = "targets", product_lines: bool = False
) -> dict:
    from fusion.features import FeatureSpec, build_features
    from fusion.scoring import LinkScorer
    from fusion.trainer import train
    from kg.index import EntityIndex, graph_version
    from kg.naming import REV_PREFIX
    from kg.related import related

    with tempfile.TemporaryDirectory() as tmp:
        graph, pairs = held_out_graph(Path(tmp), products, seed, product_lines)
        ws = graph.save(Path(tmp) / "ws", sparql_store=False)
        features, _ = build_features(graph, ws, FeatureSpec())
        rows, vectors = features.entity_vectors()["Product"]
        iris = [graph.iri("Product", i) for i in rows.tolist()]
        index = EntityIndex.build(iris, vectors.numpy(), graph_version=graph_version(graph))
        train(ws, task="link", relations=["isAccessoryOrSparePartFor"], run_name="lp",
              progress=False, graph=graph, features=features, seed=seed)  # fmt: skip
        scorer = LinkScorer.from_run(ws, "lp", graph)
        text, text_mask = features.features["Product"]["text"]
        text = torch.nn.functional.normalize(text, dim=1)
        # every product that has an accessory in the training graph (incoming edges of the
        # relation are its rev_ edges), plus the held-out targets
        accessory_of = {
            graph.node(iri)[1]
            for iri in graph.node_iris("Product")
            if graph.neighbors(iri, REV_PREFIX + "isAccessoryOrSparePartFor")
        }
        held_out = {graph.node(p)[1] for _, p in pairs}
        targets = sorted(held_out | accessory_of if candidates == "targets" else held_out)
        popularity = torch.zeros(graph.num_nodes_dict["Product"])
        for i in targets:
            popularity[i] = len(
                graph.neighbors(graph.iri("Product", i), REV_PREFIX + "isAccessoryOrSparePartFor")
            )

        def nb(iri: str, relation: str, direction: str = "out") -> set[str]:
            return {n.iri for n in graph.neighbors(iri, relation) if n.direction == direction}

        target_iris = [graph.iri("Product", i) for i in targets]
        position = {iri: j for j, iri in enumerate(target_iris)}
        group_of = {  # what fixes an accessory's products: brand, category (and line)
            iri: tuple(frozenset(nb(iri, p)) for p in ("brand", "category", "isVariantOf"))
            for iri in target_iris
        }
        ranks: dict[str, dict[str, list[float]]] = {
            protocol: {name: [] for name in (*METHODS, CEILING)} for protocol in PROTOCOLS
        }
        candidates = torch.tensor(targets)
        for accessory, product in pairs:
            a, true = graph.node(accessory)[1], position[product]
            known = {
                position[x] for x in nb(accessory, "isAccessoryOrSparePartFor") if x in position
            }
            known_mask = torch.zeros(len(targets), dtype=torch.bool)
            known_mask[list(known)] = True
            model = torch.from_numpy(scorer(accessory, target_iris, RELATION))
            scored = {
                "popularity": popularity[candidates]
                + 1e-6 * torch.arange(len(targets)),  # stable ties
                "text-only": text[candidates] @ text[a],
                "link model": model,
            }
            orders = {}
            for name, use in (("related()", None), ("related() + link model", scorer)):
                items = related(
                    graph, index, accessory, k=len(iris) - 1, relation="isAccessoryOrSparePartFor",
                    node_type="Product", explain=False, scorer=use,
                )  # fmt: skip
                orders[name] = [position[it.iri] for it in items if it.iri in position]
            group = [j for j, iri in enumerate(target_iris) if group_of[iri] == group_of[product]]
            for protocol in PROTOCOLS:
                filtered = protocol == "filtered"
                mine = ranks[protocol]
                for name, score in scored.items():
                    above = score > score[true]
                    if filtered:
                        above &= ~known_mask
                    mine[name].append(int(above.sum()) + 1)
                for name, order in orders.items():
                    mine[name].append(rank_of(order, true, known, filtered))
                # the ceiling: brand and target category (and line) known exactly, the rest
                # a draw (kg.samples._link picks an accessory's products at random in them)
                m = len([j for j in group if j not in known])
                mine[CEILING].append(1.0 / oracle_mrr(m))
        return {
            protocol: {name: rank_metrics(r) for name, r in mine.items()}
            for protocol, mine in ranks.items()
        } | {"pairs": len(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed0", type=int, default=0, help="first catalogue seed")
    parser.add_argument(
        "--candidates", choices=("targets", "held-out"), default="targets",
        help="targets: every product with an accessory (default); held-out: only the products "
        "of held-out links (what the figures before 2026-12-04 evening measured)",
    )  # fmt: skip
    parser.add_argument(
        "--product-lines", action=argparse.BooleanOptionalAction, default=True,
        help="the catalogue's accessories fit one product line, a graph fact not in the text "
        "(default); --no-product-lines: drawn among the products of their brand and category, "
        "which text already finds (the figures before 2026-12-04 night)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from fusion.encoders.base import resolve_device  # noqa: F401  (imports torch / transformers once)

    results = [
        evaluate(args.products, seed, args.candidates, args.product_lines)
        for seed in range(args.seed0, args.seed0 + args.seeds)
    ]
    links = sum(r["pairs"] for r in results)
    lines = " with product lines" if args.product_lines else " without product lines"
    print(f"{args.products} products{lines}, {args.seeds} seeds, {links} held-out accessory links")
    print(f"{'method':34} {'filtered H@10':>13} {'MRR':>6} {'raw H@10':>9} {'MRR':>6}")
    mean = {
        protocol: {
            name: [float(np.mean([r[protocol][name][i] for r in results])) for i in (0, 1)]
            for name in (*METHODS, CEILING)
        }
        for protocol in PROTOCOLS
    }
    for name in (*METHODS, CEILING):
        (fh, fm), (rh, rm) = mean["filtered"][name], mean["raw"][name]
        print(f"{name:34} {fh:13.3f} {fm:6.3f} {rh:9.3f} {rm:6.3f}")
    for seed, r in enumerate(results, start=args.seed0):
        ours, text = r["filtered"]["related() + link model"], r["filtered"]["text-only"]
        print(f"seed {seed}: related+model MRR {ours[1]:.3f} | text-only MRR {text[1]:.3f}")
    ours, text = mean["filtered"]["related() + link model"], mean["filtered"]["text-only"]
    print(
        f"summary: related+model H@10 {ours[0]:.3f} MRR {ours[1]:.3f} | "
        f"text-only H@10 {text[0]:.3f} MRR {text[1]:.3f}"
    )


if __name__ == "__main__":
    main()

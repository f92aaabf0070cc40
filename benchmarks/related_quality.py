"""Related-product quality on the sample catalogue: held-out accessory links.

A fifth of the ``isAccessoryOrSparePartFor`` edges of the sample catalogue are held out
(removed from the graph before anything is built); for each held-out edge
``accessory -> product`` we ask for the accessory's related products under that relation
and rank the true product among the candidate products (every product that is the target of
an accessory link, held out or not). Reported: Hits@10 and MRR for

  popularity  products ranked by how many accessories they already have (train edges)
  text-only   cosine of the products' text features (minilm), no graph
  related()   ``ProductGraph.related`` over the entity index of fused text + image vectors,
              re-scored with graph evidence (shared brand / category, paths)
  link model  the trained link-prediction run alone (``kgf train --task link``, default
              variant: rgcn, attention fusion, DistMult), its probability for each candidate
  related() + link model
              ``related()`` with that run as its scorer (``kgf related --relation``
              picks it up): candidates from the index and the model, model-led score

    python benchmarks/related_quality.py --products 400 --seeds 3
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

RELATION = "http://schema.org/isAccessoryOrSparePartFor"
METHODS = ("popularity", "text-only", "related()", "link model", "related() + link model")


def held_out_graph(folder: Path, products: int, seed: int):
    import kg
    from kg.samples import write_sample_catalogue

    sample = write_sample_catalogue(folder / "catalogue", n_products=products, seed=seed)
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


def rank_metrics(ranks: list[int]) -> tuple[float, float]:
    ranks_array = np.array(ranks, dtype=float)
    return float((ranks_array <= 10).mean()), float((1.0 / ranks_array).mean())


def evaluate(products: int, seed: int) -> dict[str, tuple[float, float]]:
    from fusion.features import FeatureSpec, build_features
    from fusion.scoring import LinkScorer
    from fusion.trainer import train
    from kg.index import EntityIndex, graph_version
    from kg.naming import REV_PREFIX
    from kg.related import related

    with tempfile.TemporaryDirectory() as tmp:
        graph, pairs = held_out_graph(Path(tmp), products, seed)
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
        accessory_of = {(graph.node(n.iri)[1]) for iri in graph.node_iris("Product") for n in graph.neighbors(iri, "isAccessoryOrSparePartFor") if n.direction == "in"}  # fmt: skip
        targets = sorted({graph.node(p)[1] for _, p in pairs} | accessory_of)
        popularity = torch.zeros(graph.num_nodes_dict["Product"])
        for i in targets:
            popularity[i] = len(
                graph.neighbors(graph.iri("Product", i), REV_PREFIX + "isAccessoryOrSparePartFor")
            )
        ranks: dict[str, list[int]] = {name: [] for name in METHODS}
        candidates = torch.tensor(targets)
        for accessory, product in pairs:
            a, p = graph.node(accessory)[1], graph.node(product)[1]
            true = targets.index(p)
            pop = popularity[candidates] + 1e-6 * torch.arange(len(targets))  # stable ties
            ranks["popularity"].append(int((pop > pop[true]).sum()) + 1)
            sim = text[candidates] @ text[a]
            ranks["text-only"].append(int((sim > sim[true]).sum()) + 1)
            items = related(
                graph,
                index,
                accessory,
                k=len(iris) - 1,
                relation="isAccessoryOrSparePartFor",
                node_type="Product",
                explain=False,
            )
            order = [it.iri for it in items if graph.node(it.iri)[1] in set(targets)]
            ranks["related()"].append(
                order.index(product) + 1 if product in order else len(targets)
            )
            target_iris = [graph.iri("Product", i) for i in targets]
            model = torch.from_numpy(scorer(accessory, target_iris, RELATION))
            ranks["link model"].append(int((model > model[true]).sum()) + 1)
            items = related(
                graph, index, accessory, k=len(iris) - 1, relation="isAccessoryOrSparePartFor",
                node_type="Product", explain=False, scorer=scorer,
            )  # fmt: skip
            order = [it.iri for it in items if graph.node(it.iri)[1] in set(targets)]
            ranks["related() + link model"].append(
                order.index(product) + 1 if product in order else len(targets)
            )
        return {name: rank_metrics(r) for name, r in ranks.items()} | {"pairs": (len(pairs), 0)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from fusion.encoders.base import resolve_device  # noqa: F401  (imports torch / transformers once)

    results = [evaluate(args.products, seed) for seed in range(args.seeds)]
    print(
        f"{args.products} products, {args.seeds} seeds, {sum(r['pairs'][0] for r in results)} held-out accessory links"
    )
    print(f"{'method':24} {'Hits@10':>8} {'MRR':>8}")
    for name in METHODS:
        hits = np.mean([r[name][0] for r in results])
        mrr = np.mean([r[name][1] for r in results])
        print(f"{name:24} {hits:8.3f} {mrr:8.3f}")
    mean = {
        name: (np.mean([r[name][0] for r in results]), np.mean([r[name][1] for r in results]))
        for name in METHODS
    }
    ours, text = mean["related() + link model"], mean["text-only"]
    print(
        f"summary: related+model H@10 {ours[0]:.3f} MRR {ours[1]:.3f} | "
        f"text-only H@10 {text[0]:.3f} MRR {text[1]:.3f}"
    )


if __name__ == "__main__":
    main()

"""``kgf demo``: the whole toolkit on the built-in sample catalogue, offline, end to end.

1. write the multilingual sample catalogue (:mod:`kg.samples`: Turtle + images);
2. build the workspace (:meth:`kg.ProductGraph.save`);
3. encode node features: text with multilingual E5 (the catalogue has en / de / es / zh
   names), images with EfficientNet-Lite0, numbers;
4. train link prediction on ``isAccessoryOrSparePartFor`` with the default variant
   (R-GCN over attention-fused features, DistMult decoder);
5. index the trained run's final node embeddings (:class:`kg.EntityIndex`; every node,
   also those without text or image, has one);
6. related products for three items -- a main product's accessories, an accessory's
   products, a ring's similar products -- scored by the trained model and explained by the
   graph;
7. free-text queries in three languages linked to their product (:class:`align.Linker`);
8. questions about products (:meth:`Session.ask`): the question scorer trained on questions
   generated from the catalogue, then three questions (one German, one with a photo).

Every step is one call of :class:`kgfusion.session.Session` (the layer under ``kgf`` and
``kgf serve``); the commands that do the same are printed along the way.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from kg.naming import REV_PREFIX

RELATION = "isAccessoryOrSparePartFor"
RUN = "demo-link"
QUERIES = ("rotes Rennauto", "anillo de oro", "battery pack for a racing car")


def run_demo(output: Path, products: int = 120, progress: bool = True) -> Path:
    """Run the demo into ``output`` (``catalogue/`` and ``workspace/``); returns the workspace.

    Every step after the build is one call of a :class:`kgfusion.session.Session`, the layer
    the ``kgf`` commands use, so the models and the index are loaded once."""
    from fusion.features import FeatureSpec
    from kg.labels import display_name
    from kg.rdf import load_rdf
    from kg.report import format_table
    from kg.samples import write_sample_catalogue

    from .display import print_encode_report, quiet_transformers, related_output, render
    from .session import Session

    started = time.perf_counter()
    step = _Steps(started)
    sample = write_sample_catalogue(output / "catalogue", n_products=products, seed=0)
    step(f"sample catalogue: {sample.path}")
    graph = load_rdf(sample.path)
    workspace = graph.save(output / "workspace", overwrite=True)
    session = Session(workspace, graph=graph)
    counts = ", ".join(f"{n} {t}" for t, n in graph.num_nodes_dict.items())
    step(f"workspace: {workspace} ({counts}; {graph.num_edges} edges)", f"kgf info {workspace}")

    quiet_transformers()
    spec = FeatureSpec(text_encoder="e5-multilingual")
    step(
        "node features: text e5-multilingual, images efficientnet-lite0, numbers",
        f"kgf encode {workspace} --text e5-multilingual",
    )
    print_encode_report(*session.encode(spec))

    step(
        f"link prediction on {RELATION} (rgcn, attention fusion, DistMult)",
        f"kgf train {workspace} --task link --relation {RELATION}",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. torch's deprecation notes, not the user's concern
        result = session.train(task="link", relations=[RELATION], run_name=RUN, overwrite=True,
                               progress=progress)  # fmt: skip
    m = result.metrics
    print(
        f"test MRR {m['test/mrr']:.3f}, Hits@10 {m['test/hits@10']:.3f} (filtered, against "
        f"all {graph.num_nodes_dict['Product']} products; best epoch {result.best_epoch} of "
        f"{result.epochs}, {result.seconds:.1f}s)"
    )

    index, _ = session.build_index(run=RUN)
    step(f"entity index: {len(index)} entities, dim {index.dim}, {index.kind}, from the "
         f"embeddings of run {RUN}", f"kgf index {workspace} --run {RUN}")  # fmt: skip

    for title, iri, relation, items in related_examples(session, graph):
        step(f"related: {title}", _related_command(workspace, iri, relation))
        print(f"query: {display_name(graph, iri) or iri}")
        print(render(related_output(items), "table", cut=True), end="")  # as `kgf related` in a terminal

    step("multilingual text -> product", f"kgf link {workspace} '{QUERIES[0]}'")
    rows = []
    for query in QUERIES:
        link = session.link_record(query, k=3)
        rows.append(
            [
                query,
                "NIL" if link.nil else display_name(graph, link.iri) or link.iri,
                f"{link.score:.3f}",
            ]
        )
    print("\n".join(format_table(["query", "linked product", "score"], rows)))
    _ask_step(session, graph, sample, step)
    print(
        f"\ndone in {time.perf_counter() - started:.1f}s. Try:\n"
        f"  kgf related {workspace} --name 'gold ring' -k 5\n"
        f"  kgf ask {workspace} 'what colour is the {_first_name(graph)}?'\n"
        f"  kgf serve {workspace} --port 8000"
    )
    return workspace


class _Steps:
    def __init__(self, started: float):
        self.n, self.started = 0, started

    def __call__(self, title: str, command: str | None = None) -> None:
        self.n += 1
        elapsed = time.perf_counter() - self.started
        print(f"\n[{self.n}] {title}  ({elapsed:.0f}s)", flush=True)
        if command:
            print(f"    $ {command}", flush=True)


def _examples(graph) -> list[tuple[str, str, str | None]]:
    """A main product with accessories, an accessory, and a ring (or any other product)."""
    products = graph.node_iris("Product")
    with_accessories = [p for p in products if graph.neighbors(p, REV_PREFIX + RELATION)]
    accessories = [p for p in products if graph.neighbors(p, RELATION)]
    rings = [p for p in products if "/ring" in p.lower() or "-ring-" in p.lower()]
    out = []
    if with_accessories:
        out.append(("its accessories", with_accessories[0], REV_PREFIX + RELATION))
    if accessories:
        out.append(("what this accessory fits", accessories[0], RELATION))
    pick = next((p for p in rings + products if p not in accessories), products[0])
    out.append(("similar products (no relation: index + graph evidence)", pick, None))
    return out


def related_examples(session, graph, k: int = 5) -> list[tuple[str, str, str | None, list]]:
    """``(title, query IRI, relation, related items)`` of the demo's related-products step:
    each :func:`_examples` query answered by ``session.related`` with the demo's run as the
    scorer when a relation is asked (what ``kgf related --relation`` does)."""
    return [
        (title, iri, relation,
         session.related(iri, k=k, relation=relation, run=RUN if relation else None,
                         use_model=relation is not None))
        for title, iri, relation in _examples(graph)
    ]  # fmt: skip


def _related_command(workspace: Path, iri: str, relation: str | None) -> str:
    extra = f" --relation {relation}" if relation else ""
    return f"kgf related {workspace} {iri} -k 5{extra}"


def _first_name(graph) -> str:
    from kg.labels import display_name

    return display_name(graph, graph.node_iris("Product")[0]) or "racing car"


def _ask_step(session, graph, sample, step) -> None:
    """Train the question scorer on generated questions, ask three (de, en, a photo)."""
    from kg.labels import display_name

    step("question scorer, trained on questions generated from the catalogue",
         f"kgf qa-train {session.path}")  # fmt: skip
    metrics = session.qa_train(graph_products=30, epochs=20)
    print(f"hold-out P@1 {metrics['p@1']:.3f}, MRR {metrics['mrr']:.3f}")
    products = graph.node_iris("Product")
    main = next((p for p in products if graph.neighbors(p, REV_PREFIX + RELATION)), products[0])
    pictured = next(p for p in products if (sample.image_dir / f"{p.rsplit('/', 1)[1]}.png").is_file())
    photo = sample.image_dir / f"{pictured.rsplit('/', 1)[1]}.png"
    de = next((v.value for v in graph.literals(main) if v.name == "name" and v.language == "de"),
              display_name(graph, main))  # fmt: skip
    asks = [
        (f"Welche Farbe hat {de}?", None),
        (f"which accessories fit the {display_name(graph, main)}?", None),
        ("what material is this made of?", photo),
    ]
    step("questions about products", f"kgf ask {session.path} '{asks[0][0]}'")
    for question, image in asks:
        answer = session.ask(question, image=image)
        print(f"Q: {question}" + (f"  [photo {image.name}]" if image else ""))
        print(f"A: {answer.text}  (confidence {answer.confidence:.2f})")

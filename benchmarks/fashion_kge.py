"""Structure-only KG embeddings (PyKEEN) for the Fashion attribute-completion benchmark.

TransE, DistMult, RotatE and TuckER trained through ``pykeen.pipeline.pipeline`` on the
training triples of one :class:`fusion.tasks.attribute_split.AttributeSplit` (the predicted
relations' training edges plus every other relation of the graph, e.g. ``year``; no
``rev_`` inverses): sLCWA with 32 uniform negatives per positive, Adam lr 0.01, 64
dimensions, a fixed number of epochs (LCWA, 1-N over the 10,250 entities, cost ~10 CPU s an
epoch, and PyKEEN's early stopper evaluates over every entity with batch size 32 on CPU:
both too slow for the 60-minute budget). PyKEEN's filtered evaluator runs on the validation
triples (tail side); then each relation's valid / test edges are ranked on the tail side
among the relation's value nodes only (``model.score_t``, filtered realistic ranks computed
as PyKEEN's ``RankBasedEvaluator`` does): the same question and metric as
:class:`fusion.tasks.attribute.AttributeCompletionTask` (accuracy@1 = realistic hits@1, filtered MRR). Without PyKEEN every model is skipped with the reason.
"""

from __future__ import annotations

import importlib.util

import torch

from fusion.tasks.ranking import KnownTriples, filter_scores_, rank_metrics, ranks_from_scores
from kg.naming import REV_PREFIX

KGE_MODELS = ("TransE", "DistMult", "RotatE", "TuckER")


def pykeen_missing() -> str | None:
    """Why PyKEEN cannot be used (None when it can)."""
    try:
        if importlib.util.find_spec("pykeen") is None:
            raise ImportError("no module named 'pykeen'")
        import pykeen.pipeline  # noqa: F401
    except (ImportError, ValueError) as err:
        return (f"PyKEEN is not installed ({err}); `pip install -c constraints-cpu.txt "
                "-e '.[benchmarks]'`")  # fmt: skip
    return None


def global_ids(num_nodes: dict[str, int]) -> dict[str, int]:
    """Offset of each node type in one entity numbering (types in the given order)."""
    offsets, start = {}, 0
    for t, n in num_nodes.items():
        offsets[t] = start
        start += n
    return offsets


def kge_triples(edges: dict, split, num_nodes: dict[str, int]) -> tuple[dict, dict, list[str]]:
    """``({split: LongTensor [n, 3] (head, relation, tail) global ids}, offsets,
    relation names)``: train = the training message-passing edges (no inverses)."""
    from fusion.tasks.attribute_split import training_edges

    offsets = global_ids(num_nodes)
    mp = training_edges(edges, split)
    names = sorted({r for (_, r, _) in mp if not r.startswith(REV_PREFIX)})
    rel = {r: i for i, r in enumerate(names)}
    train = [torch.stack([ei[0] + offsets[s], torch.full_like(ei[0], rel[r]), ei[1] + offsets[d]], 1)
             for (s, r, d), ei in mp.items() if not r.startswith(REV_PREFIX) and ei.shape[1]]  # fmt: skip
    out = {"train": torch.cat(train).long()}
    for which in ("valid", "test"):
        rows = []
        for i, (s, r, d) in enumerate(split.etypes):
            pairs = split.of(which, i)
            rows.append(torch.stack([pairs[:, 0] + offsets[s],
                                     torch.full_like(pairs[:, 0], rel[r]),
                                     pairs[:, 1] + offsets[d]], 1))  # fmt: skip
        out[which] = torch.cat(rows).long()
    return out, offsets, names


@torch.no_grad()
def value_ranks(model, triples, known, start: int, count: int) -> torch.Tensor:
    """Filtered realistic tail ranks ``[n]`` of ``triples`` (global ids) among the value
    nodes ``start .. start + count`` (PyKEEN's ``score_t``; :mod:`fusion.tasks.ranking`,
    the rank PyKEEN's ``RankBasedEvaluator`` computes)."""
    scores = model.score_t(triples[:, :2])[:, start : start + count].float()
    tails = triples[:, 2] - start
    filt = KnownTriples(known[:, 0], known[:, 2] - start, int(known[:, 0].max()) + 1)
    rows, cols = filt.lookup(triples[:, 0])
    filter_scores_(scores, rows, cols, tails)
    true = scores[torch.arange(len(tails)), tails]
    return ranks_from_scores(true, scores)["realistic"]


def run_kge(model: str, edges: dict, split, num_nodes: dict[str, int], seed: int,
            epochs: int = 30, dim: int = 64, loop: str = "slcwa", negatives: int = 32,
            lr: float = 0.01) -> dict[str, float]:  # fmt: skip
    """Train ``model`` through PyKEEN's pipeline; ``{"valid/acc": ..., "test/acc.<r>": ...,
    "test/mrr.<r>": ..., "test/acc": mean, "test/mrr": mean}``."""
    from pykeen.pipeline import pipeline
    from pykeen.triples import CoreTriplesFactory

    triples, offsets, names = kge_triples(edges, split, num_nodes)
    n_ent = sum(num_nodes.values())

    def factory(t):
        return CoreTriplesFactory(t, num_entities=n_ent, num_relations=len(names),
                                  create_inverse_triples=False)  # fmt: skip

    result = pipeline(
        training=factory(triples["train"]), validation=factory(triples["valid"]),
        testing=factory(triples["test"]), model=model, model_kwargs={"embedding_dim": dim},
        training_loop=loop, training_kwargs={"num_epochs": epochs, "batch_size": 1024, "use_tqdm": False},
        **({"negative_sampler": "basic", "negative_sampler_kwargs": {"num_negs_per_pos": negatives}}
           if loop == "slcwa" else {}),
        optimizer="adam", optimizer_kwargs={"lr": lr},
        random_seed=seed, device="cpu", use_testing_data=False,
        evaluator_kwargs={"filtered": True},
        evaluation_kwargs={"batch_size": 1024, "use_tqdm": False, "targets": ("tail",)},
    )  # fmt: skip
    known = torch.cat([triples["train"], triples["valid"], triples["test"]])
    metrics: dict[str, float] = {}
    model = result.model.eval()
    for which in ("valid", "test"):
        accs, mrrs = [], []
        for (_, r, d) in split.etypes:
            rid = names.index(r)
            mine = triples[which][triples[which][:, 1] == rid]
            if not len(mine):
                continue
            ranks = value_ranks(model, mine, known[known[:, 1] == rid], offsets[d], num_nodes[d])
            m = rank_metrics(ranks, (1,))
            metrics[f"{which}/acc.{r}"], metrics[f"{which}/mrr.{r}"] = m["hits@1"], m["mrr"]
            accs.append(m["hits@1"])
            mrrs.append(m["mrr"])
        metrics[f"{which}/acc"] = sum(accs) / max(1, len(accs))
        metrics[f"{which}/mrr"] = sum(mrrs) / max(1, len(mrrs))
    return metrics

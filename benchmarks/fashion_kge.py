"""Structure-only KG embeddings (PyKEEN) for the Fashion attribute-completion benchmark.

TransE, DistMult, RotatE and TuckER trained through ``pykeen.pipeline.pipeline`` on the
training triples of one :class:`fusion.tasks.attribute_split.AttributeSplit` (the predicted
relations' training edges plus every other relation of the graph, e.g. ``year`` and the
``broader`` hierarchy; no ``rev_`` inverses).

Training: LCWA (1-N scoring, "KvsAll", Ruffinelli et al. 2020; Dettmers et al. 2018;
Balazevic et al. 2019) with PyKEEN's LCWA loop restricted to the tails seen in training
(:func:`value_lcwa_loop`: ~245 value and category nodes). No relation of this graph has a
product as its tail, so full LCWA over all 10,250 entities only adds product columns that
are negatives for every (head, relation) pair -- and PyKEEN scores them by broadcasting
(``[batch, entities, dim]``): measured 244 CPU s for one DistMult epoch, against ~1-5 s here.
Per model (:data:`KGE_SETTINGS`): the loss of its paper or of the 1-N recipe (softmax cross
entropy for TransE / DistMult / RotatE, Ruffinelli et al. 2020; BCE after sigmoid with label
smoothing 0.1 and dropouts 0.3 / 0.4 / 0.5 for TuckER, Balazevic et al. 2019 on
FB15k-237), Adam, early stopping on the validation MRR (:class:`value_stopper`: every
epoch, patience ``patience`` epochs, at most ``epochs``; the best epoch's weights kept in
memory and restored).

Scoring (the same question and metric as
:class:`fusion.tasks.attribute.AttributeCompletionTask`): each relation's valid / test edges
are ranked on the tail side among the relation's value nodes only (``model.score_t(...,
tails=values)``), filtered (the other known values of the product, train + valid + test,
are removed) realistic ranks computed as PyKEEN's ``RankBasedEvaluator`` does: accuracy@1
= realistic hits@1, MRR. PyKEEN's own filtered ``RankBasedEvaluator`` runs once at the end
on the validation triples, tail side, over all entities (``valid/pykeen_mrr``, a cross-check).
Without PyKEEN every model is skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util

import torch

from fusion.tasks.ranking import KnownTriples, filter_scores_, rank_metrics, ranks_from_scores
from kg.naming import REV_PREFIX


@dataclasses.dataclass(frozen=True)
class KGESetting:
    """One model's PyKEEN settings: ``model_kwargs`` (dimensions, dropouts), the loss (a
    PyKEEN loss name), LCWA label smoothing and Adam's learning rate."""

    model_kwargs: dict
    loss: str
    label_smoothing: float = 0.0
    lr: float = 0.01


#: Chosen on validation (seed 0; see benchmarks/README.md, "Fashion attribute completion").
KGE_SETTINGS: dict[str, KGESetting] = {
    "TransE": KGESetting({"embedding_dim": 64, "scoring_fct_norm": 1}, "crossentropy"),
    "DistMult": KGESetting({"embedding_dim": 64}, "crossentropy"),
    "RotatE": KGESetting({"embedding_dim": 32}, "crossentropy"),  # complex: 64 reals
    "TuckER": KGESetting({"embedding_dim": 64, "relation_dim": 32, "dropout_0": 0.3,
                          "dropout_1": 0.4, "dropout_2": 0.5}, "bceaftersigmoid",
                         label_smoothing=0.1),  # fmt: skip
}
KGE_MODELS = tuple(KGE_SETTINGS)


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
    nodes ``start .. start + count`` (PyKEEN's ``score_t`` on those tails only;
    :mod:`fusion.tasks.ranking`, the rank PyKEEN's ``RankBasedEvaluator`` computes)."""
    values = torch.arange(start, start + count)
    scores = model.score_t(triples[:, :2], tails=values).float()
    tails = triples[:, 2] - start
    filt = KnownTriples(known[:, 0], known[:, 2] - start, int(known[:, 0].max()) + 1)
    rows, cols = filt.lookup(triples[:, 0])
    filter_scores_(scores, rows, cols, tails)
    true = scores[torch.arange(len(tails)), tails]
    return ranks_from_scores(true, scores)["realistic"]


def value_metrics(model, triples: dict, split, names, offsets, num_nodes, which: str) -> dict:
    """``{which/acc.<r>, which/mrr.<r>, which/acc, which/mrr}`` (means over relations)."""
    known = torch.cat([triples["train"], triples["valid"], triples["test"]])
    metrics: dict[str, float] = {}
    accs, mrrs = [], []
    was_training = model.training
    model.eval()
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
    model.train(was_training)
    metrics[f"{which}/acc"] = sum(accs) / max(1, len(accs))
    metrics[f"{which}/mrr"] = sum(mrrs) / max(1, len(mrrs))
    return metrics


@functools.cache
def value_lcwa_loop():
    """PyKEEN's ``LCWATrainingLoop`` (tail target) scoring each training (head, relation)
    pair against the entities seen as a tail in training only (``score_t(..., tails=...)``),
    with the dense 0/1 labels of those columns [pairs, tails]; a class built on first use
    (PyKEEN is optional)."""
    from pykeen.training import LCWATrainingLoop
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

    class Pairs(torch.utils.data.Dataset):
        """Unique (head, relation) pairs [P, 2] and their labels [P, T]; indexed by a list."""

        def __init__(self, triples: torch.Tensor, tails: torch.Tensor):
            pairs, inverse = torch.unique(triples[:, :2], dim=0, return_inverse=True)
            column = torch.searchsorted(tails, triples[:, 2].contiguous())
            self.pairs, self.labels = pairs, torch.zeros(len(pairs), len(tails))
            self.labels[inverse, column] = 1.0

        def __len__(self) -> int:
            return len(self.pairs)

        def __getitem__(self, items):
            return {"pairs": self.pairs[items], "target": self.labels[items]}

    class ValueLCWATrainingLoop(LCWATrainingLoop):
        """LCWA over the training tails (see :func:`value_lcwa_loop`)."""

        def __init__(self, **kwargs):
            super().__init__(target="tail", **kwargs)
            self.tails = torch.unique(kwargs["triples_factory"].mapped_triples[:, 2])
            self.num_targets = len(self.tails)

        def _create_training_data_loader(self, triples_factory, sampler, batch_size: int,
                                          drop_last: bool, **kwargs):  # fmt: skip
            if sampler:
                raise NotImplementedError(f"value LCWA has no batch sampler ({sampler=})")
            data = Pairs(triples_factory.mapped_triples, self.tails)
            order = RandomSampler(data) if kwargs.get("shuffle", True) else SequentialSampler(data)
            return DataLoader(data, batch_size=None,
                              sampler=BatchSampler(order, batch_size, drop_last=drop_last))  # fmt: skip

        def _process_batch(self, batch, start, stop, label_smoothing=0.0, slice_size=None):
            pairs, labels = batch["pairs"][start:stop], batch["target"][start:stop]
            scores = self.model.score_t(pairs, tails=self.tails, slice_size=slice_size, mode=self.mode)
            loss = self.loss.process_lcwa_scores(predictions=scores, labels=labels,
                                                 label_smoothing=label_smoothing,
                                                 num_entities=self.num_targets)  # fmt: skip
            return loss + self.model.collect_regularization_term()

    return ValueLCWATrainingLoop


@functools.cache
def value_stopper():
    """A PyKEEN ``Stopper``: every ``frequency`` epochs ``score(model)`` (the validation
    MRR among the value nodes); stops after ``patience`` epochs without a better one and
    restores the best weights, kept in memory (PyKEEN's ``EarlyStopper`` writes them to a
    checkpoint that it ``torch.load``s back as a pickle; this never unpickles anything)."""
    from pykeen.stoppers import Stopper

    class ValueStopper(Stopper):
        best_epoch = None  # PyKEEN's training loop checkpoints to disk when this changes

        def __init__(self, model, *, score, frequency: int = 1, patience: int = 10, **_):
            super().__init__()
            self.model, self.score, self.frequency, self.patience = model, score, frequency, patience
            self.best, self.best_at, self.best_state, self.stopped = -1.0, 0, None, False
            self.history: list[float] = []

        def should_evaluate(self, epoch: int) -> bool:
            return epoch % self.frequency == 0

        def should_stop(self, epoch: int) -> bool:
            value = self.score(self.model)
            self.history.append(value)
            if value > self.best:
                self.best, self.best_at = value, epoch
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.stopped = epoch - self.best_at >= self.patience
            if self.stopped:
                self.restore()
            return self.stopped

        def restore(self) -> None:
            if self.best_state is not None:
                self.model.load_state_dict(self.best_state)

        def get_summary_dict(self) -> dict:
            return {"best_value_epoch": self.best_at, "best": self.best, "history": self.history}

    return ValueStopper


def run_kge(model: str, edges: dict, split, num_nodes: dict[str, int], seed: int,
            epochs: int = 100, patience: int = 10, batch_size: int = 512) -> dict[str, float]:  # fmt: skip
    """Train ``model`` (a :data:`KGE_SETTINGS` name) through PyKEEN's pipeline;
    ``{"valid/acc": ..., "test/acc.<r>": ..., "test/mrr.<r>": ..., "test/acc": mean,
    "test/mrr": mean, "best_epoch": ..., "epochs": ..., "valid/pykeen_mrr": ...}``."""
    from pykeen.pipeline import pipeline
    from pykeen.triples import CoreTriplesFactory

    triples, offsets, names = kge_triples(edges, split, num_nodes)
    n_ent, setting = sum(num_nodes.values()), KGE_SETTINGS[model]

    def factory(t):
        return CoreTriplesFactory(t, num_entities=n_ent, num_relations=len(names),
                                  create_inverse_triples=False)  # fmt: skip

    def score(m) -> float:
        return value_metrics(m, triples, split, names, offsets, num_nodes, "valid")["valid/mrr"]

    result = pipeline(
        training=factory(triples["train"]), validation=factory(triples["valid"]),
        testing=factory(triples["test"]), model=model, model_kwargs=setting.model_kwargs,
        loss=setting.loss, training_loop=value_lcwa_loop(),
        training_kwargs={"num_epochs": epochs, "batch_size": batch_size, "use_tqdm": False,
                         "label_smoothing": setting.label_smoothing},
        stopper=value_stopper(), stopper_kwargs={"score": score, "patience": patience},
        optimizer="adam", optimizer_kwargs={"lr": setting.lr},
        random_seed=seed, device="cpu", use_testing_data=False,
        evaluator_kwargs={"filtered": True},
        evaluation_kwargs={"batch_size": 1024, "use_tqdm": False, "targets": ("tail",)},
    )  # fmt: skip
    stopper = result.stopper
    stopper.restore()
    model_ = result.model.eval()
    metrics = {**value_metrics(model_, triples, split, names, offsets, num_nodes, "valid"),
               **value_metrics(model_, triples, split, names, offsets, num_nodes, "test")}  # fmt: skip
    metrics["valid/pykeen_mrr"] = float(result.metric_results.get_metric("tail.realistic.inverse_harmonic_mean_rank"))
    return {"metrics": metrics, "best_epoch": stopper.best_at, "epochs": len(result.losses)}

"""Per-relation model selection for the Fashion benchmark (:mod:`fashion`).

One FusionGNN scores every attribute relation and is early-stopped on the *mean* validation
MRR, while each relation may peak at another epoch. :class:`PerRelationTrainer` trains
exactly as :class:`fusion.trainer.Trainer` (same steps, same stopping, same final weights)
and in addition keeps, per relation, the metrics of the epoch with that relation's best
validation MRR: whenever a relation's validation MRR improves, the test split is evaluated
once and that relation's validation and test metrics of this epoch are kept. The test
numbers are read, never used to choose: this is the cheapest honest form of keeping one
snapshot of the model per relation (the predictions of relation ``r`` come from the epoch
chosen on ``r``'s validation MRR alone).

:func:`per_relation_metrics` turns the kept metrics into a metrics dict with the keys of a
normal run (``valid/acc.<r>``, ``test/mrr.<r>``, ..., and their means ``valid/acc``,
``test/acc``, ``valid/mrr``, ``test/mrr``).
"""

from __future__ import annotations

import statistics

from fusion.trainer import Trainer

PREFIX = "valid/mrr."


class PerRelationTrainer(Trainer):
    """:class:`~fusion.trainer.Trainer` that also keeps each relation's best-validation
    epoch's metrics in :attr:`picked`: ``{relation: {"epoch": e, "valid/acc.<r>": ...,
    "valid/mrr.<r>": ..., "test/acc.<r>": ..., "test/mrr.<r>": ...}}`` (full-batch runs).

    ``stop="relation"``: early stopping counts the epochs without a better validation MRR of
    *any* relation (default ``"mean"``: of their mean, as the Trainer); the final weights
    remain the best-mean epoch's."""

    def __init__(self, config, stop: str = "mean"):
        super().__init__(config)
        if stop not in ("mean", "relation"):
            raise ValueError(f"stop={stop!r}: expected 'mean' or 'relation'")
        self.stop = stop
        self.picked: dict[str, dict] = {}

    def _validate(self, s, state, record, amp) -> bool:
        better = super()._validate(s, state, record, amp)
        improved = [k[len(PREFIX) :] for k, v in record.items() if k.startswith(PREFIX)
                    and v > self.picked.get(k[len(PREFIX) :], {}).get(k, float("-inf"))]  # fmt: skip
        if improved:
            test = s.evaluate("test", amp)
            for r in improved:
                keep = {k: v for k, v in {**record, **test}.items()
                        if k.split("/", 1)[0] in ("valid", "test") and k.endswith(f".{r}")}  # fmt: skip
                self.picked[r] = {"epoch": state["epoch"], **keep}
            if self.stop == "relation":
                state["bad"], state["stopped_early"] = 0, False
        return better


def per_relation_metrics(picked: dict[str, dict]) -> dict[str, float]:
    """The kept metrics of every relation as one metrics dict, with the means over the
    relations (``{}`` when nothing was kept, e.g. a run without validation)."""
    out: dict[str, float] = {}
    for kept in picked.values():
        out.update({k: v for k, v in kept.items() if k != "epoch"})
    for split in ("valid", "test"):
        for metric in ("acc", "mrr"):
            values = [out[f"{split}/{metric}.{r}"] for r in picked if f"{split}/{metric}.{r}" in out]
            if values:
                out[f"{split}/{metric}"] = statistics.mean(values)
    return out

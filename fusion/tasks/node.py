"""Node classification: one softmax head per label column over the final node embeddings.

The entity classification setting of R-GCN (Schlichtkrull et al., 2018, section 3): a
labelled subset of nodes, a cross-entropy loss on the training labels, accuracy on the
test labels. Labelled entities may have different node types (AIFB: ``Person``,
``PhDStudent``, ``FullProfessor``...): one shared head is applied to each labelled node's
embedding whatever its type. Several label columns give several heads (multi-task), and
the loss is the mean of their cross-entropies.

Shapes: embeddings of the labelled nodes ``[n, out_dim]`` (gathered per type, then
concatenated) -> ``logits[col]`` ``[n, C_col]``; targets ``[n]`` int64 (``-1``: no label).
Metrics: ``acc`` and ``macro_f1`` (means over the label columns) and per column
``acc.<col>``; ``acc`` is the early-stopping metric.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..labels import (
    LabelError,
    ResolvedLabels,
    class_vocabulary,
    read_labels,
    resolve_labels,
    stratified_split,
)
from ..model import ConfigError, FusionGNNConfig, FusionOutput
from .base import Task, register_task


@dataclass
class NodeTaskConfig:
    """``labels``: training labels file; ``valid`` / ``test``: optional files; without a
    ``valid`` file, ``valid_fraction`` of the training rows (stratified, ``split_seed``)
    are held out for early stopping (0: none, train on all rows).

    ``head``: a classification head per label column on the embeddings (``Dropout`` +
    ``Linear``, or an MLP with ``head_hidden`` units); ``false``: none, the embeddings are
    the logits (one label column, ``model.out_dim`` = its number of classes) -- R-GCN's
    setting, with ``gnn_kwargs.out_proj = false`` so that the last GNN layer outputs them.
    """

    labels: str = ""
    valid: str | None = None
    test: str | None = None
    entity_col: str | None = None
    label_cols: list[str] | None = None
    delimiter: str | None = None
    valid_fraction: float = 0.2
    split_seed: int = 0
    head_hidden: int = 0
    head_dropout: float = 0.0
    head: bool = True

    def __post_init__(self):
        if not self.labels:
            raise ConfigError("task 'node' needs a labels file (task.labels / --labels)")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"task.valid_fraction={self.valid_fraction}; expected 0 <= f < 1")
        if isinstance(self.label_cols, str):
            self.label_cols = [self.label_cols]


@register_task
class NodeClassificationTask(Task):
    """Single-label node classification with one head per label column (module docstring)."""

    name = "node"
    Config = NodeTaskConfig
    metric = "acc"

    def __init__(self, config: NodeTaskConfig, graph, edge_index_dict, features=None):
        super().__init__(config, graph, edge_index_dict, features)
        c = config
        read = dict(entity_col=c.entity_col, label_cols=c.label_cols, delimiter=c.delimiter)
        train = read_labels(c.labels, **read)
        read.update(entity_col=train.entity_col, label_cols=train.label_cols)
        tables = {"train": train}
        for split in ("valid", "test"):
            if getattr(c, split):
                tables[split] = read_labels(getattr(c, split), **read)
        self.label_cols = list(train.label_cols)
        self.classes = {}
        for col in self.label_cols:
            classes = class_vocabulary([train], col)
            if len(classes) < 2:
                raise LabelError(
                    f"{c.labels}: label column {col!r} has "
                    + (f"only one class ({classes[0]!r})" if classes else "no labels")
                    + "; classification needs at least two classes"
                )
            for split, table in tables.items():
                extra = sorted(set(class_vocabulary([table], col)) - set(classes))
                if extra:
                    warnings.warn(
                        f"{table.path}: {len(extra)} class(es) of {col!r} never occur in the "
                        f"training labels (e.g. {extra[0]!r}); those {split} rows count as errors",
                        stacklevel=2,
                    )
            self.classes[col] = classes
        self.data: dict[str, ResolvedLabels] = {}
        for split, table in tables.items():
            if split == "train":
                resolved = resolve_labels(graph, table, self.classes)
            else:  # unseen classes stay as targets that no head output can match
                vocab = {
                    col: self.classes[col]
                    + sorted(set(class_vocabulary([table], col)) - set(self.classes[col]))
                    for col in self.label_cols
                }
                resolved = resolve_labels(graph, table, vocab)
            self.data[split] = resolved
        if "valid" not in self.data and c.valid_fraction > 0:
            first = self.data["train"].targets[self.label_cols[0]]
            keep, held = stratified_split(first, c.valid_fraction, c.split_seed)
            if len(held):
                self.data["valid"] = self.data["train"].subset(held)
                self.data["train"] = self.data["train"].subset(keep)
        test = self.data["test"].entities if "test" in self.data else []
        overlap = set(self.data["train"].entities) & set(test)
        if overlap:
            warnings.warn(
                f"{len(overlap)} entities are in both the training and the test labels "
                f"(e.g. {next(iter(overlap))}); test accuracy is then optimistic",
                stacklevel=2,
            )
        self.splits = tuple(s for s in ("train", "valid", "test") if s in self.data)
        self._gather = {s: self._gather_plan(d) for s, d in self.data.items()}

    @staticmethod
    def _gather_plan(labels: ResolvedLabels) -> dict:
        order = labels.order()
        return {
            "index": dict(labels.index),
            "targets": {col: y[order] for col, y in labels.targets.items()},
        }

    def build(self, model_config: FusionGNNConfig) -> None:
        c, d = self.config, model_config.out_dim
        self.heads = nn.ModuleDict()
        if not c.head:
            col = self.label_cols[0]
            n = len(self.classes[col])
            if len(self.label_cols) != 1 or d != n:
                raise ConfigError(
                    f"task.head = false: the embeddings are the logits, so there must be one "
                    f"label column (got {len(self.label_cols)}) and model.out_dim must be its "
                    f"number of classes ({col!r}: {n}; got out_dim={d})"
                )
            self.heads["col0"] = nn.Identity()
            return
        for k, col in enumerate(self.label_cols):
            n = len(self.classes[col])
            if c.head_hidden:
                head = nn.Sequential(
                    nn.Dropout(c.head_dropout), nn.Linear(d, c.head_hidden), nn.ReLU(),
                    nn.Dropout(c.head_dropout), nn.Linear(c.head_hidden, n),
                )  # fmt: skip
            else:
                head = nn.Sequential(nn.Dropout(c.head_dropout), nn.Linear(d, n))
            self.heads[f"col{k}"] = head

    def logits(self, out: FusionOutput, split: str) -> dict[str, Tensor]:
        """``{col: [n, C_col]}`` for the labelled nodes of ``split`` (gathered over types)."""
        plan = self._gather[split]
        h = torch.cat([out.embeddings[t][idx] for t, idx in plan["index"].items()])
        return {col: self.heads[f"col{k}"](h).float() for k, col in enumerate(self.label_cols)}

    def loss(self, out: FusionOutput, batch=None) -> Tensor:
        logits = self.logits(out, "train")
        targets = self._gather["train"]["targets"]
        losses = [
            F.cross_entropy(logits[col], targets[col], ignore_index=-1) for col in self.label_cols
        ]
        return torch.stack(losses).mean()

    @torch.no_grad()
    def evaluate(self, out: FusionOutput, split: str) -> dict[str, float]:
        logits = self.logits(out, split)
        targets = self._gather[split]["targets"]
        metrics: dict[str, float] = {}
        accs, f1s = [], []
        for col in self.label_cols:
            y, pred = targets[col], logits[col].argmax(-1)
            present = y >= 0
            acc = (pred[present] == y[present]).float().mean().item() if present.any() else 0.0
            f1 = macro_f1(pred[present], y[present], len(self.classes[col]))
            metrics[f"acc.{col}"], metrics[f"macro_f1.{col}"] = acc, f1
            accs.append(acc)
            f1s.append(f1)
        metrics["acc"] = sum(accs) / len(accs)
        metrics["macro_f1"] = sum(f1s) / len(f1s)
        if len(self.label_cols) == 1:
            col = self.label_cols[0]
            del metrics[f"acc.{col}"], metrics[f"macro_f1.{col}"]
        return metrics

    def info(self) -> dict:
        return {
            "label_cols": self.label_cols,
            "classes": self.classes,
            "sizes": {s: len(d) for s, d in self.data.items()},
            "node_types": {s: d.node_types for s, d in self.data.items()},
        }

    def check_info(self, saved) -> None:
        if saved.get("classes") and saved["classes"] != self.classes:
            raise LabelError(
                "the labels files now give other classes than the run was trained with; "
                "evaluate with the original files"
            )

    def to_device(self, device):
        from .base import move

        self._gather = move(self._gather, device)
        return self.to(device)


def macro_f1(pred: Tensor, target: Tensor, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``target`` or ``pred``."""
    if len(target) == 0:
        return 0.0
    k = max(num_classes, int(target.max()) + 1, int(pred.max()) + 1)
    confusion = torch.bincount(target * k + pred, minlength=k * k).reshape(k, k).float()
    tp = confusion.diag()
    support, predicted = confusion.sum(1), confusion.sum(0)
    present = (support + predicted) > 0
    f1 = 2 * tp / (support + predicted).clamp(min=1)
    return f1[present].mean().item()

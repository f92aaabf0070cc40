"""The task interface and its registry, :data:`TASKS` (a :class:`fusion.registry.Registry`).

A task owns its data (labels, edge splits), its heads (``nn.Module`` parameters) and its
metrics. The trainer calls, in order::

    task = TASKS[name](config, graph, edge_index_dict, features)
    mp_edges = task.message_passing(edge_index_dict)   # e.g. link: valid/test edges removed
    task.build(model_config)                            # heads sized from the model
    for batch in task.batches(epoch):                   # an epoch = one or more steps
        loss = task.loss(model(features, mp_edges), batch)
    task.evaluate(model(features, mp_edges), "valid")   # {"acc": ...} / {"mrr": ...}

``metric`` names the validation value used for early stopping (higher is better).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..model import ConfigError, FusionGNNConfig, FusionOutput
from ..registry import Registry


class Task(nn.Module):
    """Base class: data + heads + loss + metrics of one training objective."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    metric: ClassVar[str] = ""
    splits: tuple[str, ...] = ()
    eval_train: ClassVar[bool] = True  # report training-split metrics at the end
    trainer_defaults: ClassVar[dict] = {}  # [trainer] defaults of this task (config wins)
    model_defaults: ClassVar[dict] = {}  # [model] defaults of this task (config wins)

    def __init__(self, config, graph, edge_index_dict: Mapping, features=None):
        super().__init__()
        self.config = config

    def message_passing(self, edge_index_dict: Mapping) -> dict:
        """The edges the GNN may propagate over (default: all of them)."""
        return dict(edge_index_dict)

    def build(self, model_config: FusionGNNConfig) -> None:
        """Create the heads for a model with this configuration."""

    def batches(self, epoch: int) -> Iterator[Any]:
        """What :meth:`loss` gets for each step of an epoch (default: one full-batch step)."""
        yield None

    def step_edges(self, batch: Any):
        """None, or ``edit(message-passing edges) -> edges`` for the step of ``batch`` (e.g.
        its supervision edges taken out, so that no target is read off the graph)."""
        return None

    def input_dims(self) -> dict[str, dict[str, int]]:
        """Extra input modalities the task feeds the model: ``{node_type: {modality: d}}``
        (default none); their values come from :meth:`input_features`."""
        return {}

    def input_features(self, edge_index_dict: Mapping) -> dict:
        """``{node_type: {modality: (x [N_t, d], mask [N_t])}}`` for the forward pass over
        ``edge_index_dict`` (that pass's message-passing edges: a training step's, or an
        evaluation's), for the modalities of :meth:`input_dims`."""
        return {}

    def loss(self, out: FusionOutput, batch: Any = None) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, out: FusionOutput, split: str) -> dict[str, float]:
        raise NotImplementedError

    def evaluate_pass(self, out: FusionOutput, split: str, forward) -> dict[str, float]:
        """Metrics on ``split`` given the pass ``out`` over the message-passing edges; a task
        that needs other edges at evaluation time (an inductive split) calls
        ``forward(edit)``, which runs the model over ``edit(message-passing edges)``."""
        return self.evaluate(out, split)

    def info(self) -> dict:
        """JSON-serialisable facts about the data (sizes, classes), saved in ``task.json``."""
        return {}

    def check_info(self, saved: Mapping) -> None:
        """Refuse to evaluate a saved run whose data no longer matches (e.g. new classes)."""

    def to_device(self, device) -> Task:
        """Move the task's data tensors (not only its parameters) to ``device``."""
        return self.to(device)


TASKS: Registry[Task] = Registry("task", base=Task, unknown_error=ConfigError)


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available by its ``name`` (a class attribute)."""
    return TASKS.register(cls.name, cls)


def get_task_class(name: str) -> type[Task]:
    """The task class registered as ``name`` (:class:`ConfigError` with a suggestion
    otherwise)."""
    return TASKS.get_class(name)


def move(value, device):
    """Tensors in nested dicts / lists / tuples moved to ``device``."""
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(move(v, device) for v in value)
    return value

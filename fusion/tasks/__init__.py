"""Training objectives, found by name in :data:`TASKS` (a :class:`fusion.registry.Registry`):
one class per file, registered with :func:`register_task`; link decoders likewise in
:data:`fusion.tasks.decoders.DECODERS`.

- ``node``: node classification (R-GCN entity classification), :mod:`.node`;
- ``link``: link prediction with filtered rank metrics (DistMult / dot), :mod:`.link`;
- ``contrastive``: InfoNCE between two modalities of a node, :mod:`.contrastive`;
- ``attribute``: attribute completion (the hidden value of a product's season, colour...),
  transductive or inductive, :mod:`.attribute`.

>>> from fusion.tasks import TASKS
>>> sorted(TASKS)
['attribute', 'contrastive', 'link', 'node']
"""

from .attribute import AttributeCompletionTask, AttributeTaskConfig
from .base import TASKS, Task, get_task_class, register_task
from .contrastive import ContrastiveTask, ContrastiveTaskConfig
from .decoders import DECODERS, get_decoder
from .link import LinkPredictionTask, LinkTaskConfig
from .node import NodeClassificationTask, NodeTaskConfig

__all__ = [
    "AttributeCompletionTask",
    "AttributeTaskConfig",
    "DECODERS",
    "TASKS",
    "ContrastiveTask",
    "ContrastiveTaskConfig",
    "LinkPredictionTask",
    "LinkTaskConfig",
    "NodeClassificationTask",
    "NodeTaskConfig",
    "Task",
    "get_decoder",
    "get_task_class",
    "register_task",
]

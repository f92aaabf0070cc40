"""Neighbour-sampled mini-batch training (``trainer.batch_size``, ``trainer.fanout``).

GraphSAGE-style training (Hamilton et al., NeurIPS 2017; PyG's ``NeighborLoader`` /
``LinkNeighborLoader`` protocol): an epoch visits the task's training seeds in a random
order, ``batch_size`` at a time; each step samples the ``L``-hop neighbourhood of the
batch's seed nodes (``fanout[i]`` incoming edges per node and edge type at hop ``i``, one
fanout per GNN layer), runs the model on that subgraph only (features sliced by ``n_id``,
edges in local ids: :meth:`fusion.model.FusionGNN.forward` with ``n_id``) and takes the
loss on the seeds, whose rows come first in every node type of the subgraph.

- **node** task: the seeds are the labelled training nodes (of every node type that has
  labels: AIFB's labels span six types, so a batch has seeds of several types at once);
  the loss is the task head's cross-entropy on them.
- **link** task: the seeds are the heads and tails of ``batch_size`` training triples and
  of their negatives (:meth:`fusion.tasks.link.LinkPredictionTask.negatives`), as
  ``LinkNeighborLoader`` seeds a batch with both ends of its edges; the loss is the task's
  :meth:`~fusion.tasks.link.LinkPredictionTask.triple_loss` on their embeddings.

**Sampling backend** (:func:`make_sampler`, the one place that picks it): PyG's
``torch_geometric.sampler.NeighborSampler`` -- the sampler that ``NeighborLoader`` and
``LinkNeighborLoader`` run, called with a ``{node_type: seeds}`` dict as they do for a
heterogeneous graph -- when pyg-lib or torch-sparse is installed; otherwise
:class:`fusion.sampling.NeighborSampler`, the torch-only sampler with the same semantics
(uniform, without replacement, the same output layout). ``trainer.sampler`` forces one.

**Several processes** (:mod:`fusion.distributed`): every worker builds the same global
batches (the epoch's order comes from a generator seeded by ``(seed, epoch)``), takes its
share of each (``torch.tensor_split`` by rank) and weights its loss by its share of the
global batch, so DistributedDataParallel's mean of the gradients is the gradient of the
global batch's mean loss: N workers with ``batch_size`` B follow the curve of one worker
with B. Each epoch reseeds the sampler and torch's generator from ``(seed, epoch, rank)``,
so a resumed run samples as the uninterrupted one would.

**Evaluation and export** run on sampled neighbourhoods too (the evaluated nodes as seeds,
the training fanout, a fixed seed: the same weights give the same metrics), so nothing
ever runs on the full graph; the output has every node type's full ``[N_t, d]`` shape, zero
rows for the nodes not asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .artifacts import ConfigError
from .model import FusionOutput
from .registry import Registry
from .sampling import NeighborSampler, Subgraph

__all__ = [
    "BATCH_PLANS", "SAMPLERS", "MiniBatch", "check_fanout", "default_fanout", "make_sampler",
    "pyg_sampling_available",
]  # fmt: skip

SAMPLERS: Registry = Registry("sampler")
BATCH_PLANS: Registry = Registry("mini-batch task")
EVAL_SEED = 12345
EVAL_BATCH = 1024  # seeds per evaluation batch, at least (no gradients kept)


def default_fanout(layers: int) -> list[int]:
    """15 neighbours at the first hop, 10 at the others (GraphSAGE's and PyG's examples)."""
    return [15] + [10] * (layers - 1)


def check_fanout(fanout: Sequence[int] | None, layers: int) -> list[int]:
    """The fanout per hop: one per GNN layer (``-1``: every neighbour); a clear error
    naming ``--fanout`` and the layer count otherwise."""
    if not fanout:
        return default_fanout(layers)
    fanout = [int(k) for k in fanout]
    if len(fanout) != layers:
        example = ",".join(str(k) for k in default_fanout(layers))
        raise ConfigError(
            f"--fanout (trainer.fanout) has {len(fanout)} value(s) {fanout} but the model has "
            f"{layers} GNN layer(s) (model.layers = {layers}): give one fanout per layer, "
            f"e.g. --fanout {example}, or change --set model.layers"
        )
    if any(k < -1 or k == 0 for k in fanout):
        raise ConfigError(f"--fanout {fanout}: every fanout must be >= 1, or -1 for all neighbours")
    return fanout


def pyg_sampling_available() -> bool:
    """Whether PyG's neighbour sampler can run (it needs pyg-lib or torch-sparse)."""
    import torch_geometric.typing as pyg_typing

    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


def make_sampler(edge_index_dict: Mapping, num_nodes: Mapping[str, int], fanout: Sequence[int],
                 seed: int, backend: str = "auto"):  # fmt: skip
    """A sampler with ``sample_dict({node_type: seeds}) -> HeteroData`` (``n_id``,
    ``batch_size`` per seed type, local ``edge_index``, ``e_id``; the seeds first) and
    ``sample_parts`` (the same as a :class:`fusion.sampling.Subgraph` of plain dicts).
    ``backend``: ``"auto"`` (``"pyg"`` when :func:`pyg_sampling_available`, else
    ``"torch"``), ``"pyg"`` or ``"torch"``."""
    if backend == "auto":
        backend = "pyg" if pyg_sampling_available() else "torch"
    if backend == "pyg" and not pyg_sampling_available():
        raise ConfigError(
            "trainer.sampler = 'pyg' needs pyg-lib or torch-sparse installed; use 'auto' or "
            "'torch' (the torch-only sampler)"
        )
    return SAMPLERS.get_class(backend)(edge_index_dict, num_nodes, list(fanout), seed)


@SAMPLERS.register("torch")
class TorchSampler(NeighborSampler):
    """:class:`fusion.sampling.NeighborSampler` (reseedable)."""

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))


@SAMPLERS.register("pyg")
class PygSampler:
    """PyG's ``NeighborSampler`` (the engine of ``NeighborLoader`` / ``LinkNeighborLoader``)
    with :class:`fusion.sampling.NeighborSampler`'s output; it draws from torch's global
    generator (reseeded per epoch by the trainer)."""

    def __init__(self, edge_index_dict, num_nodes, fanout, seed):
        from torch_geometric.data import HeteroData
        from torch_geometric.sampler import NeighborSampler as PygNeighborSampler

        data = HeteroData()
        for t, n in num_nodes.items():
            data[t].num_nodes = int(n)
        for et, ei in edge_index_dict.items():
            data[et].edge_index = ei
        self.edge_types, self.node_types = list(edge_index_dict), list(num_nodes)
        self.sampler = PygNeighborSampler(data, num_neighbors=list(fanout))

    def reseed(self, seed: int) -> None:
        torch.manual_seed(int(seed))

    def sample_dict(self, seeds: Mapping[str, Tensor]):
        return self.sample_parts(seeds).to_hetero()

    def sample_parts(self, seeds: Mapping[str, Tensor]) -> Subgraph:
        out = self.sampler._sample(seed={t: s.long() for t, s in seeds.items()})
        empty = torch.empty(0, dtype=torch.long)
        sizes = {t: int(s.numel()) for t, s in seeds.items()}
        sub = Subgraph({}, {}, {}, {}, {}, sizes)
        for t in self.node_types:
            n_id = out.node.get(t)
            sub.n_id[t] = n_id if n_id is not None else empty
        perm = self.sampler.perm or {}
        for et in self.edge_types:
            if et in out.row:
                sub.edge_index[et] = torch.stack([out.row[et], out.col[et]])
                edge = out.edge.get(et) if out.edge is not None else None
                if edge is not None:
                    sub.e_id[et] = perm[et][edge] if perm.get(et) is not None else edge
        return sub


# ---------------------------------------------------------------------- what a batch is, per task
class _NodePlan:
    """Node classification: the seeds are the labelled training nodes (every type)."""

    def __init__(self, task):
        plan = task._gather["train"]
        self.task = task
        self.types = list(plan["index"])
        self.ids = torch.cat([plan["index"][t] for t in self.types])  # [n] per-type ids
        self.type_of = torch.cat([
            torch.full((len(plan["index"][t]),), k, dtype=torch.long, device=self.ids.device)
            for k, t in enumerate(self.types)
        ])  # fmt: skip
        self.targets = plan["targets"]  # {col: [n]}

    def __len__(self) -> int:
        return int(self.ids.numel())

    def prepare(self, positions: Tensor) -> dict:
        """The step's data for the rows ``positions`` of the training labels."""
        seeds, order = {}, []
        for k, t in enumerate(self.types):
            mine = positions[self.type_of[positions] == k]
            if mine.numel():
                seeds[t] = self.ids[mine]
                order.append(mine)
        rows = torch.cat(order) if order else positions[:0]
        return {"seeds": seeds, "rows": rows}

    def loss(self, out: FusionOutput, step: dict, global_rows: Tensor, scale: float) -> Tensor:
        h = torch.cat([out.embeddings[t][: len(s)] for t, s in step["seeds"].items()])
        losses = []
        for k, col in enumerate(self.task.label_cols):
            y = self.targets[col]
            logits = self.task.heads[f"col{k}"](h).float()
            total = F.cross_entropy(logits, y[step["rows"]], ignore_index=-1, reduction="sum")
            count = max(int((y[global_rows] >= 0).sum()), 1)
            losses.append(total / count)
        return torch.stack(losses).mean() * scale


class _LinkPlan:
    """Link prediction: the seeds are both ends of the batch's triples and negatives."""

    def __init__(self, task):
        self.task = task
        self.types = list(task.node_types)
        sizes = [task.num_nodes[t] for t in self.types]
        self.bounds = torch.cumsum(torch.tensor([0, *sizes]), 0).tolist()

    def __len__(self) -> int:
        return len(self.task.triples["train"])

    def prepare(self, positions: Tensor) -> dict:
        task = self.task
        pos = task.triples["train"][positions]
        triples = torch.cat([pos, task.negatives(pos)])
        e = triples[:, 0]
        ends = torch.cat([task.src_offset[e] + triples[:, 1], task.dst_offset[e] + triples[:, 2]])
        ids, inverse = torch.unique(ends, return_inverse=True)  # sorted: grouped by type
        seeds = {}
        for k, t in enumerate(self.types):
            lo, hi = self.bounds[k], self.bounds[k + 1]
            mine = ids[(ids >= lo) & (ids < hi)] - lo
            if mine.numel():
                seeds[t] = mine
        n = len(triples)
        return {"seeds": seeds, "triples": triples, "n_pos": len(pos),
                "rows": (inverse[:n], inverse[n:])}  # fmt: skip

    def loss(self, out: FusionOutput, step: dict, global_rows: Tensor, scale: float) -> Tensor:
        emb = torch.cat([out.embeddings[t][: len(s)] for t, s in step["seeds"].items()])
        emb = self.task.scale_embeddings(emb)
        loss = self.task.triple_loss(emb, step["triples"], step["n_pos"], step["rows"])
        return loss * scale * step["n_pos"] / max(len(global_rows), 1)


BATCH_PLANS.register("node", _NodePlan)
BATCH_PLANS.register("link", _LinkPlan)


class _Step(nn.Module):
    """One training step's forward (model + task heads) as one module, the unit that
    DistributedDataParallel wraps: ``forward(step) -> loss``."""

    def __init__(self, mb: MiniBatch):
        super().__init__()
        self.model, self.heads = mb.s.model, mb.s.heads
        self._mb = [mb]  # not a submodule

    def forward(self, step: dict, global_rows: Tensor, scale: float) -> Tensor:
        mb = self._mb[0]
        out = mb.forward(step["seeds"], mb.train_sampler)
        return mb.plan.loss(out, step, global_rows, scale)


# ---------------------------------------------------------------------- the mini-batch loop
class MiniBatch:
    """Mini-batch training and inference for a :class:`fusion.run_setup.RunSetup` ``s``
    (module docstring). ``rank`` / ``world``: this worker among ``world`` workers."""

    def __init__(self, s, batch_size: int, fanout, seed: int, backend: str = "auto",
                 amp: bool = False, rank: int = 0, world: int = 1):  # fmt: skip
        task = s.task
        if task.name not in BATCH_PLANS or s.aux:
            what = f"task {task.name!r}" if task.name not in BATCH_PLANS else "[[aux]] tasks"
            raise ConfigError(
                f"mini-batch training (--batch-size) does not support {what}; the node and "
                "link tasks without [[aux]] do: drop --batch-size to train full batch"
            )
        if batch_size < world:
            raise ConfigError(f"--batch-size {batch_size} is below --nproc {world}: each worker needs a seed")
        self.s, self.batch_size, self.seed, self.amp = s, int(batch_size), int(seed), amp
        self.rank, self.world = rank, world
        self.fanout = check_fanout(fanout, s.model_config.layers)
        self.plan = BATCH_PLANS.get_class(task.name)(task)
        counts = dict(s.model_config.num_nodes)
        self.train_sampler = make_sampler(s.mp, counts, self.fanout, seed, backend)
        self.eval_sampler = make_sampler(s.mp, counts, self.fanout, EVAL_SEED, backend)
        self.step_module = _Step(self)
        self.runner: nn.Module = self.step_module  # DistributedDataParallel(step_module) there

    def forward(self, seeds: Mapping[str, Tensor], sampler) -> FusionOutput:
        """The model's output on the sampled subgraph around ``seeds`` (local rows)."""
        sub = sampler.sample_parts(seeds)
        n_id = {t: sub.n_id[t] for t in self.s.model_config.node_types}
        x = {
            t: {m: (v[n_id[t]], k[n_id[t]]) for m, (v, k) in mods.items()}
            for t, mods in self.s.x.items()
        }
        edges = {et: ei for et, ei in sub.edge_index.items() if et in self.s.mp}
        with torch.autocast(self.s.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.s.model(x, edges, n_id=n_id)
        if self.amp:  # the task heads and losses in float32
            out.embeddings = {t: e.float() for t, e in out.embeddings.items()}
        return out

    def batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        """``(global batch positions, this worker's share)`` of every step of ``epoch``."""
        n = len(self.plan)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=gen).to(self.s.device)
        starts = list(range(0, n, self.batch_size))
        if len(starts) > 1 and n - starts[-1] < self.world:  # every worker needs a seed
            starts.pop()
        for i, start in enumerate(starts):
            batch = order[start : starts[i + 1] if i + 1 < len(starts) else n]
            yield batch, torch.tensor_split(batch, self.world)[self.rank]

    def reseed(self, epoch: int) -> None:
        seed = (self.seed * 1_000_003 + epoch) * 1009 + self.rank
        self.train_sampler.reseed(seed)
        torch.manual_seed(seed)

    def train_epoch(self, optimizer, params, epoch: int, grad_clip: float, on_step) -> list[float]:
        """One epoch of steps; the losses of the global batches (all workers' mean)."""
        self.reseed(epoch)
        losses = []
        for batch, share in self.batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            step = self.plan.prepare(share)
            loss = self.runner(step, batch, float(self.world))
            on_step(loss, len(losses))
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            losses.append(loss.detach() / self.world)
        total = torch.stack(losses) if losses else torch.zeros(0)
        if self.world > 1:
            torch.distributed.all_reduce(total)
        return total.tolist()

    @torch.no_grad()
    def output(self, seeds: Mapping[str, Tensor] | None = None) -> FusionOutput:
        """Full-shape embeddings ``{t: [N_t, d]}`` with the rows of ``seeds`` (``None``:
        every node) computed on their sampled neighbourhoods, in batches; others zero."""
        c = self.s.model_config
        if seeds is None:
            seeds = {t: torch.arange(n, device=self.s.device) for t, n in c.num_nodes.items()}
        self.eval_sampler.reseed(EVAL_SEED)
        emb = {t: torch.zeros(c.num_nodes[t], c.out_dim, device=self.s.device) for t in c.node_types}
        for t, ids in seeds.items():
            for chunk in ids.split(max(self.batch_size, EVAL_BATCH)):
                out = self.forward({t: chunk}, self.eval_sampler)
                emb[t][chunk] = out.embeddings[t][: len(chunk)].float()
        return FusionOutput(emb, {})

    def split_seeds(self, split: str) -> dict[str, Tensor] | None:
        """The nodes an evaluation of ``split`` needs (None: every node)."""
        if split not in self.s.task.splits:
            return {}
        if self.s.task.name == "node":
            return dict(self.s.task._gather[split]["index"])
        return None

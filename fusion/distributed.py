"""Multi-process training on PyTorch's own engine: ``torch.distributed.run`` + DDP.

``kgf train ... --batch-size B --nproc N`` (:func:`launch`) starts N local workers through
``torch.distributed.run`` (``torchrun --standalone``), each running the same ``kgf train``
command line without ``--nproc``; several machines run ``torchrun`` themselves (README,
"Mini-batch and multi-process training"). A worker sees torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...) and :func:`from_env` joins the process
group: gloo on CPU, NCCL on CUDA (one GPU per worker, ``cuda:LOCAL_RANK``). The model and
the task heads train inside ``DistributedDataParallel`` (:meth:`Context.wrap`), every
worker on its share of each global mini-batch (:mod:`fusion.minibatch`).

Rank 0 owns the run folder (:mod:`fusion.runs`): it chooses the run name and checks the
folder (:meth:`Context.agree`, the others get its answer or its error), writes
``run.json``, the metrics, the checkpoints, the final artefacts and, last,
``complete.json``. It alone evaluates; the others follow its early-stopping decision
(:meth:`Context.share_flags`). A worker that dies takes the others down (torchrun's
agent stops them), leaving a run without ``complete.json`` whose last checkpoint
``kgf train ... --resume`` continues (with any number of workers). The workers read the
checkpoint of a resumed run from the run folder, so several machines need the workspace
on a shared file system.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Context", "from_env", "launch", "under_launcher", "worker_argv"]

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class LaunchError(RuntimeError):
    """A worker failed; says how to continue."""


def under_launcher() -> bool:
    """Whether this process is a worker started by ``torch.distributed.run``."""
    return all(k in os.environ for k in ENV_KEYS) and int(os.environ["WORLD_SIZE"]) > 1


@dataclass
class Context:
    """This worker: ``rank`` of ``world`` (``local_rank`` on its machine)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    started: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The worker's device: ``cuda:LOCAL_RANK`` on CUDA."""
        if device.type == "cuda" and self.world > 1:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def start(self, device: torch.device) -> None:
        """Join the process group (gloo on CPU, NCCL on CUDA)."""
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)
            self.started = True

    def close(self) -> None:
        """Leave the process group: the run's DDP wrappers are freed first (they hold the group;
        one freed at interpreter exit can abort the worker with "terminate called without an
        active exception"), then every worker waits for the others and the group is destroyed."""
        if self.started and torch.distributed.is_initialized():
            gc.collect()  # the run's objects form cycles that hold the DDP wrapper
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
            self.started = False

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` in ``DistributedDataParallel`` (itself with one worker)."""
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def agree(self, decide: Callable[[], str]) -> str:
        """Rank 0's ``decide()``, on every worker; its exception is raised on all of them
        (as a RuntimeError with its message on the others)."""
        if self.world == 1:
            return decide()
        error = None
        if self.is_main:
            try:
                text = "ok\0" + decide()
            except Exception as err:  # re-raised below, after the others heard of it
                error, text = err, f"error\0{err}"
        else:
            text = ""
        text = self._broadcast_text(text)
        if error is not None:
            raise error
        kind, _, value = text.partition("\0")
        if kind == "error":
            raise RuntimeError(f"rank 0 refused the run: {value}")
        return value

    def _broadcast_text(self, text: str) -> str:
        data = torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8)
        size = torch.tensor([data.numel()], dtype=torch.long)
        torch.distributed.broadcast(size, 0)
        buf = data if self.is_main else torch.zeros(int(size), dtype=torch.uint8)
        torch.distributed.broadcast(buf, 0)
        return bytes(buf.tolist()).decode("utf-8")

    def share_flags(self, *flags: bool) -> tuple[bool, ...]:
        """Rank 0's booleans on every worker."""
        if self.world == 1:
            return tuple(bool(f) for f in flags)
        t = torch.tensor([float(f) for f in flags])
        torch.distributed.broadcast(t, 0)
        return tuple(bool(v) for v in t.tolist())


def from_env() -> Context:
    """The worker's :class:`Context` from torchrun's environment (one process without)."""
    if not under_launcher():
        return Context()
    env = os.environ
    return Context(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))


def worker_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (the workers' command line)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(nproc: int, module: str, argv: Sequence[str], cores: int | None = None) -> None:
    """Run ``python -m module *argv`` in ``nproc`` local workers through
    ``torch.distributed.run --standalone`` (no restarts); warns when ``nproc`` exceeds the
    CPU cores. A failed worker raises :class:`LaunchError` naming ``--resume``."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if nproc < 1:
        raise ValueError(f"--nproc {nproc}: expected at least 1 worker")
    cores = cores or os.cpu_count() or 1
    if nproc > cores:
        warnings.warn(
            f"--nproc {nproc} is more than the {cores} CPU core(s) of this machine: the "
            "workers will share cores and train slower, not faster",
            stacklevel=2,
        )
    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "--module", module]
    )
    args.training_script_args = list(argv)  # as given (not parsed as launcher options)
    try:
        run(args)
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        raise LaunchError(
            f"training worker {rank} failed (exit code {failure.exitcode}); the run keeps its "
            "last checkpoint: continue it with the same command plus --resume --run NAME "
            "(`kgf runs WORKSPACE` lists it as incomplete)"
        ) from None

"""Train a :class:`~fusion.model.FusionGNN` on a task; checkpoints, resume, metrics, export.

Full-batch training (the R-GCN protocol of Schlichtkrull et al., 2018): every step runs
the model over the whole message-passing graph, Adam with weight decay, early stopping on
the task's validation metric; or, with ``trainer.batch_size``, neighbour-sampled mini-batches
(:mod:`fusion.minibatch`), in one process or in several under ``torch.distributed.run``
with DistributedDataParallel (:mod:`fusion.distributed`: rank 0 writes the run). A run
lives in ``WORKSPACE/models/<run-name>/`` (the layout, the resume checkpoints and when a run
counts as complete: :mod:`fusion.runs`); its
configuration comes from :func:`fusion.config.resolve_config` (defaults < TOML file <
arguments < overrides). Nothing is pickled.

The loop: :meth:`Trainer._epoch` (one pass over the task's batches), :meth:`Trainer._validate`
(validation metric, best weights, early stopping), :meth:`Trainer._checkpoint` (the resume
state as one set), :meth:`Trainer._finish` (best weights back, final metrics, the final
artefacts, then the completion marker). A resume truncates ``metrics.jsonl`` to the
checkpoint's epoch, so no epoch is logged twice.

Run names default to ``<task>-<gnn>-<fusion>-<date>-<HHMM>`` (:func:`default_run_name`,
made unique). Besides ``metrics.jsonl``, a run gets ``metrics.png`` (loss and validation
metrics per epoch, :func:`write_metrics_plot`) when matplotlib is installed, and
TensorBoard event files in ``tensorboard/`` when the ``tensorboard`` package is.

Device: ``"auto"`` takes CUDA when present (bf16 autocast there, ``trainer.amp``), else
CPU; on CPU the run is deterministic for a seed (``torch.use_deterministic_algorithms``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as save_tensors

from kg.workspace import atomic_write_bytes, atomic_write_json

from . import distributed
from .artifacts import (
    ConfigError,
    load_into,
    read_weights,
    state_tensors,
)
from .config import (  # noqa: F401  (re-exported: fusion.trainer.resolve_config, ...)
    DataConfig,
    RunConfig,
    TrainerConfig,
    apply_overrides,
    resolve_config,
)
from .run_logs import (  # noqa: F401  (re-exported: fusion.trainer.default_run_name, ...)
    board_scalars,
    default_run_name,
    progress_postfix,
    tensorboard_writer,
    write_metrics_plot,
)
from .run_setup import (  # noqa: F401  (re-exported: fusion.trainer.graph_tensors, ...)
    RunSetup,
    _autocast_works,
    deterministic,
    export_embeddings,
    graph_tensors,
    load_optimizer,
    open_run,
    optimizer_tensors,
    resolve_device,
)
from .runs import (  # noqa: F401  (re-exported: fusion.trainer.list_runs, run_directory)
    EMBEDDINGS_FILE,
    HEADS_FILE,
    METRICS_FILE,
    RUN_FILE,
    TASK_FILE,
    latest_checkpoint,
    list_runs,
    mark_complete,
    mark_incomplete,
    models_dir,
    read_checkpoint,
    run_directory,
    save_checkpoint,
    truncate_metrics,
)

_Setup = RunSetup
#: what an out-of-memory RuntimeError says (CUDA, the CPU allocator)
OOM_MESSAGES = ("out of memory", "can't allocate memory", "not enough memory")


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, out of memory, a run that exists); says what to do."""


@dataclass
class TrainResult:
    """What :func:`train` returns: final metrics (``"<split>/<metric>"``) and where the run is."""

    run_dir: Path
    metrics: dict[str, float]
    best_epoch: int
    epochs: int
    stopped_early: bool
    seconds: float



class Trainer:
    """Runs one training configuration (see :func:`train` and the module docstring)."""

    def __init__(self, config: RunConfig):
        self.config = config

    def fit(self, workspace, run_name: str | None = None, resume: bool = False,
            overwrite: bool = False, graph=None, features=None) -> TrainResult:  # fmt: skip
        tc = self.config.trainer
        workspace = Path(workspace)
        started = time.perf_counter()
        ctx = distributed.from_env()
        if ctx.world > 1 and not tc.batch_size:
            raise ConfigError(
                f"{ctx.world} workers (--nproc / torchrun) need mini-batches: pass --batch-size "
                "(trainer.batch_size), each worker samples its share of every batch"
            )
        device = ctx.device(resolve_device(tc.device))
        ctx.start(device)
        try:
            run_name = ctx.agree(lambda: self._run_folder(workspace, run_name, resume, overwrite))
            return self._fit_on(ctx, workspace, run_name, resume, graph, features, device, started)
        finally:
            ctx.close()

    def _run_folder(self, workspace: Path, run_name, resume: bool, overwrite: bool) -> str:
        run_name = run_name or default_run_name(self.config, workspace)
        self._check_run_folder(models_dir(workspace) / run_name, run_name, resume, overwrite)
        return run_name

    def _fit_on(self, ctx, workspace, run_name, resume, graph, features, device, started):
        tc = self.config.trainer
        run_dir = models_dir(workspace) / run_name
        amp = tc.amp and device.type == "cuda"
        determ = tc.deterministic if tc.deterministic is not None else device.type == "cpu"
        torch.manual_seed(tc.seed)
        if device.type == "cuda":
            torch.cuda.manual_seed_all(tc.seed)
        with deterministic(determ):
            try:
                return self._fit(
                    workspace, run_dir, run_name, resume, graph, features, device, amp, started,
                    ctx,
                )  # fmt: skip
            except RuntimeError as err:
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                oom = isinstance(err, torch.OutOfMemoryError)
                if not (oom or any(m in first for m in OOM_MESSAGES)):
                    raise
                raise TrainingError(self._oom_message(device, first)) from err

    def _oom_message(self, device, first: str) -> str:
        m, tc = self.config.model, self.config.trainer
        if not tc.batch_size:
            return (
                f"{device} ran out of memory training full batch ({first}): train on "
                "neighbour-sampled mini-batches with --batch-size (trainer.batch_size, e.g. "
                "--batch-size 1024 --fanout 15,10), or shrink model.hidden (now "
                f"{m.get('hidden', 64)}) / model.layers (now {m.get('layers', 2)})"
            )
        return (
            f"{device} ran out of memory ({first}); lower --batch-size (now {tc.batch_size}) "
            f"or --fanout (now {tc.fanout or 'the default'}), shrink model.hidden (now "
            f"{m.get('hidden', 64)}), or use fewer modalities / device='cpu'"
        )

    def _check_run_folder(self, run_dir: Path, run_name: str, resume: bool, overwrite: bool):
        """Refuse to resume what has no checkpoint (or other settings), or to replace a
        run unasked; ``overwrite`` removes the old run."""
        if resume:
            if latest_checkpoint(run_dir) is None:
                raise TrainingError(
                    f"nothing to resume in {run_dir} (no checkpoint-*/ folder; runs of older "
                    "kgfusion versions cannot be resumed): train it again with overwrite=True"
                )
            saved = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
            mine = self.config.to_dict()
            for section in ("task", "aux", "model", "data"):
                if saved[section] != mine[section]:
                    raise TrainingError(
                        f"cannot resume {run_name}: its [{section}] was {saved[section]}, now "
                        f"{mine[section]}; only [trainer] settings may change on resume"
                    )
        elif run_dir.exists():
            if not overwrite:
                raise TrainingError(
                    f"{run_dir} exists; pass resume=True to continue it, overwrite=True to replace it, or another run name"
                )
            shutil.rmtree(run_dir)

    def _fit(self, workspace, run_dir, run_name, resume, graph, features, device, amp, started,
             ctx):  # fmt: skip
        tc, main = self.config.trainer, ctx.is_main
        s = _Setup(self.config, workspace, graph, features, device)
        if tc.batch_size:
            from .minibatch import MiniBatch

            s.minibatch = MiniBatch(s, tc.batch_size, tc.fanout, tc.seed, tc.sampler, amp,
                                    ctx.rank, ctx.world)  # fmt: skip
            s.minibatch.runner = ctx.wrap(s.minibatch.step_module, device)
        else:
            amp = amp and _autocast_works(s)
        params = list(s.model.parameters()) + list(s.heads.parameters())
        optimizer = torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)
        if resume:
            state, best = self._restore(run_dir, s, optimizer, main)
        else:
            state, best = self._start(run_dir, s, main), None
        from kg.progress import progress

        board = tensorboard_writer(run_dir) if main else None
        bar = progress(
            range(state["epoch"], tc.epochs), desc=run_name, unit="epoch",
            enabled=tc.progress and main, initial=state["epoch"], total=tc.epochs,
        )  # fmt: skip
        logfile = run_dir / METRICS_FILE
        try:
            with open(logfile, "a", encoding="utf-8") if main else contextlib.nullcontext() as log:
                for epoch in bar:
                    if state["stopped_early"]:
                        break
                    epoch_start = time.perf_counter()
                    record = self._epoch(s, optimizer, params, state, epoch, amp, run_name)
                    better = main and self._validate(s, state, record, amp)
                    better, state["stopped_early"] = ctx.share_flags(better, state["stopped_early"])
                    if not main:
                        continue
                    if better:
                        best = (state_tensors(s.model), state_tensors(s.heads))
                    record["seconds"] = round(time.perf_counter() - epoch_start, 4)
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    board_scalars(board, record, record["epoch"])
                    bar.set_postfix(progress_postfix(s.task, state, record))
                    last = epoch + 1 == tc.epochs or state["stopped_early"]
                    if (epoch + 1) % tc.checkpoint_every == 0 or last:
                        self._checkpoint(run_dir, s, optimizer, state, best)
                final = {}
                if main:
                    if best is None:  # zero epochs: the initial weights are the result
                        best = (state_tensors(s.model), state_tensors(s.heads))
                        self._checkpoint(run_dir, s, optimizer, state, best)
                    final = self._finish(run_dir, run_name, s, state, best, amp, log)
            board_scalars(board, final, state["epoch"])
        finally:
            bar.close()
            if board is not None:
                board.close()
        return TrainResult(
            run_dir, final, state["best_epoch"], state["epoch"], state["stopped_early"],
            time.perf_counter() - started,
        )  # fmt: skip

    def _start(self, run_dir: Path, s: _Setup, main: bool = True) -> dict:
        """A new run: its folder, ``run.json``, ``task.json`` (written by rank 0 only); the
        initial loop state."""
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_dir / RUN_FILE, self.config.to_dict())
            atomic_write_json(run_dir / TASK_FILE, {"task": s.task.info(), "aux": [a.info() for a in s.aux]})  # fmt: skip
        return {"epoch": 0, "step": 0, "best": None, "best_epoch": 0, "bad": 0,
                "stopped_early": False}  # fmt: skip

    def _epoch(self, s: _Setup, optimizer, params, state: dict, epoch: int, amp: bool,
               run_name: str) -> dict:  # fmt: skip
        """One pass over the task's batches (0-based ``epoch``); the epoch's log record."""
        tc = self.config.trainer
        s.model.train()
        s.heads.train()
        losses = []

        def check(loss, i: int, done: int = 0) -> None:  # done: steps counted in state
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss is {loss.item()} at epoch {epoch + 1}, step {i + 1} (global "
                    f"step {state['step'] + i + 1 - done}) of run {run_name}; lower trainer.lr "
                    f"(now {tc.lr}), set trainer.grad_clip, or check the features for "
                    "NaN / inf values"
                )

        if s.minibatch is not None:
            losses = s.minibatch.train_epoch(optimizer, params, epoch, tc.grad_clip, check)
            state["step"] += len(losses)
            state["epoch"] = epoch + 1
            return {"epoch": epoch + 1, "step": state["step"], "loss": sum(losses) / len(losses)}
        for i, batch in enumerate(s.task.batches(epoch)):
            optimizer.zero_grad(set_to_none=True)
            out = s.forward(amp, s.task.step_edges(batch))
            loss = s.task.loss(out, batch)
            for aux, weight in zip(s.aux, s.aux_weights, strict=True):
                loss = loss + weight * aux.loss(out)
            check(loss, i, i)
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            optimizer.step()
            state["step"] += 1
            losses.append(loss.item())
        state["epoch"] = epoch + 1
        return {"epoch": epoch + 1, "step": state["step"], "loss": sum(losses) / len(losses)}

    def _validate(self, s: _Setup, state: dict, record: dict, amp: bool) -> bool:
        """Evaluate on ``valid`` when due (metrics go into ``record``), track the best epoch
        and early stopping; True when this epoch's weights are the new best."""
        tc, epoch = self.config.trainer, state["epoch"]
        if "valid" not in s.task.splits:
            state["best_epoch"] = epoch
            return True
        if epoch % tc.eval_every:
            return False
        metrics = s.evaluate("valid", amp)
        record.update(metrics)
        value = metrics[f"valid/{s.task.metric}"]
        if state["best"] is None or value > state["best"] + tc.min_delta:
            state["best"], state["best_epoch"], state["bad"] = value, epoch, 0
            return True
        state["bad"] += tc.eval_every
        if tc.patience and state["bad"] >= tc.patience:
            state["stopped_early"] = True
        return False

    @staticmethod
    def _checkpoint(run_dir: Path, s: _Setup, optimizer, state: dict, best) -> None:
        """The resume state as one set (:func:`fusion.runs.save_checkpoint`): current and
        best weights, optimizer, RNG in one safetensors file, the loop state in JSON."""
        tensors = {f"model.{k}": v for k, v in state_tensors(s.model).items()}
        tensors.update({f"heads.{k}": v for k, v in state_tensors(s.heads).items()})
        tensors.update({f"best.model.{k}": v for k, v in state_tensors(best[0]).items()})
        tensors.update({f"best.heads.{k}": v for k, v in state_tensors(best[1]).items()})
        optim, groups = optimizer_tensors(optimizer)
        tensors.update({f"optim.{k}": v for k, v in optim.items()})
        tensors["rng.cpu"] = torch.get_rng_state()
        if s.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(s.device)
        save_checkpoint(run_dir, state["epoch"], tensors, {**state, "param_groups": groups})

    def _restore(self, run_dir: Path, s: _Setup, optimizer, main: bool = True) -> tuple[dict, tuple]:
        """Load the newest checkpoint; the run becomes incomplete and its metrics log is cut
        back to the checkpoint's epoch (by rank 0)."""
        tc = self.config.trainer
        path = latest_checkpoint(run_dir)
        tensors, saved = read_checkpoint(path)
        if main:
            mark_incomplete(run_dir)
            truncate_metrics(run_dir, saved["epoch"])
        load_into(s.model, tensors, path, prefix="model.")
        load_into(s.heads, tensors, path, prefix="heads.")
        torch.set_rng_state(tensors["rng.cpu"])
        if "rng.cuda" in tensors and s.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], s.device)
        optim = {k[len("optim.") :]: v for k, v in tensors.items() if k.startswith("optim.")}
        load_optimizer(optimizer, optim, saved.pop("param_groups"))
        for group in optimizer.param_groups:  # trainer settings may change on resume
            group["lr"], group["weight_decay"] = tc.lr, tc.weight_decay
        best = tuple(
            {k[len(p) :]: v.to(s.device) for k, v in tensors.items() if k.startswith(p)}
            for p in ("best.model.", "best.heads.")
        )
        saved["stopped_early"] = False  # a resumed run gets its new epochs
        return saved, best

    def _finish(self, run_dir: Path, run_name: str, s: _Setup, state: dict, best, amp: bool,
                log) -> dict[str, float]:  # fmt: skip
        """Best weights back, final metrics, the final artefacts, then ``complete.json``."""
        s.model.load_state_dict(best[0])
        s.heads.load_state_dict(best[1])
        final = {}
        for split in ("train", "valid", "test"):
            if split != "train" or s.task.eval_train:
                final.update(s.evaluate(split, amp))
        log.write(json.dumps({"final": True, "best_epoch": state["best_epoch"], **final}) + "\n")
        log.flush()
        s.model.save(run_dir)
        atomic_write_bytes(run_dir / HEADS_FILE, save_tensors(state_tensors(s.heads)))
        export_embeddings(s, run_dir / EMBEDDINGS_FILE, run_name, amp)
        log.flush()
        write_metrics_plot(run_dir)
        summary = {"task": self.config.task, "best_epoch": state["best_epoch"],
                   "epochs": state["epoch"], "metrics": final}  # fmt: skip
        mark_complete(run_dir, summary)
        return final


def load_embeddings(run_dir) -> dict[str, torch.Tensor]:
    """The ``embeddings.safetensors`` of a run: ``{node_type: [N_t, out_dim]}``."""
    return read_weights(Path(run_dir) / EMBEDDINGS_FILE)


# ---------------------------------------------------------------------- entry points
def train(
    workspace,
    task: str | None = None,
    labels=None,
    valid=None,
    test=None,
    entity_col: str | None = None,
    label_cols: list[str] | None = None,
    relations: list[str] | None = None,
    gnn: str | None = None,
    fusion: str | None = None,
    mode: str | None = None,
    config_path=None,
    overrides: dict | None = None,
    run_name: str | None = None,
    device: str | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    resume: bool = False,
    overwrite: bool = False,
    graph=None,
    features=None,
) -> TrainResult:
    """Train on the workspace's graph (and its features, when ``kgf encode`` wrote some).

    Arguments left as None keep the value of ``config_path`` (TOML) or the default
    (task ``node``, gnn ``rgcn``, fusion ``attention``, mode ``early``, device ``auto``,
    seed 0). ``overrides``: ``{"trainer.lr": 0.01, "model.hidden": 16, "epochs": 50}``.
    ``graph`` / ``features``: already loaded objects, to skip reading the workspace.
    """
    config = resolve_config(
        config_path, overrides, task=task, labels=labels, valid=valid, test=test,
        entity_col=entity_col, label_cols=label_cols, relations=relations, gnn=gnn,
        fusion=fusion, mode=mode, device=device, seed=seed, progress=progress,
    )  # fmt: skip
    return Trainer(config).fit(
        workspace, run_name=run_name, resume=resume, overwrite=overwrite, graph=graph,
        features=features,
    )  # fmt: skip


def evaluate(
    workspace, run_name: str, split: str = "test", device: str = "auto", graph=None, features=None
) -> dict[str, float]:
    """Re-evaluate a trained run on ``split`` (``train`` / ``valid`` / ``test``): rebuilds the
    task data from the saved configuration, loads the best weights
    (:func:`fusion.run_setup.open_run`), returns the metrics."""
    s, amp = open_run(workspace, run_name, device, graph=graph, features=features)
    if split not in s.task.splits:
        raise ConfigError(
            f"run {run_name} has no {split!r} split; splits: {', '.join(s.task.splits)}"
        )
    return s.evaluate(split, amp)


__all__ = [
    "DataConfig",
    "RunConfig",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "TrainingError",
    "default_run_name",
    "evaluate",
    "export_embeddings",
    "graph_tensors",
    "list_runs",
    "load_embeddings",
    "resolve_config",
    "train",
    "write_metrics_plot",
]

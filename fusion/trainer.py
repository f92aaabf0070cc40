"""Train a :class:`~fusion.model.FusionGNN` on a task; checkpoints, resume, metrics, export.

Full-batch training (the R-GCN protocol of Schlichtkrull et al., 2018): every step runs
the model over the whole message-passing graph, Adam with weight decay, early stopping on
the task's validation metric. A run lives in ``WORKSPACE/models/<run-name>/`` (the layout,
the resume checkpoints and when a run counts as complete: :mod:`fusion.runs`); its
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
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as save_tensors
from torch import nn

from kg.workspace import atomic_write_bytes, atomic_write_json

from .artifacts import (
    WEIGHTS_FILE,
    ConfigError,
    config_from_dict,
    load_into,
    read_config,
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
from .model import FusionGNN, FusionGNNConfig
from .run_logs import (  # noqa: F401  (re-exported: fusion.trainer.default_run_name, ...)
    board_scalars,
    default_run_name,
    progress_postfix,
    tensorboard_writer,
    write_metrics_plot,
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


# ---------------------------------------------------------------------- helpers
def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available; use 'cpu'")
    return device


@contextlib.contextmanager
def deterministic(enabled: bool):
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` inside the block only."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])



def _select_features(features, data: DataConfig, device):
    """``{type: {modality: (x, mask)}}`` on ``device`` after the ``[data]`` choices."""
    if features is None or not data.features:
        return None
    from .features import NodeFeatures

    chosen = {}
    for t, mods in features.features.items():
        keep = {m: v for m, v in mods.items() if data.modalities is None or m in data.modalities}
        if keep:
            chosen[t] = keep
    return NodeFeatures(chosen, features.spec)



def graph_tensors(graph, data: DataConfig) -> tuple[dict, dict[str, int]]:
    """``(edge_index_dict, num_nodes)`` of the message-passing graph: the graph's relations
    with ``rev_`` inverses, plus literal nodes and type edges when ``data`` asks for them
    (:meth:`kg.ProductGraph.to_pyg`)."""
    pyg = graph.to_pyg(literal_nodes=data.literal_nodes, type_edges=data.type_edges)
    return dict(pyg.edge_index_dict), {t: int(pyg[t].num_nodes) for t in pyg.node_types}


def _features_on(features, device) -> dict:
    if features is None:
        return {}
    return {
        t: {m: (x.to(device).float(), mask.to(device).bool()) for m, (x, mask) in mods.items()}
        for t, mods in features.features.items()
    }


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    """An optimizer's state as flat tensors (``state.<param>.<name>``) + JSON param groups."""
    sd = optimizer.state_dict()
    tensors = {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            tensors[f"state.{pid}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, groups: list) -> None:
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})



# ---------------------------------------------------------------------- the trainer
class _Setup:
    """Graph, features, task(s), model and heads of a run, on one device."""

    def __init__(
        self, config: RunConfig, workspace: Path, graph, features, device, model_config=None
    ):
        import kg

        from .features import FEATURES_FILE, NodeFeatures

        self.graph = graph if graph is not None else kg.load_graph(workspace)
        if features is None and config.data.features and (workspace / FEATURES_FILE).is_file():
            features = NodeFeatures.load(workspace)
        self.features = _select_features(features, config.data, device)
        self.edges, num_nodes = graph_tensors(self.graph, config.data)
        metadata = (list(num_nodes), list(self.edges))
        task_cls, task_cfg = config.task_config()
        self.task = task_cls(task_cfg, self.graph, self.edges, self.features)
        self.aux, self.aux_weights = [], []
        for section in config.aux:
            cls, cfg = config.task_config(section)
            self.aux.append(cls(cfg, self.graph, self.edges, self.features))
            self.aux_weights.append(float(section.get("weight", getattr(cfg, "weight", 1.0))))
        mp = self.task.message_passing(self.edges)
        for aux in self.aux:
            mp = aux.message_passing(mp)
        self.model_config = model_config or FusionGNNConfig.for_graph(
            metadata, num_nodes, self.features, **config.model
        )
        self.model = FusionGNN(self.model_config)
        self.task.build(self.model_config)
        for aux in self.aux:
            aux.build(self.model_config)
        self.heads = nn.ModuleDict(
            {"task": self.task, **{f"aux{i}": a for i, a in enumerate(self.aux)}}
        )
        self.device = device
        self.model.to(device)
        self.task.to_device(device)
        for aux in self.aux:
            aux.to_device(device)
        self.x = _features_on(self.features, device)
        self.mp = {k: v.to(device) for k, v in mp.items()}

    def forward(self, amp: bool, edit=None):  # edit: message-passing edges -> others
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
            return self.model(self.x, self.mp if edit is None else edit(self.mp))

    def evaluate(self, split: str, amp: bool) -> dict[str, float]:
        """Metrics of the task (and aux tasks, prefixed) on ``split``, eval mode."""
        self.model.eval()
        self.heads.eval()
        with torch.no_grad():
            out = self.forward(amp)
            out.embeddings = {t: e.float() for t, e in out.embeddings.items()}
            metrics = {}
            if split in self.task.splits:
                found = self.task.evaluate_pass(out, split, lambda e: self.forward(amp, e))
                metrics.update({f"{split}/{k}": v for k, v in found.items()})
            for aux in self.aux:
                if split in aux.splits:
                    metrics.update(
                        {f"{split}/{aux.name}.{k}": v for k, v in aux.evaluate(out, split).items()}
                    )
        return metrics


def _autocast_works(s: _Setup) -> bool:
    """One bf16 forward pass as a probe: an op without a bf16 kernel on this device (e.g. a
    sparse product) falls back to float32 with a warning instead of failing mid-run."""
    try:
        with torch.no_grad():
            s.forward(True)
        return True
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        warnings.warn(
            f"bf16 autocast failed on {s.device} ({first}); training in float32", stacklevel=3
        )
        return False



class Trainer:
    """Runs one training configuration (see :func:`train` and the module docstring)."""

    def __init__(self, config: RunConfig):
        self.config = config

    def fit(self, workspace, run_name: str | None = None, resume: bool = False,
            overwrite: bool = False, graph=None, features=None) -> TrainResult:  # fmt: skip
        cfg, tc = self.config, self.config.trainer
        workspace = Path(workspace)
        started = time.perf_counter()
        run_name = run_name or default_run_name(cfg, workspace)
        run_dir = models_dir(workspace) / run_name
        self._check_run_folder(run_dir, run_name, resume, overwrite)
        device = resolve_device(tc.device)
        amp = tc.amp and device.type == "cuda"
        determ = tc.deterministic if tc.deterministic is not None else device.type == "cpu"
        torch.manual_seed(tc.seed)
        if device.type == "cuda":
            torch.cuda.manual_seed_all(tc.seed)
        with deterministic(determ):
            try:
                return self._fit(
                    workspace, run_dir, run_name, resume, graph, features, device, amp, started
                )
            except torch.OutOfMemoryError as err:
                m = cfg.model
                raise TrainingError(
                    f"{device} ran out of memory ({str(err).splitlines()[0]}); shrink model.hidden "
                    f"(now {m.get('hidden', 64)}), model.layers (now {m.get('layers', 2)}), the "
                    "batch (task.batch_size / task.eval_batch_size), or use fewer modalities / "
                    "device='cpu'"
                ) from err

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

    def _fit(self, workspace, run_dir, run_name, resume, graph, features, device, amp, started):
        tc = self.config.trainer
        s = _Setup(self.config, workspace, graph, features, device)
        amp = amp and _autocast_works(s)
        params = list(s.model.parameters()) + list(s.heads.parameters())
        optimizer = torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)
        if resume:
            state, best = self._restore(run_dir, s, optimizer)
        else:
            state, best = self._start(run_dir, s), None
        from kg.progress import progress

        board = tensorboard_writer(run_dir)
        bar = progress(
            range(state["epoch"], tc.epochs), desc=run_name, unit="epoch", enabled=tc.progress,
            initial=state["epoch"], total=tc.epochs,
        )  # fmt: skip
        try:
            with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as log:
                for epoch in bar:
                    if state["stopped_early"]:
                        break
                    epoch_start = time.perf_counter()
                    record = self._epoch(s, optimizer, params, state, epoch, amp, run_name)
                    if self._validate(s, state, record, amp):
                        best = (state_tensors(s.model), state_tensors(s.heads))
                    record["seconds"] = round(time.perf_counter() - epoch_start, 4)
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    board_scalars(board, record, record["epoch"])
                    bar.set_postfix(progress_postfix(s.task, state, record))
                    last = epoch + 1 == tc.epochs or state["stopped_early"]
                    if (epoch + 1) % tc.checkpoint_every == 0 or last:
                        self._checkpoint(run_dir, s, optimizer, state, best)
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

    def _start(self, run_dir: Path, s: _Setup) -> dict:
        """A new run: its folder, ``run.json``, ``task.json``; the initial loop state."""
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
        for i, batch in enumerate(s.task.batches(epoch)):
            optimizer.zero_grad(set_to_none=True)
            out = s.forward(amp, s.task.step_edges(batch))
            loss = s.task.loss(out, batch)
            for aux, weight in zip(s.aux, s.aux_weights, strict=True):
                loss = loss + weight * aux.loss(out)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss is {loss.item()} at epoch {epoch + 1}, step {i + 1} (global "
                    f"step {state['step'] + 1}) of run {run_name}; lower trainer.lr "
                    f"(now {tc.lr}), set trainer.grad_clip, or check the features for "
                    "NaN / inf values"
                )
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

    def _restore(self, run_dir: Path, s: _Setup, optimizer) -> tuple[dict, tuple]:
        """Load the newest checkpoint; the run becomes incomplete and its metrics log is cut
        back to the checkpoint's epoch."""
        tc = self.config.trainer
        path = latest_checkpoint(run_dir)
        tensors, saved = read_checkpoint(path)
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


def export_embeddings(s: _Setup, path: Path, run_name: str, amp: bool) -> None:
    """Write the final node embeddings, one ``[N_t, out_dim]`` float32 tensor per node type
    (row ``i`` is node ``graph.iri(type, i)``), computed on the message-passing graph."""
    s.model.eval()
    with torch.no_grad():
        out = s.forward(amp)
    tensors = {t: e.float().cpu().contiguous() for t, e in out.embeddings.items()}
    from kg.workspace import graph_version

    meta = {"format": "kgfusion-embeddings", "run": run_name, "dim": str(s.model_config.out_dim),
            "graph_version": graph_version(s.graph)}  # fmt: skip
    atomic_write_bytes(path, save_tensors(tensors, metadata=meta))


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
    task data from the saved configuration, loads the best weights, returns the metrics."""
    workspace = Path(workspace)
    run_dir = run_directory(workspace, run_name)
    saved = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    config = RunConfig(
        task=saved["task"], aux=saved["aux"], model=saved["model"],
        data=config_from_dict(DataConfig, saved["data"], "run.json [data]"),
        trainer=config_from_dict(TrainerConfig, {**saved["trainer"], "device": device}, "run.json [trainer]"),
    )  # fmt: skip
    dev = resolve_device(device)
    model_config = FusionGNNConfig.from_dict(read_config(run_dir))
    s = _Setup(config, workspace, graph, features, dev, model_config=model_config)
    info = json.loads((run_dir / TASK_FILE).read_text(encoding="utf-8"))
    s.task.check_info(info["task"])
    for module, path in ((s.model, run_dir / WEIGHTS_FILE), (s.heads, run_dir / HEADS_FILE)):
        load_into(module, read_weights(path), path)
    if split not in s.task.splits:
        raise ConfigError(
            f"run {run_name} has no {split!r} split; splits: {', '.join(s.task.splits)}"
        )
    amp = config.trainer.amp and dev.type == "cuda" and _autocast_works(s)
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

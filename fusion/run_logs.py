"""What a training run logs besides ``metrics.jsonl``: its default name, the
``metrics.png`` curves (matplotlib, when installed) and TensorBoard scalars (the
``tensorboard`` package, when installed), and the progress bar's postfix. Used by :class:`fusion.trainer.Trainer`.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from kg.workspace import atomic_write_bytes

from .config import RunConfig
from .runs import METRICS_FILE, models_dir


def default_run_name(config: RunConfig, workspace) -> str:
    """A readable, new run name: ``<task>-<gnn>-<fusion>-<YYYY-MM-DD-HHMM>``, e.g.
    ``link-rgcn-attention-2026-12-04-1059``; ``-2``, ``-3``, ... when that folder exists."""
    model = config.model
    base = (
        f"{config.task.get('name', 'node')}-{model.get('gnn', 'rgcn')}-"
        f"{model.get('fusion', 'attention')}-" + time.strftime("%Y-%m-%d-%H%M")
    )
    root, name, n = models_dir(workspace), base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def write_metrics_plot(run_dir) -> Path | None:
    """``metrics.png`` of a run: the training loss and the validation metrics per epoch,
    from ``metrics.jsonl``. Drawn with matplotlib's Agg canvas when matplotlib is
    installed (None otherwise, and when no epoch was logged)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    import io

    run_dir = Path(run_dir)
    epochs = []
    for line in (run_dir / METRICS_FILE).read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and not record.get("final") and "epoch" in record:
                epochs.append(record)
    if not epochs:
        return None
    figure = Figure(figsize=(9, 3.5), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, metric_axes = figure.subplots(1, 2)
    loss_axes.plot([r["epoch"] for r in epochs], [r["loss"] for r in epochs], label="loss")
    loss_axes.set(xlabel="epoch", ylabel="training loss", title=run_dir.name)
    names = sorted(  # the metrics in [0, 1] (not e.g. the mean rank, on another scale)
        k for k in {k for r in epochs for k in r if k.startswith("valid/")}
        if all(0.0 <= r[k] <= 1.0 for r in epochs if isinstance(r.get(k), (int, float)))
    )  # fmt: skip
    for name in names:
        points = [(r["epoch"], r[name]) for r in epochs if name in r]
        metric_axes.plot(*zip(*points, strict=True), marker=".", label=name)
    metric_axes.set(xlabel="epoch", title="validation")
    for axes in (loss_axes, metric_axes):
        axes.xaxis.get_major_locator().set_params(integer=True)
    if names:
        metric_axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    path = run_dir / "metrics.png"
    atomic_write_bytes(path, buffer.getvalue())
    return path


def tensorboard_writer(run_dir: Path):
    """A TensorBoard ``SummaryWriter`` logging into ``run_dir/tensorboard`` when the
    ``tensorboard`` package is installed, else None (nothing is logged)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def board_scalars(board, record: dict, step: int) -> None:
    """The numbers of a metrics record as TensorBoard scalars at ``step`` (epoch)."""
    if board is None:
        return
    for key, value in record.items():
        skip = key in ("epoch", "step", "final", "best_epoch", "seconds")
        if not skip and isinstance(value, (int, float)):
            board.add_scalar(key, value, step)
    board.flush()



def progress_postfix(task, state: dict, record: dict) -> dict:
    """The progress bar's postfix after an epoch: loss, the task's validation metric
    (``task.metric``) and the best value so far, with its epoch."""
    postfix = {"loss": f"{record['loss']:.4f}"}
    if "valid" in task.splits and state["best"] is not None:
        metric = f"valid/{task.metric}"
        postfix[f"valid_{task.metric}"] = f"{record.get(metric, float('nan')):.4f}"
        postfix["best"] = f"{state['best']:.4f}@{state['best_epoch']}"
    return postfix

__all__ = [
    "board_scalars",
    "default_run_name",
    "progress_postfix",
    "tensorboard_writer",
    "write_metrics_plot",
]

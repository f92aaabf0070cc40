"""The trained runs of a workspace: their folder layout, when one counts, the newest one.

A run of :func:`fusion.trainer.train` lives in ``WORKSPACE/models/<run>/``::

    run.json               the resolved run configuration   } written when the run starts
    task.json              facts about the task data        }
    metrics.jsonl          one JSON object per evaluated epoch, then the final metrics
    checkpoint-<epoch>/    the resume state as ONE set: state.safetensors (weights, best
                           weights, optimizer, RNG) + trainer_state.json, written into a
                           temporary folder and renamed into place (older ones removed)
    config.json            FusionGNNConfig of the best model  } FusionGNN.load(run_dir)
    model.safetensors      weights of the best model          }  the final artefacts,
    heads.safetensors      task (and auxiliary) heads          }  written when training
    embeddings.safetensors final node embeddings [N_t, d]      }  ends
    complete.json          the completion marker, written last (atomically)

**A run counts only once it is complete**: it has ``complete.json`` (or, for runs written
before the marker existed and embeddings exported by hand, ``embeddings.safetensors`` and
no marker-era checkpoint). A run that was interrupted (killed after a checkpoint, or being
resumed right now) is listed as incomplete and skipped by :func:`find_run`, so it never
hides the older complete runs. **The newest run** is the complete run that completed last
(the marker's, else the embeddings', modification time; ties by name).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import save as save_tensors
from torch import Tensor

from kg.hints import did_you_mean
from kg.workspace import MODELS_DIR, atomic_directory, atomic_write_bytes, atomic_write_json

from .artifacts import ArtifactError, ConfigError, read_weights

RUN_FILE = "run.json"
TASK_FILE = "task.json"
METRICS_FILE = "metrics.jsonl"
HEADS_FILE = "heads.safetensors"
EMBEDDINGS_FILE = "embeddings.safetensors"
COMPLETE_FILE = "complete.json"
CHECKPOINT_PREFIX = "checkpoint-"
CHECKPOINT_TENSORS = "state.safetensors"
CHECKPOINT_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


@dataclass(frozen=True)
class RunInfo:
    """One folder of ``WORKSPACE/models``.

    ``task``: the task name (``"node"``, ``"link"``; None when unknown), ``relations``: the
    relations a link run predicts, ``finished``: when it completed (seconds since the epoch;
    None while incomplete)."""

    name: str
    path: Path
    complete: bool
    task: str | None
    relations: tuple[str, ...]
    finished: float | None


def models_dir(workspace) -> Path:
    """``WORKSPACE/models``."""
    return Path(workspace) / MODELS_DIR


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_info(path) -> RunInfo:
    """What a run folder holds (see the module docstring for when it is complete)."""
    path = Path(path)
    marker = path / COMPLETE_FILE
    if marker.is_file():
        done: Path | None = marker
    elif (path / EMBEDDINGS_FILE).is_file() and not any(_checkpoints(path)):
        done = path / EMBEDDINGS_FILE  # a run from before the marker, or hand-made embeddings
    else:
        done = None
    summary = _read_json(marker) if done == marker else {}
    task = summary.get("task") or _read_json(path / RUN_FILE).get("task", {})
    return RunInfo(
        name=path.name, path=path, complete=done is not None,
        task=task.get("name") if isinstance(task, dict) else None,
        relations=tuple(task.get("relations", [])) if isinstance(task, dict) else (),
        finished=done.stat().st_mtime if done is not None else None,
    )  # fmt: skip


def scan_runs(workspace) -> list[RunInfo]:
    """Every run folder of the workspace: the complete ones oldest first, then the
    incomplete ones by name. Hidden folders (temporary writes) are no runs."""
    root = models_dir(workspace)
    if not root.is_dir():
        return []
    found = [run_info(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    done = sorted((r for r in found if r.complete), key=lambda r: (r.finished, r.name))
    return done + sorted((r for r in found if not r.complete), key=lambda r: r.name)


def list_runs(workspace, incomplete: bool = False) -> list[str]:
    """Names of the complete runs (``incomplete=True``: of the incomplete ones), sorted."""
    return sorted(r.name for r in scan_runs(workspace) if r.complete != incomplete)


def find_runs(workspace, *, task: str | None = None,
              relation: str | None = None) -> list[RunInfo]:  # fmt: skip
    """The complete runs of ``task`` trained for ``relation`` (each when given), oldest
    first: the last one is the newest. Incomplete runs are never among them."""
    return [
        r
        for r in scan_runs(workspace)
        if r.complete
        and (task is None or r.task == task)
        and (relation is None or relation in r.relations)
    ]


def find_run(workspace, name: str | None = None, *, task: str | None = None,
             relation: str | None = None) -> RunInfo | None:  # fmt: skip
    """The one run finder. ``name`` (a folder of ``models/`` or a path): that run when it is
    complete, else None. Without: the newest of :func:`find_runs`, or None."""
    if name:
        path = Path(name) if Path(name).is_absolute() else models_dir(workspace) / name
        info = run_info(path) if path.is_dir() else None
        return info if info is not None and info.complete else None
    runs = find_runs(workspace, task=task, relation=relation)
    return runs[-1] if runs else None


def run_directory(workspace, name: str) -> Path:
    """``WORKSPACE/models/<name>`` of a complete run, or a :class:`ConfigError` that lists
    the runs (and says what to do with an incomplete one)."""
    path = models_dir(workspace) / name
    if path.is_dir() and not run_info(path).complete:
        raise ConfigError(
            f"run {name!r} in {workspace} is incomplete (interrupted before it finished): "
            f"continue it with `kgf train {workspace} --run {name} --resume` (same settings) "
            "or replace it with --overwrite"
        )
    if not (path / RUN_FILE).is_file():
        runs = list_runs(workspace)
        hint = did_you_mean(name, runs, paren=True)
        raise ConfigError(
            f"no trained run {name!r} in {workspace}{hint}; runs: {', '.join(runs) or 'none'}"
        )
    return path


# ---------------------------------------------------------------------- completion
def mark_complete(run_dir, summary: dict) -> None:
    """Write ``complete.json`` (after every final artefact): from now on the run counts."""
    atomic_write_json(Path(run_dir) / COMPLETE_FILE, {**summary, "finished": time.time()})


def mark_incomplete(run_dir) -> None:
    """Before a run's files change again (resume): drop the marker, then the final
    embeddings, in that order, so that no moment shows a complete run with stale files."""
    run_dir = Path(run_dir)
    (run_dir / COMPLETE_FILE).unlink(missing_ok=True)
    (run_dir / EMBEDDINGS_FILE).unlink(missing_ok=True)


# ---------------------------------------------------------------------- checkpoints
def _checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        match = _CHECKPOINT.match(p.name)
        if match and p.is_dir():
            found.append((int(match.group(1)), p))
    return sorted(found)


def save_checkpoint(run_dir, epoch: int, tensors: dict[str, Tensor], state: dict) -> Path:
    """Write ``checkpoint-<epoch>/`` as one set: ``state.safetensors`` (``tensors``: CPU,
    contiguous, unshared) and ``trainer_state.json`` (``state``, JSON) go into a temporary
    folder that is renamed into place, then older checkpoints are removed. A kill at any
    moment leaves the previous checkpoint or this one, never a mix."""
    run_dir = Path(run_dir)
    target = run_dir / f"{CHECKPOINT_PREFIX}{epoch}"
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / CHECKPOINT_TENSORS).write_bytes(save_tensors(tensors))
        atomic_write_json(tmp / CHECKPOINT_STATE, {**state, "epoch": epoch})
    for _, old in _checkpoints(run_dir):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir) -> Path | None:
    """The newest ``checkpoint-<epoch>/`` of a run, or None."""
    found = _checkpoints(Path(run_dir))
    return found[-1][1] if found else None


def read_checkpoint(path, device="cpu") -> tuple[dict[str, Tensor], dict]:
    """``(tensors, trainer state)`` of a checkpoint folder (safetensors + JSON only)."""
    path = Path(path)
    state_path = path / CHECKPOINT_STATE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{state_path} cannot be read ({err}); resume from scratch") from None
    return read_weights(path / CHECKPOINT_TENSORS, device), state


def truncate_metrics(run_dir, epoch: int) -> None:
    """Keep the epoch records of ``metrics.jsonl`` up to ``epoch`` (a resume goes on from
    its checkpoint's epoch; later lines and the final record would be written again)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by a kill
            continue
        if not record.get("final") and record.get("epoch", 0) <= epoch:
            keep.append(line + "\n")
    atomic_write_bytes(path, "".join(keep).encode("utf-8"))


__all__ = [
    "RunInfo",
    "find_run",
    "find_runs",
    "latest_checkpoint",
    "list_runs",
    "mark_complete",
    "mark_incomplete",
    "models_dir",
    "read_checkpoint",
    "run_directory",
    "run_info",
    "save_checkpoint",
    "scan_runs",
    "truncate_metrics",
]

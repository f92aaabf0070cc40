"""What ``kgf runs`` shows: the runs of a workspace, and two runs side by side.

Reads what :mod:`fusion.runs` keeps per run (``run.json``, ``metrics.jsonl``,
``complete.json``) and returns :class:`kgfusion.display.Rows`; nothing is loaded into a
model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .display import Rows


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _last_metrics(run_dir: Path) -> dict:
    """The final record of ``metrics.jsonl``, else its last epoch record, else {}."""
    from fusion.runs import METRICS_FILE

    last: dict = {}
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return last
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by a kill
            continue
        if isinstance(record, dict):
            last = record
    return last


def _main_metric(task: str | None) -> str | None:
    """The task's early-stopping metric (``acc``, ``mrr``), or None for an unknown task."""
    if not task:
        return None
    from fusion.artifacts import ConfigError
    from fusion.tasks import get_task_class

    try:
        return get_task_class(task).metric
    except (KeyError, ConfigError):  # an unknown name (UnknownNameError is a KeyError)
        return None


def run_metrics(info) -> dict[str, float]:
    """The metrics of a run: the final ones of a complete run (``complete.json``), the
    last logged epoch's of an incomplete one."""
    summary = _read_json(info.path / "complete.json") if info.complete else {}
    metrics = summary.get("metrics") or _last_metrics(info.path)
    return {k: v for k, v in metrics.items() if "/" in k and isinstance(v, (int, float))}


def _date(info) -> str:
    from fusion.runs import RUN_FILE

    when = info.finished
    if when is None:
        started = info.path / RUN_FILE
        when = started.stat().st_mtime if started.is_file() else info.path.stat().st_mtime
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


def runs_output(workspace) -> Rows:
    """One row per run of ``WORKSPACE/models`` (complete ones oldest first, then the
    incomplete): name, task, what it predicts (relations or label columns), model
    (gnn/fusion/mode), the task's main metric on valid and test, date, complete."""
    from fusion.runs import RUN_FILE, scan_runs

    records = []
    for info in scan_runs(workspace):
        config = _read_json(info.path / RUN_FILE)
        task = config.get("task", {}) if isinstance(config.get("task"), dict) else {}
        model = config.get("model", {}) if isinstance(config.get("model"), dict) else {}
        metric = _main_metric(info.task)
        metrics = run_metrics(info)
        targets = list(info.relations) or list(task.get("label_cols") or [])
        records.append({
            "run": info.name, "task": info.task, "predicts": targets,
            "model": "/".join(str(model.get(k, d)) for k, d in
                              (("gnn", "rgcn"), ("fusion", "attention"), ("mode", "early"))),
            "metric": metric,
            "valid": metrics.get(f"valid/{metric}") if metric else None,
            "test": metrics.get(f"test/{metric}") if metric else None,
            "date": _date(info), "complete": info.complete,
        })  # fmt: skip
    columns = ["run", "task", "predicts", "model", "metric", "valid", "test", "date", "complete"]
    return Rows(columns, records, empty=f"no runs in {Path(workspace) / 'models'}; train one "
                f"with `kgf train {workspace} ...`")  # fmt: skip


def _flatten(value, prefix: str = "") -> dict:
    """``{"trainer": {"lr": 0.01}}`` -> ``{"trainer.lr": 0.01}`` (lists stay values)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict = {}
    for key, inner in value.items():
        out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _with_defaults(saved: dict) -> dict:
    """A ``run.json`` with the defaults of the keys it leaves out (``[model]`` and
    ``[task]`` keep only what was given), so that runs compare by what they used."""
    import dataclasses

    from fusion.config import MODEL_SETTINGS
    from fusion.model import FusionGNNConfig

    out = dict(saved)
    model = saved.get("model") if isinstance(saved.get("model"), dict) else {}
    defaults = dataclasses.asdict(FusionGNNConfig())
    out["model"] = {k: model.get(k, defaults[k]) for k in MODEL_SETTINGS}
    task = dict(saved.get("task") or {})
    metric_task = task.get("name")
    if metric_task and _main_metric(metric_task) is not None:
        from fusion.tasks import get_task_class

        for f in dataclasses.fields(get_task_class(metric_task).Config):
            if f.name not in task and f.default is not dataclasses.MISSING:
                task[f.name] = _plain(f.default)
            elif f.name not in task and f.default_factory is not dataclasses.MISSING:
                task[f.name] = _plain(f.default_factory())
    out["task"] = task
    return out


def compare_output(workspace, first: str, second: str) -> Rows:
    """Two runs side by side: the configuration keys whose values differ (``run.json``,
    dotted keys like ``trainer.lr``), then every metric of either run."""
    from fusion.artifacts import ConfigError
    from fusion.runs import RUN_FILE, models_dir, run_info

    if first == second:
        raise ConfigError(f"--compare {first} {second}: name two different runs")
    infos, configs = [], []
    for name in (first, second):
        path = models_dir(workspace) / name
        if not (path / RUN_FILE).is_file():
            from fusion.runs import list_runs
            from kg.hints import did_you_mean

            names = list_runs(workspace) + list_runs(workspace, incomplete=True)
            raise ConfigError(f"no run {name!r} in {workspace}"
                              f"{did_you_mean(name, names, paren=True)}; runs: "
                              f"{', '.join(sorted(names)) or 'none'}")  # fmt: skip
        infos.append(run_info(path))
        configs.append(_flatten(_with_defaults(_read_json(path / RUN_FILE))))
    keys = sorted(set(configs[0]) | set(configs[1]))
    differ = {k: [configs[0].get(k), configs[1].get(k)] for k in keys
              if configs[0].get(k) != configs[1].get(k)}  # fmt: skip
    metrics = [run_metrics(i) for i in infos]
    names = sorted(set(metrics[0]) | set(metrics[1]))
    side = {k: [metrics[0].get(k), metrics[1].get(k)] for k in names}
    complete = [i.complete for i in infos]
    shown = lambda v: v if isinstance(v, str) or v is None else json.dumps(v)  # noqa: E731
    records = [{"section": "config", "key": k, first: shown(a), second: shown(b)}
               for k, (a, b) in differ.items()]  # fmt: skip
    records += [{"section": "metric", "key": k, first: a, second: b} for k, (a, b) in side.items()]
    records.append({"section": "run", "key": "complete", first: complete[0], second: complete[1]})
    document = {"runs": [first, second], "complete": complete, "config": differ, "metrics": side}
    return Rows(["section", "key", first, second], records, document=document)


def config_keys_output(task: str = "node") -> Rows:
    """Every key a run configuration takes (``--set SECTION.KEY=VALUE`` or a TOML
    ``[section]``) with its default for ``task``: ``[task]`` (that task's settings),
    ``[model]``, ``[data]`` and ``[trainer]`` (with the task's own trainer defaults)."""
    import dataclasses

    from fusion.config import MODEL_SETTINGS, DataConfig, TrainerConfig
    from fusion.model import FusionGNNConfig
    from fusion.tasks import get_task_class

    task_cls = get_task_class(task)

    def default(f: dataclasses.Field):
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return "(required)"

    records = [{"key": "task.name", "default": task}]
    for f in dataclasses.fields(task_cls.Config):
        records.append({"key": f"task.{f.name}", "default": default(f)})
    model = {f.name: f for f in dataclasses.fields(FusionGNNConfig)}
    records += [{"key": f"model.{name}",
                 "default": task_cls.model_defaults.get(name, default(model[name]))}
                for name in MODEL_SETTINGS]  # fmt: skip
    records += [{"key": f"data.{f.name}", "default": default(f)}
                for f in dataclasses.fields(DataConfig)]  # fmt: skip
    for f in dataclasses.fields(TrainerConfig):
        value = default(f)
        if f.name in task_cls.trainer_defaults:
            value = task_cls.trainer_defaults[f.name]
        records.append({"key": f"trainer.{f.name}", "default": value})
    for record in records:
        if not isinstance(record["default"], str):
            record["default"] = json.dumps(record["default"])
    footer = ["(set one with --set KEY=VALUE or a flag (--epochs, --lr, --hidden), or in a TOML "
              "file given to --config; --task changes the task's keys and defaults)"]  # fmt: skip
    return Rows(["key", "default"], records, footer=footer)


def effective_config(config) -> dict:
    """A :class:`fusion.config.RunConfig` as a dict with every default filled in: the
    task's typed settings and the model settings of :class:`fusion.model.FusionGNNConfig`
    that the run will use (``run.json`` keeps only what was given)."""
    import dataclasses

    from fusion.config import MODEL_SETTINGS
    from fusion.model import FusionGNNConfig

    out = config.to_dict()
    _, task = config.task_config()
    out["task"] = {"name": config.task.get("name", "node"), **_plain(dataclasses.asdict(task))}
    defaults = dataclasses.asdict(FusionGNNConfig())
    out["model"] = {k: config.model.get(k, defaults[k]) for k in MODEL_SETTINGS}
    return out


def _plain(value):
    """Tuples as lists and paths as strings, for TOML."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value

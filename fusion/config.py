"""The configuration of a training run: dataclasses, TOML files, overrides.

A run's configuration comes from defaults, an optional TOML file, the function arguments
and ``overrides`` (in that order of precedence, last wins); unknown keys are refused with
a suggestion. A TOML file looks like::

    [task]
    name = "node"
    labels = "trainingSet.tsv"      # relative paths: relative to the TOML file
    test = "testSet.tsv"
    [model]
    gnn = "rgcn"
    fusion = "attention"
    hidden = 16
    [trainer]
    epochs = 50
    lr = 0.01
    [[aux]]                          # optional auxiliary losses
    name = "contrastive"
    weight = 0.1

:func:`resolve_config` gives the :class:`RunConfig` that :mod:`fusion.trainer` runs and
saves as ``run.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kg.hints import did_you_mean

from .artifacts import ConfigError, config_from_dict
from .tasks import get_task_class

SECTIONS = ("task", "aux", "model", "data", "trainer")
MODEL_SETTINGS = (
    "fusion", "fusion_kwargs", "gnn", "gnn_kwargs", "hidden", "out_dim", "layers", "dropout",
    "residual", "norm", "mode", "input_proj", "node_embeddings",
)  # fmt: skip
TASK_PATH_KEYS = ("labels", "valid", "test")


@dataclass
class TrainerConfig:
    """Optimisation settings (section ``[trainer]``).

    ``patience``: evaluations without improvement of the validation metric before
    stopping (0: never stop early); ``eval_every``: epochs between evaluations;
    ``checkpoint_every``: epochs between resume checkpoints (and at the end);
    ``deterministic``: None = on CPU only; ``amp``: bf16 autocast on CUDA. A task may
    change the defaults (``Task.trainer_defaults``: link prediction uses lr 0.001, 300
    epochs, patience 50; ``Task.model_defaults`` likewise for ``[model]``: attribute
    completion uses residual connections); the config file and overrides still win.

    ``batch_size``: 0 = full batch; else seed nodes (node task) or training triples (link
    task) per step, each on its sampled neighbourhood, ``fanout`` neighbours per hop (one
    per GNN layer, -1 = all; empty: 15 then 10), ``sampler`` ``auto`` | ``pyg`` | ``torch``
    (:mod:`fusion.minibatch`).
    """

    epochs: int = 200
    lr: float = 0.01
    weight_decay: float = 5e-4
    patience: int = 20
    min_delta: float = 0.0
    eval_every: int = 1
    grad_clip: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    deterministic: bool | None = None
    checkpoint_every: int = 10
    progress: bool = True
    batch_size: int = 0
    fanout: list[int] = field(default_factory=list)
    sampler: str = "auto"

    def __post_init__(self):
        if self.epochs < 0 or self.eval_every < 1 or self.checkpoint_every < 1:
            raise ConfigError("trainer.epochs >= 0, eval_every >= 1, checkpoint_every >= 1")
        if self.lr <= 0:
            raise ConfigError(f"trainer.lr={self.lr}; expected > 0")
        if self.batch_size < 0 or self.sampler not in ("auto", "pyg", "torch"):
            raise ConfigError("trainer.batch_size >= 0 (0: full batch), trainer.sampler in "
                              "auto / pyg / torch")  # fmt: skip
        if isinstance(self.fanout, (int, str)):
            self.fanout = [int(k) for k in str(self.fanout).split(",") if k.strip()]


@dataclass
class DataConfig:
    """The graph and features the model sees (section ``[data]``).

    ``features = false`` ignores the workspace's features (embeddings only: plain R-GCN);
    ``modalities`` keeps only these. ``literal_nodes``: every distinct literal (value,
    datatype, language) becomes a node of type ``Literal`` linked to its subjects by the
    predicate, and ``type_edges``: every ``rdf:type`` triple becomes a ``type`` edge to the
    class (its own node when the class IRI is in the graph, else a ``Type`` node) -- the
    graph as R-GCN sees an RDF data set (Schlichtkrull et al., 2018, AIFB/MUTAG/BGS/AM).
    """

    features: bool = True
    modalities: list[str] | None = None
    literal_nodes: bool = False
    type_edges: bool = False


@dataclass
class RunConfig:
    """The whole configuration of a run (saved as ``run.json``)."""

    task: dict = field(default_factory=lambda: {"name": "node"})
    aux: list[dict] = field(default_factory=list)
    model: dict = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def task_config(self, section: dict | None = None):
        """The task's typed config (``section``: an ``[[aux]]`` dict, default ``[task]``)."""
        aux = section is not None
        section = dict(section if aux else self.task)
        cls = get_task_class(section.pop("name", "node"))
        if aux and "weight" not in {f.name for f in dataclasses.fields(cls.Config)}:
            section.pop("weight", None)  # the loss weight of an auxiliary task
        return cls, config_from_dict(cls.Config, section, f"[task] ({cls.name})")

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "aux": self.aux,
            "model": self.model,
            "data": asdict(self.data),
            "trainer": asdict(self.trainer),
        }


# ---------------------------------------------------------------------- reading
def _suggest(key: str, names, where: str) -> ConfigError:
    hint = did_you_mean(key, names, cutoff=0.5)
    return ConfigError(f"{where}: unknown key {key!r}{hint}")


def read_toml(path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a BOM is fine
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 (byte {err.start}); re-save it as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from None
    for key in data:
        if key not in SECTIONS:
            raise _suggest(key, SECTIONS, f"{path}")
    task = dict(data.get("task", {}))
    for key in TASK_PATH_KEYS:  # relative paths are relative to the TOML file
        if isinstance(task.get(key), str) and not Path(task[key]).is_absolute():
            task[key] = str((path.parent / task[key]).resolve())
    data["task"] = task
    return data


def _section_keys(section: str, task_name: str) -> list[str]:
    if section == "trainer":
        return [f.name for f in dataclasses.fields(TrainerConfig)]
    if section == "data":
        return [f.name for f in dataclasses.fields(DataConfig)]
    if section == "model":
        return list(MODEL_SETTINGS)
    if section == "task":
        return ["name", *(f.name for f in dataclasses.fields(get_task_class(task_name).Config))]
    return []


def apply_overrides(raw: dict, overrides: dict | None) -> dict:
    """Merge ``overrides`` into ``raw`` sections: keys ``"trainer.lr"``, nested
    ``{"trainer": {"lr": ...}}``, or a bare ``"lr"`` when exactly one section has it."""
    for key, value in (overrides or {}).items():
        if key in SECTIONS and isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
            continue
        if key == "aux":
            raw["aux"] = list(value)
            continue
        task_name = raw.get("task", {}).get("name", "node")
        if "." in key:
            section, name = key.split(".", 1)
            if section not in SECTIONS:
                raise _suggest(section, SECTIONS, "overrides")
            if name not in _section_keys(section, task_name):
                raise _suggest(name, _section_keys(section, task_name), f"[{section}]")
        else:
            owners = [
                s
                for s in ("trainer", "model", "data", "task")
                if key in _section_keys(s, task_name)
            ]
            if len(owners) > 1:
                raise ConfigError(
                    f"override {key!r} is ambiguous; write one of {[f'{s}.{key}' for s in owners]}"
                )
            if not owners:
                every = [
                    f"{s}.{k}"
                    for s in ("trainer", "model", "data", "task")
                    for k in _section_keys(s, task_name)
                ]
                bare = {k.split(".", 1)[1]: k for k in every}
                hint = did_you_mean(key, bare, cutoff=0.5, show=bare.get)
                raise ConfigError(f"overrides: unknown key {key!r}{hint}")
            section, name = owners[0], key
        raw.setdefault(section, {})[name] = value
    return raw


def resolve_config(config_path=None, overrides: dict | None = None, **explicit: Any) -> RunConfig:
    """Defaults < TOML file < explicit arguments (None: not given) < ``overrides``.

    ``explicit`` keys: ``task`` (name), ``labels``, ``valid``, ``test``, ``entity_col``,
    ``label_cols``, ``relations``, ``gnn``, ``fusion``, ``mode``, ``device``, ``seed``,
    ``progress``.
    """
    raw: dict = read_toml(config_path) if config_path else {}
    raw = {k: (list(v) if k == "aux" else dict(v)) for k, v in raw.items()}
    raw.setdefault("task", {})
    given = {k: v for k, v in explicit.items() if v is not None}
    placement = {
        "task": ("task", "name"), "gnn": ("model", "gnn"), "fusion": ("model", "fusion"),
        "mode": ("model", "mode"), "device": ("trainer", "device"), "seed": ("trainer", "seed"),
        "progress": ("trainer", "progress"),
    }  # fmt: skip
    for key, value in given.items():
        if key in TASK_PATH_KEYS:
            raw["task"][key] = str(Path(value).resolve())
        elif key in ("entity_col", "label_cols", "relations"):
            raw["task"][key] = list(value) if key != "entity_col" else value
        elif key in placement:
            section, name = placement[key]
            raw.setdefault(section, {})[name] = value
        else:
            raise _suggest(
                key,
                [*TASK_PATH_KEYS, "entity_col", "label_cols", "relations", *placement],
                "train()",
            )
    raw = apply_overrides(raw, overrides)
    raw["task"].setdefault("name", "node")
    task_cls = get_task_class(raw["task"]["name"])
    model = {**task_cls.model_defaults, **raw.get("model", {})}
    for key in model:
        if key not in MODEL_SETTINGS:
            raise _suggest(key, MODEL_SETTINGS, "[model]")
    config = RunConfig(
        task=raw["task"],
        aux=[dict(a) for a in raw.get("aux", [])],
        model=model,
        data=config_from_dict(DataConfig, raw.get("data"), "[data]"),
        trainer=config_from_dict(
            TrainerConfig,
            {**task_cls.trainer_defaults, **raw.get("trainer", {})},
            "[trainer]",
        ),
    )
    config.task_config()  # validate the task section now (unknown keys, missing labels)
    for aux in config.aux:
        if "name" not in aux:
            raise ConfigError('[[aux]] entries need a name (e.g. name = "contrastive")')
        config.task_config(aux)
    return config


__all__ = [
    "DataConfig",
    "RunConfig",
    "TrainerConfig",
    "apply_overrides",
    "read_toml",
    "resolve_config",
]

"""Train a :class:`~fusion.model.FusionGNN` on a task; checkpoints, resume, metrics, export.

Full-batch training (the R-GCN protocol of Schlichtkrull et al., 2018): every step runs
the model over the whole message-passing graph, Adam with weight decay, early stopping on
the task's validation metric. A run lives in ``WORKSPACE/models/<run-name>/``::

    config.json            FusionGNNConfig of the best model  } FusionGNN.load(run_dir)
    model.safetensors      weights of the best model          }
    heads.safetensors      task (and auxiliary task) heads of the best model
    run.json               the resolved run configuration (task, aux, model, data, trainer)
    task.json              facts about the task data (classes, split sizes)
    metrics.jsonl          one JSON object per evaluated epoch, then the final metrics
    embeddings.safetensors final node embeddings, one [N_t, out_dim] tensor per node type
    last/                  resume state: model, heads, optimizer + RNG (safetensors),
                           trainer_state.json

Nothing is pickled. The configuration comes from defaults, an optional TOML file, the
function arguments and ``overrides`` (in that order of precedence, last wins); unknown
keys are refused with a suggestion. A TOML file looks like::

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

Device: ``"auto"`` takes CUDA when present (bf16 autocast there, ``trainer.amp``), else
CPU; on CPU the run is deterministic for a seed (``torch.use_deterministic_algorithms``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors
from torch import nn

from kg.hints import did_you_mean
from kg.naming import REV_PREFIX
from kg.workspace import atomic_write_bytes

from .model import (
    ConfigError,
    FusionGNN,
    FusionGNNConfig,
    config_from_dict,
    load_state,
    state_tensors,
)
from .tasks import get_task_class

SECTIONS = ("task", "aux", "model", "data", "trainer")
MODEL_SETTINGS = (
    "fusion", "fusion_kwargs", "gnn", "gnn_kwargs", "hidden", "out_dim", "layers", "dropout",
    "residual", "norm", "mode", "input_proj", "node_embeddings",
)  # fmt: skip
TASK_PATH_KEYS = ("labels", "valid", "test")


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, out of memory, a run that exists); says what to do."""


@dataclass
class TrainerConfig:
    """Optimisation settings (section ``[trainer]``).

    ``patience``: evaluations without improvement of the validation metric before
    stopping (0: never stop early); ``eval_every``: epochs between evaluations;
    ``checkpoint_every``: epochs between resume checkpoints (and at the end);
    ``deterministic``: None = on CPU only; ``amp``: bf16 autocast on CUDA. A task may
    change the defaults (``Task.trainer_defaults``: link prediction uses lr 0.001, 300
    epochs, patience 50); the config file and overrides still win.
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

    def __post_init__(self):
        if self.epochs < 0 or self.eval_every < 1 or self.checkpoint_every < 1:
            raise ConfigError("trainer.epochs >= 0, eval_every >= 1, checkpoint_every >= 1")
        if self.lr <= 0:
            raise ConfigError(f"trainer.lr={self.lr}; expected > 0")


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


@dataclass
class TrainResult:
    """What :func:`train` returns: final metrics (``"<split>/<metric>"``) and where the run is."""

    run_dir: Path
    metrics: dict[str, float]
    best_epoch: int
    epochs: int
    stopped_early: bool
    seconds: float


# ---------------------------------------------------------------------- configuration
def _suggest(key: str, names, where: str) -> ConfigError:
    hint = did_you_mean(key, names, cutoff=0.5)
    return ConfigError(f"{where}: unknown key {key!r}{hint}")


def _read_toml(path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
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
    raw: dict = _read_toml(config_path) if config_path else {}
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
    model = raw.get("model", {})
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
            {**get_task_class(raw["task"]["name"]).trainer_defaults, **raw.get("trainer", {})},
            "[trainer]",
        ),
    )
    config.task_config()  # validate the task section now (unknown keys, missing labels)
    for aux in config.aux:
        if "name" not in aux:
            raise ConfigError('[[aux]] entries need a name (e.g. name = "contrastive")')
        config.task_config(aux)
    return config


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


def _write_json(path: Path, data) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"))


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


def _fresh(name: str, taken) -> str:
    while name in taken:
        name += "_"
    return name


def _grouped_edges(edges: dict, src_type, src_local, dst_type, dst_local, relation, types):
    """Add edges given as parallel int arrays, grouped into ``(src, relation, dst)`` edge
    types (``relation[i]``: a name), each with its ``rev_`` inverse."""
    import numpy as np

    keys = np.stack([src_type, dst_type, relation])
    uniq, inverse = np.unique(keys, axis=1, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=uniq.shape[1]))])
    for k in range(uniq.shape[1]):
        rows = order[bounds[k] : bounds[k + 1]]
        s, d, r = types[0][uniq[0, k]], types[1][uniq[1, k]], types[2][uniq[2, k]]
        index = torch.from_numpy(np.stack([src_local[rows], dst_local[rows]]).astype(np.int64))
        edges[(s, r, d)] = index
        edges[(d, REV_PREFIX + r, s)] = index.flip(0)


def graph_tensors(graph, data: DataConfig) -> tuple[dict, dict[str, int]]:
    """``(edge_index_dict, num_nodes)`` of the message-passing graph: the graph's relations
    with ``rev_`` inverses (:meth:`kg.ProductGraph.to_pyg`), plus literal nodes and type
    edges when ``data`` asks for them."""
    import numpy as np

    edges = dict(graph.to_pyg().edge_index_dict)
    num_nodes = dict(graph.num_nodes_dict)
    types = list(graph.node_types)
    if data.literal_nodes and graph.num_literals:
        literal = _fresh("Literal", num_nodes)
        ids: dict = {}
        keys = zip(graph.lit_value, graph.lit_dtype.tolist(), graph.lit_lang.tolist(), strict=True)
        value_id = np.fromiter(
            (ids.setdefault(k, len(ids)) for k in keys), np.int64, graph.num_literals
        )
        num_nodes[literal] = len(ids)
        names = [graph.predicate_names[p] for p in graph.predicates]
        _grouped_edges(
            edges, graph.node_type_id[graph.lit_node], graph.node_local[graph.lit_node],
            np.zeros(graph.num_literals, np.int64), value_id, graph.lit_pred, (types, [literal], names),
        )  # fmt: skip
    if data.type_edges and len(graph.type_node):
        type_name = _fresh("Type", num_nodes)
        index = {iri: i for i, iri in enumerate(graph.nodes)}
        node_of_class = np.array([index.get(c, -1) for c in graph.classes], dtype=np.int64)
        target = node_of_class[graph.type_class]
        own = target >= 0
        dst_type = np.where(own, graph.node_type_id[np.maximum(target, 0)], len(types))
        dst_local = np.where(own, graph.node_local[np.maximum(target, 0)], graph.type_class)
        if (~own).any():
            num_nodes[type_name] = len(graph.classes)
        _grouped_edges(
            edges, graph.node_type_id[graph.type_node], graph.node_local[graph.type_node],
            dst_type, dst_local, np.zeros(len(dst_type), np.int64),
            (types, [*types, type_name], [_fresh("type", {e[1] for e in edges})]),
        )  # fmt: skip
    return edges, num_nodes


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


def list_runs(workspace) -> list[str]:
    """Names of the trained runs in a workspace (folders of ``models/`` with a model)."""
    root = Path(workspace) / "models"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "model.safetensors").is_file())


def run_directory(workspace, run_name: str) -> Path:
    """``WORKSPACE/models/<run_name>``, or an error listing the runs there."""
    path = Path(workspace) / "models" / run_name
    if not (path / "run.json").is_file():
        runs = list_runs(workspace)
        hint = did_you_mean(run_name, runs, paren=True)
        raise ConfigError(
            f"no trained run {run_name!r} in {workspace}{hint}; runs: {', '.join(runs) or 'none'}"
        )
    return path


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

    def forward(self, amp: bool):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
            return self.model(self.x, self.mp)

    def evaluate(self, split: str, amp: bool) -> dict[str, float]:
        """Metrics of the task (and aux tasks, prefixed) on ``split``, eval mode."""
        self.model.eval()
        self.heads.eval()
        with torch.no_grad():
            out = self.forward(amp)
            out.embeddings = {t: e.float() for t, e in out.embeddings.items()}
            metrics = {}
            if split in self.task.splits:
                metrics.update(
                    {f"{split}/{k}": v for k, v in self.task.evaluate(out, split).items()}
                )
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
    """Runs one training configuration (see :func:`train`)."""

    def __init__(self, config: RunConfig):
        self.config = config

    def fit(self, workspace, run_name: str | None = None, resume: bool = False,
            overwrite: bool = False, graph=None, features=None) -> TrainResult:  # fmt: skip
        cfg, tc = self.config, self.config.trainer
        workspace = Path(workspace)
        started = time.perf_counter()
        task_name = cfg.task.get("name", "node")
        run_name = run_name or (
            f"{task_name}-{cfg.model.get('gnn', 'rgcn')}-{cfg.model.get('mode', 'early')}-"
            + time.strftime("%Y%m%d-%H%M%S")
        )
        run_dir = workspace / "models" / run_name
        if resume:
            if not (run_dir / "last" / "trainer_state.json").is_file():
                raise TrainingError(f"nothing to resume in {run_dir} (no last/trainer_state.json)")
            saved = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
            mine = cfg.to_dict()
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

    def _fit(self, workspace, run_dir, run_name, resume, graph, features, device, amp, started):
        cfg, tc = self.config, self.config.trainer
        s = _Setup(cfg, workspace, graph, features, device)
        amp = amp and _autocast_works(s)
        params = list(s.model.parameters()) + list(s.heads.parameters())
        optimizer = torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)
        state = {
            "epoch": 0,
            "step": 0,
            "best": None,
            "best_epoch": 0,
            "bad": 0,
            "stopped_early": False,
        }
        best = None
        if resume:
            state, best = self._restore(run_dir, s, optimizer, device)
            for group in optimizer.param_groups:  # trainer settings may change on resume
                group["lr"], group["weight_decay"] = tc.lr, tc.weight_decay
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_json(run_dir / "run.json", cfg.to_dict())
            info = {"task": s.task.info(), "aux": [a.info() for a in s.aux]}
            _write_json(run_dir / "task.json", info)
        has_valid = "valid" in s.task.splits
        log = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        from tqdm.auto import tqdm

        bar = tqdm(
            range(state["epoch"], tc.epochs), desc=run_name, unit="epoch", disable=not tc.progress,
            initial=state["epoch"], total=tc.epochs, dynamic_ncols=True,
        )  # fmt: skip
        try:
            for epoch in bar:
                if state["stopped_early"]:
                    break
                epoch_start = time.perf_counter()
                s.model.train()
                s.heads.train()
                losses = []
                for i, batch in enumerate(s.task.batches(epoch)):
                    optimizer.zero_grad(set_to_none=True)
                    out = s.forward(amp)
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
                record = {
                    "epoch": epoch + 1,
                    "step": state["step"],
                    "loss": sum(losses) / len(losses),
                }
                improved = False
                if has_valid and (epoch + 1) % tc.eval_every == 0:
                    metrics = s.evaluate("valid", amp)
                    record.update(metrics)
                    value = metrics[f"valid/{s.task.metric}"]
                    if state["best"] is None or value > state["best"] + tc.min_delta:
                        state["best"], state["best_epoch"], state["bad"] = value, epoch + 1, 0
                        improved = True
                    else:
                        state["bad"] += tc.eval_every
                        if tc.patience and state["bad"] >= tc.patience:
                            state["stopped_early"] = True
                elif not has_valid:
                    state["best_epoch"], improved = epoch + 1, True
                if improved:
                    best = (state_tensors(s.model), state_tensors(s.heads))
                record["seconds"] = round(time.perf_counter() - epoch_start, 4)
                log.write(json.dumps(record) + "\n")
                log.flush()
                postfix = {"loss": f"{record['loss']:.4f}"}
                if has_valid and state["best"] is not None:
                    postfix[f"valid_{s.task.metric}"] = (
                        f"{record.get(f'valid/{s.task.metric}', float('nan')):.4f}"
                    )
                    postfix["best"] = f"{state['best']:.4f}@{state['best_epoch']}"
                bar.set_postfix(postfix)
                last = epoch + 1 == tc.epochs or state["stopped_early"]
                if (epoch + 1) % tc.checkpoint_every == 0 or last:
                    self._checkpoint(run_dir, s, optimizer, state, best)
            if best is None:  # zero epochs: the initial weights are the result
                best = (state_tensors(s.model), state_tensors(s.heads))
                self._checkpoint(run_dir, s, optimizer, state, best)
            s.model.load_state_dict(best[0])
            s.heads.load_state_dict(best[1])
            final = {}
            for split in ("train", "valid", "test"):
                if split != "train" or s.task.eval_train:
                    final.update(s.evaluate(split, amp))
            log.write(
                json.dumps({"final": True, "best_epoch": state["best_epoch"], **final}) + "\n"
            )
            export_embeddings(s, run_dir / "embeddings.safetensors", run_name, amp)
        finally:
            bar.close()
            log.close()
        return TrainResult(
            run_dir, final, state["best_epoch"], state["epoch"], state["stopped_early"],
            time.perf_counter() - started,
        )  # fmt: skip

    @staticmethod
    def _checkpoint(run_dir: Path, s: _Setup, optimizer, state: dict, best) -> None:
        """Best weights at the top of the run folder; last weights + optimizer in ``last/``."""
        atomic_write_bytes(run_dir / "model.safetensors", save_tensors(best[0]))
        atomic_write_bytes(run_dir / "heads.safetensors", save_tensors(best[1]))
        _write_json(run_dir / "config.json", s.model_config.to_dict())
        last = run_dir / "last"
        s.model.save(last)
        atomic_write_bytes(last / "heads.safetensors", save_tensors(state_tensors(s.heads)))
        tensors, groups = optimizer_tensors(optimizer)
        tensors["rng.cpu"] = torch.get_rng_state()
        if s.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(s.device)
        atomic_write_bytes(last / "optimizer.safetensors", save_tensors(tensors))
        _write_json(last / "trainer_state.json", {**state, "param_groups": groups})

    @staticmethod
    def _restore(run_dir: Path, s: _Setup, optimizer, device):
        last = run_dir / "last"
        load_state(s.model, last / "model.safetensors")
        load_state(s.heads, last / "heads.safetensors")
        saved = json.loads((last / "trainer_state.json").read_text(encoding="utf-8"))
        groups = saved.pop("param_groups")
        tensors = load_file(str(last / "optimizer.safetensors"))
        torch.set_rng_state(tensors.pop("rng.cpu"))
        cuda_rng = tensors.pop("rng.cuda", None)
        if cuda_rng is not None and device.type == "cuda":
            torch.cuda.set_rng_state(cuda_rng, device)
        load_optimizer(optimizer, tensors, groups)
        best = (
            load_file(str(run_dir / "model.safetensors"), device=str(device)),
            load_file(str(run_dir / "heads.safetensors"), device=str(device)),
        )
        saved["stopped_early"] = False  # a resumed run gets its new epochs
        return saved, best


def export_embeddings(s: _Setup, path: Path, run_name: str, amp: bool) -> None:
    """Write the final node embeddings, one ``[N_t, out_dim]`` float32 tensor per node type
    (row ``i`` is node ``graph.iri(type, i)``), computed on the message-passing graph."""
    s.model.eval()
    with torch.no_grad():
        out = s.forward(amp)
    tensors = {t: e.float().cpu().contiguous() for t, e in out.embeddings.items()}
    meta = {"format": "kgfusion-embeddings", "run": run_name, "dim": str(s.model_config.out_dim)}
    atomic_write_bytes(path, save_tensors(tensors, metadata=meta))


def load_embeddings(run_dir) -> dict[str, torch.Tensor]:
    """The ``embeddings.safetensors`` of a run: ``{node_type: [N_t, out_dim]}``."""
    return load_file(str(Path(run_dir) / "embeddings.safetensors"))


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
    saved = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    config = RunConfig(
        task=saved["task"], aux=saved["aux"], model=saved["model"],
        data=config_from_dict(DataConfig, saved["data"], "run.json [data]"),
        trainer=config_from_dict(TrainerConfig, {**saved["trainer"], "device": device}, "run.json [trainer]"),
    )  # fmt: skip
    dev = resolve_device(device)
    model_config = FusionGNNConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    s = _Setup(config, workspace, graph, features, dev, model_config=model_config)
    info = json.loads((run_dir / "task.json").read_text(encoding="utf-8"))
    s.task.check_info(info["task"])
    load_state(s.model, run_dir / "model.safetensors")
    load_state(s.heads, run_dir / "heads.safetensors")
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
    "evaluate",
    "export_embeddings",
    "list_runs",
    "load_embeddings",
    "resolve_config",
    "train",
]

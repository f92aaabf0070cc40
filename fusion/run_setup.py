"""What a training run is made of, on one device: graph, features, task(s), model, heads.

:class:`RunSetup` builds them from a :class:`fusion.config.RunConfig` (the trainer's and
``kgf evaluate``'s common start); :meth:`RunSetup.output` is the model's output for an
evaluation: the full-graph forward pass, or, in a mini-batch run (:mod:`fusion.minibatch`),
the embeddings computed on sampled neighbourhoods. Also the device choice, the deterministic
mode, the optimizer state as flat tensors and the export of the final embeddings.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import torch
from safetensors.torch import save as save_tensors
from torch import nn

from kg.workspace import atomic_write_bytes

from .artifacts import ConfigError
from .config import DataConfig, RunConfig
from .model import FusionGNN, FusionGNNConfig


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


def _with_inputs(features, extra: dict[str, dict[str, int]]):
    """``features`` plus the task's own input modalities (``{type: {modality: d}}``,
    :meth:`fusion.tasks.base.Task.input_dims`) as empty ``[0, d]`` placeholders: what
    :meth:`FusionGNNConfig.for_graph` reads the modality widths from."""
    if not extra:
        return features
    from .features import FeatureSpec, NodeFeatures

    merged = {t: dict(mods) for t, mods in (features.features if features else {}).items()}
    for t, mods in extra.items():
        for m, d in mods.items():
            merged.setdefault(t, {})[m] = (torch.zeros(0, d), torch.zeros(0, dtype=torch.bool))
    return NodeFeatures(merged, features.spec if features is not None else FeatureSpec())


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
class RunSetup:
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
            metadata, num_nodes, _with_inputs(self.features, self.task.input_dims()),
            **config.model,
        )  # fmt: skip
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
        self.minibatch = None  # a fusion.minibatch.MiniBatch in a mini-batch run

    def forward(self, amp: bool, edit=None):  # edit: message-passing edges -> others
        edges = self.mp if edit is None else edit(self.mp)
        x = self.x
        extra = self.task.input_features(edges)  # e.g. the known labels (task.label_inputs)
        if extra:
            x = {t: {**x.get(t, {}), **extra.get(t, {})} for t in {*x, *extra}}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
            return self.model(x, edges)

    def output(self, amp: bool, split: str | None = None):
        """The model's output for evaluating ``split`` (None: every node, e.g. the export):
        the full-graph forward pass, or in a mini-batch run the sampled one."""
        if self.minibatch is None:
            return self.forward(amp)
        seeds = self.minibatch.split_seeds(split) if split is not None else None
        return self.minibatch.output(seeds)

    def evaluate(self, split: str, amp: bool) -> dict[str, float]:
        """Metrics of the task (and aux tasks, prefixed) on ``split``, eval mode."""
        self.model.eval()
        self.heads.eval()
        with torch.no_grad():
            out = self.output(amp, split)
            out.embeddings = {t: e.float() for t, e in out.embeddings.items()}
            metrics = {}
            if split in self.task.splits:
                if self.minibatch is None:
                    found = self.task.evaluate_pass(out, split, lambda e: self.forward(amp, e))
                else:
                    found = self.task.evaluate(out, split)
                metrics.update({f"{split}/{k}": v for k, v in found.items()})
            for aux in self.aux:
                if split in aux.splits:
                    metrics.update(
                        {f"{split}/{aux.name}.{k}": v for k, v in aux.evaluate(out, split).items()}
                    )
        return metrics


def open_run(workspace, run_name: str, device: str = "auto", *, graph=None,
             features=None) -> tuple[RunSetup, bool]:  # fmt: skip
    """A trained run rebuilt from its saved configuration with its best weights loaded, in
    eval mode: ``(setup, amp)`` (``amp``: whether its passes may use bf16 autocast). The
    task data is rebuilt from the graph and checked against what the run was trained on."""
    import json

    from .artifacts import WEIGHTS_FILE, config_from_dict, load_into, read_config, read_weights
    from .config import TrainerConfig
    from .runs import HEADS_FILE, RUN_FILE, TASK_FILE, run_directory

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
    s = RunSetup(config, workspace, graph, features, dev, model_config=model_config)
    tc = config.trainer
    if tc.batch_size:  # a mini-batch run: evaluated on sampled neighbourhoods, as it trained
        from .minibatch import MiniBatch

        s.minibatch = MiniBatch(s, tc.batch_size, tc.fanout, tc.seed, tc.sampler)
    info = json.loads((run_dir / TASK_FILE).read_text(encoding="utf-8"))
    s.task.check_info(info["task"])
    for module, path in ((s.model, run_dir / WEIGHTS_FILE), (s.heads, run_dir / HEADS_FILE)):
        load_into(module, read_weights(path), path)
    s.model.eval()
    s.heads.eval()
    amp = tc.amp and dev.type == "cuda" and (s.minibatch is not None or _autocast_works(s))
    if s.minibatch is not None:
        s.minibatch.amp = amp
    return s, amp


def _autocast_works(s: RunSetup) -> bool:
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



def export_embeddings(s: RunSetup, path: Path, run_name: str, amp: bool) -> None:
    """Write the final node embeddings, one ``[N_t, out_dim]`` float32 tensor per node type
    (row ``i`` is node ``graph.iri(type, i)``), computed on the message-passing graph."""
    s.model.eval()
    with torch.no_grad():
        out = s.output(amp)
    tensors = {t: e.float().cpu().contiguous() for t, e in out.embeddings.items()}
    from kg.workspace import graph_version

    meta = {"format": "kgfusion-embeddings", "run": run_name, "dim": str(s.model_config.out_dim),
            "graph_version": graph_version(s.graph)}  # fmt: skip
    atomic_write_bytes(path, save_tensors(tensors, metadata=meta))

"""FusionGNN: modality fusion + heterogeneous GNN propagation, in early or late order.

Inputs are a graph's node features (:class:`fusion.features.NodeFeatures`:
``features[node_type][modality] = (x [N_t, d_m], mask [N_t] bool)``) and its message-passing
edges (``edge_index_dict[(src, relation, dst)] = [2, E]`` local indices, ``rev_`` inverses
included, as :meth:`kg.ProductGraph.to_pyg` gives them).

- **early** fusion (fuse, then propagate): per node type, each modality is projected to
  ``hidden`` (``input_proj``), the modalities are fused (:func:`fusion.fuse.get_fusion`,
  masks respected) into one ``[N_t, hidden]`` vector, and one heterogeneous GNN
  (:func:`fusion.gnn.get_gnn`) propagates it over the relations to ``[N_t, out_dim]``.
- **late** fusion (propagate, then fuse): one GNN per modality; node types that lack the
  modality enter that GNN featureless (``in_dims=0``: embeddings or one-hot) and nodes
  that lack it carry zeros; the propagated per-modality vectors ``[N_t, out_dim]`` are then
  fused per node type. After propagation every node has every modality (from its
  neighbours), so the late fusion masks are all true.

Node types without any feature get a learnable embedding per node, or with ``gnn="rgcn"``
(``gnn_kwargs.featureless``, one-hot by default where it fits in memory) the one-hot input
of R-GCN's first layer, so a graph without a features file is plain R-GCN (Schlichtkrull et
al., 2018, "Modeling Relational Data with Graph Convolutional Networks"); the paper's
architecture, whose last R-GCN layer outputs the class logits, is ``gnn_kwargs.out_proj =
false`` with the node task's ``head = false`` (``examples/aifb_rgcn.toml``).
``node_embeddings=True`` adds a learnable per-node ``"id"`` modality to every node type,
next to its features.

The forward pass returns :class:`FusionOutput`: the final embeddings per node type and the
per-modality vectors (early: the input projections; late: the propagated vectors) that the
contrastive task aligns. ``save(dir)`` writes ``config.json`` + ``model.safetensors``;
``FusionGNN.load(dir)`` reads them back (safetensors only, nothing unpickled).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kg.hints import did_you_mean

from .artifacts import ConfigError, config_from_dict, load_pretrained, save_pretrained

MODES = ("early", "late")
ID_MODALITY = "id"


@dataclass
class FusionGNNConfig:
    """Everything needed to rebuild a :class:`FusionGNN` (saved as ``config.json``).

    User settings: ``fusion`` / ``fusion_kwargs`` (a :data:`fusion.fuse.FUSIONS` name),
    ``gnn`` / ``gnn_kwargs`` (a :data:`fusion.gnn.GNNS` name), ``hidden``, ``out_dim``,
    ``layers``, ``dropout``, ``residual``, ``norm``, ``mode`` (``"early"`` | ``"late"``),
    ``input_proj`` (project each modality to ``hidden`` first), ``node_embeddings``.
    Graph-derived (filled by :meth:`for_graph`): ``node_types``, ``edge_types``,
    ``modality_dims[node_type][modality]``, ``num_nodes[node_type]``.
    """

    fusion: str = "attention"
    fusion_kwargs: dict = field(default_factory=dict)
    gnn: str = "rgcn"
    gnn_kwargs: dict = field(default_factory=dict)
    hidden: int = 64
    out_dim: int = 64
    layers: int = 2
    dropout: float = 0.0
    residual: bool = False
    norm: str | None = None
    mode: str = "early"
    input_proj: bool = True
    node_embeddings: bool = False
    node_types: list[str] = field(default_factory=list)
    edge_types: list[tuple[str, str, str]] = field(default_factory=list)
    modality_dims: dict[str, dict[str, int]] = field(default_factory=dict)
    num_nodes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in MODES:
            hint = did_you_mean(self.mode, MODES)
            raise ConfigError(f"model.mode={self.mode!r}{hint}; choose one of {MODES}")
        for name in ("hidden", "out_dim", "layers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)!r}; expected an int >= 1")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"model.dropout={self.dropout!r}; expected 0 <= dropout < 1")
        self.edge_types = [tuple(e) for e in self.edge_types]
        unknown = set(self.modality_dims) - set(self.node_types)
        if self.node_types and unknown:
            raise ConfigError(f"modality_dims has node types not in node_types: {sorted(unknown)}")

    @property
    def metadata(self) -> tuple[list[str], list[tuple[str, str, str]]]:
        """PyG-style ``(node_types, edge_types)``."""
        return list(self.node_types), list(self.edge_types)

    def modalities(self, node_type: str) -> dict[str, int]:
        """The modalities (with input dims) that enter the model for ``node_type``."""
        dims = dict(self.modality_dims.get(node_type, {}))
        if self.node_embeddings:
            dims[ID_MODALITY] = self.hidden
        return dims

    def modality_output_dim(self, node_type: str, modality: str) -> int:
        """Width of ``FusionOutput.modalities[node_type][modality]``."""
        if self.mode == "late":
            return self.out_dim
        if self.input_proj or modality == ID_MODALITY:
            return self.hidden
        return self.modality_dims[node_type][modality]

    @classmethod
    def for_graph(cls, metadata, num_nodes: Mapping[str, int], features=None, **settings):
        """A config for a graph: ``metadata`` = ``(node_types, edge_types)``, ``features``
        a :class:`~fusion.features.NodeFeatures` (or None: embeddings only)."""
        node_types, edge_types = metadata
        dims = features.dims() if features is not None else {}
        dims = {t: {m: int(d) for m, d in mods.items()} for t, mods in dims.items() if mods}
        return config_from_dict(
            cls,
            {
                **settings,
                "node_types": list(node_types),
                "edge_types": [tuple(e) for e in edge_types],
                "modality_dims": {t: dims[t] for t in node_types if t in dims},
                "num_nodes": {t: int(num_nodes[t]) for t in node_types},
            },
            "model",
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["edge_types"] = [list(e) for e in self.edge_types]
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> FusionGNNConfig:
        return config_from_dict(cls, data, "model config")


@dataclass
class FusionOutput:
    """``embeddings[t]``: [N_t, out_dim]; ``modalities[t][m]``: ``(z [N_t, d], mask [N_t])``."""

    embeddings: dict[str, Tensor]
    modalities: dict[str, dict[str, tuple[Tensor, Tensor]]]


def _key(name: str) -> str:
    """A ModuleDict key for a node type or modality name (no dots, never empty)."""
    return "_" + name.replace(".", "%2E")


class FusionGNN(nn.Module):
    """Fuse node modalities and propagate them with a heterogeneous GNN (module docstring)."""

    def __init__(self, config: FusionGNNConfig):
        super().__init__()
        from .fuse import get_fusion
        from .gnn import get_gnn

        self.config = c = config
        if not c.node_types:
            raise ConfigError("FusionGNNConfig has no node types; build it with for_graph()")
        # a gated feature path (gnn_kwargs.input_gate) draws its initial weights from a fork
        # of the RNG: the structural path starts exactly as the model without features
        fork = torch.random.fork_rng(devices=[], enabled=bool(c.gnn_kwargs.get("input_gate")))
        fork.__enter__()
        self.proj = nn.ModuleDict()  # [type][modality]: Linear(d_m, hidden) | Embedding
        for t in c.node_types:
            mods = nn.ModuleDict()
            for m, d in c.modalities(t).items():
                if m == ID_MODALITY:
                    mods[_key(m)] = nn.Embedding(c.num_nodes[t], c.hidden)
                elif c.input_proj:
                    mods[_key(m)] = nn.Linear(d, c.hidden)
            if len(mods):
                self.proj[_key(t)] = mods

        def gnn(in_dims: dict[str, int]):
            return get_gnn(
                c.gnn, c.metadata, in_dims, c.hidden, c.out_dim, num_layers=c.layers,
                dropout=c.dropout, residual=c.residual, norm=c.norm, num_nodes=c.num_nodes,
                **c.gnn_kwargs,
            )  # fmt: skip

        self.fuse = nn.ModuleDict()
        self.gnns = nn.ModuleDict()
        if c.mode == "early":
            in_dims = {}
            for t in c.node_types:
                dims = self._fusion_in_dims(t)
                if dims:
                    self.fuse[_key(t)] = get_fusion(c.fusion, dims, c.hidden, **c.fusion_kwargs)
                in_dims[t] = c.hidden if dims else 0
            fork.__exit__(None, None, None)
            self.gnns[_key("all")] = gnn(in_dims)
        else:
            fork.__exit__(None, None, None)
            self.late_modalities = sorted({m for t in c.node_types for m in c.modalities(t)})
            for m in self.late_modalities:
                in_dims = {t: self._fusion_in_dims(t).get(m, 0) for t in c.node_types}
                self.gnns[_key(m)] = gnn(in_dims)
            if not self.late_modalities:  # no features at all: embeddings only
                self.gnns[_key("all")] = gnn(dict.fromkeys(c.node_types, 0))
            for t in c.node_types:
                if self.late_modalities:
                    dims = dict.fromkeys(self.late_modalities, c.out_dim)
                    self.fuse[_key(t)] = get_fusion(c.fusion, dims, c.out_dim, **c.fusion_kwargs)

    def _fusion_in_dims(self, node_type: str) -> dict[str, int]:
        c = self.config
        return {
            m: (c.hidden if (c.input_proj or m == ID_MODALITY) else d)
            for m, d in c.modalities(node_type).items()
        }

    def fusion_module(self, node_type: str) -> nn.Module:
        """The fusion module of ``node_type`` (e.g. to read an attention fusion's
        ``last_weights`` [N_t, M] after a forward pass); KeyError for types without one."""
        key = _key(node_type)
        if key not in self.fuse:
            fused = [t for t in self.config.node_types if _key(t) in self.fuse]
            raise KeyError(f"node type {node_type!r} has no fusion module; these do: {fused}")
        return self.fuse[key]

    # ------------------------------------------------------------------ forward
    def project(
        self, features: Mapping, n_id: Mapping[str, Tensor] | None = None
    ) -> dict[str, dict[str, tuple[Tensor, Tensor]]]:
        """Per type and modality: ``(z [N_t, d], mask [N_t])`` after the input projection
        (a mini-batch: ``n_id[t]`` the batch's node ids, features of those rows only)."""
        c = self.config
        out: dict[str, dict[str, tuple[Tensor, Tensor]]] = {}
        for t in c.node_types:
            mods = c.modalities(t)
            if not mods:
                continue
            given = features.get(t, {})
            out[t] = {}
            for m, d in mods.items():
                rows = c.num_nodes[t] if n_id is None else int(n_id[t].numel())
                if m == ID_MODALITY:
                    weight = self.proj[_key(t)][_key(m)].weight
                    if n_id is not None:
                        weight = weight[n_id[t].to(weight.device)]
                    ones = torch.ones(rows, dtype=torch.bool, device=weight.device)
                    out[t][m] = (F.dropout(weight, c.dropout, self.training), ones)
                    continue
                if m not in given:
                    raise ConfigError(
                        f"features for node type {t!r} lack modality {m!r} that the model was "
                        f"built with (has: {sorted(given)}); re-encode or retrain"
                    )
                x, mask = given[m]
                if x.shape != (rows, d):
                    raise ConfigError(
                        f"features[{t!r}][{m!r}] has shape {tuple(x.shape)}; the model expects "
                        f"({rows}, {d})"
                    )
                mask = mask.to(x.device, torch.bool)
                if c.input_proj:
                    x = self.proj[_key(t)][_key(m)](x)
                x = x * mask.unsqueeze(-1).to(x.dtype)  # missing modality: zeros, never used
                out[t][m] = (F.dropout(x, c.dropout, self.training), mask)
        return out

    def forward(
        self, features: Mapping, edge_index_dict: Mapping, n_id: Mapping[str, Tensor] | None = None
    ) -> FusionOutput:
        """``features[t][m] = (x [N_t, d_m], mask [N_t])`` -> :class:`FusionOutput`.

        A mini-batch (a sampled subgraph, :mod:`fusion.minibatch`): ``n_id[t]`` ``[n_t]``
        the global ids of its nodes of every type, ``features`` their rows only,
        ``edge_index_dict`` in the batch's local ids; the outputs have ``n_t`` rows."""
        c = self.config
        projected = self.project(features, n_id)
        ids = dict(n_id) if n_id is not None else {}
        if c.mode == "early":
            x_dict = {}
            for t, mods in projected.items():
                fused = self.fuse[_key(t)](
                    {m: z for m, (z, _) in mods.items()}, {m: k for m, (_, k) in mods.items()}
                )
                x_dict[t] = fused
            x_dict = {**{t: i for t, i in ids.items() if t not in x_dict}, **x_dict}
            embeddings = self.gnns[_key("all")](x_dict, edge_index_dict)
            return FusionOutput(dict(embeddings), projected)
        if not self.late_modalities:
            return FusionOutput(dict(self.gnns[_key("all")](ids, edge_index_dict)), {})
        propagated: dict[str, dict[str, Tensor]] = {}
        for m in self.late_modalities:
            x_dict = {t: mods[m][0] for t, mods in projected.items() if m in mods}
            x_dict = {**{t: i for t, i in ids.items() if t not in x_dict}, **x_dict}
            for t, h in self.gnns[_key(m)](x_dict, edge_index_dict).items():
                propagated.setdefault(t, {})[m] = h
        embeddings, modalities = {}, {}
        for t in c.node_types:
            z = propagated[t]
            ones = {
                m: torch.ones(h.shape[0], dtype=torch.bool, device=h.device) for m, h in z.items()
            }
            embeddings[t] = self.fuse[_key(t)](z, ones)
            own = projected.get(t, {})
            modalities[t] = {
                m: (h, own[m][1] if m in own else torch.zeros_like(ones[m])) for m, h in z.items()
            }
        return FusionOutput(embeddings, modalities)

    # ------------------------------------------------------------------ storage
    def save(self, directory) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``
        (:func:`fusion.artifacts.save_pretrained`)."""
        return save_pretrained(directory, self.config, self)

    @classmethod
    def load(cls, directory, device: str | torch.device = "cpu") -> FusionGNN:
        """Rebuild a model written by :meth:`save` (weights on ``device``)."""
        return load_pretrained(
            directory, lambda data: cls(FusionGNNConfig.from_dict(data)), device=device
        )

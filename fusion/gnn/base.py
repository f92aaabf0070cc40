"""The heterogeneous GNN interface and the layer stack every variant shares.

A GNN maps per-node-type features and per-edge-type edges to one embedding per node::

    gnn = get_gnn("rgcn", data.metadata(), in_dims={"Product": 128, "Brand": 0},
                  hidden=64, out_dim=32, num_nodes={"Brand": 120})
    out = gnn(x_dict, edge_index_dict)   # {node_type: [N_t, out_dim]}

``metadata = (node_types, edge_types)`` as in PyG's ``HeteroData.metadata()``; an edge type
is ``(src_type, relation, dst_type)`` and ``edge_index_dict[edge_type]`` is ``[2, E]`` (row 0
source indices, row 1 destination indices, both local to their node type). Edge types left
out of ``edge_index_dict`` have no edges in this call.

The stack, for every variant::

    h_t = W_t x_t + b_t                    (or a learned nn.Embedding row when in_dims[t] is 0/None)
    repeat num_layers times:
        m_t = conv(h, edges)_t             (the variant's message passing; see its class)
            + S_t h_t                      (a self transform for node types the conv leaves out)
        m_t = dropout(act(norm_t(m_t)))
        h_t = m_t + h_t  if residual else m_t
    out_t = V_t h_t + c_t

With ``out_proj=False`` there is no ``V_t``: the last layer is the output layer, it maps
``hidden -> out_dim`` and nothing follows it (no norm, activation, dropout or residual), so
``out_t = m_t`` of the last layer -- R-GCN's architecture (Schlichtkrull et al. 2018: the
softmax follows the second R-GCN layer) and PyG's ``BasicGNN``'s.

**Featureless node types** (``in_dims[t]`` 0 or ``None``; PyG's AIFB/MUTAG entity graphs,
as in R-GCN) get ``nn.Embedding(num_nodes[t], hidden)``: ``x_dict[t]`` may be absent or
``None`` (all ``num_nodes[t]`` rows, full batch) or a ``LongTensor`` of node ids (a
mini-batch). A variant may instead take some featureless types as **one-hot input** into
its first layer (:meth:`HeteroGNN.onehot_input_types`, :attr:`onehot_types`; R-GCN's
``featureless="onehot"``): they get no encoder, ``h_t`` before the first layer is the
``LongTensor`` of their node ids, the first layer holds per-node weights for them, and the
first layer's residual skips them. **Node types that never receive messages** (no edge type
ends there) still get an output: for variants whose convolution has no root/self weight for
them, a per-layer linear self transform ``S_t`` is added (GAT gets one for every type, since
GAT has no root weight at all).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.module_dict import ModuleDict
from torch_geometric.nn.parameter_dict import ParameterDict

from kg.hints import did_you_mean

from ..registry import Registry, check_json_config, load_module, save_module

__all__ = ["GNNS", "HeteroGNN", "check_heads", "EdgeType", "Metadata", "normalize_metadata"]

EdgeType = tuple[str, str, str]
Metadata = tuple[list[str], list[EdgeType]]

GNNS: Registry[HeteroGNN] = Registry("gnn")

#: the input gate starts just open: relu(g) lets the loss open it further, and once the
#: prior pushes g below 0 the gate is shut for good (relu has no gradient there)
GATE_START = 1e-3

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "elu": F.elu,
    "leaky_relu": F.leaky_relu,
    "tanh": torch.tanh,
    "none": lambda x: x,
}


def normalize_metadata(metadata: Any) -> Metadata:
    """``(node_types, edge_types)`` as lists of str / 3-tuples of str (JSON gives lists back)."""
    try:
        node_types, edge_types = metadata
        node_types = [str(t) for t in node_types]
        edge_types = [tuple(str(p) for p in e) for e in edge_types]
    except (TypeError, ValueError):
        raise ValueError(
            "metadata must be (node_types, edge_types) as from HeteroData.metadata()"
        ) from None
    if len(set(node_types)) != len(node_types):
        raise ValueError(f"metadata: duplicate node types in {node_types}")
    for e in edge_types:
        if len(e) != 3:
            raise ValueError(f"metadata: edge type {e!r} is not (src, relation, dst)")
        for t in (e[0], e[2]):
            if t not in node_types:
                raise ValueError(f"metadata: edge type {e!r} names unknown node type {t!r}")
    if len(set(edge_types)) != len(edge_types):
        raise ValueError("metadata: duplicate edge types")
    return node_types, edge_types  # type: ignore[return-value]


def quiet_hetero_conv(convs: dict, aggr: str = "sum"):
    """``HeteroConv(convs, aggr)`` without its warning about node types that receive no
    messages: :class:`HeteroGNN` gives those a self transform."""
    from torch_geometric.nn import HeteroConv

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*do not occur as destination type.*")
        return HeteroConv(convs, aggr=aggr)


def check_heads(name: str, heads, hidden: int, out_dim: int, out_proj: bool) -> None:
    """Attention heads must divide ``hidden`` (and ``out_dim`` when the last layer outputs it)."""
    if not isinstance(heads, int) or heads <= 0 or hidden % heads:
        raise ValueError(f"gnn {name!r}: heads={heads!r} must be a positive divisor of hidden")
    if not out_proj and out_dim % heads:
        raise ValueError(
            f"gnn {name!r}: with out_proj=False heads={heads!r} must divide out_dim={out_dim}"
        )


def _check_common(
    where, node_types, in_dims, num_nodes, hidden, out_dim, num_layers, norm, act, out_proj
) -> dict[str, int | None]:
    """Validate the settings every variant shares; return the input size per node type
    (None: featureless, a learned embedding of ``num_nodes[t]`` rows)."""
    unknown = sorted(set(in_dims) - set(node_types))
    if unknown:
        raise ValueError(f"{where}: in_dims names unknown node types {unknown}")
    for name_, value in (("hidden", hidden), ("out_dim", out_dim)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{where}: {name_} must be a positive int, got {value!r}")
    if not isinstance(num_layers, int) or num_layers < 0:
        raise ValueError(f"{where}: num_layers must be an int >= 0, got {num_layers!r}")
    if norm not in (None, "layer", "batch"):
        raise ValueError(f"{where}: norm must be None, 'layer' or 'batch', got {norm!r}")
    if act not in ACTIVATIONS:
        raise ValueError(f"{where}: act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    if not out_proj and num_layers == 0:
        raise ValueError(f"{where}: out_proj=False needs num_layers >= 1 (an output layer)")
    dims: dict[str, int | None] = {t: (in_dims.get(t) or None) for t in node_types}
    for t, d in dims.items():
        if d is None:
            if not isinstance(num_nodes.get(t), int) or num_nodes[t] <= 0:
                raise ValueError(
                    f"{where}: node type {t!r} has no features (in_dims 0/None), so it "
                    f"gets a learned embedding; pass num_nodes={{{t!r}: <count>}}"
                )
        elif not isinstance(d, int) or d < 0:
            raise ValueError(f"{where}: in_dims[{t!r}] = {d!r}; must be an int >= 0")
    return dims


class HeteroGNN(nn.Module):
    """Base class of the heterogeneous GNNs (the stack is in the module docstring).

    Args:
        metadata: ``(node_types, edge_types)``, e.g. ``HeteroData.metadata()``.
        in_dims: input feature size per node type; 0 / ``None`` / absent = featureless
            (a learned embedding per node, which needs ``num_nodes``).
        hidden: hidden size of every layer.
        out_dim: output size per node type.
        num_layers: number of message-passing layers (default 2; 0 = projections only).
        dropout: dropout after each layer's activation (default 0.0).
        residual: add each layer's input to its output (default ``False``).
        norm: ``None``, ``"layer"`` (LayerNorm) or ``"batch"`` (BatchNorm1d), per node type
            and layer, applied before the activation.
        num_nodes: node count per featureless node type (others may be given too: kept in
            the config, for variants that use them).
        act: ``"relu"`` (default), ``"gelu"``, ``"elu"``, ``"leaky_relu"``, ``"tanh"``,
            ``"none"``.
        out_proj: the per-type output projection ``V_t h_t + c_t`` (default ``True``);
            ``False``: none, the last layer is the output layer (``hidden -> out_dim``,
            linear: see the module docstring; needs ``num_layers >= 1``).
        input_gate: multiply each featured type's encoded input ``W_t x_t + b_t`` by a
            learned gate ``relu(g_t)``, ``g_t`` starting just open (:data:`GATE_START`), its
            initial weights drawn from a fork of the RNG (default ``False``): training starts
            from the structural model (one-hot ids / embeddings), initialised exactly as
            without the features, and lets the features in only as far as they help; once
            ``g_t`` falls below 0 the gate is shut for good -- a fusion that can fall back on
            structure (AIFB: ``benchmarks/aifb.py``, variant ``fused``).
        gate_prior: with ``input_gate``, an L2 penalty ``gate_prior / 2 |p|^2`` on the gate
            and the input projection of the gated types (added to their gradients, whatever
            the optimiser's weight decay), so the gate closes when the features do not pay
            for themselves (default 1.0; AIFB, 10 seeds: 96.94 %, one test person short of
            R-GCN's 97.22 % on one seed).
        **options: the variant's own keyword arguments; stored in :attr:`config`.

    Subclasses set :attr:`self_types` (``"missing"``: a self transform for node types that
    receive no messages; ``"all"``; ``"none"``: the conv covers every node type itself),
    declare their own keyword options with defaults in :attr:`option_defaults` (validated in
    :meth:`check_options`), and implement :meth:`build_conv` (and :meth:`propagate` when the
    conv is not called as ``conv(h_dict, edge_index_dict)``; and :meth:`onehot_input_types` when the first layer
    takes featureless types as one-hot input).
    """

    name: str = ""
    self_types: str = "missing"
    option_defaults: ClassVar[dict[str, Any] | None] = None
    """The variant's own keyword options and their defaults (``{"heads": 2}``); others are
    refused with a ``TypeError``. ``None``: any options are kept as given."""

    def __init__(
        self,
        metadata: Any,
        in_dims: Mapping[str, int | None],
        hidden: int,
        out_dim: int,
        num_layers: int = 2,
        dropout: float = 0.0,
        residual: bool = False,
        norm: str | None = None,
        num_nodes: Mapping[str, int] | None = None,
        act: str = "relu",
        out_proj: bool = True,
        input_gate: bool = False,
        gate_prior: float = 1.0,
        **options: Any,
    ):
        super().__init__()
        where = f"gnn {self.name or type(self).__name__!r}"
        node_types, edge_types = normalize_metadata(metadata)
        num_nodes = dict(num_nodes or {})
        dims = _check_common(
            where, node_types, dict(in_dims or {}), num_nodes, hidden, out_dim, num_layers,
            norm, act, out_proj,
        )  # fmt: skip
        self.node_types: list[str] = node_types
        self.edge_types: list[EdgeType] = edge_types
        self.in_dims = dims
        self.hidden = hidden
        self.out_dim = out_dim
        self.num_layers = num_layers
        self.out_proj = bool(out_proj)
        self.residual = residual
        self.act_name = act
        self.num_nodes: dict[str, int] = {t: num_nodes[t] for t in node_types if t in num_nodes}
        self.options = self._declared_options(options, where)
        self.check_options()
        options = self.options
        self.config: dict[str, Any] = check_json_config(
            {
                "name": self.name,
                "metadata": [list(node_types), [list(e) for e in edge_types]],
                "in_dims": {t: (d or 0) for t, d in dims.items()},
                "hidden": hidden,
                "out_dim": out_dim,
                "num_layers": num_layers,
                "dropout": dropout,
                "residual": residual,
                "norm": norm,
                "num_nodes": {t: num_nodes[t] for t in node_types if t in num_nodes},
                "act": act,
                "out_proj": bool(out_proj),
                **({"input_gate": True, "gate_prior": float(gate_prior)} if input_gate else {}),
                **options,
            },
            where,
        )
        self._build_layers(dims, num_nodes, norm, dropout, where, input_gate, gate_prior)

    def _declared_options(self, options: dict[str, Any], where: str) -> dict[str, Any]:
        """``options`` over :attr:`option_defaults`; an option not declared there is refused."""
        declared = self.option_defaults
        if declared is not None:
            unknown = sorted(set(options) - set(declared))
            if unknown:
                raise TypeError(
                    f"{where}: unknown option(s) {unknown}; options: {sorted(declared) or 'none'}"
                )
            options = {**declared, **options}
        return dict(options)

    def _build_layers(self, dims, num_nodes, norm, dropout, where: str,
                      input_gate: bool = False, gate_prior: float = 1.0) -> None:  # fmt: skip
        """Input encoders, convs, self transforms, norms and output heads, in this order
        (the order of the parameters, so of their initialisation and state dict)."""
        node_types, edge_types = self.node_types, self.edge_types
        hidden, out_dim, num_layers = self.hidden, self.out_dim, self.num_layers
        out_proj = self.out_proj
        self.onehot_types: list[str] = list(self.onehot_input_types())
        bad = [t for t in self.onehot_types if dims.get(t) is not None]
        if bad or (self.onehot_types and num_layers == 0):
            raise ValueError(f"{where}: one-hot input needs featureless types and a layer")
        # with input_gate, the featured types' encoders draw their initial weights from a
        # fork of the RNG, so the structural path is initialised exactly as without features
        with torch.random.fork_rng(devices=[], enabled=bool(input_gate)):
            featured = {t: nn.Linear(d, hidden) for t, d in dims.items() if d is not None}
        self.encoders = ModuleDict(
            {
                t: featured[t] if d is not None else nn.Embedding(num_nodes[t], hidden)
                for t, d in dims.items()
                if t not in self.onehot_types
            }
        )
        # input_gate: a learned scalar per type with features, initialised at zero, scales
        # its encoded input (ReZero, Bachlechner et al. 2021): the model starts as the
        # featureless/structural model and opens the feature path only as far as it helps
        self.gate_prior = float(gate_prior)
        self.input_gates = ParameterDict(
            {t: nn.Parameter(torch.full((1,), GATE_START)) for t, d in dims.items() if d is not None}
            if input_gate else {}
        )  # fmt: skip
        self.convs = nn.ModuleList(self.build_conv(i) for i in range(num_layers))
        dst_types = {e[2] for e in edge_types}
        self_types = {
            "all": node_types,
            "missing": [t for t in node_types if t not in dst_types],
            "none": [],
        }[self.self_types]
        self.self_lins = nn.ModuleList(
            ModuleDict({t: nn.Linear(hidden, self.layer_out(i)) for t in self_types})
            for i in range(num_layers)
        )
        if norm is None:
            self.norms = None
        else:
            make = (
                (lambda: nn.LayerNorm(hidden))
                if norm == "layer"
                else (lambda: nn.BatchNorm1d(hidden))
            )
            self.norms = nn.ModuleList(
                ModuleDict({t: make() for t in node_types})
                for i in range(num_layers)
                if not self.is_output_layer(i)
            )
        self.dropout = nn.Dropout(dropout)
        self.heads = ModuleDict(
            {t: nn.Linear(hidden, out_dim) for t in node_types} if out_proj else {}
        )
        self._empty_edges: dict[torch.device, Tensor] = {}
        self._ids: dict[tuple[str, torch.device], Tensor] = {}

    # -- the part a variant writes ---------------------------------------------------------

    def check_options(self) -> None:
        """Validate (and normalise) ``self.options`` against the common settings, before
        any layer is built; raise ``ValueError`` naming the option. Default: nothing."""

    def build_conv(self, layer: int) -> nn.Module:
        """The message-passing module of layer ``layer`` (``hidden ->``
        :meth:`layer_out` ``(layer)``)."""
        raise NotImplementedError

    def is_output_layer(self, layer: int) -> bool:
        """Whether ``layer`` is the output layer (the last one, with ``out_proj=False``)."""
        return not self.out_proj and layer == self.num_layers - 1

    def layer_out(self, layer: int) -> int:
        """Output width of layer ``layer``: ``out_dim`` for the output layer, else
        ``hidden``."""
        return self.out_dim if self.is_output_layer(layer) else self.hidden

    def onehot_input_types(self) -> list[str]:
        """The featureless node types whose input is their one-hot node id, taken by the
        first layer's per-node weights instead of an embedding (default: none). Called by
        ``__init__`` before the encoders and convs are built (``self.options``,
        ``self.in_dims``, ``self.num_nodes``, ``self.edge_types`` are set)."""
        return []

    def prepare(self, h: dict[str, Tensor], edges: dict[EdgeType, Tensor]) -> Any:
        """Per-forward graph preprocessing shared by all layers (passed to :meth:`propagate`)."""
        return None

    def propagate(
        self, layer: int, h: dict[str, Tensor], edges: dict[EdgeType, Tensor], graph: Any
    ) -> dict[str, Tensor]:
        """Layer ``layer``'s messages ``{node_type: [N_t, hidden]}`` (types may be missing
        when the conv does not update them; :attr:`self_types` must cover those)."""
        return self.convs[layer](h, edges)

    # -- the shared part -------------------------------------------------------------------

    def forward(
        self,
        x_dict: Mapping[str, Tensor | None],
        edge_index_dict: Mapping[EdgeType, Tensor],
    ) -> dict[str, Tensor]:
        """``{node_type: [N_t, in_dims[t]]}``, ``{edge_type: [2, E]}`` ->
        ``{node_type: [N_t, out_dim]}`` for every node type in the metadata."""
        h = self.encode(x_dict)
        edges = self.check_edges(edge_index_dict, h)
        graph = self.prepare(h, edges)
        act = ACTIVATIONS[self.act_name]
        for i in range(self.num_layers):
            out = self.propagate(i, h, edges, graph)
            self_lins = self.self_lins[i]
            new: dict[str, Tensor] = {}
            for t in self.node_types:
                m = out.get(t)
                if t in self_lins:
                    s = self_lins[t](h[t])
                    m = s if m is None else m + s
                if m is None:
                    raise RuntimeError(f"gnn {self.name!r}: layer {i} gave no output for {t!r}")
                if self.is_output_layer(i):
                    new[t] = m
                    continue
                if self.norms is not None:
                    m = self.norms[i][t](m)
                m = act(m)
                if self.dropout.p > 0:
                    m = self.dropout(m)
                residual = self.residual and h[t].is_floating_point()  # not one-hot ids
                new[t] = m + h[t] if residual else m
            h = new
        if not self.out_proj:
            return {t: h[t] for t in self.node_types}
        return {t: self.heads[t](h[t]) for t in self.node_types}

    def encode(self, x_dict: Mapping[str, Tensor | None]) -> dict[str, Tensor]:
        """The input projections / embeddings: ``{node_type: [N_t, hidden]}`` (one-hot input
        types: their node ids ``[N_t]``)."""
        where = f"gnn {self.name!r}"
        unknown = sorted(set(x_dict) - set(self.node_types))
        if unknown:
            raise KeyError(f"{where}: x_dict has unknown node types {unknown}")
        h: dict[str, Tensor] = {}
        for t in self.node_types:
            x = x_dict.get(t)
            if self.in_dims[t] is None:
                onehot = t in self.onehot_types
                if x is None:
                    if onehot:
                        h[t] = self._all_ids(t)
                    else:
                        h[t] = self.encoders[t].weight
                elif x.dtype in (torch.int64, torch.int32) and x.dim() == 1:
                    h[t] = x.long() if onehot else self.encoders[t](x)
                else:
                    kind = "one-hot input" if onehot else "learned embedding"
                    raise ValueError(
                        f"{where}: node type {t!r} is featureless ({kind}); "
                        f"x_dict[{t!r}] must be None or a LongTensor of node ids, got "
                        f"{x.dtype} {tuple(x.shape)}"
                    )
            else:
                if x is None:
                    raise KeyError(
                        f"{where}: x_dict has no features for node type {t!r} "
                        f"(expected [N, {self.in_dims[t]}])"
                    )
                if x.dim() != 2 or x.shape[1] != self.in_dims[t]:
                    raise ValueError(
                        f"{where}: x_dict[{t!r}] has shape {tuple(x.shape)}, expected "
                        f"[N, {self.in_dims[t]}]"
                    )
                if t in self.input_gates:  # gated, with an L2 prior on the whole path
                    enc, lam = self.encoders[t], self.gate_prior
                    h[t] = F.linear(x, _prior(enc.weight, lam), _prior(enc.bias, lam))
                    h[t] = h[t] * torch.relu(_prior(self.input_gates[t], lam))
                else:
                    h[t] = self.encoders[t](x)
        return h

    def _all_ids(self, node_type: str) -> Tensor:
        """``arange(num_nodes[t])`` on the parameters' device, one cached tensor (so a
        layer can tell "all nodes" from a mini-batch of ids by identity)."""
        device = next(self.parameters()).device
        key = (node_type, device)
        ids = self._ids.get(key)
        if ids is None:
            ids = self._ids[key] = torch.arange(self.num_nodes[node_type], device=device)
        return ids

    def check_edges(
        self, edge_index_dict: Mapping[EdgeType, Tensor], h: Mapping[str, Tensor]
    ) -> dict[EdgeType, Tensor]:
        """``edge_index_dict`` checked against the metadata, every edge type present
        (absent ones as an empty ``[2, 0]`` tensor), in metadata order."""
        where = f"gnn {self.name!r}"
        known = set(self.edge_types)
        given: dict[EdgeType, Tensor] = {}
        for key, value in edge_index_dict.items():
            et = tuple(key) if isinstance(key, Sequence) and not isinstance(key, str) else key
            if et not in known:
                hint = did_you_mean(et, self.edge_types, cutoff=0.5, paren=True, quote=False)
                raise KeyError(
                    f"{where}: edge type {et!r} is not in the metadata{hint}; known: "
                    f"{self.edge_types}"
                )
            if value.dim() != 2 or value.shape[0] != 2:
                raise ValueError(
                    f"{where}: edge_index_dict[{et!r}] has shape {tuple(value.shape)}, "
                    "expected [2, E]"
                )
            given[et] = value  # type: ignore[index]
        device = next(iter(h.values())).device if h else torch.device("cpu")
        empty = self._empty_edges.get(device)
        if empty is None:
            empty = self._empty_edges[device] = torch.empty(2, 0, dtype=torch.long, device=device)
        return {e: given.get(e, empty) for e in self.edge_types}

    # -- config + weights ------------------------------------------------------------------

    @classmethod
    def from_config(cls, kwargs: dict[str, Any]) -> HeteroGNN:
        """Build from a config dict without its ``"name"`` (JSON lists are fine)."""
        return cls(**kwargs)

    def save(self, directory) -> None:
        """Write ``config.json`` + ``model.safetensors`` into ``directory``."""
        save_module(self, directory)

    @staticmethod
    def load(directory, map_location: str | torch.device = "cpu") -> HeteroGNN:
        """Rebuild a GNN saved with :meth:`save` (any registered variant)."""
        return load_module(directory, GNNS, map_location)

    def extra_repr(self) -> str:
        return (
            f"node_types={len(self.node_types)}, edge_types={len(self.edge_types)}, "
            f"hidden={self.hidden}, out_dim={self.out_dim}, num_layers={self.num_layers}"
        )


class _L2Prior(torch.autograd.Function):
    """Identity forward; backward adds ``lam * param`` to the gradient: an L2 penalty
    ``lam / 2 |param|^2`` on the parameter, independent of the optimiser's weight decay."""

    @staticmethod
    def forward(ctx, param: Tensor, lam: float) -> Tensor:
        ctx.save_for_backward(param)
        ctx.lam = lam
        return param.view_as(param)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (param,) = ctx.saved_tensors
        return grad + ctx.lam * param, None


def _prior(param: Tensor, lam: float) -> Tensor:
    return _L2Prior.apply(param, lam) if lam > 0 and torch.is_grad_enabled() else param

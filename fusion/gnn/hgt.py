"""Heterogeneous Graph Transformer: a stack of PyG ``HGTConv`` layers."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch_geometric.nn import HGTConv

from .base import GNNS, EdgeType, HeteroGNN, check_heads

__all__ = ["HGT"]


@GNNS.register("hgt")
class HGT(HeteroGNN):
    r"""Heterogeneous Graph Transformer (Hu et al., "Heterogeneous Graph Transformer",
    WWW 2020), one :class:`torch_geometric.nn.HGTConv` per layer.

    Per edge type :math:`(s, r, t)` and head, attention
    :math:`\operatorname{softmax}_j\big((K_s h_j W^{att}_r) \cdot Q_t h_i\big) \mu_r / \sqrt{d}`
    weights the messages :math:`V_s h_j W^{msg}_r`; the result passes a GELU and a per-type
    output linear and is mixed with the input by a learned per-type skip gate.

    ``HGTConv`` gives no output for node types that receive no messages: those get the
    per-layer self transform of :class:`~fusion.gnn.base.HeteroGNN`, and their unused
    ``HGTConv`` output weights and skip gates are removed (so every parameter is used).
    Inside ``HGTConv`` node and edge types are renamed ``n0, n1, ...`` / ``r0, r1, ...``
    (metadata order): ``HGTConv`` cannot hold type names with dots (IRIs).

    Args:
        metadata, in_dims, hidden, out_dim, num_layers, dropout, residual, norm, num_nodes,
        act, out_proj: see :class:`~fusion.gnn.base.HeteroGNN`.
        heads: attention heads (must divide ``hidden``, and ``out_dim`` with
            ``out_proj=False``; default 2).

    Shapes:
        ``x_dict[t]: [N_t, in_dims[t]]``, ``edge_index_dict[e]: [2, E_e]`` ->
        ``{t: [N_t, out_dim]}``.
    """

    self_types = "missing"

    option_defaults = {"heads": 2}

    def check_options(self) -> None:
        check_heads("hgt", self.options["heads"], self.hidden, self.out_dim, self.out_proj)

    def _conv_node_types(self) -> list[str]:
        used = {t for e in self.edge_types for t in (e[0], e[2])}
        return [t for t in self.node_types if t in used]

    def _safe(self, node_type: str) -> str:
        return f"n{self.node_types.index(node_type)}"

    def _safe_edge(self, index: int) -> tuple[str, str, str]:
        s, _, d = self.edge_types[index]
        return (self._safe(s), f"r{index}", self._safe(d))

    def build_conv(self, layer: int) -> nn.Module:
        if not self.edge_types:  # nothing to attend over: only the self transforms
            return nn.ModuleDict()
        node_types = [self._safe(t) for t in self._conv_node_types()]
        edge_types = [self._safe_edge(i) for i in range(len(self.edge_types))]
        out = self.layer_out(layer)
        conv = HGTConv(self.hidden, out, (node_types, edge_types), heads=self.options["heads"])
        dst_types = {e[2] for e in edge_types}
        for t in node_types:
            if t not in dst_types:
                del conv.out_lin.lins[t]
                del conv.skip[t]
            elif out != self.hidden:  # the skip gate needs equal widths: never used
                del conv.skip[t]
        return conv

    def propagate(
        self, layer: int, h: dict[str, Tensor], edges: dict[EdgeType, Tensor], graph: Any
    ) -> dict[str, Tensor]:
        if not self.edge_types:
            return {}
        x = {self._safe(t): h[t] for t in self._conv_node_types()}
        e = {self._safe_edge(i): edges[et] for i, et in enumerate(self.edge_types)}
        out = self.convs[layer](x, e)
        return {
            t: out[self._safe(t)] for t in self.node_types if out.get(self._safe(t)) is not None
        }

"""No message passing: a per-node-type MLP, the baseline every GNN must beat."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch_geometric.nn.module_dict import ModuleDict

from .base import GNNS, EdgeType, HeteroGNN

__all__ = ["HeteroMLP"]


@GNNS.register("mlp")
class HeteroMLP(HeteroGNN):
    r"""The same stack as every GNN with the message passing taken out:
    :math:`h_t' = W_t h_t + b_t` per node type and layer. Edges are accepted and ignored,
    so a node's output never depends on its neighbours.

    Args:
        metadata, in_dims, hidden, out_dim, num_layers, dropout, residual, norm, num_nodes,
        act, out_proj: see :class:`~fusion.gnn.base.HeteroGNN`.

    Shapes:
        ``x_dict[t]: [N_t, in_dims[t]]`` -> ``{t: [N_t, out_dim]}``.
    """

    self_types = "none"

    def build_conv(self, layer: int) -> nn.Module:
        out = self.layer_out(layer)
        return ModuleDict({t: nn.Linear(self.hidden, out) for t in self.node_types})

    def propagate(
        self, layer: int, h: dict[str, Tensor], edges: dict[EdgeType, Tensor], graph: Any
    ) -> dict[str, Tensor]:
        lins = self.convs[layer]
        return {t: lins[t](h[t]) for t in self.node_types}

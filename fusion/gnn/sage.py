"""GraphSAGE per edge type, summed over edge types (PyG ``HeteroConv`` of ``SAGEConv``)."""

from __future__ import annotations

from torch import nn
from torch_geometric.nn import SAGEConv

from .base import GNNS, HeteroGNN, quiet_hetero_conv

__all__ = ["HeteroSAGE"]


@GNNS.register("sage")
class HeteroSAGE(HeteroGNN):
    r"""GraphSAGE (Hamilton et al., "Inductive Representation Learning on Large Graphs",
    NeurIPS 2017) on every edge type, summed per destination type
    (:class:`torch_geometric.nn.HeteroConv`, ``aggr="sum"``):

    .. math::
        h_i' = \sum_{(s, r, t)\,:\,t = \mathrm{type}(i)}
               \left( W^{r}_1 h_i + W^{r}_2 \operatorname{aggr}_{j \in N_i^r} h_j \right)

    Node types that are no edge type's destination get the self transform of
    :class:`~fusion.gnn.base.HeteroGNN`.

    Args:
        metadata, in_dims, hidden, out_dim, num_layers, dropout, residual, norm, num_nodes,
        act, out_proj: see :class:`~fusion.gnn.base.HeteroGNN`.
        aggr: neighbour aggregation of each ``SAGEConv`` (default ``"mean"``).

    Shapes:
        ``x_dict[t]: [N_t, in_dims[t]]``, ``edge_index_dict[e]: [2, E_e]`` ->
        ``{t: [N_t, out_dim]}``.
    """

    self_types = "missing"

    option_defaults = {"aggr": "mean"}

    def build_conv(self, layer: int) -> nn.Module:
        h, out = self.hidden, self.layer_out(layer)
        return quiet_hetero_conv(
            {e: SAGEConv((h, h), out, aggr=self.options["aggr"]) for e in self.edge_types}
        )

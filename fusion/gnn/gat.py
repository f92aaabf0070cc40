"""Graph attention per edge type, summed over edge types (PyG ``HeteroConv`` of ``GATConv``)."""

from __future__ import annotations

from torch import nn
from torch_geometric.nn import GATConv

from .base import GNNS, HeteroGNN, check_heads, quiet_hetero_conv

__all__ = ["HeteroGAT"]


@GNNS.register("gat")
class HeteroGAT(HeteroGNN):
    r"""Graph attention (Veličković et al., "Graph Attention Networks", ICLR 2018) on every
    edge type, summed per destination type (:class:`torch_geometric.nn.HeteroConv`,
    ``aggr="sum"``), plus a self transform for every node type:

    .. math::
        h_i' = S_t h_i + \sum_{(s, r, t)} \big\Vert_{k=1}^{K}
               \sum_{j \in N_i^r} \alpha^{r,k}_{ij} W^{r,k} h_j

    Each edge type's layer is ``GATConv((hidden, hidden), hidden // heads, heads=heads,
    add_self_loops=False)`` (bipartite, so no self loops; the explicit input sizes make the
    parameters exist before the first forward, unlike ``(-1, -1)``). GAT has no root
    weight, so :math:`S_t` (the self transform of :class:`~fusion.gnn.base.HeteroGNN`) carries
    each node's own state, for every node type.

    Args:
        metadata, in_dims, hidden, out_dim, num_layers, dropout, residual, norm, num_nodes,
        act, out_proj: see :class:`~fusion.gnn.base.HeteroGNN`.
        heads: attention heads (must divide ``hidden``, and ``out_dim`` with
            ``out_proj=False``; default 2).
        attn_dropout: dropout on the attention coefficients (default 0.0).

    Shapes:
        ``x_dict[t]: [N_t, in_dims[t]]``, ``edge_index_dict[e]: [2, E_e]`` ->
        ``{t: [N_t, out_dim]}``.
    """

    self_types = "all"

    option_defaults = {"heads": 2, "attn_dropout": 0.0}

    def check_options(self) -> None:
        check_heads("gat", self.options["heads"], self.hidden, self.out_dim, self.out_proj)

    def build_conv(self, layer: int) -> nn.Module:
        h, heads = self.hidden, self.options["heads"]
        out = self.layer_out(layer)
        return quiet_hetero_conv(
            {
                e: GATConv(
                    (h, h),
                    out // heads,
                    heads=heads,
                    add_self_loops=False,
                    dropout=self.options["attn_dropout"],
                )
                for e in self.edge_types
            }
        )

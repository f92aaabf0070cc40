"""Heterogeneous GNNs: per-node-type features + typed edges -> node embeddings.

>>> from fusion.gnn import get_gnn, list_gnns
>>> list_gnns()
['gat', 'hgt', 'mlp', 'rgcn', 'sage']
>>> gnn = get_gnn("rgcn", data.metadata(), in_dims={"Product": 128, "Brand": 0},
...               hidden=64, out_dim=32, num_nodes={"Brand": 120}, num_bases=8)
>>> out = gnn(data.x_dict, data.edge_index_dict)   # {node_type: [N_t, 32]}

Each variant is one class in one file, registered in :data:`GNNS` (a
:class:`fusion.registry.Registry`); the shared layer stack
(input projections / embeddings, norm, activation, dropout, residuals, output heads) is in
:mod:`fusion.gnn.base`. A model's ``config`` (JSON) rebuilds it with
:func:`build_from_config`; ``gnn.save(dir)`` / ``HeteroGNN.load(dir)`` write and read
``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import GNNS, HeteroGNN, normalize_metadata
from .gat import HeteroGAT
from .hgt import HGT
from .mlp import HeteroMLP
from .rgcn import RGCN, RGCNInputLayer, RGCNLayer
from .sage import HeteroSAGE

__all__ = [
    "GNNS",
    "HGT",
    "RGCN",
    "HeteroGAT",
    "HeteroGNN",
    "HeteroMLP",
    "HeteroSAGE",
    "RGCNInputLayer",
    "RGCNLayer",
    "build_from_config",
    "get_gnn",
    "list_gnns",
    "normalize_metadata",
]


def get_gnn(
    name: str,
    metadata: Any,
    in_dims: Mapping[str, int | None],
    hidden: int,
    out_dim: int,
    **kwargs: Any,
) -> HeteroGNN:
    """The GNN registered as ``name`` (``list_gnns()``); ``kwargs``: the stack's settings
    (``num_layers``, ``dropout``, ``residual``, ``norm``, ``num_nodes``, ``act``,
    ``out_proj``: see :class:`HeteroGNN`) and the variant's own options (see its class)."""
    return GNNS.get(
        name, metadata=metadata, in_dims=in_dims, hidden=hidden, out_dim=out_dim, **kwargs
    )


def build_from_config(config: Mapping[str, Any]) -> HeteroGNN:
    """Rebuild a GNN from its ``config`` (``{"name": ..., "metadata": ..., ...}``)."""
    return GNNS.build_from_config(config)


def list_gnns() -> list[str]:
    """The registered GNN names, sorted."""
    return GNNS.names()

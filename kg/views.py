"""The graph as message-passing tensors: relations, and optionally the R-GCN view of RDF.

:func:`edge_tensors` gives ``(edge_index_dict, num_nodes)`` (``{(src, relation, dst):
[2, E] int64 local indices}``, ``{node_type: N_t}``) for :meth:`kg.ProductGraph.to_pyg`:

- the graph's relations, each with its ``rev_`` inverse (``inverse=True``);
- ``literal_nodes``: every distinct literal (value, datatype, language) becomes a node of
  type ``Literal`` linked to its subjects by its predicate;
- ``type_edges``: every ``rdf:type`` triple becomes a ``type`` edge to the class (its own
  node when the class IRI is in the graph, else a node of type ``Type``).

With both, it is the graph as R-GCN sees an RDF data set (Schlichtkrull et al., 2018,
"Modeling Relational Data with Graph Convolutional Networks": AIFB, MUTAG, BGS, AM).
Everything is vectorised (numpy grouping), never a Python object per edge; only the
literal de-duplication walks the literal values once.
"""

from __future__ import annotations

import numpy as np

from .naming import REV_PREFIX


def _fresh(name: str, taken) -> str:
    while name in taken:
        name += "_"
    return name


def _grouped_edges(edges: dict, src_type, src_local, dst_type, dst_local, relation, types,
                   inverse: bool) -> None:  # fmt: skip
    """Add edges given as parallel int arrays, grouped into ``(src, relation, dst)`` edge
    types (``types = (src type names, dst type names, relation names)``), each with its
    ``rev_`` inverse when ``inverse``."""
    import torch

    keys = np.stack([src_type, dst_type, relation])
    uniq, group = np.unique(keys, axis=1, return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=uniq.shape[1]))])
    for k in range(uniq.shape[1]):
        rows = order[bounds[k] : bounds[k + 1]]
        s, d, r = types[0][uniq[0, k]], types[1][uniq[1, k]], types[2][uniq[2, k]]
        index = torch.from_numpy(np.stack([src_local[rows], dst_local[rows]]).astype(np.int64))
        edges[(s, r, d)] = index
        if inverse:
            edges[(d, REV_PREFIX + r, s)] = index.flip(0)


def _literal_edges(graph, edges: dict, num_nodes: dict, inverse: bool) -> None:
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
        np.zeros(graph.num_literals, np.int64), value_id, graph.lit_pred,
        (list(graph.node_types), [literal], names), inverse,
    )  # fmt: skip


def _type_edges(graph, edges: dict, num_nodes: dict, inverse: bool) -> None:
    types = list(graph.node_types)
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
        (types, [*types, type_name], [_fresh("type", {e[1] for e in edges})]), inverse,
    )  # fmt: skip


def edge_tensors(graph, inverse: bool = True, literal_nodes: bool = False,
                 type_edges: bool = False) -> tuple[dict, dict[str, int]]:  # fmt: skip
    """``(edge_index_dict, num_nodes)`` of ``graph`` (see the module docstring). Edge types
    come in a fixed order: relations (each followed by its inverse), literal edges, type
    edges; node types: the graph's, then ``Literal``, then ``Type``."""
    import torch

    edges: dict = {}
    for relation in graph.relations:
        index = torch.from_numpy(graph.edge_index(relation))
        edges[relation.edge_type] = index
        if inverse:
            edges[(relation.dst_type, REV_PREFIX + relation.name, relation.src_type)] = index.flip(0)
    num_nodes = dict(graph.num_nodes_dict)
    if literal_nodes and graph.num_literals:
        _literal_edges(graph, edges, num_nodes, inverse)
    if type_edges and len(graph.type_node):
        _type_edges(graph, edges, num_nodes, inverse)
    return edges, num_nodes

"""Settings that suit the graph, for a run started without a config file (``kgf train``).

The library's plain defaults (:mod:`fusion.config`: 64 hidden units, an output projection
and a linear head, lr 0.01 with weight decay, early stopping on a 20 % validation cut) suit
a product graph with text and image features. On an RDF entity-classification graph they
give 77.8 % on AIFB where R-GCN's own setting gives 97.2 % (``benchmarks/aifb.py``). So for
node classification without a config file (and with R-GCN, the default GNN),
:func:`node_defaults` returns the R-GCN setting of ``examples/aifb_rgcn.toml``
(Schlichtkrull et al., 2018: 2 layers of 16 units, the second outputs the class logits,
one-hot featureless input, one relation per predicate, literal nodes and ``rdf:type``
edges, Adam lr 0.01 without weight decay, 50 epochs), and when the workspace has features,
the same plus the features through a zero-initialised gate with an L2 prior
(``gnn_kwargs.input_gate``: the fusion starts as R-GCN and can fall back on it). Literal
nodes are left out of graphs with more than :data:`MAX_LITERAL_NODES` literals.

The config file, ``--set`` overrides and explicit arguments always win: these are only
the defaults.
"""

from __future__ import annotations

from pathlib import Path

MAX_LITERAL_NODES = 500_000


def node_defaults(workspace, graph, *, labels, entity_col=None, label_cols=None,
                  valid=None) -> dict:  # fmt: skip
    """Overrides (``{"model.hidden": 16, ...}``) for a node-classification run on ``graph``
    from ``labels`` (the training labels file); ``{}`` when the labels cannot be read
    (the task then reports the problem) or have several label columns."""
    from .features import FEATURES_FILE
    from .labels import LabelError, class_vocabulary, read_labels

    try:
        table = read_labels(labels, entity_col=entity_col, label_cols=label_cols)
    except (LabelError, OSError, ValueError):
        return {}
    if len(table.label_cols) != 1:
        return {}
    classes = len(class_vocabulary([table], table.label_cols[0]))
    if classes < 2:
        return {}
    featured = (Path(workspace) / FEATURES_FILE).is_file()
    gnn_kwargs = {"out_proj": False, "featureless": "onehot", "relations": "predicate"}
    if featured:
        gnn_kwargs.update(node_ids=True, input_gate=True)
    literal_nodes = graph.num_literals <= MAX_LITERAL_NODES
    settings = {
        "model.gnn": "rgcn", "model.hidden": 16, "model.out_dim": classes, "model.layers": 2,
        "model.gnn_kwargs": gnn_kwargs, "task.head": False,
        "data.features": featured, "data.literal_nodes": literal_nodes,
        "data.type_edges": literal_nodes,
        "trainer.epochs": 50, "trainer.lr": 0.01, "trainer.weight_decay": 0.0,
        "trainer.patience": 0,
    }  # fmt: skip
    if valid is None:  # the paper's protocol: all labelled rows, the last epoch
        settings["task.valid_fraction"] = 0.0
    return settings


def suited_overrides(workspace, graph, options: dict) -> dict:
    """``options`` of :func:`fusion.trainer.train` with :func:`node_defaults` merged under
    its overrides, when the run has no config file, is a node task and uses R-GCN with the
    default fusion settings; else ``options`` unchanged."""
    if options.get("config_path") is not None:  # a resumed run gets them again, as at its start
        return options
    if (options.get("task") or "node") != "node" or options.get("labels") is None:
        return options
    if options.get("gnn") not in (None, "rgcn") or options.get("mode") not in (None, "early"):
        return options
    defaults = node_defaults(
        workspace, graph, labels=options["labels"], entity_col=options.get("entity_col"),
        label_cols=options.get("label_cols"), valid=options.get("valid"),
    )  # fmt: skip
    if not defaults:
        return options
    return {**options, "overrides": {**defaults, **(options.get("overrides") or {})}}


__all__ = ["MAX_LITERAL_NODES", "node_defaults", "suited_overrides"]

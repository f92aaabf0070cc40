"""A workspace's paired name / photo features, and its fitted alignments on disk.

:func:`workspace_pairs` reads, for the products of one node type (default: the type with
most nodes having both a text and an image feature, ``kgf encode``), their text features
``[n, d_t]``, image features ``[n, d_v]`` (with masks) and their graph neighbours: the
nodes they link to that have a text feature (colour, category, season nodes...), as rows
``[n, K]`` (``-1`` padding) of a table of those nodes' text features ``[V, d_t]``.
:func:`fit_alignment` fits a registered method on the products that have both modalities
and saves it as ``WORKSPACE/alignment/<method>/config.json + model.safetensors``
(:func:`fusion.registry.save_module`); :func:`load_alignment` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .base import ALIGNMENTS, Alignment, AlignmentData, AlignmentError, neighbour_mean

ALIGNMENT_DIR = "alignment"
DEFAULT_METHOD = "infonce-graph"
MAX_NEIGHBOURS = 16


@dataclass
class WorkspacePairs:
    """The products of ``node_type`` (rows = the type's local indices) and their features.

    ``text`` [n, d_t] / ``text_mask`` [n]; ``image`` [n, d_v] / ``image_mask`` [n] (None
    when the workspace has no image features); ``neighbours`` [n, K] rows of ``node_text``
    [V, d_t], whose global node ids are ``neighbour_nodes`` [V]."""

    node_type: str
    text: Tensor
    text_mask: Tensor
    image: Tensor | None
    image_mask: Tensor | None
    neighbours: Tensor
    node_text: Tensor
    neighbour_nodes: np.ndarray

    @property
    def paired(self) -> np.ndarray:
        """Rows having both a text and an image feature, int64 [N]."""
        if self.image_mask is None:
            return np.zeros(0, np.int64)
        return torch.nonzero(self.text_mask & self.image_mask).flatten().numpy()

    def data(self, rows=None) -> AlignmentData:
        """:class:`AlignmentData` of ``rows`` (default: every paired row)."""
        rows = torch.as_tensor(self.paired if rows is None else rows, dtype=torch.long)
        if self.image is None:
            raise AlignmentError(
                f"{self.node_type} has no image features: run `kgf encode` with an image encoder"
            )
        return AlignmentData(self.text[rows], self.image[rows], self.neighbours[rows],
                             self.node_text)  # fmt: skip

    def context(self, rows=None) -> Tensor:
        """Mean text feature of each product's neighbours [n or len(rows), d_t]."""
        nb = self.neighbours if rows is None else self.neighbours[torch.as_tensor(rows)]
        return neighbour_mean(nb, self.node_text)


def product_type(features) -> str:
    """The node type with most nodes that have both text and image features (else text)."""
    best, best_count = None, -1
    for node_type, mods in features.features.items():
        if "text" not in mods:
            continue
        mask = mods["text"][1].bool()
        if "image" in mods:
            mask = mask & mods["image"][1].bool()
            count = int(mask.sum()) + 1_000_000_000  # image + text types first
        else:
            count = int(mask.sum())
        if count > best_count:
            best, best_count = node_type, count
    if best is None:
        raise AlignmentError("the workspace has no text features: run `kgf encode WORKSPACE`")
    return best


def workspace_pairs(graph, features, node_type: str | None = None) -> WorkspacePairs:
    """The products of ``node_type`` with features and graph neighbours (module docstring)."""
    node_type = node_type or product_type(features)
    mods = features.features.get(node_type, {})
    if "text" not in mods:
        raise AlignmentError(f"{node_type} has no text features: run `kgf encode` first")
    text, text_mask = mods["text"][0].float(), mods["text"][1].bool()
    image, image_mask = (
        (mods["image"][0].float(), mods["image"][1].bool()) if "image" in mods else (None, None)
    )
    ids = graph.global_ids(node_type)
    local_of = np.full(graph.num_nodes, -1, np.int64)
    local_of[ids] = np.arange(len(ids))
    # neighbours with a text feature: edges from a product to a node of another type
    has_text = np.zeros(graph.num_nodes, bool)
    text_of: dict[str, tuple[Tensor, Tensor]] = {}
    for other, other_mods in features.features.items():
        if other != node_type and "text" in other_mods:
            gids = graph.global_ids(other)
            has_text[gids[other_mods["text"][1].bool().numpy()]] = True
            text_of[other] = other_mods["text"]
    src, dst = graph.src, graph.dst
    keep = (local_of[src] >= 0) & has_text[dst]
    src, dst = local_of[src[keep]], dst[keep]
    nodes, inverse = np.unique(dst, return_inverse=True)
    d_t = text.shape[1]
    node_text = torch.zeros(len(nodes), d_t)
    for j, gid in enumerate(nodes.tolist()):
        x, _ = text_of[graph.node_types[graph.node_type_id[gid]]]
        node_text[j] = x[graph.node_local[gid]].float()
    order = np.lexsort((inverse, src))
    src, inverse = src[order], inverse[order]
    counts = np.bincount(src, minlength=len(ids))
    width = int(min(max(counts.max(initial=0), 1), MAX_NEIGHBOURS))
    neighbours = np.full((len(ids), width), -1, np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(src)) - starts[src]
    fits = slot < width
    neighbours[src[fits], slot[fits]] = inverse[fits]
    return WorkspacePairs(node_type, text, text_mask, image, image_mask,
                          torch.as_tensor(neighbours), node_text, nodes)  # fmt: skip


def alignment_data(graph, features, node_type: str | None = None, rows=None) -> AlignmentData:
    """The paired products of a workspace as :class:`AlignmentData` (``rows``: a subset of
    the type's local rows, e.g. a training split)."""
    return workspace_pairs(graph, features, node_type).data(rows)


def alignment_path(workspace, method: str) -> Path:
    """``WORKSPACE/alignment/<method>``."""
    return Path(workspace) / ALIGNMENT_DIR / ALIGNMENTS.get_class(method).name


def fit_alignment(workspace, method: str = DEFAULT_METHOD, *, graph=None, features=None,
                  node_type: str | None = None, rows=None, save: bool = True,
                  device: str = "cpu", **options) -> Alignment:  # fmt: skip
    """Fit ``method`` on the workspace's paired products (or ``rows`` of them) and save it
    in :func:`alignment_path` (unless ``save=False``); ``options`` go to the method's
    constructor (``dim``, ``epochs``, ``seed``...). Returns the fitted method."""
    from fusion.features import NodeFeatures
    from kg.graph import load_graph
    from kg.workspace import graph_version

    graph = graph if graph is not None else load_graph(workspace)
    features = features if features is not None else NodeFeatures.load(Path(workspace))
    pairs = workspace_pairs(graph, features, node_type)
    data = pairs.data(rows)
    model = ALIGNMENTS.get(method, text_dim=data.text.shape[1], image_dim=data.image.shape[1],
                           **options).to(device)  # fmt: skip
    model.fit(data)
    spec = features.spec
    model.info.update(node_type=pairs.node_type, graph_version=graph_version(graph),
                      text_encoder=spec.text_encoder, image_encoder=spec.image_encoder)  # fmt: skip
    if save:
        from fusion.artifacts import save_pretrained
        from fusion.registry import check_json_config

        save_pretrained(alignment_path(workspace, method),
                        check_json_config(model.config, model.name), model, replace=True)  # fmt: skip
    return model


def load_alignment(workspace, method: str = DEFAULT_METHOD, device: str = "cpu") -> Alignment:
    """The alignment saved by :func:`fit_alignment` (FileNotFoundError naming the command
    that fits it when there is none)."""
    from fusion.registry import load_module

    path = alignment_path(workspace, method)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} holds no fitted alignment; fit one with `kgf align {workspace} "
            f"--method {ALIGNMENTS.get_class(method).name}`"
        )
    model = load_module(path, ALIGNMENTS, map_location=device)
    return model.eval()


def ensure_alignment(workspace, method: str = DEFAULT_METHOD, *, graph, features,
                     node_type: str | None = None, **options) -> Alignment:  # fmt: skip
    """The saved alignment ``method`` of the workspace when it fits the graph and the
    features (same graph version, same encoders); else it is fitted now and saved, with
    a warning saying so (once: later calls load it)."""
    import time
    import warnings

    from kg.workspace import graph_version

    spec = features.spec
    try:
        model = load_alignment(workspace, method)
        info = model.info
        stale = (info.get("graph_version") != graph_version(graph)
                 or info.get("text_encoder") != spec.text_encoder
                 or info.get("image_encoder") != spec.image_encoder
                 or (node_type is not None and info.get("node_type") != node_type))  # fmt: skip
        if not stale:
            return model
        why = "it was fitted on another graph version or other features"
    except FileNotFoundError:
        why = "none is saved yet"
    started = time.perf_counter()
    model = fit_alignment(workspace, method, graph=graph, features=features,
                          node_type=node_type, **options)  # fmt: skip
    warnings.warn(
        f"fitted the {model.name} alignment of {workspace} ({why}) in "
        f"{time.perf_counter() - started:.0f} s on {model.info.get('pairs')} products; saved "
        f"to {alignment_path(workspace, method)}",
        stacklevel=2,
    )
    return model

"""The node vectors that answers are made of: a trained run's embeddings, or the features.

What a run learned flows forward (ARCHITECTURE.md): the entity index, related products, the
service, align's entity representations and the demo use the final node embeddings of a
complete run (``WORKSPACE/models/<run>/embeddings.safetensors``, :mod:`fusion.runs`), and
the raw encoded features only when no run exists or when asked for.

- :func:`run_embeddings` reads a run's embeddings ``{node_type: [N_t, d]}``, keeps the node
  types of the graph (a run on the R-GCN view of an RDF graph also embeds ``Literal`` and
  ``Type`` nodes, which are no entities) and refuses a run trained on another version of
  the graph (:class:`StaleRunError`, naming the command that retrains it). The GNN's
  output covers every node, so nodes without text or image get a *structural* embedding.
- :func:`feature_vectors`: the encoded features' entity vectors
  (:meth:`fusion.features.NodeFeatures.entity_vectors`), plus a structural vector for every
  node without any modality: the mean of its neighbours' vectors (both edge directions),
  propagated ``hops`` rounds (a parameter-free mean aggregator, Hamilton et al., 2017), so
  an untyped datasheet that links to described products is still in the index.
- :func:`index_vectors` picks between them and says where the vectors came from
  (:class:`NodeVectors`.``source``), which the index records so that a stale one is refused
  (:func:`source_problem`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .artifacts import ConfigError, read_weights
from .runs import EMBEDDINGS_FILE, RunInfo, find_run, list_runs

STRUCTURAL_HOPS = 3


class StaleRunError(ConfigError):
    """A run's embeddings do not belong to the graph as it is now."""


@dataclass
class NodeVectors:
    """Vectors to index: ``vectors[node_type] = (rows [n] int64, [n, d] float32)``.

    ``source``: JSON facts on their origin, ``{"kind": "run", "run", "finished",
    "graph_version"}`` or ``{"kind": "features", "graph_version"}``; ``structural``: how
    many nodes have no feature of their own (their vector comes from the graph)."""

    vectors: dict[str, tuple[Tensor, Tensor]]
    source: dict
    structural: int = 0
    notes: list[str] = field(default_factory=list)


def embeddings_version(path) -> str | None:
    """The graph version stored in an ``embeddings.safetensors`` file (None: not stored)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return (handle.metadata() or {}).get("graph_version")


def rebuild_hint(workspace, run: str) -> str:
    return (
        f"retrain it (`kgf train {workspace} ... --run {run} --overwrite`) or index the "
        f"encoded features (`kgf index {workspace} --features`)"
    )


def run_embeddings(workspace, graph, run: str | None = None) -> tuple[RunInfo, dict[str, Tensor]] | None:  # fmt: skip
    """``(run info, {node_type: [N_t, d] float32})`` of ``run`` (default: the newest complete
    run of the workspace), restricted to the graph's node types; None when the workspace has
    no complete run and none was named. Raises :class:`ConfigError` for a named run that
    does not exist or is incomplete, :class:`StaleRunError` for a run trained on another
    version of the graph."""
    from kg.workspace import graph_version

    info = find_run(workspace, run)
    if info is None:
        if run is None:
            return None
        runs = list_runs(workspace)
        raise ConfigError(
            f"no complete run {run!r} in {workspace}; runs: {', '.join(runs) or 'none'} "
            f"(train one with `kgf train {workspace} ... --run {run}`)"
        )
    path = info.path / EMBEDDINGS_FILE
    if not path.is_file():
        raise ConfigError(f"run {info.name!r} has no {EMBEDDINGS_FILE}; {rebuild_hint(workspace, info.name)}")  # fmt: skip
    stored, want = embeddings_version(path), graph_version(graph)
    if stored is not None and stored != want:
        raise StaleRunError(
            f"run {info.name!r} was trained on graph version {stored}, the graph is now {want}: "
            + rebuild_hint(workspace, info.name)
        )
    tensors = read_weights(path)
    counts = graph.num_nodes_dict
    kept = {t: e.float() for t, e in tensors.items() if t in counts}
    wrong = [t for t, e in kept.items() if len(e) != counts[t]]
    if wrong or not kept:
        raise StaleRunError(
            f"run {info.name!r} was trained on another version of the graph (node counts of "
            f"{', '.join(wrong) or 'every type'} differ): {rebuild_hint(workspace, info.name)}"
        )
    return info, kept


def _neighbour_fill(graph, vectors: Tensor, has: Tensor, hops: int) -> Tensor:
    """``has`` [N] bool after giving each node without a vector the mean of its neighbours'
    vectors (both directions), ``hops`` rounds; ``vectors`` [N, d] is filled in place."""
    if not len(graph.src):
        return has
    src = torch.from_numpy(graph.src).long()
    dst = torch.from_numpy(graph.dst).long()
    ends = torch.cat([src, dst])
    others = torch.cat([dst, src])
    for _ in range(hops):
        if bool(has.all()):
            break
        total = torch.zeros_like(vectors).index_add_(0, ends, vectors[others] * has[others, None])
        count = torch.zeros(len(has)).index_add_(0, ends, has[others].float())
        fill = (~has) & (count > 0)
        if not bool(fill.any()):
            break
        vectors[fill] = torch.nn.functional.normalize(total[fill], dim=1)
        has = has | fill
    return has


def feature_vectors(graph, features, hops: int = STRUCTURAL_HOPS) -> tuple[dict, int]:
    """``({node_type: (rows, vectors)}, structural count)``: the features' entity vectors
    plus the structural neighbour-mean vector of the nodes that have no modality (module
    docstring). Nodes with no described node within ``hops`` edges stay out."""
    own = features.entity_vectors()
    if not own:
        return {}, 0
    dim = next(iter(own.values()))[1].shape[1]
    own = {t: v for t, v in own.items() if v[1].shape[1] == dim}
    vectors = torch.zeros(graph.num_nodes, dim)
    has = torch.zeros(graph.num_nodes, dtype=torch.bool)
    for node_type, (rows, block) in own.items():
        gids = torch.from_numpy(graph.global_ids(node_type)).long()[rows]
        vectors[gids] = block.float()
        has[gids] = True
    before = int(has.sum())
    has = _neighbour_fill(graph, vectors, has, hops)
    out = {}
    for node_type in graph.node_types:
        gids = torch.from_numpy(graph.global_ids(node_type)).long()
        rows = has[gids].nonzero().squeeze(1)
        if len(rows):
            out[node_type] = (rows, vectors[gids[rows]])
    return out, int(has.sum()) - before


def index_vectors(workspace, graph, *, run: str | None = None,
                  features: bool = False) -> NodeVectors:  # fmt: skip
    """The vectors ``kgf index`` indexes: ``features=True``, or no complete run: the encoded
    features with structural vectors (:func:`feature_vectors`; FileNotFoundError naming
    ``kgf encode`` when there are none); else the embeddings of ``run`` (default: the
    newest complete run)."""
    from kg.workspace import graph_version

    from .features import NodeFeatures

    version = graph_version(graph)
    if features and run is not None:
        raise ConfigError("give --run or --features, not both")
    found = None if features else run_embeddings(workspace, graph, run)
    if found is not None:
        info, tensors = found
        vectors = {t: (torch.arange(len(e)), e) for t, e in tensors.items()}
        source = {"kind": "run", "run": info.name, "finished": info.finished,
                  "graph_version": version}  # fmt: skip
        return NodeVectors(vectors, source)
    try:
        loaded = NodeFeatures.load(workspace)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{workspace} has no trained run and no features: run `kgf encode {workspace}` "
            f"(and `kgf train {workspace} ...` for trained embeddings) first"
        ) from None
    vectors, structural = feature_vectors(graph, loaded)
    notes = [] if features else [f"no trained run in {workspace}: indexing the encoded features"]
    return NodeVectors(vectors, {"kind": "features", "graph_version": version}, structural, notes)


def source_problem(workspace, source: dict | None) -> str | None:
    """Why an index built from ``source`` (:attr:`NodeVectors.source`) no longer matches
    the workspace's runs (its run deleted, incomplete or retrained since), or None."""
    if not source or source.get("kind") != "run":
        return None
    name = source.get("run")
    info = find_run(workspace, name)
    if info is None:
        return f"it was built from run {name!r}, which is gone or incomplete now"
    if info.finished != source.get("finished"):
        return f"it was built from run {name!r}, which was retrained since"
    return None


def rebuild_command(workspace, source: dict | None) -> str:
    """The ``kgf index`` command that rebuilds an index from the same kind of source."""
    workspace = Path(workspace)
    if source and source.get("kind") == "features":
        return f"kgf index {workspace} --features"
    if source and source.get("kind") == "run" and find_run(workspace, source.get("run")):
        return f"kgf index {workspace} --run {source['run']}"
    return f"kgf index {workspace}"


__all__ = [
    "NodeVectors",
    "StaleRunError",
    "embeddings_version",
    "feature_vectors",
    "index_vectors",
    "rebuild_command",
    "run_embeddings",
    "source_problem",
]

"""Score candidate links with a trained link-prediction run: the scorer of ``related()``.

A complete run (:mod:`fusion.runs`) of the ``link`` task (``kgf train DIR --task link
--relation R``) leaves the final node embeddings (``embeddings.safetensors``,
``{node_type: [N_t, d]}``) and the decoder (``heads.safetensors``: ``task.decoder.*``, e.g.
DistMult's ``[R, d]`` relation diagonals) in ``WORKSPACE/models/RUN``. :class:`LinkScorer` reads both and scores
``(query, relation, candidate)`` without rebuilding the GNN::

    scorer = LinkScorer.from_workspace("ws", relation="isAccessoryOrSparePartFor")
    scorer(query_iri, candidate_iris, "isAccessoryOrSparePartFor")   # -> [C] in (0, 1)
    scorer.propose(query_iri, "isAccessoryOrSparePartFor", k=50)    # its own best answers
    related(graph, index, query_iri, relation="isAccessoryOrSparePartFor", scorer=scorer)

The score is ``sigmoid(decoder(h, r, t))``: the model's probability that the link holds,
as it was trained (binary cross-entropy against sampled negatives, Schlichtkrull et al.,
2018, section 4). The query is the head and the candidate the tail for ``R``, the reverse
for ``rev_R``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from kg.naming import REV_PREFIX

from .artifacts import ConfigError, load_into, read_weights
from .runs import EMBEDDINGS_FILE, HEADS_FILE, RUN_FILE, find_run, run_directory
from .tasks.decoders import get_decoder
from .tasks.link import EMB_SCALE, LinkTaskConfig, SharedNeighbours, TextPrior, text_rows
from .tasks.link_via import ViaLinks


class LinkScorer:
    """``scorer(query_iri, candidate_iris, relation) -> np.ndarray [C]`` (probabilities).

    Args:
        graph: the :class:`kg.ProductGraph` the run was trained on.
        embeddings: ``{node_type: [N_t, d]}`` final node embeddings of the run.
        relations: the relation names the decoder was trained for (its row order).
        decoder: the trained decoder (:mod:`fusion.tasks.decoders`).
        run: the run's name, for messages.
    """

    def __init__(self, graph, embeddings: dict[str, torch.Tensor], relations: Sequence[str],
                 decoder: torch.nn.Module, run: str = "", prior=None,
                 text: dict[str, torch.Tensor] | None = None,
                 shared: SharedNeighbours | None = None,
                 via: ViaLinks | None = None):  # fmt: skip
        counts = graph.num_nodes_dict
        stale = [t for t, e in embeddings.items() if counts.get(t) != len(e)]
        if stale:
            raise ConfigError(
                f"run {run!r} was trained on another version of the graph (node counts of "
                f"{', '.join(stale)} differ): retrain it with `kgf train DIR --task link ...`"
            )
        self.graph, self.embeddings, self.run = graph, embeddings, run
        self.relations = list(relations)
        self.decoder = decoder.eval()
        # the link task's text prior (fusion.tasks.link.TextPrior) and its text rows
        self.prior = prior.eval() if prior is not None and text is not None else None
        self.text = text
        self.shared = shared.eval() if shared is not None else None
        self.via = via.eval() if via is not None and shared is not None else None
        # the run's score already holds the text similarity (the prior): related() then
        # does not add the index's similarity on top of it (kg.related)
        self.similarity_weight = 0.0 if self.prior is not None else 1.0
        if self.prior is not None:  # the link task decodes normalised embeddings then
            self.embeddings = {
                t: EMB_SCALE * F.normalize(e.float(), dim=1) for t, e in embeddings.items()
            }

    @classmethod
    def from_run(cls, workspace, run: str, graph=None) -> LinkScorer:
        """The scorer of ``WORKSPACE/models/RUN`` (a ``link`` run)."""
        from kg.graph import load_graph

        run_dir = run_directory(workspace, run)
        saved = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        task = dict(saved["task"])
        if task.pop("name", None) != "link":
            raise ConfigError(f"run {run!r} is not a link-prediction run (task 'link')")
        known = {f.name for f in dataclasses.fields(LinkTaskConfig)}
        config = LinkTaskConfig(**{k: v for k, v in task.items() if k in known})
        embeddings = read_weights(run_dir / EMBEDDINGS_FILE)
        dim = next(iter(embeddings.values())).shape[1]
        decoder = get_decoder(config.decoder, len(config.relations), dim)
        heads = run_dir / HEADS_FILE
        weights = read_weights(heads)
        load_into(decoder, weights, heads, prefix="task.decoder.")
        graph = graph if graph is not None else load_graph(workspace)
        prior = text = None
        if any(k.startswith("task.prior.") for k in weights):
            from .features import NodeFeatures

            prior = TextPrior(len(config.relations))
            load_into(prior, weights, heads, prefix="task.prior.")
            counts = graph.num_nodes_dict
            text = text_rows(NodeFeatures.load(workspace), list(counts), counts)
            if text is None:
                raise ConfigError(
                    f"run {run!r} scores with the text features, but {workspace} has none "
                    f"now: encode it again (`kgf encode {workspace}`)"
                )
        shared = None
        fits = all(graph.num_nodes_dict.get(t) == len(e) for t, e in embeddings.items())
        if fits and any(k.startswith("task.shared.") for k in weights):  # else: __init__ refuses
            counts = graph.num_nodes_dict
            edges = dict(graph.to_pyg().edge_index_dict)
            shared = SharedNeighbours(
                len(config.relations), edges, list(counts), counts, set(config.relations)
            )
            load_into(shared, weights, heads, prefix="task.shared.")
        via = None
        if shared is not None and any(k.startswith("task.via.") for k in weights):
            via = _via_links(shared, edges, config.relations)
            load_into(via, weights, heads, prefix="task.via.")
        return cls(graph, embeddings, config.relations, decoder, run, prior, text, shared, via)

    @classmethod
    def from_workspace(
        cls, workspace, relation: str | None = None, graph=None
    ) -> LinkScorer | None:
        """The newest ``link`` run of the workspace that was trained for ``relation`` (any
        link run when ``relation`` is None), or None when there is none."""
        run = find_link_run(workspace, relation)
        return None if run is None else cls.from_run(workspace, run, graph)

    def relation_index(self, relation: str | None) -> tuple[int, bool]:
        """``(row of the decoder, reversed)`` for a relation name, ``rev_`` name or IRI."""
        if relation is None:
            if len(self.relations) == 1:
                return 0, False
            raise ConfigError(
                f"run {self.run!r} predicts {', '.join(self.relations)}: name the relation"
            )
        name, reverse = relation_name(relation)
        if name not in self.relations:
            raise ConfigError(
                f"run {self.run!r} was not trained for {relation!r}; it predicts "
                f"{', '.join(self.relations)} (train one with `kgf train DIR --task link "
                f"--relation {name}`)"
            )
        return self.relations.index(name), reverse

    def vectors(self, iris: Sequence[str]) -> torch.Tensor:
        """``[len(iris), d]`` embeddings of entities (looked up by IRI)."""
        rows = [self.embeddings[t][i] for t, i in map(self.graph.node, iris)]
        dim = next(iter(self.embeddings.values())).shape[1]
        return torch.stack(rows) if rows else torch.zeros(0, dim)

    @torch.no_grad()
    def propose(self, query_iri: str, relation: str | None, k: int) -> list[str]:
        """The model's own ``k`` best answers for ``(query, relation, ?)``: every node of the
        types at the relation's other end, scored at once (``[N, d] @ [d]``)."""
        r, reverse = self.relation_index(relation)
        name = self.relations[r]
        ends = {
            (x.src_type if reverse else x.dst_type) for x in self.graph.relations if x.name == name
        } & set(self.embeddings)
        query = self.vectors([query_iri])
        rel = torch.tensor([r])
        scored: list[tuple[float, str, int]] = []
        for node_type in sorted(ends):
            table = self.embeddings[node_type]
            side = self.decoder.score_heads if reverse else self.decoder.score_tails
            scores = side(query, rel, table)[0]
            if self.prior is not None:
                scores = (
                    scores
                    + self.prior.score_all(
                        self.text_vectors([query_iri]), rel, self.text[node_type]
                    )[0]
                )
            if self.shared is not None:
                scores = scores + self.shared.score_all(
                    self.shared_ids([query_iri]), rel,
                    self.shared.ids(node_type, torch.arange(len(table))),
                )[0]  # fmt: skip
            if self.via is not None:
                ids = self.shared.ids(node_type, torch.arange(len(table)))
                side = self.via.score_heads if reverse else self.via.score_tails
                scores = scores + side(self.shared_ids([query_iri]), rel, ids)[0]
            top = torch.topk(scores, min(k + 1, len(table)))
            scored += [(float(v), node_type, int(i)) for v, i in zip(*top, strict=True)]
        scored.sort(key=lambda x: -x[0])
        iris = (self.graph.iri(t, i) for _, t, i in scored)
        return [iri for iri in iris if iri != query_iri][:k]

    @torch.no_grad()
    def __call__(self, query_iri: str, candidate_iris: Sequence[str],
                 relation: str | None = None) -> np.ndarray:  # fmt: skip
        r, reverse = self.relation_index(relation)
        query = self.vectors([query_iri]).expand(len(candidate_iris), -1)
        candidates = self.vectors(candidate_iris)
        heads, tails = (candidates, query) if reverse else (query, candidates)
        rel = torch.full((len(candidate_iris),), r, dtype=torch.long)
        scores = self.decoder(heads, rel, tails)
        if self.prior is not None:
            q_text = self.text_vectors([query_iri]).expand(len(candidate_iris), -1)
            c_text = self.text_vectors(candidate_iris)
            h_text, t_text = (c_text, q_text) if reverse else (q_text, c_text)
            scores = scores + self.prior(h_text, rel, t_text)
        if self.shared is not None:
            q_ids = self.shared_ids([query_iri]).expand(len(candidate_iris))
            c_ids = self.shared_ids(candidate_iris)
            h_ids, t_ids = (c_ids, q_ids) if reverse else (q_ids, c_ids)
            scores = scores + self.shared(h_ids, rel, t_ids)
            if self.via is not None:
                scores = scores + self.via(h_ids, rel, t_ids)
        return torch.sigmoid(scores).double().numpy()

    def shared_ids(self, iris: Sequence[str]) -> torch.Tensor:
        """``[len(iris)]`` row ids of the entities in the shared-neighbour matrix."""
        return torch.tensor(
            [int(self.shared.ids(t, torch.tensor(i))) for t, i in map(self.graph.node, iris)],
            dtype=torch.long,
        )

    def text_vectors(self, iris: Sequence[str]) -> torch.Tensor:
        """``[len(iris), d_text]`` normalised text rows (zeros: no text) for the prior."""
        rows = [self.text[t][i] for t, i in map(self.graph.node, iris)]
        dim = next(iter(self.text.values())).shape[1]
        return torch.stack(rows) if rows else torch.zeros(0, dim)


def _via_links(shared: SharedNeighbours, edges, relations: Sequence[str]) -> ViaLinks:
    """The :class:`ViaLinks` term over the graph's edges of the predicted relations (the
    run saw its training edges; every known edge is evidence when scoring)."""
    links = [
        (relations.index(p), shared.ids(s, ei[0].long()), shared.ids(d, ei[1].long()))
        for (s, p, d), ei in edges.items()
        if p in relations and s in shared.offsets and d in shared.offsets
    ]
    return ViaLinks(shared, links, len(relations))


def relation_name(relation: str) -> tuple[str, bool]:
    """``"rev_isAccessoryOrSparePartFor"`` -> ``("isAccessoryOrSparePartFor", True)``; IRIs
    give their local name."""
    from kg.naming import split_iri

    reverse = relation.startswith(REV_PREFIX)
    name = relation[len(REV_PREFIX) :] if reverse else relation
    if ":" in name:
        name = split_iri(name)[1] or name
    return name, reverse


def find_link_run(workspace, relation: str | None = None) -> str | None:
    """The newest complete run of ``WORKSPACE/models`` trained for link prediction on
    ``relation`` (any relation when None), or None (:func:`fusion.runs.find_run`)."""
    name = relation_name(relation)[0] if relation else None
    run = find_run(workspace, task="link", relation=name)
    return run.name if run is not None else None


__all__ = ["LinkScorer", "find_link_run", "relation_name"]

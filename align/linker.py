"""The linker: text, records and photos -> graph entities, with scores, alternatives, NIL.

:class:`Linker` loads a workspace's graph and features and links

- free text (:meth:`Linker.link_text`): mention spans are found by
  :class:`~align.mentions.MentionDetector` (catalogue names and model numbers), each linked
  on its own; a text in which nothing is found (another script, no catalogue word) is
  still tried densely: up to :attr:`Linker.max_windows` windows of
  :attr:`Linker.window_chars` characters become mentions;
- records (:meth:`Linker.link_record`, :meth:`Linker.link_records`): an offer or product
  row, its fields joined, is one mention;
- given pairs (:meth:`Linker.score_pairs`): the match probability of (record, entity)
  pairs, for pairwise entity matching (Ditto's protocol);
- photos (:meth:`Linker.link_image`, :meth:`Linker.link_images`): through the workspace's
  image linker (:mod:`align.images`, trained by :mod:`align.image_train`). A workspace
  encoded without text (``kgf encode DIR --text none``) still links photos; its text
  methods then raise :class:`LinkerError` naming the ``encode`` command.

For each mention: candidates (BM25 over names U dense nearest neighbours,
:mod:`align.candidates`), pair features (:mod:`align.pair_features`), a learned scorer
(:mod:`align.scorer`), ranked; the best candidate is the link unless its probability is
below the calibrated NIL threshold. Probabilities are calibrated: a trained scorer's output
goes through Platt scaling fitted on held-out validation pairs (``LinkerConfig.calibrator``,
:mod:`align.calibration`); the pair decision (:meth:`Linker.score_pairs`) reads the pair's
score and its best rival's in the catalogue (``LinkerConfig.decision``,
:mod:`align.pair_decision`) and is the fixed ``p >= LinkerConfig.threshold = 0.5`` on every
data set rather than a cut tuned per set, so it transfers to product sets the linker never
saw (``benchmarks/matching.py --transfer``).
Linking has its own stored cut, ``LinkerConfig.nil_threshold`` (:mod:`align.calibrate`);
``threshold=`` and ``nil=False`` override it per call. When the workspace holds a trained
cross-encoder (``WORKSPACE/reranker``, :mod:`align.rerank`, ``kgf link-train --reranker``)
that was trained against this linker, pair scores and the top candidates of every link come
from it (its own calibrated pair and NIL thresholds); ``Linker(ws, rerank=False)`` turns it
off. A batch of mentions is encoded in one pass and
its pair features computed with array operations (:mod:`align.batch_features`). The retrieve-then-rank design follows BLINK (Wu et al.,
"Scalable Zero-shot Entity Linking with Dense Entity Retrieval", EMNLP 2020); the pair
classifier with a validation-chosen threshold follows Ditto (Li et al., "Deep Entity
Matching with Pre-Trained Language Models", VLDB 2021 / arXiv 2020).

A trained linker lives in ``WORKSPACE/linker/``: ``config.json`` (:class:`LinkerConfig`)
and ``model.safetensors`` (scorer weights, the optional projection). Without one, a
hand-weighted scorer with threshold 0.5 is used (``linker.config.trained`` is False).

Each :class:`Link` carries ``representation``: the mention embedding [d] concatenated with
the linked entity's graph-enriched vector [d_g] (:class:`align.entities.EntityTable`: GNN
embeddings when a trained run exists, else the entity's text feature averaged with its
1-hop neighbours'); the entity half is zero for a NIL link.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from fusion.artifacts import CONFIG_FILE, WEIGHTS_FILE, load_into, read_weights, save_pretrained
from fusion.features import FEATURES_FILE, NodeFeatures
from kg.graph import load_graph
from kg.workspace import LINKER_DIR, graph_version

from .base import Link, LinkerError, read_config
from .batch_features import BatchFeaturizer
from .calibration import Calibrator, logit
from .candidates import CandidateGenerator, Candidates
from .entities import EntityTable
from .linker_images import ImageLinking
from .mentions import Mention, MentionDetector, record_mention, text_windows
from .pair_features import FEATURES
from .scorer import PairScorer, default_scorer

FORMAT = "kgfusion-linker"
VERSION = 1


class CandidateScores(NamedTuple):
    """What :meth:`Linker.score_candidates` gives for M mentions (lists of length M)."""

    candidates: list[Candidates]  # per mention: rows and raw retrieval signals [C_i]
    features: list[np.ndarray]  # per mention: pair features float32 [C_i, F]
    probs: list[np.ndarray]  # per mention: match probabilities [C_i]


@dataclass
class LinkerConfig:
    """Everything a trained linker needs besides its weights (``config.json``)."""

    format: str = FORMAT
    version: int = VERSION
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    hidden: int = 0
    threshold: float = 0.5  # pair decisions (score_pairs): the cut on calibrated probabilities
    calibrator: dict | None = None  # Platt scaling of the scorer, fitted on validation pairs
    decision: dict | None = None  # the pair decision (align.pair_decision), on validation pairs
    nil_threshold: float | None = None  # linking: below it a mention is NIL (None: threshold)
    k: int = 10
    k_dense: int = 20
    k_lexical: int = 20
    text_encoder: str | None = None
    mention_kind: str | None = None
    record_types: list[str] | None = None
    id_col: str | None = "id"
    text_cols: list[str] | None = None
    title_col: str | None = None
    price_col: str | None = None
    projection: bool = False
    graph_source: str = ""
    graph_version: str | None = None
    trained: bool = False
    metrics: dict = field(default_factory=dict)

    @classmethod
    def load(cls, directory) -> LinkerConfig:
        return read_config(cls, Path(directory) / CONFIG_FILE, FORMAT, VERSION, "linker")

    @property
    def link_threshold(self) -> float:
        """The NIL cut of linking: ``nil_threshold``, else (a linker saved before it
        existed, or the untrained default) ``threshold``."""
        return self.threshold if self.nil_threshold is None else self.nil_threshold


class Linker(ImageLinking):
    """Links text, records and pairs to a workspace's entities (see module docstring).

    Args:
        workspace: a workspace folder with features (``kgf build`` then ``kgf encode``).
        linker_dir: where a trained linker is read from (default ``WORKSPACE/linker``;
            a missing folder means the untrained default scorer).
        device, batch_size: for the mention text encoder (and the image encoder).
        graph_run: which ``WORKSPACE/models/<run>`` GNN embeddings give the graph vectors
            (default: those the trained linker was trained with - GNN run or neighbour
            mean -; untrained: the newest run, else the neighbour mean).
        fresh: ignore a trained linker on disk (start from the default scorer).
        rerank: use the workspace's trained cross-encoder (``WORKSPACE/reranker``) when
            there is one that was trained against this linker (False: features only).
        precision: the mention encoder's precision (:mod:`fusion.precision`): ``"auto"``
            (bf16 where the device multiplies it natively: 1.5-2.3x the mentions per second
            on a CPU with AVX512-BF16, embeddings within a cosine of 1e-4 of float32), ``"fp32"`` or
            ``"bf16"``; encoders without a bf16 path (E5's own engine) stay as they are.
    """

    window_chars = 256
    max_windows = 16

    def __init__(
        self,
        workspace,
        *,
        linker_dir=None,
        device: str = "auto",
        batch_size: int = 64,
        graph_run: str | None = None,
        fresh: bool = False,
        rerank: bool = True,
        precision: str = "auto",
    ):
        from fusion.encoders import get_encoder, precision_kwargs

        self.workspace = Path(workspace)
        self.graph = load_graph(self.workspace)
        if not (self.workspace / FEATURES_FILE).is_file():
            raise LinkerError(
                f"{self.workspace} has no features ({FEATURES_FILE}): linking needs the "
                f"`encode` step first; run `kgf encode {self.workspace}`"
            )
        features = NodeFeatures.load(self.workspace)
        self.features = features
        self.device, self.batch_size = device, batch_size
        self._images = None
        self._text_error: str | None = None
        self._truncation_said = False
        self.reranker = None
        encoder_name = features.spec.text_encoder
        if not encoder_name or not any("text" in mods for mods in features.features.values()):
            self._text_error = (
                f"{self.workspace}'s features have no text encoder; run "
                f"`kgf encode {self.workspace} --text minilm`"
            )
            self.config, self.entities, self.encoder = LinkerConfig(), None, None
            self.version = graph_version(self.graph)
            return
        linker_dir = Path(linker_dir) if linker_dir else self.workspace / LINKER_DIR
        trained = not fresh and (linker_dir / CONFIG_FILE).is_file()
        config = LinkerConfig.load(linker_dir) if trained else LinkerConfig()
        gnn_workspace = self.workspace
        if graph_run is None and trained:  # the graph vectors the scorer was trained with
            if config.graph_source.startswith("gnn:"):
                graph_run = config.graph_source[len("gnn:") :]
            elif config.graph_source == "neighbour-mean":
                gnn_workspace = None
        try:
            self.entities = EntityTable(self.graph, features, gnn_workspace, graph_run=graph_run)
        except ValueError as err:
            raise LinkerError(f"{self.workspace}: {err}") from None
        self.version = graph_version(self.graph)
        if trained:
            self._check_trained(config, linker_dir, encoder_name)
        config.text_encoder = encoder_name
        if config.mention_kind is None and encoder_name == "e5-multilingual":
            config.mention_kind = "query"
        config.graph_source = self.entities.graph_source
        self.config = config
        kwargs = {"device": device, "batch_size": batch_size}
        if config.mention_kind:
            kwargs["kind"] = config.mention_kind
        kwargs.update(precision_kwargs(encoder_name, precision))
        self.encoder = get_encoder(encoder_name, **kwargs)
        self.scorer: PairScorer = default_scorer()
        projection = None
        if trained:
            tensors = read_weights(linker_dir / WEIGHTS_FILE)
            self.scorer = PairScorer(len(FEATURES), config.hidden)
            load_into(self.scorer, tensors, linker_dir / WEIGHTS_FILE, prefix="scorer.")
            if "projection" in tensors:
                projection = tensors["projection"].numpy()
        self.scorer.eval()
        self.candidates = CandidateGenerator(self.entities, projection)
        self._detector: MentionDetector | None = None
        self.featurizer = BatchFeaturizer(self.entities)
        if trained and rerank:
            from .rerank import load_workspace_reranker

            self.reranker = load_workspace_reranker(self.workspace, linker_dir / WEIGHTS_FILE)

    def _check_trained(self, config: LinkerConfig, linker_dir: Path, encoder_name: str) -> None:
        if list(config.features) != list(FEATURES):
            raise LinkerError(
                f"{linker_dir} was trained with other pair features; retrain it with "
                f"`kgf link-train {self.workspace} ...`"
            )
        if config.text_encoder and config.text_encoder != encoder_name:
            raise LinkerError(
                f"{linker_dir} was trained on {config.text_encoder!r} features but the "
                f"workspace is now encoded with {encoder_name!r}; retrain with `kgf link-train`"
            )
        if config.graph_version and config.graph_version != self.version:
            warnings.warn(
                f"{linker_dir} was trained on another version of the graph; links still work, "
                "but retrain with `kgf link-train` for calibrated scores",
                stacklevel=3,
            )
        if config.graph_source and config.graph_source != self.entities.graph_source:
            warnings.warn(
                f"{linker_dir} was trained with graph vectors from {config.graph_source!r}, "
                f"now {self.entities.graph_source!r}; retrain with `kgf link-train`",
                stacklevel=3,
            )

    def _need_text(self) -> None:
        if self._text_error is not None:
            raise LinkerError(self._text_error)

    def __repr__(self) -> str:
        if self._text_error is not None:
            return f"Linker({str(self.workspace)!r}, images only: no text features)"
        state = "trained" if self.config.trained else "untrained (default scorer)"
        return (
            f"Linker({str(self.workspace)!r}, entities={len(self.entities)}, "
            f"encoder={self.config.text_encoder!r}, {state}, "
            f"nil_threshold={self.nil_threshold:.3f}, pair_threshold={self.pair_threshold:.3f}"
            + (", reranked)" if self.reranker is not None else ")")
        )

    @property
    def calibrator(self) -> Calibrator | None:
        """Platt scaling of the scorer's probability (None: untrained or saved before it)."""
        return Calibrator.from_dict(self.config.calibrator) if self.config.calibrator else None

    @property
    def pair_threshold(self) -> float:
        """The pair-decision cut of :meth:`score_pairs` (the reranker's when one is used)."""
        return self.reranker.threshold if self.reranker is not None else self.config.threshold

    @property
    def nil_threshold(self) -> float:
        """The default NIL cut of linking (the reranker's when one is used)."""
        if self.reranker is not None:
            return self.reranker.nil_threshold
        return self.config.link_threshold

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Match probabilities float32 [P] of pair features ``x`` [P, F]: the scorer's,
        through the Platt calibrator when the linker has one (module docstring)."""
        raw = self.scorer.predict(x)
        calibrator = self.calibrator
        if calibrator is None or not len(raw):
            return raw
        return calibrator.predict(logit(raw)).astype(np.float32)

    @property
    def detector(self) -> MentionDetector:
        self._need_text()
        if self._detector is None:
            self._detector = MentionDetector(self.entities)
        return self._detector

    # ------------------------------------------------------------------ mentions
    def mention(self, record) -> Mention:
        """A record (dict), a plain string or a :class:`Mention` as a mention."""
        if isinstance(record, Mention):
            return record
        if isinstance(record, str):
            return Mention(record)
        if isinstance(record, dict):
            c = self.config
            return record_mention(
                record, id_col=c.id_col, text_cols=c.text_cols, title_col=c.title_col,
                price_col=c.price_col,
            )  # fmt: skip
        raise TypeError(
            f"expected a record (dict), a string or a Mention, not {type(record).__name__}"
        )

    def encode(self, mentions: list[Mention], cache: bool = False) -> np.ndarray:
        """Mention embeddings [M, d] (L2-normalised); identical texts are encoded once.

        ``cache=True`` keeps them in the workspace's embedding cache (used in training).
        """
        self._need_text()
        unique = list(dict.fromkeys(m.text for m in mentions))
        if not unique:
            return np.zeros((0, self.entities.text_vecs.shape[1]), np.float32)
        self._warn_truncated(unique)
        if cache:
            from fusion.cache import EmbeddingCache

            store = EmbeddingCache(self.workspace / "features" / "cache", self.encoder.cache_id)
            keys = [store.key(t.encode()) for t in unique]
            found, values = store.lookup(keys)
            vecs = torch.zeros(len(unique), self.encoder.dim)
            if found:
                vecs[found] = values
            todo = sorted(set(range(len(unique))) - set(found))
            if todo:
                fresh = self.encoder.encode([unique[i] for i in todo]).float()
                vecs[todo] = fresh
                store.put([keys[i] for i in todo], fresh)
                store.save()
        else:
            vecs = self.encoder.encode(unique).float()
        vecs = vecs.numpy()
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        where = {t: i for i, t in enumerate(unique)}
        return vecs[[where[m.text] for m in mentions]].astype(np.float32)

    def _warn_truncated(self, texts: list[str]) -> None:
        """Warn once per linker when a mention is longer than the text model's window (the
        model sees only its first ``max_length`` tokens). Only texts with more characters
        than the window are tokenised to check (a token covers at least one character)."""
        window = getattr(self.encoder, "max_length", None)
        tokenizer = getattr(self.encoder, "_tokenizer", None)
        if self._truncation_said or not window or tokenizer is None:
            return
        long = [t for t in texts if len(t) > window - 2]
        if not long:
            return
        ids = tokenizer()(long, add_special_tokens=True, truncation=False, verbose=False)
        over = [t for t, x in zip(long, ids["input_ids"], strict=True) if len(x) > window]
        if over:
            self._truncation_said = True
            warnings.warn(
                f"{len(over)} mention(s) are longer than the text model's window of {window} "
                f"tokens, e.g. {over[0][:60]!r}...: only their first {window} tokens are "
                "encoded (the lexical features still see the whole text); said once",
                stacklevel=3,
            )

    # ------------------------------------------------------------------ scoring
    def _check_k(self, k):
        k = self.config.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k={k!r}: ask for at least one alternative (k >= 1)")
        return k

    def score_candidates(self, mentions: list[Mention], vecs: np.ndarray, types=None,
                         extra: list[list[int]] | None = None, only_extra: bool = False,
                         exclude: list[list[int]] | None = None) -> CandidateScores:  # fmt: skip
        """Generate, featurise and score the candidates of each mention.

        Args:
            mentions: M mentions; ``vecs`` float32 [M, d] their embeddings (:meth:`encode`).
            types: node types the candidates are drawn from (None: all).
            extra: per mention, entity rows to add to its candidates (labelled pairs,
                mined negatives); with ``only_extra`` only those rows get features
                (the other candidates still set the margin features).
            exclude: per mention, entity rows taken out of the catalogue for it (NIL
                calibration, :mod:`align.calibrate`).
        Returns:
            :class:`CandidateScores`: per mention its :class:`~align.candidates.Candidates`,
            pair features [C_i, F] (``F = len(FEATURES)``) and match probabilities [C_i].
        """
        cands = self.candidates.generate(
            mentions, vecs, k_dense=self.config.k_dense, k_lexical=self.config.k_lexical,
            types=types, extra=extra, exclude=exclude,
        )  # fmt: skip
        graph_space = self.entities.to_graph_space(vecs)
        blocks = self.featurizer.features(mentions, cands, graph_space, extra if only_extra else None)
        sizes = [len(b) for b in blocks]
        stacked = np.concatenate(blocks) if blocks else np.zeros((0, len(FEATURES)), np.float32)
        probs = np.split(self.probabilities(stacked), np.cumsum(sizes)[:-1]) if sizes else []
        return CandidateScores(cands, blocks, probs)

    def _check_threshold(self, threshold):
        if threshold is None:
            return self.nil_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
            0.0 <= threshold <= 1.0
        ):
            raise ValueError(
                f"threshold={threshold!r}: give a match probability in [0, 1] (the linker's "
                f"calibrated NIL threshold is {self.nil_threshold:.3f})"
            )
        return float(threshold)

    def _links(self, mentions, vecs, types, k, threshold=None, nil: bool = True,
               sources=None) -> list[Link]:  # fmt: skip
        """Links of ``mentions`` (embeddings ``vecs`` [M, d]); with a reranker its top
        ``max(k, reranker k)`` candidates are rescored from ``sources`` (the records, or the
        mention texts) and the link decided on the reranked probability."""
        threshold = self._check_threshold(threshold)
        depth = k if self.reranker is None else max(k, self.reranker.config.k)
        cands, _, probs = self.score_candidates(mentions, vecs, types)
        dim_g = self.entities.graph_vecs.shape[1]
        links = []
        for mention, vec, cand, p in zip(mentions, vecs, cands, probs, strict=True):
            order = np.lexsort((cand.rows, -p))
            alternatives = [(self.entities.iris[int(cand.rows[j])], float(p[j]))
                            for j in order[:depth]]  # fmt: skip
            best = int(cand.rows[order[0]]) if len(order) else -1
            score = float(p[order[0]]) if len(order) else 0.0
            is_nil = best < 0 or (nil and score < threshold)
            entity = np.zeros(dim_g, np.float32) if is_nil else self.entities.graph_vecs[best]
            links.append(
                Link(
                    mention=mention.text, start=mention.start, end=mention.end,
                    iri=None if is_nil else self.entities.iris[best],
                    type=None if is_nil else self.entities.types[best], score=score,
                    alternatives=alternatives, nil=is_nil,
                    representation=np.concatenate([vec, entity]).astype(np.float32),
                )
            )  # fmt: skip
        if self.reranker is None:
            return links
        sources = sources if sources is not None else [m.text for m in mentions]
        links = self.reranker.rerank(self, sources, links, k=depth, threshold=threshold, nil=nil)
        return [dataclasses.replace(x, alternatives=x.alternatives[:k]) for x in links]

    # ------------------------------------------------------------------ public API
    def link_text(self, text: str, *, k: int | None = None, types=None,
                  threshold: float | None = None, nil: bool = True) -> list[Link]:  # fmt: skip
        """Find and link the product mentions of ``text`` (NIL ones included, ``nil=True``).

        ``threshold``: the NIL cut for this call (default: the calibrated
        ``config.link_threshold``); ``nil=False`` links every mention to its best candidate.

        ``types`` restricts the candidate entities to these node types (default: the types
        a trained scorer was trained on, ``config.record_types``, as its scores are
        calibrated for them; all types for the untrained default scorer).
        Empty or blank text gives ``[]``. Work is bounded: at most
        ``MentionDetector.max_mentions`` spans, each distinct span text encoded once.
        """
        if not isinstance(text, str):
            raise TypeError(f"link_text takes a string, not {type(text).__name__}")
        self._need_text()
        k = self._check_k(k)
        if not text.strip():
            return []
        spans = self.detector.detect(text)
        mentions = [Mention(text[s:e], s, e) for s, e in spans] if spans else self._fallback(text)
        if not mentions:
            return []
        types = types if types is not None else self.config.record_types
        return self._links(mentions, self.encode(mentions), types, k, threshold, nil)

    def _fallback(self, text: str) -> list[Mention]:
        out = []
        for offset, window in text_windows(text, self.window_chars):
            stripped = window.strip()
            if not re.search(r"[^\W_]", stripped):
                continue
            start = offset + window.index(stripped)
            out.append(Mention(stripped, start, start + len(stripped)))
            if len(out) >= self.max_windows:
                break
        return out

    def link_record(self, record, *, k: int | None = None, types=None,
                    threshold: float | None = None, nil: bool = True) -> Link:  # fmt: skip
        """Link one record (dict of fields; or a string) as a single mention."""
        return self.link_records([record], k=k, types=types, threshold=threshold, nil=nil)[0]

    def link_records(self, records, *, k: int | None = None, types=None,
                     threshold: float | None = None, nil: bool = True) -> list[Link]:  # fmt: skip
        """Link many records at once: one encoder pass over their distinct texts, candidates
        and pair features for the whole batch (:mod:`align.batch_features`). ``types``
        default to the node types the linker was trained on (``config.record_types``), else
        all; ``threshold`` / ``nil`` as in :meth:`link_text`."""
        self._need_text()
        k = self._check_k(k)
        records = list(records)
        mentions = [self.mention(r) for r in records]
        types = types if types is not None else self.config.record_types
        if not mentions:
            return []
        empty = [i for i, m in enumerate(mentions) if not m.text.strip()]
        if empty:
            raise ValueError(
                f"record {empty[0]} has no text in its columns to link ({len(empty)} such "
                "record(s)); drop empty records or fill a text column"
            )
        sources = [r if isinstance(r, dict) else m.text for r, m in zip(records, mentions, strict=True)]
        return self._links(mentions, self.encode(mentions), types, k, threshold, nil, sources)

    def score_pairs(self, records, iris, *, types=None, cache: bool = False,
                    rerank: bool = True) -> np.ndarray:  # fmt: skip
        """Calibrated match probabilities [P] of the pairs ``(records[i], iris[i])``; a
        pair is a match when its probability reaches :attr:`pair_threshold`. With the
        workspace's reranker (and ``rerank``), the reranker's probabilities.

        The same record appearing in several pairs is encoded and searched once; its
        candidates (for the margin features) are generated against ``types`` (default
        ``config.record_types``) plus the paired entities.
        """
        self._need_text()
        if len(records) != len(iris):
            raise ValueError(f"{len(records)} records but {len(iris)} IRIs")
        if self.reranker is not None and rerank:
            return self.reranker.score_pairs(self, records, iris)
        mentions, groups = self.group_pairs(records, iris)
        types = types if types is not None else self.config.record_types
        if not self.config.decision:  # untrained, or saved before the calibrated decision
            return self.grouped_pair_features(mentions, groups, types, cache)[1]
        from .pair_decision import decision_inputs, pair_context

        _, raw, rival = pair_context(self, mentions, groups, types, cache)
        return Calibrator.from_dict(self.config.decision).predict(decision_inputs(raw, rival))

    def group_pairs(self, records, iris) -> tuple[list[Mention], list[list[tuple[int, int]]]]:
        """The pairs ``(records[i], iris[i])`` grouped by mention, so that each distinct
        mention is encoded and searched once.

        Returns ``(mentions, groups)``: the U unique mentions and, for each, its pairs as
        ``(pair index i, entity row)``. Raises :class:`LinkerError` for an IRI that is not
        a linkable entity."""
        keyed: dict[tuple, int] = {}
        mentions: list[Mention] = []
        groups: list[list[tuple[int, int]]] = []
        for i, (record, iri) in enumerate(zip(records, iris, strict=True)):
            mention = self.mention(record)
            key = (mention.text, mention.title, mention.price)
            if key not in keyed:
                keyed[key] = len(mentions)
                mentions.append(mention)
                groups.append([])
            row = self.entities.row_of.get(iri)
            if row is None:
                raise LinkerError(
                    f"pair {i}: {iri!r} is not a linkable entity of {self.workspace} (not in "
                    "the graph, or it has no text feature)"
                )
            groups[keyed[key]].append((i, row))
        return mentions, groups

    def grouped_pair_features(self, mentions: list[Mention], groups, types=None,
                              cache: bool = False) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Pair features [P, F] and match probabilities [P] of the pairs of
        :meth:`group_pairs` (``P`` = the number of pairs), in pair-index order.

        Each mention's candidates are generated against ``types`` plus its paired entities
        (for the margin features); ``cache`` keeps mention embeddings in the workspace's
        embedding cache (training)."""
        vecs = self.encode(mentions, cache=cache)
        extra = [list(dict.fromkeys(r for _, r in g)) for g in groups]
        _, blocks, _ = self.score_candidates(mentions, vecs, types, extra=extra, only_extra=True)
        n = sum(len(g) for g in groups)
        x = np.zeros((n, len(FEATURES)), np.float32)
        for g, rows, block in zip(groups, extra, blocks, strict=True):
            where = {r: j for j, r in enumerate(rows)}
            for pair, row in g:
                x[pair] = block[where[row]]
        return x, self.probabilities(x)

    def save(self, directory=None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (default ``WORKSPACE/linker``),
        atomically."""
        self._need_text()
        directory = Path(directory) if directory else self.workspace / LINKER_DIR
        self.config.graph_version = self.version
        tensors = {f"scorer.{k}": v for k, v in self.scorer.state_dict().items()}
        if self.candidates.projection is not None:
            tensors["projection"] = torch.from_numpy(self.candidates.projection)
        meta = {"format": FORMAT}
        return save_pretrained(directory, self.config, tensors, metadata=meta, replace=True)

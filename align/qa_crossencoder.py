"""A fine-tuned cross-encoder question -> attribute scorer (``kgf qa-train --scorer cross-encoder``).

The bi-encoder of :mod:`align.qa_biencoder` embeds the question and each attribute apart;
here they are read together, ``[CLS] question [SEP] name: value [SEP]``, by one encoder
with a one-logit head, so the words of the question attend to the attribute's name and
value ("is this a flat shoe?" -> ``heel: mid-heel``). The head (``pooling``): by default
(``classifier``, format 1's) transformers' sequence-classification head on BERT's pooler,
which a sentence-transformers checkpoint such as the offline all-MiniLM-L6-v2 never
trained; or (``mean`` / ``cls``) a fresh ``Linear(hidden, 1)`` on the mean (the [CLS]) of
the last hidden states (:class:`align.rerank.PairModel`), trained at
``head_lr_multiplier`` times the encoder's learning rate, optionally with a cosine
``prior`` (below). On semiPQA's dev hold-out the ``mean`` head with the prior is by far
the better cross-encoder alone, but its ensemble with the bi-encoder is not better than
the default's (benchmarks/README.md, "cross-encoder with a fresh head"). For question
``q`` and candidates ``c_1..c_C``::

    s_j   = CE(q, c_j) + w . lex_j [+ a cos(q, c_j)]   lex_j: lexical overlaps [2];
                                                       cos: frozen base encoder (prior)
    s_nil = b                                          a, b, w: learned
    p     = softmax([s_1 .. s_C, s_nil])          [C + 1]

trained listwise over each question's candidates plus the NIL slot (as the other scorers;
Cao et al., ICML 2007), each training question with at most ``max_candidates`` of its
candidates (the answering ones and a seeded sample of the others). The epoch (best
hold-out MRR) is chosen and the NIL threshold calibrated on a hold-out of whole
attributes (:func:`align.qa_train.attribute_split`), with the kept model. It costs one
encoder pass per (question, attribute) pair, where the bi-encoder embeds each text once:
a few times the bi-encoder's CPU.

Saved as ``config.json`` (:class:`CrossEncoderConfig`, with the transformers config) +
``model.safetensors`` (:mod:`fusion.artifacts`) + the tokenizer's JSON files.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import qa_tuned
from .base import LinkerError, read_config
from .qa_scorer import LEXICAL, Candidate, Question, _masked, lexical_overlap, shuffled
from .qa_train import _targets, attribute_split, rank_metrics

FORMAT = "kgfusion-qa-crossencoder"
VERSION = 2  # 2: AutoModel + a head on pooled states (1: sequence-classification head)
LEGACY_POOLING = "classifier"  # format 1: AutoModelForSequenceClassification (BERT's pooler)
PRIOR_SCALE = 20.0  # initial weight of the cosine prior (the bi-encoder's initial scale)


@dataclass
class CrossEncoderConfig:
    """What a saved cross-encoder scorer needs besides its weights (``config.json``)."""

    format: str = FORMAT
    version: int = VERSION
    base_model: str = ""
    model: dict = field(default_factory=dict)  # the transformers config (to_dict())
    max_length: int = 96  # tokens per (question, attribute) pair
    pooling: str = LEGACY_POOLING  # or a key of align.rerank.POOLINGS (a fresh pair head)
    prior: bool = False  # add the frozen base encoder's cosine (weight learned) to each score
    prior_model: str = ""  # a saved bi-encoder whose encoder is the frozen one ("": the base)
    value_chars: int = 80
    max_question_chars: int = 500
    threshold: float = 0.3
    epochs: int = 0
    training: dict = field(default_factory=dict)  # the fine-tuning recipe a refit repeats
    trained: bool = False
    metrics: dict = field(default_factory=dict)


def pair_model(encoder: nn.Module, pooling: str) -> nn.Module:
    """The pair scorer on ``encoder``: for ``LEGACY_POOLING`` the sequence-classification
    model itself, else :class:`align.rerank.PairModel` (its ``pooling`` + a fresh head)."""
    from .rerank import POOLINGS, PairModel

    if pooling == LEGACY_POOLING:
        return encoder
    if pooling not in POOLINGS:
        raise LinkerError(f"cross-encoder pooling {pooling!r}: not one of "
                          f"{[*POOLINGS, LEGACY_POOLING]}")  # fmt: skip
    return PairModel(encoder, pooling)


def _auto_model(pooling: str):
    """The transformers class the encoder of ``pooling`` is built with."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    return AutoModelForSequenceClassification if pooling == LEGACY_POOLING else AutoModel


def _module(encoder: nn.Module, config: CrossEncoderConfig) -> CrossEncoderModule:
    """The module of ``config`` on ``encoder`` (with ``config.prior``, a frozen copy of it)."""
    if config.prior and config.pooling == LEGACY_POOLING:
        raise LinkerError("the cosine prior needs a pooled head (pooling 'mean' or 'cls')")
    frozen = copy.deepcopy(encoder) if config.prior else None
    return CrossEncoderModule(pair_model(encoder, config.pooling), frozen)


class CrossEncoderModule(nn.Module):
    """The pair model (one logit per tokenised pair: :func:`pair_model`) and the listwise
    head: ``nil`` b, ``lex`` w; with a ``frozen`` copy of the base encoder, the cosine
    prior's weight ``prior`` a (``s_j += a * cos(q, c_j)``, the zero-shot bi-encoder's
    score, which the pair model then learns to correct)."""

    def __init__(self, model: nn.Module, frozen: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.nil = nn.Parameter(torch.tensor(0.0))
        self.lex = nn.Parameter(torch.zeros(LEXICAL))
        self.frozen, self.prior = frozen, None
        if frozen is not None:
            frozen.requires_grad_(False)
            self.prior = nn.Parameter(torch.tensor(PRIOR_SCALE))

    def train(self, mode: bool = True):
        """As ``nn.Module.train``; the frozen prior encoder stays in eval mode."""
        super().train(mode)
        if self.frozen is not None:
            self.frozen.eval()
        return self

    @torch.no_grad()
    def embed(self, batch: dict) -> torch.Tensor:
        """Unit mean-pooled embeddings ``[N, d]`` of a tokenised batch by the frozen encoder."""
        from .rerank import mean_pool

        pooled = mean_pool(self.frozen(**batch), batch["attention_mask"]).float()
        return nn.functional.normalize(pooled, dim=-1)

    def forward(self, batch: dict, index, lex, cos=None):
        """``batch``: the tokenised pairs [P]; ``index [B, C]`` (row of the pair per
        candidate, -1: padding); ``lex [B, C, 2]``; ``cos [B, C]`` (the prior's cosines,
        with a frozen encoder) -> logits ``[B, C + 1]`` (padding at -inf; the last column
        is NIL)."""
        pair = torch.zeros(1)
        if len(index.view(-1)):
            out = self.model(**batch)
            pair = (out.logits.squeeze(-1) if hasattr(out, "logits") else out).float()
        s = pair[index.clamp(min=0)] + lex @ self.lex
        if self.prior is not None and cos is not None:
            s = s + self.prior * cos
        return _masked(torch.cat([s, self.nil.expand(len(index), 1)], -1), index >= 0)


class CrossEncoderScorer(qa_tuned.ProbabilityScorer):
    """The fine-tuned cross-encoder scorer (module docstring); :func:`fit_crossencoder`
    trains it. Same interface as :class:`align.qa_scorer.QAScorer`."""

    def __init__(self, config: CrossEncoderConfig, module: CrossEncoderModule, tokenizer):
        self.config, self.module, self.tokenizer = config, module, tokenizer
        self.module.eval()
        self._prior_cache: dict[str, torch.Tensor] = {}  # text -> frozen embedding [d]

    @classmethod
    def untrained(cls, encoder: str | None = None) -> CrossEncoderScorer:
        """:meth:`from_base` (``encoder``: a local model folder)."""
        return cls.from_base(encoder)

    def __repr__(self) -> str:
        state = "trained" if self.config.trained else "untrained"
        name = Path(self.config.base_model).name or "cross-encoder"
        return f"CrossEncoderScorer({name}, {state}, threshold {self.config.threshold:.3f})"

    @classmethod
    def from_base(cls, reference: str | None = None, max_length: int = 96,
                  pooling: str = LEGACY_POOLING, prior: bool = False,
                  prior_from=None) -> CrossEncoderScorer:  # fmt: skip
        """Start from a local model folder (``hf:`` prefix optional; default the offline
        all-MiniLM-L6-v2; the one-logit head on its ``pooling`` is new; ``prior``: keep a
        frozen copy of the encoder for the cosine prior, not with ``classifier``;
        ``prior_from``: the folder of a saved bi-encoder of the same architecture whose
        encoder is the frozen one instead, so the cross-encoder learns to correct the
        fine-tuned bi-encoder). Never runs remote code."""
        from transformers import AutoTokenizer

        from fusion.encoders.hf import quiet_loading

        from .rerank import default_base_model

        folder = (reference or default_base_model()).removeprefix("hf:")
        extra = {"num_labels": 1} if pooling == LEGACY_POOLING else {}
        with quiet_loading():
            encoder = _auto_model(pooling).from_pretrained(
                folder, local_files_only=True, trust_remote_code=False, **extra
            )
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True,
                                                  trust_remote_code=False)  # fmt: skip
        config = CrossEncoderConfig(base_model=folder, max_length=max_length, pooling=pooling,
                                    prior=prior or bool(prior_from), prior_model=str(prior_from or ""))  # fmt: skip
        module = _module(encoder.float(), config)
        if prior_from:  # the fine-tuned bi-encoder's encoder as the frozen one
            from .qa_biencoder import BiEncoderScorer

            module.frozen.load_state_dict(
                BiEncoderScorer.load(prior_from).module.encoder.state_dict()
            )
        return cls(config, module, tokenizer)

    # -------------------------------------------------------------- texts
    def question_text(self, question: str) -> str:
        return " ".join(question.split())[: self.config.max_question_chars] or "?"

    def candidate_text(self, candidate: Candidate) -> str:
        """``name: value`` (value cut to ``value_chars``)."""
        value = candidate.value[: self.config.value_chars]
        return f"{candidate.key}: {value}" if value else candidate.key

    # -------------------------------------------------------------- scoring
    def logits(self, questions: list[str], candidates: list[list[Candidate]]) -> torch.Tensor:
        """Logits ``[B, C + 1]`` (with gradients when the module is in training mode)."""
        texts = [self.question_text(q) for q in questions]
        width = max((len(cs) for cs in candidates), default=0)
        index = torch.full((len(texts), width), -1, dtype=torch.long)
        lex = torch.zeros(len(texts), width, LEXICAL)
        lefts, rights = [], []
        for i, (text, cands) in enumerate(zip(texts, candidates, strict=True)):
            for j, cand in enumerate(cands):
                index[i, j] = len(lefts)
                lefts.append(text)
                rights.append(self.candidate_text(cand))
                lex[i, j] = torch.tensor(lexical_overlap(text, cand))
        batch = {}
        if lefts:
            batch = dict(self.tokenizer(lefts, rights, truncation="longest_first", padding=True,
                                        max_length=self.config.max_length, return_tensors="pt"))  # fmt: skip
        cos = self._cosines(texts, candidates, index) if self.module.frozen is not None else None
        return self.module(batch, index, lex, cos)

    def _embedded(self, texts: list[str]) -> torch.Tensor:
        """Frozen unit embeddings ``[N, d]`` of ``texts`` (cached: the encoder never changes)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._prior_cache]
        for start in range(0, len(new), 64):
            part = new[start : start + 64]
            with torch.autocast("cpu", enabled=False):
                vecs = self.module.embed(dict(self.tokenizer(
                    part, truncation=True, padding=True, max_length=self.config.max_length,
                    return_tensors="pt")))  # fmt: skip
            self._prior_cache.update(zip(part, vecs, strict=True))
        return torch.stack([self._prior_cache[t] for t in texts]) if texts else torch.zeros(0, 1)

    def _cosines(self, texts: list[str], candidates, index) -> torch.Tensor:
        """Cosines ``[B, C]`` of each question and candidate text by the frozen encoder."""
        q = self._embedded(texts)
        rights = [self.candidate_text(c) for cands in candidates for c in cands]
        if not rights:
            return torch.zeros(index.shape)
        c = self._embedded(rights)
        return torch.einsum("bd,bcd->bc", q, c[index.clamp(min=0)])

    def probabilities(self, questions: list[str], candidates: list[list[Candidate]],
                      batch_size: int = 8) -> list[np.ndarray]:  # fmt: skip
        """Softmax rows ``[C_i + 1]`` (the last entry NIL) per question, without gradients."""
        return qa_tuned.batched_probabilities(self, questions, candidates, batch_size)

    # -------------------------------------------------------------- disk
    def save(self, directory) -> Path:
        """``config.json`` + ``model.safetensors`` + tokenizer files, replacing
        ``directory`` as a whole (atomically)."""
        return qa_tuned.save_tuned(self, self.module.model, directory)

    @classmethod
    def load(cls, directory) -> CrossEncoderScorer:
        """A scorer saved by :meth:`save` (``LinkerError`` naming the folder otherwise)."""
        pooling = LEGACY_POOLING
        path = Path(directory) / "config.json"
        if path.is_file():  # format 1 had no pooling: its sequence-classification head
            config = read_config(CrossEncoderConfig, path, FORMAT, VERSION, "QA cross-encoder")
            pooling = config.pooling if config.version >= 2 else LEGACY_POOLING

        def build(model, config):
            config.pooling = pooling
            return _module(model, config)

        config, module, tokenizer = qa_tuned.load_tuned(
            directory, CrossEncoderConfig, FORMAT, VERSION, "cross-encoder", _auto_model(pooling),
            build)  # fmt: skip
        return cls(config, module, tokenizer)


# ------------------------------------------------------------------ training
#: (probabilities [C_i], NIL probabilities) per labelled question
predict_crossencoder = qa_tuned.predict_rows


def sampled(question: Question, limit: int, rng: random.Random) -> Question:
    """``question`` with at most ``limit`` candidates: all answering ones, then a random
    sample of the others (in their original order)."""
    if len(question.candidates) <= limit:
        return question
    others = [i for i in range(len(question.candidates)) if i not in question.labels]
    keep = sorted(list(question.labels) + rng.sample(others, max(limit - len(question.labels), 0)))
    row = {old: new for new, old in enumerate(keep)}
    return Question(question.text, [question.candidates[i] for i in keep],
                    [row[i] for i in question.labels])  # fmt: skip


def _epoch(scorer, train: list[Question], optimiser, batch_size: int, limit: int, seed: int,
           bf16: bool = False):  # fmt: skip
    scorer.module.train()
    rng, total = random.Random(seed), 0.0
    for start in range(0, len(train), batch_size):
        batch = [sampled(q, limit, rng) for q in train[start : start + batch_size]]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = scorer.logits([q.text for q in batch], [q.candidates for q in batch])
        logits = logits.float()
        y = _targets(batch, logits.shape[1] - 1)
        loss = -(y * torch.log_softmax(logits, -1).masked_fill(y == 0, 0.0)).sum(-1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / max(len(train), 1)


def _optimiser(scorer: CrossEncoderScorer, lr: float, head_lr_multiplier: float):
    """AdamW: the encoder at ``lr``, the pair head (``head.*`` of a :class:`PairModel`) at
    ``lr * head_lr_multiplier``, the listwise head (NIL bias, lexical weights, the prior's
    weight) at 1e-2; the frozen prior encoder not at all."""
    named = list(scorer.module.model.named_parameters())
    pair_head = [p for n, p in named if n.startswith("head.")]
    encoder = [p for n, p in named if not n.startswith("head.")]
    listwise = [scorer.module.nil, scorer.module.lex]
    listwise += [scorer.module.prior] if scorer.module.prior is not None else []
    groups = [
        {"params": encoder, "lr": lr},
        {"params": listwise, "lr": 1e-2, "weight_decay": 0.0},
    ]
    if pair_head:
        groups.append({"params": pair_head, "lr": lr * head_lr_multiplier})
    return torch.optim.AdamW(groups, weight_decay=1e-2)  # fmt: skip


def fit_crossencoder(scorer: CrossEncoderScorer, questions: list[Question], *, epochs: int = 2,
                     lr: float = 4e-5, head_lr_multiplier: float = 40.0, batch_size: int = 4,
                     max_candidates: int = 12, valid_fraction: float = 0.2, seed: int = 0,
                     precision: str = "fp32", refit: bool = True, progress=None) -> dict:  # fmt: skip
    """Fine-tune ``scorer`` in place (module docstring): the epoch (best hold-out MRR) and
    the NIL threshold are chosen on a hold-out of ``valid_fraction`` of the questions,
    whole attributes at a time, with the kept model. The encoder learns at ``lr``, a fresh
    pair head at ``head_lr_multiplier`` times that (a head at the encoder's rate barely
    moves: benchmarks/README.md, "Why the cross-encoder did not learn"). ``precision``:
    ``bf16`` trains under CPU bfloat16 autocast (float32 weights; ``auto``: where the CPU
    has native bf16, :func:`align.rerank.resolve_precision`); the hold-out is scored in
    float32. ``refit``: then fine-tune the base model again on all the questions for the
    chosen epochs (:func:`refit_crossencoder`). Returns the hold-out metrics with the CPU
    seconds spent (also in ``scorer.config.metrics``)."""
    from .rerank import resolve_precision

    bf16 = resolve_precision(precision) == "bf16"
    questions = [q for q in questions if q.candidates]
    if len(questions) < 2:
        raise LinkerError("training the question scorer needs at least 2 questions with candidates")
    torch.manual_seed(seed)
    cpu = qa_tuned.cpu_seconds()
    valid, train = attribute_split(questions, valid_fraction, seed)
    train = train or valid
    check = valid or train
    optimiser = _optimiser(scorer, lr, head_lr_multiplier)
    best = (-1.0, 0, None)
    for epoch in range(1, epochs + 1):
        loss = _epoch(scorer, shuffled(train, seed + epoch), optimiser, batch_size,
                      max_candidates, seed + epoch, bf16)  # fmt: skip
        probs, nils = predict_crossencoder(scorer, check)
        mrr = rank_metrics(check, probs, nils, 0.0)["mrr"]
        if progress is not None:
            progress(epoch, loss, mrr)
        if mrr > best[0]:
            best = (mrr, epoch, copy.deepcopy(scorer.module.state_dict()))
    if best[2] is not None:
        scorer.module.load_state_dict(best[2])
    scorer.config.training = {"lr": lr, "head_lr_multiplier": head_lr_multiplier,
                              "batch_size": batch_size, "max_candidates": max_candidates,
                              "precision": precision, "seed": seed}  # fmt: skip
    metrics = qa_tuned.kept_metrics(scorer, check, best[1], len(questions), cpu)
    if refit and valid and best[1] > 0:
        refit_crossencoder(scorer, questions, progress=progress)
    return metrics


def refit_crossencoder(scorer: CrossEncoderScorer, questions: list[Question],
                       progress=None) -> dict:  # fmt: skip
    """The refit of a cross-encoder :func:`fit_crossencoder` trained on a hold-out split: a
    new one from the same base (and prior), fine-tuned with the same recipe
    (``scorer.config.training``) on all ``questions`` for ``scorer.config.epochs`` epochs,
    replacing ``scorer``'s weights (:func:`align.qa_tuned.refit_tuned`)."""
    from .rerank import resolve_precision

    recipe, config = qa_tuned.training_recipe(scorer), scorer.config
    questions = [q for q in questions if q.candidates]
    seed, bf16 = recipe["seed"], resolve_precision(recipe["precision"]) == "bf16"
    torch.manual_seed(seed)
    fresh = CrossEncoderScorer.from_base(config.base_model, config.max_length, config.pooling,
                                         prior=config.prior, prior_from=config.prior_model or None)  # fmt: skip
    optimiser = _optimiser(fresh, recipe["lr"], recipe["head_lr_multiplier"])

    def train_epoch(model, epoch):
        return _epoch(model, shuffled(questions, seed + epoch), optimiser, recipe["batch_size"],
                      recipe["max_candidates"], seed + epoch, bf16)  # fmt: skip

    return qa_tuned.refit_tuned(scorer, fresh, questions, train_epoch, progress)

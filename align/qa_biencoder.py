"""A fine-tuned bi-encoder question -> attribute scorer (``kgf qa-train --scorer bi-encoder``).

The feature scorer of :mod:`align.qa_scorer` trains a head over frozen sentence embeddings;
here the sentence encoder itself is fine-tuned (the offline all-MiniLM-L6-v2 by default;
any local ``hf:`` folder of a BERT-like encoder): the question and each candidate's
``name: value`` text are embedded separately (mean pooling over the last hidden states,
unit length, as sentence-transformers does; Reimers & Gurevych, "Sentence-BERT", EMNLP
2019), and for question ``q`` and candidates ``c_1..c_C`` [d]::

    s_j   = a * (cos(q, c_j) + u * cos(q, k_j)) + w . lex_j     lex_j: lexical overlaps [2]
    s_nil = a * b                                 a (scale), b, w (and u): learned

where ``k_j`` is the attribute's name alone, with ``key_view`` (a value such as ``4.1,
9.8, 11.2`` can pull ``item dimensions: 4.1, 9.8, 11.2`` away from "what are the
dimensions?"; without it, ``u = 0`` and only ``name: value`` is embedded)
    p     = softmax([s_1 .. s_C, s_nil])          [C + 1]

trained listwise over each question's candidates plus the NIL slot (Cao et al., ICML
2007), as the feature scorer is. Starting from a sentence encoder keeps its zero-shot
ranking and adapts it to shoppers' questions; a few epochs on CPU (the epoch chosen on a
hold-out of whole attributes, :func:`align.qa_train.attribute_split`; the NIL threshold
calibrated on it). Same interface as :class:`align.qa_scorer.QAScorer` (``config``,
``score``, ``score_many``, ``save``, ``load``), so :class:`align.qa.QuestionAnswerer` uses
either.

Saved as ``config.json`` (:class:`BiEncoderConfig`, with the transformers config) +
``model.safetensors`` (:mod:`fusion.artifacts`) + the tokenizer's JSON files.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .base import LinkerError
from .qa_negatives import negatives_loss
from .qa_scorer import LEXICAL, Candidate, Question, _masked, lexical_overlap, shuffled
from .qa_train import attribute_split, rank_metrics
from .qa_tuned import (
    ProbabilityScorer,
    batched_probabilities,
    cpu_seconds,
    kept_metrics,
    load_tuned,
    predict_rows,
    refit_tuned,
    save_tuned,
    training_recipe,
)

FORMAT = "kgfusion-qa-biencoder"
VERSION = 1


@dataclass
class BiEncoderConfig:
    """What a saved bi-encoder scorer needs besides its weights (``config.json``)."""

    format: str = FORMAT
    version: int = VERSION
    base_model: str = ""
    model: dict = field(default_factory=dict)  # the transformers config (to_dict())
    max_length: int = 64  # tokens per question / candidate text
    value_chars: int = 80
    max_question_chars: int = 500
    threshold: float = 0.3
    key_view: bool = False  # also compare the question with the attribute's name alone
    epochs: int = 0
    training: dict = field(default_factory=dict)  # the fine-tuning recipe a refit repeats
    trained: bool = False
    metrics: dict = field(default_factory=dict)


class BiEncoderModule(nn.Module):
    """The encoder and the listwise head: ``scale`` a, ``nil`` b, ``lex`` w, and with
    ``key_view`` the name's weight ``key`` u (above)."""

    def __init__(self, encoder: nn.Module, key_view: bool = False):
        super().__init__()
        self.encoder = encoder
        self.scale = nn.Parameter(torch.tensor(20.0))
        self.nil = nn.Parameter(torch.tensor(0.5))
        self.lex = nn.Parameter(torch.zeros(LEXICAL))
        self.key = nn.Parameter(torch.tensor(0.5)) if key_view else None

    def embed(self, batch: dict) -> torch.Tensor:
        """Unit mean-pooled embeddings ``[N, d]`` of a tokenised batch."""
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1)

    def forward(self, q, c, index, lex, keys=None, key_index=None):
        """``q [B, d]``, ``c [U, d]`` (the distinct candidate texts), ``index [B, C]`` (row
        of ``c`` per candidate, -1: padding), ``lex [B, C, 2]``; with ``key_view``,
        ``keys [K, d]`` (the distinct names) and ``key_index [B, C]`` -> logits
        ``[B, C + 1]`` (padding at -inf; the last column is NIL)."""
        cos = torch.einsum("bd,bcd->bc", q, c[index.clamp(min=0)])
        if self.key is not None:
            cos = cos + self.key * torch.einsum("bd,bcd->bc", q, keys[key_index.clamp(min=0)])
        s = self.scale * cos + lex @ self.lex
        nil = (self.scale * self.nil).expand(len(q), 1)
        return _masked(torch.cat([s, nil], -1), index >= 0)


class Encoded(NamedTuple):
    """One batch through :meth:`BiEncoderScorer.encoded`."""

    logits: torch.Tensor  # [B, C + 1], the last column NIL
    q: torch.Tensor  # [B, d] unit question embeddings
    c: torch.Tensor  # [U, d] unit embeddings of the distinct candidate texts
    index: torch.Tensor  # [B, C] row of c per candidate (-1: padding)
    text_keys: list[str]  # [U] the attribute name of each distinct text


class BiEncoderScorer(ProbabilityScorer):
    """The fine-tuned bi-encoder scorer (module docstring); :func:`fit_biencoder` trains it."""

    def __init__(self, config: BiEncoderConfig, module: BiEncoderModule, tokenizer):
        self.config, self.module, self.tokenizer = config, module, tokenizer
        self.module.eval()

    @classmethod
    def untrained(cls, encoder: str | None = None) -> BiEncoderScorer:
        """:meth:`from_base` (``encoder``: a local model folder)."""
        return cls.from_base(encoder)

    def __repr__(self) -> str:
        state = "trained" if self.config.trained else "untrained"
        name = Path(self.config.base_model).name or "bi-encoder"
        return f"BiEncoderScorer({name}, {state}, threshold {self.config.threshold:.3f})"

    @classmethod
    def from_base(cls, reference: str | None = None, max_length: int = 64,
                  key_view: bool = False) -> BiEncoderScorer:  # fmt: skip
        """Start from a local model folder (``hf:`` prefix optional; default the offline
        all-MiniLM-L6-v2); ``key_view``: also compare the question with the attribute's
        name alone. Never runs remote code."""
        from transformers import AutoModel, AutoTokenizer

        from fusion.encoders.hf import quiet_loading, resolve_folder

        from .rerank import default_base_model

        folder = resolve_folder((reference or default_base_model()).removeprefix("hf:"))
        try:
            with quiet_loading():
                model = AutoModel.from_pretrained(folder, local_files_only=True,
                                                  trust_remote_code=False)  # fmt: skip
                tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True,
                                                          trust_remote_code=False)  # fmt: skip
        except Exception as err:  # noqa: BLE001 - any loading failure: say which folder
            raise LinkerError(
                f"hf:{folder}: cannot load a sentence encoder from it ({err})"
            ) from err
        config = BiEncoderConfig(base_model=str(folder), max_length=max_length, key_view=key_view)
        return cls(config, BiEncoderModule(model.float(), key_view), tokenizer)

    # -------------------------------------------------------------- texts
    def question_text(self, question: str) -> str:
        return " ".join(question.split())[: self.config.max_question_chars]

    def candidate_text(self, candidate: Candidate) -> str:
        """``name: value`` (value cut to ``value_chars``)."""
        value = candidate.value[: self.config.value_chars]
        return f"{candidate.key}: {value}" if value else candidate.key

    def _tokens(self, texts: list[str]) -> dict:
        return dict(self.tokenizer(texts, padding=True, truncation=True,
                                   max_length=self.config.max_length, return_tensors="pt"))  # fmt: skip

    # -------------------------------------------------------------- scoring
    def logits(self, questions: list[str], candidates: list[list[Candidate]]) -> torch.Tensor:
        """Logits ``[B, C + 1]`` (with gradients when the module is in training mode)."""
        return self.encoded(questions, candidates).logits

    def encoded(self, questions: list[str], candidates: list[list[Candidate]]) -> Encoded:
        """The logits with what the training losses (:mod:`align.qa_negatives`) use: the
        question embeddings ``q [B, d]``, the distinct candidate texts' ``c [U, d]``,
        ``index [B, C]`` (row of ``c`` per candidate, -1: padding) and the attribute name
        of each distinct text (``text_keys``, ``U``)."""
        texts = [self.question_text(q) or "?" for q in questions]
        keys = {self.candidate_text(c): c.key for cs in candidates for c in cs}
        distinct = list(keys)
        row = {t: i for i, t in enumerate(distinct)}
        width = max((len(cs) for cs in candidates), default=0)
        index = torch.full((len(texts), width), -1, dtype=torch.long)
        lex = torch.zeros(len(texts), width, LEXICAL)
        for i, (text, cands) in enumerate(zip(texts, candidates, strict=True)):
            for j, cand in enumerate(cands):
                index[i, j] = row[self.candidate_text(cand)]
                lex[i, j] = torch.tensor(lexical_overlap(text, cand))
        q = self.module.embed(self._tokens(texts))
        dim = q.shape[1]
        c = self.module.embed(self._tokens(distinct)) if distinct else torch.zeros(1, dim)
        if not self.config.key_view:
            return Encoded(self.module(q, c, index, lex), q, c, index, list(keys.values()))
        names = list(dict.fromkeys(cand.key for cands in candidates for cand in cands))
        at = {name: i for i, name in enumerate(names)}
        key_index = torch.full_like(index, -1)
        for i, cands in enumerate(candidates):
            key_index[i, : len(cands)] = torch.tensor([at[x.key] for x in cands], dtype=torch.long)
        kv = self.module.embed(self._tokens(names)) if names else torch.zeros(1, dim)
        logits = self.module(q, c, index, lex, kv, key_index)
        return Encoded(logits, q, c, index, list(keys.values()))

    def probabilities(self, questions: list[str], candidates: list[list[Candidate]],
                      batch_size: int = 32) -> list[np.ndarray]:  # fmt: skip
        """Softmax rows ``[C_i + 1]`` (the last entry NIL) per question, without gradients."""
        return batched_probabilities(self, questions, candidates, batch_size)

    # -------------------------------------------------------------- disk
    def save(self, directory) -> Path:
        """``config.json`` + ``model.safetensors`` + tokenizer files, replacing
        ``directory`` as a whole (atomically)."""
        return save_tuned(self, self.module.encoder, directory)

    @classmethod
    def load(cls, directory) -> BiEncoderScorer:
        """A scorer saved by :meth:`save` (``LinkerError`` naming the folder otherwise)."""
        from transformers import AutoModel

        return cls(*load_tuned(directory, BiEncoderConfig, FORMAT, VERSION, "bi-encoder", AutoModel,
                               lambda model, config: BiEncoderModule(model, config.key_view)))  # fmt: skip


# ------------------------------------------------------------------ training
predict_biencoder = predict_rows  # (probabilities [C_i], NIL probabilities) of labelled questions


def _epoch(scorer: BiEncoderScorer, train: list[Question], optimiser, batch_size: int,
           loss_of) -> float:  # fmt: skip
    scorer.module.train()
    total = 0.0
    for start in range(0, len(train), batch_size):
        batch = train[start : start + batch_size]
        encoded = scorer.encoded([q.text for q in batch], [q.candidates for q in batch])
        loss = loss_of(scorer, batch, encoded)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / max(len(train), 1)


def _optimiser(scorer: BiEncoderScorer, lr: float):
    """AdamW: the encoder at ``lr``, the listwise head (scale, NIL, lexical weights) at 1e-2."""
    head = [scorer.module.scale, scorer.module.nil, scorer.module.lex]
    head += [scorer.module.key] if scorer.module.key is not None else []
    return torch.optim.AdamW([
        {"params": scorer.module.encoder.parameters(), "lr": lr},
        {"params": head, "lr": 1e-2, "weight_decay": 0.0},
    ], weight_decay=1e-2)  # fmt: skip


def fit_biencoder(scorer: BiEncoderScorer, questions: list[Question], *, epochs: int = 3,
                  lr: float = 3e-5, batch_size: int = 16, valid_fraction: float = 0.2,
                  seed: int = 0, negatives: str = "product", refit: bool = True,
                  progress=None) -> dict:  # fmt: skip
    """Fine-tune ``scorer`` in place (module docstring): the epoch (best hold-out MRR; 0 =
    the starting encoder) and the NIL threshold are chosen on a hold-out of
    ``valid_fraction`` of the questions, whole attributes at a time. ``negatives``: the
    loss (:data:`align.qa_negatives.NEGATIVES`: ``product``, listwise over the product's
    attributes; ``batch``, plus in-batch negatives across products). ``refit``: then
    fine-tune the base model again on all the questions for the chosen epochs
    (:func:`refit_biencoder`). Returns the hold-out metrics with the CPU seconds spent (also
    in ``scorer.config.metrics``)."""
    loss_of = negatives_loss(negatives)
    questions = [q for q in questions if q.candidates]
    if len(questions) < 2:
        raise LinkerError("training the question scorer needs at least 2 questions with candidates")
    torch.manual_seed(seed)
    cpu = cpu_seconds()
    valid, train = attribute_split(questions, valid_fraction, seed)
    train = train or valid
    check = valid or train
    optimiser = _optimiser(scorer, lr)

    def hold_out_mrr() -> float:
        probs, nils = predict_biencoder(scorer, check)
        return rank_metrics(check, probs, nils, 0.0)["mrr"]

    best = (hold_out_mrr(), 0, copy.deepcopy(scorer.module.state_dict()))
    for epoch in range(1, epochs + 1):
        loss = _epoch(scorer, shuffled(train, seed + epoch), optimiser, batch_size, loss_of)
        mrr = hold_out_mrr()
        if progress is not None:
            progress(epoch, loss, mrr)
        if mrr > best[0]:
            best = (mrr, epoch, copy.deepcopy(scorer.module.state_dict()))
    scorer.module.load_state_dict(best[2])
    scorer.config.training = {"lr": lr, "batch_size": batch_size, "negatives": negatives,
                              "seed": seed}  # fmt: skip
    metrics = kept_metrics(scorer, check, best[1], len(questions), cpu)
    metrics["negatives"] = negatives  # the same dict as scorer.config.metrics
    if refit and valid and best[1] > 0:
        refit_biencoder(scorer, questions, progress=progress)
    return metrics


def refit_biencoder(scorer: BiEncoderScorer, questions: list[Question], progress=None) -> dict:
    """The refit of a bi-encoder :func:`fit_biencoder` trained on a hold-out split: its base
    model fine-tuned again, with the same recipe (``scorer.config.training``), on all
    ``questions`` for ``scorer.config.epochs`` epochs, replacing ``scorer``'s weights
    (:func:`align.qa_tuned.refit_tuned`). On semiPQA it is what lets the answer types of the
    hold-out be learned (benchmarks/README.md, "the refit")."""
    recipe, config = training_recipe(scorer), scorer.config
    questions = [q for q in questions if q.candidates]
    fresh = BiEncoderScorer.from_base(config.base_model, config.max_length, config.key_view)
    torch.manual_seed(recipe["seed"])
    optimiser = _optimiser(fresh, recipe["lr"])
    loss_of = negatives_loss(recipe["negatives"])

    def train_epoch(model, epoch):
        return _epoch(model, shuffled(questions, recipe["seed"] + epoch), optimiser,
                      recipe["batch_size"], loss_of)  # fmt: skip

    return refit_tuned(scorer, fresh, questions, train_epoch, progress)

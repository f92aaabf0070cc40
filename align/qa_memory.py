"""A question memory: the attributes that answered the nearest training questions
(``kgf qa-train --scorer memory``; a member of ``--scorer ensemble-memory``).

Shoppers ask the same things in many words ("how tall is it?", "what is the height?"): once
a labelled question is answered by an attribute named ``height``, a new question close to
it probably is too, on whichever product has a ``height``. The memory keeps every
training question's embedding (a frozen sentence encoder, the offline all-MiniLM-L6-v2 by
default: mean pooling, unit length) with the normalised names of its answering attributes
(none: a NIL question). For a question ``q`` with candidates ``c_1..c_C``, its ``k``
nearest memorised questions ``n`` (cosine) vote with weights
``a_n = softmax_n(cos(q, n) / t)``::

    v_j   = sum_n a_n [name(c_j) answered n]      v_nil = sum_n a_n [n is NIL]
    p     = (v + e) / sum(v + e)                  [C + 1]   (e: smoothing)

(a k-nearest-neighbour vote, Fix & Hodges 1951, over names, not over products). It only
votes for names the product has: on attribute types no training question answered, it
gives near-uniform rows and, pooled in log space by :mod:`align.qa_ensemble`, changes
nothing. Memorising is all its training; its hold-out metrics and NIL threshold come from
a hold-out of whole products (memory without their questions: a shop's questions about one
product resemble each other more than those about another). For the ensemble it offers two
hold-out views (:meth:`QuestionMemory.hold_out_views`): the memory of the training part
only (attribute types never seen, as for the other members) and the whole memory less the
question's own product (types seen), so the ensemble's weight serves both kinds of test.

Saved as ``config.json`` (:class:`MemoryConfig`) + ``model.safetensors`` (the memorised
embeddings ``[N, d]``) + ``memory.json`` (their texts, answering names and product keys).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fusion.artifacts import CONFIG_FILE, WEIGHTS_FILE, read_weights, save_pretrained
from kg.workspace import atomic_directory

from .base import LinkerError, read_config
from .qa_scorer import Candidate, Question, name_key, shuffled
from .qa_train import calibrate, rank_metrics
from .qa_tuned import ProbabilityScorer, cpu_seconds

FORMAT = "kgfusion-qa-memory"
VERSION = 1
MEMORY_FILE = "memory.json"


@dataclass
class MemoryConfig:
    """What a saved question memory needs besides its vectors (``config.json``)."""

    format: str = FORMAT
    version: int = VERSION
    base_model: str = ""  # the frozen sentence encoder's local folder
    max_length: int = 64
    max_question_chars: int = 500
    k: int = 10  # neighbours that vote
    temperature: float = 0.05  # of the neighbours' softmax over cosines
    smoothing: float = 0.05  # added to every slot's vote
    threshold: float = 0.3
    epochs: int = 0
    trained: bool = False
    metrics: dict = field(default_factory=dict)


def product_key(candidates: list[Candidate]) -> str:
    """A short key of the product a question is about: a hash of its attributes (names
    and values), the same for every question about that product."""
    text = "\n".join(sorted(f"{c.key}\t{c.value}" for c in candidates))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def answer_names(question: Question) -> list[str]:
    """The normalised names of the attributes answering ``question`` (none: NIL)."""
    return sorted({name_key(question.candidates[i].key) for i in question.labels})


class QuestionMemory(ProbabilityScorer):
    """Memorised questions and the names that answered them (module docstring);
    :func:`fit_memory` fills it."""

    def __init__(self, config: MemoryConfig, encoder, texts=(), answers=(), vectors=None,
                 products=()):  # fmt: skip
        self.config, self.encoder = config, encoder
        self.texts, self.answers = list(texts), [list(a) for a in answers]
        self.products = list(products) or [""] * len(self.texts)
        dim = encoder.module.encoder.config.hidden_size
        self.vectors = np.zeros((0, dim), np.float32) if vectors is None else vectors

    @classmethod
    def untrained(cls, encoder: str | None = None) -> QuestionMemory:
        """An empty memory over the sentence encoder in the local folder ``encoder``
        (``hf:`` prefix optional; default the offline all-MiniLM-L6-v2)."""
        from .qa_biencoder import BiEncoderScorer

        model = BiEncoderScorer.from_base(encoder)
        return cls(MemoryConfig(base_model=model.config.base_model), model)

    def __repr__(self) -> str:
        state = "trained" if self.config.trained else "untrained"
        return f"QuestionMemory({len(self.texts)} questions, {state}, k {self.config.k})"

    # -------------------------------------------------------------- embedding
    def _text(self, question: str) -> str:
        return " ".join(question.split())[: self.config.max_question_chars] or "?"

    def embed(self, questions: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit embeddings ``[B, d]`` of questions (a memorised text's stored vector)."""
        texts = [self._text(q) for q in questions]
        known = {t: i for i, t in enumerate(self.texts)} if len(self.vectors) else {}
        new = [t for t in dict.fromkeys(texts) if t not in known]
        found: dict[str, np.ndarray] = {}
        self.encoder.module.eval()
        with torch.no_grad():
            for start in range(0, len(new), batch_size):
                part = new[start : start + batch_size]
                vecs = self.encoder.module.embed(self.encoder._tokens(part)).numpy()
                found.update(zip(part, vecs.astype(np.float32), strict=True))
        rows = [found[t] if t in found else self.vectors[known[t]] for t in texts]
        dim = self.vectors.shape[1]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)

    def memorise(self, questions: list[Question]) -> None:
        """Keep ``questions`` (texts, answering names, products, embeddings), replacing the
        memory."""
        dim = self.vectors.shape[1]
        self.texts, self.vectors = [], np.zeros((0, dim), np.float32)
        vectors = self.embed([q.text for q in questions])
        self.texts = [self._text(q.text) for q in questions]
        self.products = [product_key(q.candidates) for q in questions]
        self.answers = [answer_names(q) for q in questions]
        self.vectors = vectors

    # -------------------------------------------------------------- voting
    def votes(self, questions: list[str], candidates: list[list[Candidate]],
              allowed: np.ndarray | None = None, leave_product_out: bool = False):  # fmt: skip
        """Probability rows ``[C_i + 1]`` (the last entry NIL) from the ``k`` nearest
        memorised questions; ``allowed [N]`` (bool): the memorised questions that may vote
        (None: all); ``leave_product_out``: no memorised question about the same product
        (same attributes, :func:`product_key`) votes, the question itself included."""
        cfg, out = self.config, []
        if not questions:
            return out
        sims = self.embed(questions) @ self.vectors.T  # [B, N]
        if allowed is not None:
            sims[:, ~allowed] = -np.inf
        if leave_product_out:
            at: dict[str, list[int]] = {}
            for i, key in enumerate(self.products):
                at.setdefault(key, []).append(i)
            for row, cands in enumerate(candidates):
                sims[row, at.get(product_key(cands), [])] = -np.inf
        for row, cands in zip(sims, candidates, strict=True):
            near = np.argsort(-row, kind="stable")[: cfg.k]
            near = near[np.isfinite(row[near])]
            v = np.zeros(len(cands) + 1)
            if len(near):
                a = np.exp((row[near] - row[near].max()) / cfg.temperature)
                a /= a.sum()
                names = [name_key(c.key) for c in cands]
                for weight, n in zip(a, near, strict=True):
                    hits = [j for j, name in enumerate(names) if name in self.answers[n]]
                    if not self.answers[n]:
                        v[-1] += weight
                    for j in hits:
                        v[j] += weight / len(hits)
            v += cfg.smoothing
            out.append((v / v.sum()).astype(np.float32))
        return out

    def probabilities(self, questions: list[str], candidates: list[list[Candidate]]):
        """Softmax-like rows ``[C_i + 1]`` (the last entry NIL) per question."""
        return self.votes(questions, candidates)

    def hold_out_views(self, check: list[Question], train: list[Question]) -> list[list]:
        """Rows of the hold-out questions ``check`` under two views: the memory of the
        ``train`` questions only, and the whole memory less the questions about the same
        product (the test's products are not the training's)."""
        texts, cands = [q.text for q in check], [q.candidates for q in check]
        kept = {self._text(q.text) for q in train}
        allowed = np.array([t in kept for t in self.texts], bool)
        return [self.votes(texts, cands, allowed),
                self.votes(texts, cands, leave_product_out=True)]  # fmt: skip

    # -------------------------------------------------------------- disk
    def save(self, directory) -> Path:
        """``config.json`` + ``model.safetensors`` (vectors) + ``memory.json``, replacing
        ``directory`` as a whole (atomically)."""
        directory = Path(directory)
        with atomic_directory(directory, overwrite=True) as tmp:
            save_pretrained(tmp, self.config, {"vectors": torch.from_numpy(self.vectors)},
                            metadata={"format": FORMAT})  # fmt: skip
            data = {"texts": self.texts, "answers": self.answers, "products": self.products}
            (Path(tmp) / MEMORY_FILE).write_text(json.dumps(data, ensure_ascii=False),
                                                 encoding="utf-8")  # fmt: skip
        return directory

    @classmethod
    def load(cls, directory) -> QuestionMemory:
        """A memory saved by :meth:`save` (its encoder from ``config.base_model``)."""
        from .qa_biencoder import BiEncoderScorer

        directory = Path(directory)
        files = [directory / CONFIG_FILE, directory / WEIGHTS_FILE, directory / MEMORY_FILE]
        if not all(f.is_file() for f in files):
            raise LinkerError(f"{directory} holds no question memory; train one with "
                              f"`kgf qa-train WS --scorer memory`")  # fmt: skip
        config = read_config(MemoryConfig, files[0], FORMAT, VERSION, "QA question memory")
        vectors = read_weights(files[1])["vectors"].numpy().astype(np.float32)
        data = json.loads(files[2].read_text(encoding="utf-8"))
        counts = {len(data.get("texts", [])), len(data.get("answers", [])), len(vectors)}
        if len(counts) > 1:
            raise LinkerError(f"{files[2]}: {len(vectors)} vectors but other counts of texts / "
                              "answers; train the memory again")  # fmt: skip
        encoder = BiEncoderScorer.from_base(config.base_model, config.max_length)
        return cls(config, encoder, data["texts"], data["answers"], vectors,
                   data.get("products", ()))  # fmt: skip


def fit_memory(scorer: QuestionMemory, questions: list[Question], *, epochs: int | None = None,
               valid_fraction: float = 0.2, seed: int = 0, refit: bool = True,
               progress=None) -> dict:  # fmt: skip
    """Memorise ``questions`` (``epochs``, ``refit``, ``progress``: unused, for the common
    training interface: the memory always holds every question); the hold-out metrics and
    the NIL threshold come from a hold-out of ``valid_fraction`` of the products, whole
    (voted by the memory of the other products)."""
    questions = [q for q in questions if q.candidates]
    if len(questions) < 2:
        raise LinkerError("training the question scorer needs at least 2 questions with candidates")
    cpu = cpu_seconds()
    scorer.memorise(questions)
    products = shuffled(sorted(set(scorer.products)), seed)
    held = set(products[: max(1, round(len(products) * valid_fraction))])
    check = [q for q, key in zip(questions, scorer.products, strict=True) if key in held]
    allowed = np.array([key not in held for key in scorer.products], bool)
    rows = scorer.votes([q.text for q in check], [q.candidates for q in check], allowed)
    probs, nils = [r[:-1] for r in rows], [float(r[-1]) for r in rows]
    threshold = calibrate(check, probs)
    metrics = rank_metrics(check, probs, nils, threshold)
    metrics = {**{k: round(v, 4) for k, v in metrics.items()}, "threshold": round(threshold, 4),
               "questions": len(questions), "memorised": len(scorer.texts),
               "calibration": {"on": "a product-wise hold-out", "questions": len(check)},
               "cpu_seconds": round(cpu_seconds() - cpu, 1)}  # fmt: skip
    scorer.config.threshold, scorer.config.metrics, scorer.config.trained = threshold, metrics, True
    return metrics

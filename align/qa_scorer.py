"""The trained question -> predicate scorer of product question answering.

Given a shopper's question about one product and the product's attributes (literal
columns and relations, each a :class:`Candidate`: the predicate in words and its values),
:class:`QAScorer` gives every attribute the probability that it answers the question, and
the probability that none does (NIL, "not in the catalogue").

The model is a cross-feature scorer over frozen sentence embeddings (multilingual E5 by
default, :mod:`fusion.encoders.e5`, so German, Spanish and Chinese questions meet English
predicate names in one space): for question vector ``q`` and the candidate's
predicate-name vector ``k`` and predicate-plus-value vector ``v`` (all [d], unit length)::

    x = [q * k, q * v, |q - v|, cos(q, k), cos(q, v), lexical overlaps]      [3d + 4]
    s = MLP(x)                      one logit per candidate
    s_nil = w . q + b               one logit for "no attribute answers"

trained listwise (softmax cross-entropy over the question's candidates plus NIL, the
target spread over the answering attributes; the NIL slot for unanswerable questions),
as in the listwise ranking of Cao et al., "Learning to Rank: From Pairwise Approach to
Listwise Approach" (ICML 2007). The features depend on the text of the predicate, not on
its identity, so attribute types unseen in training are scored too. The answer threshold
is calibrated for the saved model on questions it did not train on (out-of-fold scores of
its training recipe, :func:`align.qa_train.fit_scorer`): the best candidate's probability
below ``threshold`` means NIL.

Saved as ``config.json`` (:class:`QAScorerConfig`) + ``model.safetensors``
(:mod:`fusion.artifacts`), by default in ``WORKSPACE/qa-scorer``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from fusion.artifacts import CONFIG_FILE, WEIGHTS_FILE, load_into, read_weights, save_pretrained
from kg.labels import tokens

from .base import LinkerError, read_config

FORMAT = "kgfusion-qa-scorer"
VERSION = 1
QA_SCORER_DIR = "qa-scorer"
LEXICAL = 2  # lexical overlap features per pair


class Candidate(NamedTuple):
    """One attribute of a product that may answer a question: ``key`` is the predicate in
    words ("base colour"), ``value`` its value(s) as text ("Black"), ``about`` the values
    the predicate takes across the catalogue ("Black, White, Blue"; empty: unknown), so a
    question naming such a value ("summer or winter?") points to it; ``aka`` other words
    for the predicate, in other languages too ("occasion, Anlass, ocasión, 场合"; from
    :func:`align.qa_lexicon.concept_words`)."""

    key: str
    value: str
    about: str = ""
    aka: str = ""


class Question(NamedTuple):
    """A labelled training / test question: its candidates and which of them answer it
    (none: a NIL question)."""

    text: str
    candidates: list[Candidate]
    labels: list[int]


@dataclass
class QAScorerConfig:
    """Everything a trained scorer needs besides its weights (``config.json``)."""

    format: str = FORMAT
    version: int = VERSION
    encoder: str = "e5-multilingual"
    dim: int = 384
    hidden: int = 256
    dropout: float = 0.1
    threshold: float = 0.3  # best candidate's probability below it: NIL
    value_chars: int = 80  # characters of the value text embedded with the key
    max_question_chars: int = 500  # longer questions are cut (the encoder's window)
    epochs: int = 0
    trained: bool = False
    metrics: dict = field(default_factory=dict)

    @classmethod
    def for_encoder(cls, encoder: str, **options) -> QAScorerConfig:
        """A config for another sentence encoder (its width read from the encoder)."""
        from fusion.encoders import get_encoder

        return cls(encoder=encoder, dim=get_encoder(encoder).dim, **options)

    @classmethod
    def load(cls, directory) -> QAScorerConfig:
        return read_config(cls, Path(directory) / CONFIG_FILE, FORMAT, VERSION, "QA scorer")


# ------------------------------------------------------------------ text of a candidate
def predicate_words(name: str) -> str:
    """A predicate's local name in words: ``baseColour`` -> ``base colour``,
    ``age_range_description`` -> ``age range description``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return re.sub(r"[_\-.]+", " ", name).strip().lower()


_SEMIPQA_VALUE = re.compile(r'value:\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,{}\[\]]+))')


def parse_semipqa(candidate: str) -> Candidate:
    """A semiPQA candidate ``key:  { value:"little kid" }`` -> ``Candidate("key words",
    "little kid")``: the key before the first colon, the (distinct) ``value:`` entries."""
    key, _, rest = candidate.partition(":")
    values = [a or b for a, b in _SEMIPQA_VALUE.findall(rest)]
    values = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    return Candidate(predicate_words(key), ", ".join(values))


def _stems(text: str) -> set[str]:
    return {t[:5] for t in tokens(text) if len(t) > 2}


_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def _share(stems: set[str], question: set[str]) -> float:
    return len(stems & question) / len(stems) if stems else 0.0


def _name_share(name: str, question: str, stems: set[str]) -> float:
    """A Chinese / Japanese / Korean word (no spaces between words): 1 when it occurs in
    the question; other words: the share of their stems found in it."""
    if _CJK.search(name):
        return float(name.strip() in question)
    return _share(_stems(name), stems)


def name_key(name: str) -> str:
    """An attribute name normalised for matching: lower case, words only
    (``"Item_Weight"`` and ``"item weight"`` -> ``"item weight"``)."""
    return " ".join(re.findall(r"\w+", name.lower().replace("_", " ")))


def lexical_overlap(question: str, candidate: Candidate) -> list[float]:
    """The shares of the key's and of the value's word stems (5 characters) found in the
    question: ``[key share, value share]``; the key share is the best of the key and each
    of its other words (``aka``; a CJK word counts when it occurs in the question)."""
    q = _stems(question)
    names = [candidate.key] + [w for w in candidate.aka.split(", ") if w.strip()]
    return [max(_name_share(n, question, q) for n in names), _share(_stems(candidate.value), q)]


# ------------------------------------------------------------------ the model
class QAScorerModule(nn.Module):
    """Logits for padded candidates: ``q [B, d]``, ``k, v [B, C, d]``, ``lex [B, C, 2]``
    -> ``[B, C + 1]`` (the last column is NIL)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(3 * dim + 2 + LEXICAL, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )  # fmt: skip
        self.nil = nn.Linear(dim, 1)

    def forward(self, q, k, v, lex):
        qq = q.unsqueeze(1).expand_as(k)
        cos = torch.stack([(qq * k).sum(-1), (qq * v).sum(-1)], -1)
        x = torch.cat([qq * k, qq * v, (qq - v).abs(), cos, lex], -1)
        return torch.cat([self.mlp(x).squeeze(-1), self.nil(q)], -1)


class Scored(NamedTuple):
    """The scorer's verdict for one question: the probability of each candidate [C] (in
    input order; with NIL they sum to 1), of NIL, the best candidate's row (None: NIL
    below the threshold or no candidates)."""

    probs: np.ndarray
    nil_prob: float
    best: int | None


class QAScorer:
    """Question -> attribute scorer (module docstring): :meth:`score` one question,
    :func:`align.qa_train.fit_scorer` trains it from labelled :class:`Question` s, :meth:`save` / :meth:`load`.

    ``encoder``: the encoder name (:func:`fusion.encoders.get_encoder`); E5 gets its
    ``query:`` / ``passage:`` roles. Embeddings are kept in a cache per text."""

    def __init__(self, config: QAScorerConfig | None = None, module: QAScorerModule | None = None):
        self.config = config or QAScorerConfig()
        self.module = module or QAScorerModule(self.config.dim, self.config.hidden,
                                               self.config.dropout)  # fmt: skip
        self.module.eval()
        self._encoders: dict[str, object] = {}
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    def untrained(cls, encoder: str | None = None) -> QAScorer:
        """A new scorer over ``encoder`` (a :func:`fusion.encoders.get_encoder` name;
        default multilingual E5)."""
        return cls(QAScorerConfig.for_encoder(encoder) if encoder else None)

    def __repr__(self) -> str:
        state = "trained" if self.config.trained else "untrained"
        return f"QAScorer({self.config.encoder}, {state}, threshold {self.config.threshold:.3f})"

    # -------------------------------------------------------------- embeddings
    def _encoder(self, role: str):
        from fusion.encoders import get_encoder

        if role not in self._encoders:
            name = self.config.encoder
            extra = {"kind": role} if name == "e5-multilingual" else {}
            self._encoders[role] = get_encoder(name, **extra)
        return self._encoders[role]

    def embed(self, texts: list[str], role: str = "passage") -> np.ndarray:
        """Unit vectors ``float32 [N, d]`` of ``texts`` (``role`` "query" or "passage"),
        each distinct text encoded once per scorer."""
        todo = list(dict.fromkeys(t for t in texts if (role, t) not in self.cache))
        if todo:
            vecs = self._encoder(role).encode(todo)
            vecs = torch.nn.functional.normalize(vecs.float(), dim=-1).numpy()
            for text, vec in zip(todo, vecs, strict=True):
                self.cache[(role, text)] = vec
        out = np.zeros((len(texts), self.config.dim), np.float32)
        for i, text in enumerate(texts):
            out[i] = self.cache[(role, text)]
        return out

    def question_text(self, question: str) -> str:
        """The question as embedded: stripped and cut to ``max_question_chars``."""
        return " ".join(question.split())[: self.config.max_question_chars]

    def candidate_texts(self, candidate: Candidate) -> tuple[str, str]:
        """The two texts embedded per candidate: the key (with its other words and the
        catalogue's values of the predicate, ``season / Jahreszeit, 季节 (Summer, Winter)``,
        when known), and ``key: value`` (value cut)."""
        value = candidate.value[: self.config.value_chars]
        about = candidate.about[: self.config.value_chars]
        key = f"{candidate.key} / {candidate.aka}" if candidate.aka else candidate.key
        key = f"{key} ({about})" if about else key
        return key, f"{candidate.key}: {value}" if value else candidate.key

    def inputs(self, questions: list[str], candidates: list[list[Candidate]]):
        """Padded model inputs for B questions: ``q [B, d]``, ``k, v [B, C, d]``,
        ``lex [B, C, 2]``, ``mask [B, C]`` (True for a real candidate)."""
        texts = [self.question_text(q) for q in questions]
        q = torch.from_numpy(self.embed(texts, "query"))
        width = max((len(c) for c in candidates), default=0)
        b, d = len(questions), self.config.dim
        k, v = torch.zeros(b, width, d), torch.zeros(b, width, d)
        lex, mask = torch.zeros(b, width, LEXICAL), torch.zeros(b, width, dtype=torch.bool)
        for i, (text, cands) in enumerate(zip(texts, candidates, strict=True)):
            if not cands:
                continue
            keys, joined = zip(*(self.candidate_texts(c) for c in cands), strict=True)
            n = len(cands)
            k[i, :n] = torch.from_numpy(self.embed(list(keys)))
            v[i, :n] = torch.from_numpy(self.embed(list(joined)))
            lex[i, :n] = torch.tensor([lexical_overlap(text, c) for c in cands])
            mask[i, :n] = True
        return q, k, v, lex, mask

    # -------------------------------------------------------------- scoring
    def logits(self, questions: list[str], candidates: list[list[Candidate]]) -> torch.Tensor:
        """Masked logits ``[B, C + 1]`` (padding at ``-inf``; the last column is NIL)."""
        q, k, v, lex, mask = self.inputs(questions, candidates)
        with torch.no_grad():
            out = self.module(q, k, v, lex)
        return _masked(out, mask)

    def score(self, question: str, candidates: list[Candidate]) -> Scored:
        """Probabilities of ``candidates`` answering ``question`` (see :class:`Scored`)."""
        return self.score_many([question], [candidates])[0]

    def score_many(self, questions: list[str], candidates: list[list[Candidate]]) -> list[Scored]:
        """:meth:`score` for B questions at once (batched embedding and scoring)."""
        out = []
        if not questions:
            return out
        probs = torch.softmax(self.logits(questions, candidates), -1).numpy()
        for row, cands in zip(probs, candidates, strict=True):
            p, nil = row[: len(cands)], float(row[-1])
            best = int(p.argmax()) if len(cands) else None
            if best is not None and p[best] < self.config.threshold:
                best = None
            out.append(Scored(p.astype(np.float32), nil, best))
        return out

    # -------------------------------------------------------------- disk
    def save(self, directory) -> Path:
        """``config.json`` + ``model.safetensors`` into ``directory`` (replaced as a set)."""
        return save_pretrained(directory, self.config, self.module, metadata={"format": FORMAT},
                               replace=True)  # fmt: skip

    @classmethod
    def load(cls, directory) -> QAScorer:
        """A scorer saved by :meth:`save`; a missing one raises :class:`LinkerError` naming
        ``kgf qa-train``."""
        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
            workspace = directory.parent
            raise LinkerError(
                f"no trained question scorer in {directory}: train one with `kgf qa-train "
                f"{workspace}` (questions generated from the graph) or `kgf qa-train "
                f"{workspace} --pairs semipqa/dev.csv` (labelled shopper questions)"
            )
        config = QAScorerConfig.load(directory)
        module = QAScorerModule(config.dim, config.hidden, config.dropout)
        load_into(module, read_weights(directory / WEIGHTS_FILE), directory / WEIGHTS_FILE)
        return cls(config, module)


def _masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    full = torch.cat([mask, torch.ones(len(mask), 1, dtype=torch.bool)], -1)
    return logits.masked_fill(~full, float("-inf"))


def shuffled(items: list, seed: int) -> list:
    """A copy of ``items`` in a seeded random order."""
    items = list(items)
    random.Random(seed).shuffle(items)
    return items

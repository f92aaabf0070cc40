"""Product question answering over the graph: no generative model, every word of an answer
comes from the graph or a template.

>>> from align import ask
>>> ask("ws", "does the lumo racing car need batteries?")            # doctest: +SKIP
Answer(product='.../lumo-racing-car', attribute='is accessory or spare part for', ...)
>>> ask("ws", "what season is this for?", image="photo.jpg")         # doctest: +SKIP
>>> ask("ws", "welche Farbe hat es?", product="https://example.org/fashion/product/15970")

:class:`QuestionAnswerer` answers in three steps:

1. **The product**: the given IRI; or the product a photo shows (the workspace's image
   linker, :meth:`align.Linker.link_image`; the nearest catalogue photo when no image
   linker was trained); or the product named in the question (the text linker,
   :meth:`align.Linker.link_text`, the best non-NIL mention). Several candidates: the
   answer is for the best, the others are listed (``alternatives``). None: "not in the
   catalogue", with the closest products.
2. **What is asked**: the product's attributes (:func:`product_attributes`: its literal
   columns and its relations, each with its values or neighbours' names, plus the relations
   its type takes part in that a link model may predict) are ranked against the question,
   the product's mention cut out, by the trained scorer (:class:`align.qa_scorer.QAScorer`).
   The best attribute below the scorer's calibrated threshold: "not in the catalogue".
3. **The answer**: the attribute's values in a templated sentence, the evidence triples,
   the confidence (the attribute's probability). A relation is answered from its edges and,
   through ``related`` (e.g. :meth:`kgfusion.session.Session.related`, which uses the
   trained link-prediction run of the relation), from the model's predictions.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kg.labels import display_name, tokens
from kg.naming import REV_PREFIX

from .base import LinkerError
from .product_finder import QAError, find_product
from .qa_lexicon import concept_words
from .qa_scorer import QA_SCORER_DIR, Candidate, QAScorer, predicate_words
from .qa_scorers import load_scorer

MAX_VALUES = 10
RANGE_VALUES = 8  # values per relation in a candidate's description (relation_ranges)
LITERAL, RELATION = "literal", "relation"


@dataclass
class Attribute:
    """One attribute of a product: a literal column or a relation (``name`` is the
    relation's name, ``rev_`` for incoming edges), its values (literal values or the
    neighbours' names) and ``objects`` (the literal values or neighbour IRIs)."""

    kind: str
    predicate: str
    name: str
    words: str
    values: list[str]
    objects: list[str]
    about: str = ""  # the values the relation takes across the catalogue (relation_ranges)
    aka: str = ""  # other words for it, other languages too (align.qa_lexicon.concept_words)

    @property
    def candidate(self) -> Candidate:
        return Candidate(self.words, ", ".join(self.values[:3]), self.about, self.aka)


@dataclass
class Answer:
    """The answer to one question (``to_dict()`` for JSON).

    ``answered`` is False for "not in the catalogue" (no product found, or no attribute
    above the threshold); ``text`` is the sentence either way. ``evidence`` holds
    ``(subject, predicate, object)`` triples of the graph; ``predicted`` a trained model's
    ``(iri, name, score)`` answers to a relation question (the link model's; the attribute
    model's for an attribute the catalogue lacks: the best is the answer); ``alternatives`` other products
    ``(iri, name, score)`` the question or photo may mean; ``attributes`` the best-ranked
    attributes ``(words, probability)``; ``notes`` what was adjusted (a cut question)."""

    question: str
    answered: bool
    text: str
    product: str | None = None
    product_name: str | None = None
    found_by: str | None = None  # "iri", "text", "image"
    product_score: float = 0.0
    attribute: str | None = None
    predicate: str | None = None
    values: list[str] = field(default_factory=list)
    confidence: float = 0.0
    evidence: list[tuple[str, str, str]] = field(default_factory=list)
    predicted: list[tuple[str, str, float]] = field(default_factory=list)
    model: str = ""  # what gave ``predicted``: "link model" or "attribute model"
    alternatives: list[tuple[str, str, float]] = field(default_factory=list)
    attributes: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ a product's attributes
def _literal_attributes(graph, iri: str) -> list[Attribute]:
    groups: dict[str, tuple[str, list[str], list[str]]] = {}
    for lit in graph.literals(iri):
        if lit.kind == "image":
            continue
        name, first, rest = groups.setdefault(lit.predicate, (lit.name, [], []))
        (first if lit.language in (None, "en") else rest).append(lit.value)
    out = []
    for predicate, (name, first, rest) in groups.items():
        values = list(dict.fromkeys(first + rest))[:MAX_VALUES]  # English / untagged first
        out.append(Attribute(LITERAL, predicate, name, predicate_words(name), values,
                             list(values)))  # fmt: skip
    return out


def _relation_words(name: str) -> str:
    if name.startswith(REV_PREFIX):
        return f"what {predicate_words(name[len(REV_PREFIX) :])} it"
    return predicate_words(name)


def _relation_attributes(graph, iri: str, predictable: bool,
                         predicts=()) -> list[Attribute]:  # fmt: skip
    groups: dict[str, Attribute] = {}
    for nb in graph.neighbors(iri):
        predicate = next(r.predicate for r in graph.relations
                         if r.name == nb.relation.removeprefix(REV_PREFIX))  # fmt: skip
        att = groups.setdefault(nb.relation, Attribute(RELATION, predicate, nb.relation,
                                                       _relation_words(nb.relation), [], []))  # fmt: skip
        if nb.iri not in att.objects and len(att.objects) < MAX_VALUES:
            att.objects.append(nb.iri)
            att.values.append(display_name(graph, nb.iri) or nb.iri)
    for name in [n for n in groups if n.startswith(REV_PREFIX)]:  # symmetric: keep one side
        forward = groups.get(name[len(REV_PREFIX) :])
        if forward is not None and set(forward.objects) == set(groups[name].objects):
            del groups[name]
    if predictable:  # relations of the product's type without edges: the link model's
        node_type = graph.node(iri)[0]
        for r in graph.relations:
            if r.name in groups or REV_PREFIX + r.name in groups:  # it has edges one way
                continue
            for name, ok in ((r.name, r.src_type == node_type),
                             (REV_PREFIX + r.name, r.dst_type == node_type)):  # fmt: skip
                if ok and (r.src_type == r.dst_type or (name in predicts and name == r.name)):
                    groups[name] = Attribute(RELATION, r.predicate, name, _relation_words(name),
                                             [], [])  # fmt: skip
    return list(groups.values())


_RANGES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def relation_ranges(graph, k: int = RANGE_VALUES) -> dict[str, str]:
    """For each relation between two different node types, the names of its ``k`` most
    frequent objects across the graph, most frequent first (``{"season": "Summer, Fall,
    Winter, Spring"}``): what the predicate's values look like, so a question naming one
    (``Sommer oder Winter?``) points to it. Computed once per graph."""
    if graph in _RANGES:
        return _RANGES[graph]
    out: dict[str, list[str]] = {}
    for r in graph.relations:
        if r.src_type == r.dst_type or not r.count:
            continue
        counts = np.bincount(graph.edge_index(r)[1])
        top = [int(i) for i in np.argsort(-counts, kind="stable")[:k] if counts[i] > 0]
        names = [display_name(graph, graph.iri(r.dst_type, i)) for i in top]
        out.setdefault(r.name, []).extend(n for n in names if n)
    ranges = {name: ", ".join(dict.fromkeys(names)) for name, names in out.items()}
    _RANGES[graph] = ranges
    return ranges


def product_attributes(graph, iri: str, predictable: bool = False,
                       predicts=()) -> list[Attribute]:  # fmt: skip
    """The attributes of ``iri`` a question may ask about: its literal columns (images
    left out; English or untagged values first) and its relations, each direction once for
    symmetric ones, each with its other words (:func:`align.qa_lexicon.concept_words`) and
    each relation with its values across the catalogue (:func:`relation_ranges`). ``predictable``: also the product-to-product relations of
    its type it has no edge of, in either direction (answered by a link model), and the
    relations of ``predicts`` (an attribute model's: ``season``) it has no edge of."""
    atts = _literal_attributes(graph, iri) + _relation_attributes(graph, iri, predictable, predicts)
    ranges = relation_ranges(graph)
    for att in atts:
        att.aka = concept_words(att.words)
        if att.kind == RELATION:
            att.about = ranges.get(att.name, "")
    return atts


# ------------------------------------------------------------------ sentences
def _join(values: list[str]) -> str:
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " and " + values[-1]


def answer_sentence(product: str, att: Attribute, values: list[str], predicted: bool,
                    model: str = "link model") -> str:  # fmt: skip
    """The templated answer: ``The base colour of Puma Black Jacket is Black.`` (a literal or
    a relation to value nodes), ``Lumo charger is accessory or spare part for Lumo racing
    car.`` (a relation between products); a
    ``predicted`` one says which ``model`` predicted it."""
    if att.kind == RELATION and att.name.startswith(REV_PREFIX):
        head = f"{_join(values)} {predicate_words(att.name[len(REV_PREFIX) :])} {product}"
    elif att.kind == RELATION and not att.about:  # to a product: "X is accessory ... for Y"
        head = f"{product} {att.words} {_join(values)}"
    else:  # a literal, or a relation to value nodes (``about``: season, colour...)
        verb = "are" if len(values) > 1 else "is"
        head = f"The {att.words} of {product} {verb} {_join(values)}"
    return head + (f" (predicted by the {model})." if predicted else ".")


def _without(question: str, start: int | None, end: int | None, name: str | None) -> str:
    """The question with the product's name replaced by ``it``: the display name where it
    occurs (whitespace and case aside); else the linker's mention span, less the words at
    its edges that are not words of the name (a span may take in "colour does" before the
    name: those words are what is asked)."""
    if name:
        norm = " ".join(name.split())
        at = question.lower().find(norm.lower())
        if at >= 0 and norm:
            return " ".join((question[:at] + " it " + question[at + len(norm) :]).split())
    if start is None or end is None or end <= start:
        return question
    words = question[start:end].split()
    own = set(tokens(name or ""))
    inside = [i for i, w in enumerate(words) if not own or set(tokens(w)) & own]
    if not inside:
        return " ".join((question[:start] + " it " + question[end:]).split())
    first, last = inside[0], inside[-1]
    kept = words[:first] + ["it"] + words[last + 1 :]
    return " ".join((question[:start] + " " + " ".join(kept) + " " + question[end:]).split())


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef\u3000-\u303f"
_SCRIPT_EDGE = re.compile(f"(?<=[A-Za-z0-9])(?=[{_CJK}])|(?<=[{_CJK}])(?=[A-Za-z0-9])")


def spaced(text: str) -> str:
    """``text`` with a space where Latin letters or digits meet Chinese, Japanese or Korean
    characters (``Handbag是什么颜色`` -> ``Handbag 是什么颜色``), so a product name written
    without spaces next to them is found as its own words."""
    return _SCRIPT_EDGE.sub(" ", text)


# ------------------------------------------------------------------ the answerer
class QuestionAnswerer:
    """Answers questions about a graph's products (module docstring).

    Args:
        graph: the :class:`kg.ProductGraph`.
        scorer: a trained scorer of :mod:`align.qa_scorers` (the feature scorer,
            :class:`align.qa_scorer.QAScorer`, or the fine-tuned bi-encoder).
        linker: an :class:`align.Linker` over the workspace (text and photo linking);
            None: only ``product=IRI`` questions.
        related: ``related(iri, relation, k) -> [(iri, name, score)]`` (a trained model's
            predictions for a relation: the link model's, or the attribute model's for the
            relations of ``predicts``), or None.
        predicts: the relations to other types (``season``) an attribute-completion model
            predicts: a product without such an edge is answered with the model's best
            value, said to be predicted.
        product_types: the node types a question's product may have (default
            ``Product`` when the graph has it, else every type).
    """

    def __init__(self, graph, scorer: QAScorer, linker=None, related=None,
                 product_types=None, k: int = 5, predicts=()):  # fmt: skip
        self.graph, self.scorer, self.linker, self.related = graph, scorer, linker, related
        self.predicts = set(predicts) if related is not None else set()
        types = list(graph.num_nodes_dict)
        self.product_types = product_types or (["Product"] if "Product" in types else None)
        self.k = k

    @classmethod
    def open(cls, workspace, scorer_dir=None, **kwargs) -> QuestionAnswerer:
        """Over a workspace: its graph, its text / photo linker (when encoded) and the
        scorer of ``WORKSPACE/qa-scorer`` (or ``scorer_dir``)."""
        from .linker import Linker

        workspace = Path(workspace)
        scorer = load_scorer(scorer_dir or workspace / QA_SCORER_DIR)
        try:
            linker = Linker(workspace)
            graph = linker.graph
        except LinkerError:
            from kg.graph import load_graph

            linker, graph = None, load_graph(workspace)
        return cls(graph, scorer, linker, **kwargs)

    def ask(self, question: str, *, product: str | None = None, image=None) -> Answer:
        """Answer ``question`` about ``product`` (an IRI), the product in ``image`` (a path
        or ``PIL.Image``) or the product the question names. Raises :class:`QAError` for an
        empty question, an unknown IRI or an unreadable photo."""
        if not isinstance(question, str) or not question.strip():
            raise QAError("the question is empty: ask about a product, e.g. `kgf ask WS "
                          "'what colour is the lumo racing car?'`")  # fmt: skip
        question = " ".join(question.split())
        notes = []
        limit = self.scorer.config.max_question_chars
        if len(question) > limit:
            notes.append(f"the question was cut to its first {limit} characters (the "
                         f"model's window)")  # fmt: skip
        text = spaced(question)
        found = find_product(self, text, product, image)
        if found.iri is None:
            names = ", ".join(f"{n} ({s:.2f})" for _, n, s in found.alternatives) or "none"
            what = "the photo" if image is not None else "the question"
            return Answer(question, False, f"No product of the catalogue matches {what}; "
                          f"closest products: {names}.", found_by=found.method,
                          alternatives=found.alternatives, notes=notes)  # fmt: skip
        rest = _without(text, found.start, found.end, found.name)[:limit]
        return self._answer(question, rest, found, notes)

    def _answer(self, question: str, rest: str, found, notes: list[str]) -> Answer:
        atts = product_attributes(self.graph, found.iri, predictable=self.related is not None,
                                  predicts=self.predicts)  # fmt: skip
        base = dict(product=found.iri, product_name=found.name, found_by=found.method,
                    product_score=found.score, alternatives=found.alternatives, notes=notes)  # fmt: skip
        if not atts:
            return Answer(
                question, False, f"The catalogue holds nothing about {found.name}.", **base
            )
        scored = self.scorer.score(rest, [a.candidate for a in atts])
        order = sorted(range(len(atts)), key=lambda i: -scored.probs[i])
        ranked = [(atts[i].words, round(float(scored.probs[i]), 4)) for i in order[:3]]
        if scored.best is None:
            return Answer(question, False, f"The catalogue has no answer to this question about "
                          f"{found.name}.", attributes=ranked,
                          confidence=float(scored.nil_prob), **base)  # fmt: skip
        att = atts[scored.best]
        predicted = self._predicted(found.iri, att)
        attribute_model = att.name in self.predicts
        values = att.values or [name for _, name, _ in predicted[: 1 if attribute_model else None]]
        if not values:
            return Answer(question, False, f"The catalogue has no {att.words} of {found.name}.",
                          attribute=att.words, predicate=att.predicate, attributes=ranked,
                          confidence=float(scored.probs[scored.best]), **base)  # fmt: skip
        evidence = [self._triple(found.iri, att, o) for o in att.objects]
        model = "attribute model" if attribute_model else "link model"
        said = f"{model}, probability {predicted[0][2]:.2f}" if attribute_model and predicted else model
        text = answer_sentence(found.name, att, values, predicted=not att.values, model=said)
        return Answer(question, True, text, attribute=att.words, predicate=att.predicate,
                      values=values, confidence=float(scored.probs[scored.best]),
                      evidence=evidence, predicted=predicted, model=model if predicted else "",
                      attributes=ranked, **base)  # fmt: skip

    def _predicted(self, iri: str, att: Attribute) -> list[tuple[str, str, float]]:
        if att.kind != RELATION or self.related is None or (att.name in self.predicts and att.values):
            return []  # an attribute the catalogue has is answered from it alone
        try:
            found = self.related(iri, att.name, self.k)
        except (LookupError, ValueError, RuntimeError):  # no index / run: edges only
            return []
        return [(i, n, round(float(s), 4)) for i, n, s in found if i not in att.objects]

    @staticmethod
    def _triple(iri: str, att: Attribute, obj: str) -> tuple[str, str, str]:
        if att.kind == RELATION and att.name.startswith(REV_PREFIX):
            return (obj, att.predicate, iri)
        return (iri, att.predicate, obj)


def ask(workspace, question: str, *, product: str | None = None, image=None) -> Answer:
    """Answer one question over a workspace (:meth:`QuestionAnswerer.open` then
    :meth:`QuestionAnswerer.ask`; relation questions from the graph's edges only: the
    ``kgf`` session, :meth:`kgfusion.session.Session.ask`, adds the link model)."""
    return QuestionAnswerer.open(workspace).ask(question, product=product, image=image)

"""Step 1 of question answering (:mod:`align.qa`): which product a question is about.

One finder per way of naming the product, chosen in :func:`find_product`:

- ``iri``: the caller gave the product's IRI (checked against the graph);
- ``image``: the product a photo shows, by the workspace's image linker
  (:meth:`align.Linker.link_image`), or by the nearest catalogue photo when no image linker
  was trained (``kgf link-train --images`` trains one);
- ``text``: the product the question names, by the text linker
  (:meth:`align.Linker.link_text`): the best non-NIL mention of a product type; without a
  linker (a workspace not encoded), the best lexical match of the question
  (:func:`kg.labels.lexical_lookup`).
"""

from __future__ import annotations

from typing import NamedTuple

from kg.labels import display_name

from .base import LinkerError

IRI, IMAGE, TEXT = "iri", "image", "text"


class QAError(LinkerError):
    """A question that cannot be asked (empty, unreadable photo, unknown product IRI);
    the message says what to do."""


class Found(NamedTuple):
    """The product found (``iri`` None: none), its name and score, how it was found, the
    span of its mention in the question (text only) and other candidates
    ``(iri, name, score)``."""

    iri: str | None
    name: str | None
    score: float
    method: str
    start: int | None = None
    end: int | None = None
    alternatives: list[tuple[str, str, float]] = []


def _name(graph, iri: str) -> str:
    return display_name(graph, iri) or iri


def _others(graph, pairs, skip: str | None, k: int) -> list[tuple[str, str, float]]:
    return [(i, _name(graph, i), round(float(s), 4)) for i, s in pairs if i != skip][:k]


def by_iri(answerer, iri: str) -> Found:
    from kg.graph import GraphLookupError

    try:
        answerer.graph.node(iri)
    except GraphLookupError as err:
        raise QAError(f"the product {iri!r} is not in the catalogue: {err}") from None
    return Found(iri, _name(answerer.graph, iri), 1.0, IRI)


def by_image(answerer, image) -> Found:
    from fusion.encoders import ImageError

    if answerer.linker is None:
        raise QAError("questions with a photo need an encoded workspace: run `kgf encode WS`")
    try:
        try:
            link = answerer.linker.link_image(image, k=answerer.k)
        except LinkerError as err:
            if "link-train" not in str(err):
                raise
            link = answerer.linker.link_image(image, k=answerer.k, untrained=True)
    except (ImageError, OSError, ValueError) as err:
        raise QAError(f"cannot read the photo {image}: {err}; give a JPEG or PNG file") from None
    graph = answerer.graph
    if link.nil or link.iri is None:
        return Found(None, None, link.score, IMAGE,
                     alternatives=_others(graph, link.alternatives, None, answerer.k))  # fmt: skip
    return Found(link.iri, _name(graph, link.iri), link.score, IMAGE,
                 alternatives=_others(graph, link.alternatives, link.iri, answerer.k - 1))  # fmt: skip


def by_text(answerer, question: str) -> Found:
    graph, types, k = answerer.graph, answerer.product_types, answerer.k
    linker = answerer.linker
    if linker is None or linker.encoder is None:
        from kg.labels import lexical_lookup

        node_type = types[0] if types else None
        try:
            found = lexical_lookup(graph, question, node_type=node_type, k=k)
        except ValueError:
            found = []
        if not found:
            return Found(None, None, 0.0, TEXT)
        best = found[0]
        return Found(best[0], _name(graph, best[0]), float(best[1]), TEXT,
                     alternatives=_others(graph, [(m[0], m[1]) for m in found], best[0], k - 1))  # fmt: skip
    links = linker.link_text(question, k=k, types=types)
    if not links:
        links = [linker.link_record(question, k=k, types=types)]
    for start, end in _joined_spans(question, links):  # "Men" + "s Madagascar": "Men's Madagascar"
        link = linker.link_record(question[start:end], k=k, types=types)
        link.start, link.end = start, end
        links.append(link)
    found = [x for x in links if not x.nil]
    if not found:
        closest = max(links, key=lambda x: x.score)
        return Found(None, None, closest.score, TEXT,
                     alternatives=_others(graph, closest.alternatives, None, k))  # fmt: skip
    best = max(found, key=lambda x: x.score)
    pairs = list(best.alternatives) + [(x.iri, x.score) for x in found if x is not best]
    pairs = sorted(dict(reversed(pairs)).items(), key=lambda p: -p[1])  # one per IRI, best score
    return Found(best.iri, _name(graph, best.iri), best.score, TEXT, best.start, best.end,
                 _others(graph, pairs, best.iri, k - 1))  # fmt: skip


def _joined_spans(text: str, links) -> list[tuple[int, int]]:
    """Spans of neighbouring mentions separated by at most two apostrophes, hyphens or
    spaces (the detector splits ``Men's``), joined; only the new ones."""
    spans = sorted((x.start, x.end) for x in links if x.start is not None)
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if (
            joined
            and 0 <= start - joined[-1][1] <= 2
            and not text[joined[-1][1] : start].strip(" '’-")
        ):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return [span for span in joined if span not in spans]


def find_product(answerer, question: str, product: str | None, image) -> Found:
    """The product of a question (module docstring); ``product`` wins, then ``image``."""
    if product is not None:
        return by_iri(answerer, product)
    if image is not None:
        return by_image(answerer, image)
    return by_text(answerer, question)

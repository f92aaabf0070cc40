"""``GET /link``: the service's answer is what ``kgf link`` answers, plus the name search.

One code path: the mentions of ``text`` are found and linked by
:meth:`kgfusion.session.Session.link_text` (align's text linker: every mention the
catalogue supports, as the longest span it supports; NIL below the calibrated threshold or
``threshold=``; ``nil=false`` never NIL) and written by :func:`kgfusion.display.link_rows`,
the function ``kgf link --format json`` writes with, so ``links`` is exactly that output:
per mention its span (``start``, ``end``), ``iri`` and display ``name`` (None when NIL),
``score``, ``nil`` and ``alternatives`` as ``[iri, score, name]``, best first.

``matches`` keeps the name search this route answered before (:meth:`Session.match`:
entities whose names match the whole text, any node type, lexical when the workspace has no
text linker); ``method`` says which one answered it. A workspace without text features has
no ``links`` (an empty list, ``links_problem`` says which command to run).
"""

# no `from __future__ import annotations`: FastAPI reads the annotations at run time
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from .display import link_rows
from .session import Match, Session

MAX_TEXT_CHARS = 1_000  # /link text and /related name: lexical lookup is linear in tokens


class MatchOut(BaseModel):
    iri: str
    type: str
    score: float = Field(description="in [0, 1], higher is closer")
    text: str = Field(description="the entity's name that matched")


def match_out(ws: Session, match: Match) -> MatchOut:
    node_type, _ = ws.graph.node(match.iri)
    return MatchOut(iri=match.iri, type=node_type, score=match.score, text=match.text)


class LinkResponse(BaseModel):
    text: str
    method: str = Field(description="how `matches` were found: `linker` or `lexical`")
    matches: list[MatchOut] = Field(description="entities whose names match the whole text")
    threshold: float | None = Field(None, description="the NIL cut used for `links`")
    links: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the mentions of the text, each linked or NIL: what `kgf link --format "
        "json` prints (mention, start, end, iri, name, type, score, nil, alternatives as "
        "[iri, score, name])",
    )
    links_problem: str | None = Field(None, description="why `links` is empty, if it must be")


def link(ws: Session, text: str, k: int = 5, node_type: str | None = None,
         threshold: float | None = None, nil: bool = True) -> LinkResponse:  # fmt: skip
    """The mentions of ``text`` linked (``links``) and the name matches (``matches``)."""
    from align import LinkerError

    try:
        matches = ws.match(text, k, node_type)
    except KeyError as err:  # unknown node type
        raise HTTPException(422, str(err)) from None
    response = LinkResponse(text=text, method=ws.match_method(node_type),
                            matches=[match_out(ws, m) for m in matches])  # fmt: skip
    if ws.text_linker is None:
        if not ws.use_text_linker:
            response.links_problem = "text linking is turned off for this service"
            return response
        try:
            _ = ws.linker
            response.links_problem = "the workspace's features have no text encoder"
        except LinkerError as err:  # names the missing step, e.g. `kgf encode`
            response.links_problem = str(err)
        return response
    links = ws.link_text(text, k=k, threshold=threshold, nil=nil) if text.strip() else []
    response.links = link_rows(ws.graph, links).document
    response.threshold = None if not nil else (
        threshold if threshold is not None else ws.text_linker.nil_threshold
    )
    return response


def add_link_routes(app: FastAPI, ws: Session, max_k: int) -> None:
    """Register ``GET /link`` on ``app`` (module docstring)."""

    @app.get("/link", response_model=LinkResponse, summary="Mentions in text, linked")
    def get_link(
        text: Annotated[str, Query(max_length=MAX_TEXT_CHARS,
                                   description="free text, e.g. a shopper's request")] = "",
        k: Annotated[int, Query(ge=1, le=max_k, description=f"candidates per mention, 1..{max_k}")] = 5,
        node_type: Annotated[str | None, Query(max_length=4_096,
                                               description="node type of `matches`")] = None,
        threshold: Annotated[float | None, Query(ge=0.0, le=1.0,
                                                 description="NIL cut (default: calibrated)")] = None,
        nil: Annotated[bool, Query(description="false: never NIL, link every mention")] = True,
    ) -> LinkResponse:
        """The mentions of `text`, each linked to an entity or NIL, exactly as `kgf link
        TEXT --format json` prints them (`links`: spans, names, scores, alternatives), and
        the entities whose names match the whole text (`matches`). Empty text: nothing."""
        return link(ws, text, k, node_type, threshold, nil)

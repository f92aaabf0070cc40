"""The service's product search: ``GET /search`` (words) and ``POST /search/image`` (a photo).

Both call :meth:`kgfusion.session.Session.search`, the code path of ``kgf search``: each
product is scored against the query's text, against its photo through the fitted
alignment and by the graph facts the query names; the answer lists every hit's score
parts and the facts it has. Bad input (an empty query, an unknown script, an unreadable
photo, an unknown filter type) answers 422 with the message; a workspace without
features 409. Add the routes with ``add_search_routes(app, session)``.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time
import io
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field

from .session import Session

MAX_QUERY_CHARS = 1_000
MAX_PHOTO_BYTES = 16 << 20


class SearchHitModel(BaseModel):
    iri: str
    node_type: str
    name: str | None = None
    score: float
    parts: dict[str, float] = Field(description="text, image (aligned), graph (named facts)")
    facts: list[str] = Field(description="the named facts this product has")


class SearchResponse(BaseModel):
    query: str | None
    alignment: str | None = Field(description="the alignment method of the photo part")
    notes: list[str]
    facts: list[dict[str, Any]] = Field(description="graph facts the query names")
    hits: list[SearchHitModel]


def _answer(session: Session, query, k: int, image, node_type, method) -> SearchResponse:
    from align.search import SearchError

    filters = {"type": node_type} if node_type else None
    try:
        results = session.search(query, k, image=image, filters=filters, method=method)
    except SearchError as err:
        raise HTTPException(422, str(err)) from None
    except (KeyError, FileNotFoundError) as err:  # an unknown method; no features
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise HTTPException(409 if isinstance(err, FileNotFoundError) else 422,
                            str(message)) from None
    return SearchResponse(**results.to_dict())


def add_search_routes(app: FastAPI, session: Session, *, max_k: int = 100) -> None:
    """Add ``GET /search`` and ``POST /search/image`` to ``app`` (module docstring)."""

    @app.get("/search", response_model=SearchResponse, summary="Search products by words")
    def get_search(
        q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="the words")] = "",
        k: Annotated[int, Query(ge=1, le=max_k, description=f"products wanted, 1..{max_k}")] = 10,
        type: Annotated[str | None, Query(description="only this node type")] = None,  # noqa: A002
        method: Annotated[str | None, Query(description="alignment method")] = None,
    ) -> SearchResponse:
        """Products ranked by the query against their text, their photos (through the
        aligned space) and the graph facts it names ("red" -> the Red colour node), with
        the parts of each score. Queries in other languages use multilingual-e5."""
        return _answer(session, q, k, None, type, method)

    @app.post("/search/image", response_model=SearchResponse, summary="Look-alike products")
    async def post_search_image(
        request: Request,
        k: Annotated[int, Query(ge=1, le=max_k, description=f"products wanted, 1..{max_k}")] = 10,
        q: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS,
                                       description="optional words too")] = None,  # fmt: skip
        type: Annotated[str | None, Query(description="only this node type")] = None,  # noqa: A002
        method: Annotated[str | None, Query(description="alignment method")] = None,
    ) -> SearchResponse:
        """The body is a photo (JPEG, PNG...; at most 16 MiB): products whose photos look
        like it, and whose names fit it through the aligned space."""
        from PIL import Image, UnidentifiedImageError

        body = await request.body()
        if not body or len(body) > MAX_PHOTO_BYTES:
            raise HTTPException(422, f"send the photo as the request body (1 byte to "
                                     f"{MAX_PHOTO_BYTES >> 20} MiB)")  # fmt: skip
        try:
            photo = Image.open(io.BytesIO(body))
            photo.load()
        except (UnidentifiedImageError, OSError) as err:
            raise HTTPException(422, f"the body is not a readable image ({err})") from None
        return _answer(session, q, k, photo, type, method)

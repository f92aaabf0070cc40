"""The service's ``/ask`` routes: product question answering (:meth:`Session.ask`).

- ``GET /ask?question=...[&product=IRI]``: the product named in the question, or given;
- ``POST /ask?question=...`` with a photo as the body (``image/jpeg``, ``image/png``...):
  the product the photo shows.

Questions are bounded (``max_question_chars``; 422 beyond), photos too (``max_image_bytes``;
413 beyond). An empty question, an unreadable photo or an unknown IRI answer 400 with the
reason; a workspace without a trained question scorer 409 naming ``kgf qa-train``.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time

import asyncio
import io
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import BaseModel

from .routes_search import MAX_PHOTO_BYTES
from .session import Session

MAX_QUESTION_CHARS = 1_000
MAX_IMAGE_BYTES = MAX_PHOTO_BYTES  # one photo limit for /ask and /search/image (16 MiB)


class AskResponse(BaseModel):
    """An :class:`align.Answer`: the sentence and what it rests on."""

    question: str
    answered: bool
    text: str
    product: str | None = None
    product_name: str | None = None
    found_by: str | None = None
    product_score: float = 0.0
    attribute: str | None = None
    predicate: str | None = None
    values: list[str] = []
    confidence: float = 0.0
    evidence: list[tuple[str, str, str]] = []
    predicted: list[tuple[str, str, float]] = []
    model: str = ""
    alternatives: list[tuple[str, str, float]] = []
    attributes: list[tuple[str, float]] = []
    notes: list[str] = []


def _answer(ws: Session, question: str, product, image) -> AskResponse:
    from align import LinkerError, QAError

    try:
        answer = ws.ask(question, product=product, image=image)
    except QAError as err:
        raise HTTPException(400, str(err)) from None
    except LinkerError as err:  # no trained scorer, or a workspace step missing
        raise HTTPException(409, str(err)) from None
    return AskResponse(**answer.to_dict())


def add_ask_routes(app: FastAPI, ws: Session, *, max_question_chars: int = MAX_QUESTION_CHARS,
                   max_image_bytes: int = MAX_IMAGE_BYTES) -> None:  # fmt: skip
    """Add ``GET /ask`` and ``POST /ask`` (photo) to ``app`` over session ``ws``."""
    question_param = Annotated[
        str, Query(min_length=1, max_length=max_question_chars,
                   description="the question, e.g. `what colour is the lumo racing car?`"),
    ]  # fmt: skip
    product_param = Annotated[
        str | None, Query(max_length=4_096, description="the product's IRI (optional)")
    ]

    @app.get("/ask", response_model=AskResponse, summary="Answer a question about a product")
    async def get_ask(question: question_param, product: product_param = None) -> AskResponse:
        """The answer from the graph: the product (given, or named in the question), the
        attribute asked for, its values in a sentence, the evidence triples and a
        confidence; `answered` is false when the catalogue has no answer. Questions in
        other languages (de, es, zh...) work too."""
        return await asyncio.to_thread(_answer, ws, question, product, None)

    @app.post("/ask", response_model=AskResponse, summary="Answer a question about a photo")
    async def post_ask(question: question_param, request: Request) -> AskResponse:
        """Like `GET /ask`, the product being the one the photo in the body shows (raw
        bytes, `image/jpeg` or `image/png`; at most `max_image_bytes`)."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_image_bytes:
                raise HTTPException(413, f"the photo is larger than {max_image_bytes:,} bytes")
        if not body:
            raise HTTPException(400, "send the photo as the request body (image/jpeg, image/png)")
        try:
            from PIL import Image

            image = Image.open(io.BytesIO(bytes(body)))
            image.load()
        except Exception as err:  # PIL raises several kinds for bad bytes
            raise HTTPException(400, f"the body is not a readable image ({err})") from None
        return await asyncio.to_thread(_answer, ws, question, None, image)

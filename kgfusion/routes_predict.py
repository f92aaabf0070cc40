"""The service's ``/predict`` route: attribute values a trained attribute-completion run
predicts (:meth:`Session.predict`, the code path of ``kgf predict``).

``GET /predict?product=IRI[&product=IRI...][&relation=R...][&k=3]``: the products named
(or, without ``product``, the catalogue's gaps: every product without a value of the run's
relations, at most ``limit`` of them). 409 when the workspace has no attribute-completion
run (naming ``kgf train ... --task attribute``), 404 for an unknown product IRI, 422 for a
relation the run does not predict.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time

import asyncio
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel

from .session import Session
from .session_runs import prediction_record

MAX_PRODUCTS = 1_000  # IRIs one request may name
MAX_LIMIT = 10_000  # predictions one request may return


class PredictionOut(BaseModel):
    """One product's predicted value of one relation (a row of `kgf predict`)."""

    product: str
    name: str
    relation: str
    predicted: str
    probability: float
    alternatives: list[str]
    catalogue: list[str]
    value_iri: str


class PredictResponse(BaseModel):
    run: str
    test_accuracy: dict[str, float | None]
    predictions: list[PredictionOut]
    truncated: bool


def _predict(ws: Session, products, relations, k: int, limit: int) -> PredictResponse:
    from fusion.model import ConfigError

    try:
        predictor = ws.predictor()
    except ConfigError as err:
        raise HTTPException(409, str(err)) from None
    try:
        found = predictor.predict(products, relations, k)
    except ConfigError as err:
        status = 404 if "is not a node" in str(err) else 422
        raise HTTPException(status, str(err)) from None
    records = [PredictionOut(**prediction_record(ws.graph, p)) for p in found[:limit]]
    accuracy = {r: predictor.test_accuracy(r) for r in (relations or predictor.relations)}
    return PredictResponse(run=predictor.run, test_accuracy=accuracy, predictions=records,
                           truncated=len(found) > limit)  # fmt: skip


def add_predict_routes(app: FastAPI, ws: Session) -> None:
    """Add ``GET /predict`` to ``app`` over session ``ws``."""

    @app.get("/predict", response_model=PredictResponse, summary="Predict missing attribute values")
    async def get_predict(
        product: Annotated[list[str] | None, Query(description="product IRIs (default: the gaps)")] = None,
        relation: Annotated[list[str] | None, Query(description="relations (default: the run's)")] = None,
        k: Annotated[int, Query(ge=1, le=20, description="values per product, best first")] = 3,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="predictions returned at most")] = 100,
    ) -> PredictResponse:  # fmt: skip
        """The newest attribute-completion run's best values, with probabilities, for the
        products named or every product without a value of its relations; the model sees
        the catalogue graph less the asked products' own edges of the relation, so
        `catalogue` (the value the catalogue has, if any) can be compared with it."""
        if product is not None and len(product) > MAX_PRODUCTS:
            raise HTTPException(422, f"{len(product):,} products named; at most {MAX_PRODUCTS:,} "
                                     "a request")  # fmt: skip
        return await asyncio.to_thread(_predict, ws, product, relation, k, limit)

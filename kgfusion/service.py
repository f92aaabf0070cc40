"""``kgf serve``: a read-only HTTP API over one workspace (FastAPI + uvicorn).

The workspace is opened once at start-up as a :class:`kgfusion.session.Session` (the layer
the ``kgf`` commands use) and everything is loaded then: the graph, the entity index from
``WORKSPACE/index`` when it exists and matches the graph, the SPARQL store, align's text
linker when the workspace has text features, and the link-prediction runs. This module is
the routes, their bounds and validation, and the JSON shapes. Nothing is ever written.
Endpoints (OpenAPI docs at ``/docs``):

==========================  ===========================================================
``GET /health``             counts, graph version, whether the index / linker are loaded
``GET /entities/{iri}``     type, index, literals and neighbours of one node (capped)
``GET /related``            related entities of ``iri=`` (or of ``name=``, resolved first)
``GET /link``               mentions in text linked, as `kgf link` (routes_link.py)
``GET /predict``            missing attribute values, as `kgf predict` (routes_predict.py)
``GET|POST /sparql``        read-only SPARQL: SELECT rows, ASK boolean, CONSTRUCT triples
==========================  ===========================================================

Every input is bounded: ``k`` in ``1..max_k``, IRIs and names in characters, SPARQL text
in ``max_query_chars`` (413 for a longer POST body, 422 for a longer query parameter),
result rows in ``max_rows`` (``truncated`` says so). Errors are JSON ``{"detail": str}``
naming the problem and what to do: 404 unknown IRI (with the nearest names), 409 missing
or stale entity index (with the ``kgf index`` command), 422 bad parameters, 400 SPARQL
syntax errors, updates and SERVICE (federation), 422 a name that resolves to an entity the
index does not hold, 503 (with ``Retry-After``) every SPARQL slot taken, 504 a query past
``query_timeout_s``.

SPARQL runs in worker processes (:class:`kg.sparql_process.QueryRunner`), at most
``max_queries`` at once (:data:`SPARQL_WORKERS` by default). A query past its time is
stopped by killing its worker, whatever it is computing, and the next query gets a fresh
worker: a heavy query never holds the service.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time, and they refer to bounds (max_k) local to create_app.
import asyncio
import json
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .routes_ask import add_ask_routes
from .routes_link import MAX_TEXT_CHARS, MatchOut, add_link_routes
from .routes_link import match_out as _match_out
from .routes_predict import add_predict_routes
from .routes_search import add_search_routes
from .session import Session, SessionError

MAX_IRI_CHARS = 4_096
MAX_ROWS = 10_000
MAX_LIST = 1_000  # literals / neighbours per entity response
SPARQL_WORKERS = 2  # SPARQL queries at once (worker processes); more answer 503
_THREAD = threading.local()  # per request thread: FAISS set to one OpenMP thread

API_DESCRIPTION = """\
Read-only access to one kgfusion workspace: entities with their literals and neighbours,
related products explained by the graph, entity lookup by name, and SPARQL.

Every input is bounded (see each parameter). Errors are JSON `{"detail": "..."}` naming the
problem and what to do: **404** unknown IRI (with the nearest IRIs), **409** missing or stale
entity index (with the `kgf index` command to run), **413** / **422** input too long or
invalid (422 too for a name that resolves to an entity the index does not hold), **400**
SPARQL syntax error, update or SERVICE, **503** every SPARQL slot taken (see `Retry-After`),
**504** SPARQL query past its time limit (it is stopped).
"""
RelationParam = Annotated[
    str | None,
    Query(max_length=MAX_IRI_CHARS, description="relation (`brand`, `rev_brand`) or predicate IRI"),
]
TypeParam = Annotated[
    str | None, Query(max_length=MAX_IRI_CHARS, description="node type, e.g. `Product`")
]
TextParam = Annotated[
    str, Query(max_length=MAX_TEXT_CHARS, description="free text, e.g. a product name")
]


# ---------------------------------------------------------------------- response models
class HealthResponse(BaseModel):
    status: str = Field(description="`ok` when the graph is loaded")
    workspace: str
    graph_version: str
    nodes: int
    edges: int
    literals: int
    node_types: dict[str, int] = Field(description="nodes per type")
    relations: int = Field(description="number of (source type, relation, target type)")
    index: bool = Field(description="an entity index is loaded: /related works")
    index_entities: int | None = None
    index_problem: str | None = Field(None, description="why /related is unavailable")
    linker: bool = Field(description="a trained linker is loaded (else /link is lexical)")


class LiteralOut(BaseModel):
    name: str = Field(description="predicate name, e.g. `name`")
    predicate: str
    value: str
    kind: str = Field(description="text, number, boolean, date or image")
    language: str | None = None
    datatype: str | None = None


class NeighborOut(BaseModel):
    relation: str = Field(description="relation name; incoming edges read `rev_<relation>`")
    iri: str
    type: str
    direction: str = Field(description="`out`: this node is the subject; `in`: the object")


class EntityResponse(BaseModel):
    iri: str
    type: str
    index: int = Field(description="position of the node within its type")
    literals: list[LiteralOut]
    literal_count: int
    neighbors: list[NeighborOut]
    neighbor_count: int
    truncated: bool = Field(description="literals or neighbours were cut at `limit`")


class RelatedOut(BaseModel):
    iri: str
    type: str
    name: str | None = None
    score: float
    parts: dict[str, float] = Field(description="similarity, relation / scorer, evidence")
    evidence: list[str] = Field(description="direct edges, shared neighbours, paths")


class RelatedResponse(BaseModel):
    iri: str = Field(description="the query entity")
    type: str
    resolved_from: MatchOut | None = Field(None, description="how `name` was resolved")
    k: int
    relation: str | None = None
    node_type: str | None = None
    items: list[RelatedOut]


class SparqlResponse(BaseModel):
    kind: str = Field(description="`select`, `ask` or `graph` (CONSTRUCT / DESCRIBE)")
    variables: list[str]
    rows: list[list[str | None]]
    boolean: bool | None = None
    truncated: bool = Field(description="more rows than `max_rows` existed; add LIMIT")
    seconds: float


class SparqlBody(BaseModel):
    query: str


# ---------------------------------------------------------------------- the loaded state
def load_workspace(workspace, *, text_linker: bool = True,
                   max_queries: int = SPARQL_WORKERS) -> Session:  # fmt: skip
    """Open ``workspace`` (a folder, or a :class:`Session` already open) and load everything
    the routes read now (:meth:`Session.warm`), so that the first requests are as fast as
    the rest. ``text_linker``: let /link and /related?name= use align's text linker when
    the workspace has text features."""
    if not isinstance(workspace, Session):
        workspace = Session(workspace, text_linker=text_linker, max_queries=max_queries)
    return workspace.warm()


def _index_problem(ws: Session) -> str | None:
    """Why /related is unavailable, with what to do; None when the index is loaded."""
    problem = ws.index_problem
    return None if problem is None else f"{problem}, then restart the service"


# ---------------------------------------------------------------------- the operations
def entity(ws: Session, iri: str, limit: int = 100, relation: str | None = None) -> EntityResponse:
    """One node: type, index, literals and neighbours (each list cut at ``limit``)."""
    node_type, index = _node_or_404(ws, iri)
    literals = ws.graph.literals(iri)
    try:
        neighbors = ws.graph.neighbors(iri, relation=relation)
    except KeyError as err:  # unknown relation name
        raise HTTPException(422, str(err)) from None
    return EntityResponse(
        iri=iri, type=node_type, index=index,
        literals=[LiteralOut(name=x.name, predicate=x.predicate, value=x.value, kind=x.kind,
                             language=x.language, datatype=x.datatype) for x in literals[:limit]],
        literal_count=len(literals),
        neighbors=[NeighborOut(relation=n.relation, iri=n.iri, type=n.node_type,
                               direction=n.direction) for n in neighbors[:limit]],
        neighbor_count=len(neighbors),
        truncated=len(literals) > limit or len(neighbors) > limit,
    )  # fmt: skip


def related(ws: Session, iri: str | None = None, name: str | None = None, k: int = 10,
            relation: str | None = None, node_type: str | None = None,
            explain: bool = True) -> RelatedResponse:  # fmt: skip
    """The ``k`` entities most related to ``iri``, or to the entity ``name`` resolves to
    (:meth:`Session.resolve_name`); see :meth:`Session.related` for the score, the
    link-prediction run used for ``relation``, and the evidence."""
    from kg.index import EntityIndexError

    if (iri is None) == (name is None):
        raise HTTPException(422, "give exactly one of `iri` (an entity IRI) or `name` (free text)")
    if ws.index_problem is not None:
        raise HTTPException(409, _index_problem(ws))
    resolved = None
    if name is not None:
        try:
            resolved = _match_out(ws, ws.resolve_name(name))
        except SessionError:
            raise HTTPException(
                404, f"no entity has a name like {name!r}; try GET /link?text=..."
            ) from None
        iri = resolved.iri
    query_type, _ = _node_or_404(ws, iri)
    if iri not in ws.index:
        _not_indexed(ws, iri, query_type, name)
    try:
        items = ws.related(iri, k, relation, node_type, explain)
    except EntityIndexError as err:  # stale, or the entity is in the graph but not the index
        raise HTTPException(409, str(err)) from None
    except KeyError as err:  # unknown relation or node type (GraphLookupError)
        raise HTTPException(422, str(err)) from None
    return RelatedResponse(
        iri=iri, type=query_type, resolved_from=resolved, k=k, relation=relation,
        node_type=node_type,
        items=[RelatedOut(iri=x.iri, type=x.node_type, name=x.name, score=x.score,
                          parts=x.parts, evidence=x.evidence) for x in items],
    )  # fmt: skip


def _not_indexed(ws: Session, iri: str, node_type: str, name: str | None) -> NoReturn:
    """Raise the HTTP error for a graph node the entity index does not hold: 422 when the
    index holds no entity of its type (a category, a brand: ask about one of its
    products), 409 when it holds others of its type (the index is older than the graph)."""
    indexed = sorted({_type_of(ws.graph, x) for x in ws.index.iris} - {None})
    what = (
        f"{name!r} names the {node_type} {iri}" if name is not None else f"{iri} is a {node_type}"
    )
    if node_type not in indexed:
        hint = (f"GET /link?text={name}&node_type={indexed[0]}" if name is not None and indexed
                else "GET /link?text=...")  # fmt: skip
        raise HTTPException(422, (
            f"{what}, and the entity index holds no {node_type} entities (it holds "
            f"{', '.join(indexed) or 'none'}): /related answers for indexed entities; find "
            f"one with {hint}, or list this {node_type}'s neighbours with GET /entities/{iri}"
        ))  # fmt: skip
    raise HTTPException(409, (
        f"{what}, which is not in the entity index although other {node_type} entities are: "
        f"the graph changed since the index was built; rebuild it with `kgf index {ws.path}`"
    ))  # fmt: skip


def _type_of(graph, iri: str) -> str | None:
    try:
        return graph.node(iri)[0]
    except KeyError:
        return None


def _node_or_404(ws: Session, iri: str) -> tuple[str, int]:
    try:
        return ws.graph.node(iri)
    except KeyError as err:  # GraphLookupError names the closest IRIs
        raise HTTPException(404, f"{err} (find entities by name: GET /link?text=...)") from None


# ---------------------------------------------------------------------- offline docs
DOCS_ASSETS = "/docs-assets"


def swagger_ui_folder() -> Path | None:
    """The Swagger UI files of the ``swagger-ui-bundle`` package (the ``serve`` extra), or
    None when it is not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    folder = Path(str(swagger_ui_path))
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def _offline_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from files served by the app itself (``/docs-assets``), never
    from a CDN, so the docs work on a machine without internet. Without the
    ``swagger-ui-bundle`` package, ``/docs`` says how to get it and where the raw OpenAPI
    description is."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    folder = swagger_ui_folder()
    if folder is not None:
        from fastapi.staticfiles import StaticFiles

        app.mount(DOCS_ASSETS, StaticFiles(directory=folder), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if folder is None:
            return HTMLResponse(
                "<!doctype html><title>kgfusion API</title><p>The interactive API docs need "
                "the <code>swagger-ui-bundle</code> package: <code>pip install "
                "'kgfusion[serve]'</code>. The OpenAPI description is at "
                f'<a href="{app.openapi_url}">{app.openapi_url}</a>.</p>'
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to the online validator
        )  # fmt: skip


# ---------------------------------------------------------------------- the app
def create_app(workspace: Path | Session, *, max_k: int = 100, max_query_chars: int = 10_000,
               query_timeout_s: float = 5.0, max_rows: int = MAX_ROWS,
               text_linker: bool = True, max_queries: int = SPARQL_WORKERS) -> FastAPI:  # fmt: skip
    """The FastAPI app over ``workspace`` (a folder or an open :class:`Session`; loaded now,
    once; see the module docstring).

    Args:
        max_k: the most related entities one request may ask for.
        max_query_chars: the longest SPARQL query accepted.
        query_timeout_s: SPARQL time limit; past it the query is stopped (504).
        max_rows: SPARQL result rows returned at most (``truncated`` is set beyond).
        text_linker: use align's text linker for /link and /related?name= when the
            workspace has text features (a folder only; an open session says itself).
        max_queries: SPARQL queries running at once; more answer 503 with Retry-After.
    """
    from kg.sparql import SparqlBusy, SparqlError, SparqlTimeout

    ws = load_workspace(workspace, text_linker=text_linker, max_queries=max_queries)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        ws.close()

    app = FastAPI(
        title="kgfusion",
        summary=f"Read-only API over the workspace {ws.path}",
        description=API_DESCRIPTION,
        version=_version(),
        lifespan=lifespan,
        exception_handlers={RequestValidationError: _validation_error, Exception: _internal_error},
        docs_url=None, redoc_url=None,  # served offline by _offline_docs
    )
    app.state.workspace = ws
    _offline_docs(app)
    add_search_routes(app, ws, max_k=max_k)

    @app.get("/health", response_model=HealthResponse, summary="What is loaded")
    def health() -> HealthResponse:
        """Graph counts and version, and whether the entity index (needed by /related) and
        a trained linker are loaded; `index_problem` says how to build a missing index."""
        g = ws.graph
        return HealthResponse(
            status="ok", workspace=str(ws.path), graph_version=ws.version, nodes=g.num_nodes,
            edges=g.num_edges, literals=g.num_literals, node_types=g.num_nodes_dict,
            relations=len(g.relations), index=ws.index_problem is None,
            index_entities=len(ws.index) if ws.index_problem is None else None,
            index_problem=_index_problem(ws), linker=ws.text_linker is not None,
        )  # fmt: skip

    @app.get("/entities/{iri:path}", response_model=EntityResponse, summary="One entity")
    def get_entity(
        iri: Annotated[str, PathParam(min_length=1, max_length=MAX_IRI_CHARS)],
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIST, description="most literals and neighbours listed")
        ] = 100,
        relation: RelationParam = None,
    ) -> EntityResponse:
        """Type, index within the type, literals (name, value, kind, language) and
        neighbours (relation, IRI, type, direction) of one node. The IRI is the rest of the
        path, e.g. `/entities/https://example.org/kgf/product/x`; percent-encode `#` and `?`
        in it. An unknown IRI answers 404 with the nearest IRIs."""
        return entity(ws, iri, limit, relation)

    @app.get("/related", response_model=RelatedResponse, summary="Related entities")
    def get_related(
        iri: Annotated[
            str | None, Query(max_length=MAX_IRI_CHARS, description="query entity")
        ] = None,
        name: Annotated[
            str | None,
            Query(max_length=MAX_TEXT_CHARS, description="or its name, resolved by /link"),
        ] = None,
        k: Annotated[int, Query(ge=1, le=max_k, description=f"answers wanted, 1..{max_k}")] = 10,
        relation: RelationParam = None,
        node_type: TypeParam = None,
        explain: Annotated[bool, Query(description="list the graph evidence")] = True,
    ) -> RelatedResponse:
        """The `k` entities most related to `iri` (or to the best match of `name`): the
        entity index's nearest neighbours, boosted by edges of `relation` and by shared
        neighbours, each with its score parts and graph evidence (paths up to length 3).
        409 when the workspace has no current entity index (build it with `kgf index DIR`)."""
        single_threaded_faiss()
        return related(ws, iri, name, k, relation, node_type, explain)

    add_link_routes(app, ws, max_k)

    async def sparql(query: str) -> SparqlResponse:
        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(ws.sparql, query, query_timeout_s, max_rows)
        except SparqlBusy as err:
            headers = {"Retry-After": str(err.retry_after)}
            raise HTTPException(503, str(err), headers=headers) from None
        except SparqlTimeout as err:
            raise HTTPException(504, str(err)) from None
        except SparqlError as err:  # syntax error, update, SERVICE
            raise HTTPException(400, str(err)) from None
        return SparqlResponse(**asdict(result), seconds=time.perf_counter() - started)

    sparql_doc = (
        "Run a read-only SPARQL query: SELECT gives `variables` and `rows`, ASK `boolean`, "
        f"CONSTRUCT / DESCRIBE `rows` of triples. At most {max_rows:,} rows (`truncated` "
        f"beyond), {max_query_chars:,} characters of query, {query_timeout_s:g} s (504 "
        f"beyond: the query is stopped), {max_queries} queries at once (503 beyond, with "
        "Retry-After). Updates and SERVICE (federation) are refused (400)."
    )

    @app.get("/sparql", response_model=SparqlResponse, summary="SPARQL query", description=sparql_doc)  # fmt: skip
    async def get_sparql(
        query: Annotated[
            str, Query(min_length=1, max_length=max_query_chars, description="SPARQL text")
        ],
    ) -> SparqlResponse:
        return await sparql(query)

    @app.post(
        "/sparql", response_model=SparqlResponse, summary="SPARQL query (body)",
        description=sparql_doc + " Body: the query text (`application/sparql-query` or "
        "`text/plain`), JSON `{\"query\": ...}`, or a form field `query`.",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/sparql-query": {"schema": {"type": "string"}},
            "application/json": {"schema": SparqlBody.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": SparqlBody.model_json_schema()},
        }}},
    )  # fmt: skip
    async def post_sparql(request: Request) -> SparqlResponse:
        return await sparql(await _read_query(request, max_query_chars))

    add_ask_routes(app, ws)
    add_predict_routes(app, ws)
    return app


async def _read_query(request: Request, max_chars: int) -> str:
    """The SPARQL text of a POST body, read no further than the size bound (413 past it)."""
    limit = 4 * max_chars + 1024  # bytes: UTF-8 and JSON escaping
    too_long = HTTPException(
        413,
        f"the query is longer than this service's limit of {max_chars:,} characters: shorten it",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_long
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_long
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HTTPException(400, f"the body is not UTF-8 text ({err})") from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            text = SparqlBody.model_validate(json.loads(text)).query
        except ValueError:
            raise HTTPException(422, 'a JSON body must be {"query": "SELECT ..."}') from None
    elif content_type == "application/x-www-form-urlencoded":
        text = (parse_qs(text).get("query") or [""])[0]
    if len(text) > max_chars:
        raise too_long
    if not text.strip():
        raise HTTPException(422, "the query is empty: send SPARQL text, e.g. ASK { ?s ?p ?o }")
    return text


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable clause per bad parameter: name, problem, value given."""
    problems = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e["loc"] if x not in ("query", "path", "body"))
        got = "" if e.get("type") == "missing" else f" (got {_short(e.get('input'))})"
        problems.append(f"{where or 'request'}: {e['msg']}{got}")
    detail = "; ".join(problems) + "; see /docs for the parameters"
    return JSONResponse({"detail": detail}, status_code=422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}: {exc}); see the server log"},
        status_code=500,
    )


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(str(value)):,} chars)"


def _version() -> str:
    from kg import __version__

    return __version__


def serve(workspace: Path | Session, host: str = "127.0.0.1", port: int = 8000, *,
          log_level: str = "info", **options) -> None:  # fmt: skip
    """Load ``workspace`` (a folder or an open :class:`Session`) and serve it with uvicorn
    until interrupted (Ctrl-C).

    ``options`` go to :func:`create_app` (``max_k``, ``max_query_chars``...)."""
    import uvicorn

    app = create_app(workspace if isinstance(workspace, Session) else Path(workspace), **options)
    path = workspace.path if isinstance(workspace, Session) else workspace
    print(f"serving {path} on http://{host}:{port} (API docs: http://{host}:{port}/docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def single_threaded_faiss() -> None:
    """Search with one FAISS (OpenMP) thread from the calling thread on.

    A request searches one query, and waking FAISS's thread team costs far more than the
    search itself: about 8 ms against 0.03 ms per search of a small index on a busy 2-core
    machine (benchmarks/service_load.py). OpenMP keeps this setting per thread, so each
    request thread sets it, once. Nothing to do without FAISS."""
    if getattr(_THREAD, "faiss_single", False):
        return
    _THREAD.faiss_single = True
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(1)

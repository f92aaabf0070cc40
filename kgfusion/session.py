"""The application layer: one open workspace and everything the faces ask of it.

The ``kgf`` command line (:mod:`kgfusion.cli`), the demo (:mod:`kgfusion.demo`) and the
HTTP service (:mod:`kgfusion.service`) are thin faces over :class:`Session`: they parse
arguments or requests and print or serialise answers; the session opens the workspace and
does the work, calling each lower-level function (``kg``, ``fusion``, ``align``) in one
place::

    session = Session("ws")
    hit = session.resolve_name("lumo racing car")          # Match(iri, score, text, method)
    items = session.related(hit.iri, k=5, relation="isAccessoryOrSparePartFor")
    session.sparql("SELECT ?s WHERE { ?s a <http://schema.org/Brand> }")
    session.ask("what colour is the lumo racing car?").text   # an align.Answer

Heavy things are loaded on first use and kept for the life of the session: the graph, its
version, the entity index (or the reason it cannot be used), the SPARQL store, the text
linker (with its text encoder) and the link-prediction scorers. Repeated calls in one
process reuse them; the operations that change the workspace (:meth:`Session.encode`,
:meth:`Session.train`, :meth:`Session.build_index`) refresh what they invalidate. Loading
is serialised by a lock, so a session may serve several threads (the service does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from kg.workspace import INDEX_DIR

from .session_runs import SessionError, TrainedRuns

INDEX_FOLDER = INDEX_DIR
LINKER = "linker"
LEXICAL = "lexical"


class Match(NamedTuple):
    """An entity found for a piece of text.

    ``score`` is in [0, 1], higher is closer; ``text`` is the entity's name that matched
    (its display name for the linker); ``method`` is ``linker`` (align's text linker) or
    ``lexical`` (:func:`kg.labels.lexical_lookup`)."""

    iri: str
    score: float
    text: str
    method: str = LEXICAL


class Session(TrainedRuns):
    """One workspace folder, opened for the operations of the faces.

    Args:
        workspace: a folder written by ``kgf build`` (or :meth:`kg.ProductGraph.save`).
        graph: the workspace's graph when the caller has it in memory already (it is then
            not read again); it must be the graph saved in ``workspace``.
        text_linker: let name resolution and :meth:`match` use align's text linker when the
            workspace has text features (else only the lexical lookup).
        precision: the text linker's mention encoder precision (``align.Linker``): ``auto``
            (bf16 where the CPU / GPU multiplies it natively), ``fp32`` or ``bf16``.
    """

    def __init__(self, workspace, *, graph=None, text_linker: bool = True,
                 max_queries: int = 2, precision: str = "auto"):  # fmt: skip
        self.path = Path(workspace)
        self.precision = precision
        self.use_text_linker = text_linker
        self.max_queries = max_queries
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}
        self._scorers: dict[str, Any] = {}  # run -> LinkScorer, or the ConfigError it raised
        self._warned: set[str] = set()  # runs skipped with a warning
        if graph is not None:
            self._cache["graph"] = graph

    def __repr__(self) -> str:
        loaded = ", ".join(sorted(self._cache)) or "nothing"
        return f"Session({str(self.path)!r}, loaded: {loaded})"

    # ------------------------------------------------------------------ cache
    def _cached(self, key: str, load: Callable[[], Any]) -> Any:
        """``load()`` once per session (thread-safe); later calls return the same object."""
        if key in self._cache:
            return self._cache[key]
        with self._lock:
            if key not in self._cache:
                self._cache[key] = load()
            return self._cache[key]

    def forget(self, *keys: str) -> None:
        """Drop cached objects (``graph``, ``index``, ``sparql_runner``, ``linker``, ``link_runs``,
        ``features``; ``scorers`` for the link-prediction scorers, ``predictors`` for the
        attribute and node runs' predictors) so that the next use reads them from the
        workspace again."""
        with self._lock:
            for key in keys:
                if key == "scorers":
                    self._scorers.clear()
                    self._warned.clear()
                if key == "predictors":  # kgfusion.session_runs.TrainedRuns.predictor
                    for name in [k for k in self._cache if k.startswith("predictor:")]:
                        del self._cache[name]
                self._cache.pop(key, None)

    def warm(self) -> Session:
        """Load everything now (graph and its lookup tables, index, SPARQL store, text
        linker, scorers), so that the first requests are as fast as the rest; warnings
        about unusable link runs are given here. Returns the session."""
        from kg.labels import lexical_lookup

        graph = self.graph
        if graph.num_nodes:  # build the lazy lookup tables now, not in the first requests
            first = graph.nodes[0]
            graph.node(first)
            graph.neighbors(first)
            graph.literals(first)
            lexical_lookup(graph, "warm up")
        for load in (lambda: self.version, lambda: self.index_problem, lambda: self.sparql_runner,
                     lambda: self.text_linker):  # fmt: skip
            load()
        for relation in dict.fromkeys(r for _, relations in self.link_runs for r in relations):
            self.scorer(relation)
        return self

    # ------------------------------------------------------------------ the workspace
    @property
    def graph(self):
        """The workspace's :class:`kg.ProductGraph` (:func:`kg.graph.load_graph`)."""
        from kg.graph import load_graph

        return self._cached("graph", lambda: load_graph(self.path))

    @property
    def version(self) -> str:
        """The graph's version (:func:`kg.workspace.graph_version`), a 16-hex-digit hash."""
        from kg.workspace import graph_version

        return self._cached("version", lambda: graph_version(self.graph))

    @property
    def sparql_runner(self):
        """A :class:`kg.sparql_process.QueryRunner` over the workspace's SPARQL store (a
        temporary copy of the graph's triples for a workspace built with ``--no-sparql``):
        queries run in worker processes that are killed past their time limit, at most
        ``max_queries`` at once. Closed by :meth:`close`."""
        from kg.sparql_process import QueryRunner

        return self._cached(
            "sparql_runner", lambda: QueryRunner.for_graph(self.graph, self.max_queries)
        )

    def close(self) -> None:
        """Stop the SPARQL worker processes (if any were started)."""
        runner = self._cache.pop("sparql_runner", None)
        if runner is not None:
            runner.close()

    # ------------------------------------------------------------------ the entity index
    @property
    def index(self):
        """The entity index of ``WORKSPACE/index`` (:class:`kg.index.EntityIndex`), checked
        against the graph's version. Raises :class:`kg.index.EntityIndexError` (a
        :class:`kg.index.StaleIndexError` for another graph version) naming the
        ``kgf index`` command when it is missing or cannot be used."""
        index, error = self._cached("index", self._load_index)
        if error is not None:
            raise error
        return index

    @property
    def index_problem(self) -> str | None:
        """Why :attr:`index` is unavailable, with the command that fixes it; None when it is
        loaded."""
        _, error = self._cached("index", self._load_index)
        return None if error is None else str(error)

    def _load_index(self):
        """``(index, None)`` or ``(None, the error to raise)``: missing, damaged, built for
        another graph version, or built from a run that was deleted or retrained since."""
        import json

        from fusion.embeddings import rebuild_command, source_problem
        from kg.index import INDEX_FILE, EntityIndex, EntityIndexError, StaleIndexError

        folder = self.path / INDEX_FOLDER
        if not folder.exists():
            return None, EntityIndexError(
                f"no entity index in {folder}: build it with `kgf index {self.path}`"
            )
        try:
            source = json.loads((folder / INDEX_FILE).read_text("utf-8")).get("source")
        except (OSError, ValueError, AttributeError):
            source = None
        rebuild = f"`{rebuild_command(self.path, source)}`"
        try:
            index = EntityIndex.load(folder, expected_version=self.version)
        except StaleIndexError:
            kind, problem = StaleIndexError, "is stale (built for another version of the graph)"
        except EntityIndexError as err:
            kind, problem = EntityIndexError, f"cannot be used ({err})"
        else:
            stale = source_problem(self.path, index.source)
            if stale is None:
                return index, None
            kind, problem = StaleIndexError, f"is stale ({stale})"
        return None, kind(f"the entity index in {folder} {problem}: rebuild it with {rebuild}")

    def build_index(self, node_types=None, kind: str = "auto", *, run: str | None = None,
                    features: bool = False):  # fmt: skip
        """Index the entities' vectors, save the index in ``WORKSPACE/index`` and use it from
        now on; returns ``(index, node types in it)``. ``index.source`` says where the
        vectors came from (:func:`fusion.embeddings.index_vectors`): the final embeddings of
        ``run`` (default: the newest complete run; every node, also those without text or
        image, has one), or with ``features=True`` or when no run exists the encoded
        features (``kgf encode``), nodes without any feature getting the mean of their
        neighbours' vectors.

        Without ``node_types``, the types whose vectors are as wide as those of the type
        with most vectors (one index has one width). A workspace with neither a run nor
        features raises FileNotFoundError naming ``kgf encode``; an unusable ``run`` a
        ``fusion.model.ConfigError`` that says what to do."""
        import numpy as np

        from fusion.embeddings import index_vectors
        from kg.index import EntityIndex

        graph = self.graph
        found = index_vectors(self.path, graph, run=run, features=features)
        vectors = found.vectors
        if node_types:
            vectors = {t: v for t, v in vectors.items() if t in node_types}
        elif vectors:
            widest = max(vectors.values(), key=lambda v: len(v[0]))[1].shape[1]
            vectors = {t: v for t, v in vectors.items() if v[1].shape[1] == widest}
        if not vectors:
            raise SessionError(f"no vectors to index; run `kgf encode {self.path}` first")
        if len({v.shape[1] for _, v in vectors.values()}) > 1:
            raise SessionError(
                "these node types have vectors of different widths; index one at a time"
            )
        iris = [graph.iri(t, i) for t, (rows, _) in vectors.items() for i in rows.tolist()]
        matrix = np.concatenate([v.numpy() for _, v in vectors.values()])
        index = EntityIndex.build(iris, matrix, kind=kind, graph_version=self.version)
        index.source = {**found.source, "structural": found.structural}
        index.save(self.path / INDEX_FOLDER, overwrite=True)
        with self._lock:
            self._cache["index"] = (index, None)
        return index, list(vectors)

    # ------------------------------------------------------------------ text -> entities
    @property
    def linker(self):
        """align's :class:`align.Linker` over the workspace (text, records and photos).
        Raises :class:`align.LinkerError` naming the missing step (e.g. ``kgf encode``)."""
        linker, error = self._cached("linker", self._open_linker)
        if error is not None:
            raise error
        return linker

    def _open_linker(self):
        from align import Linker, LinkerError

        try:
            return Linker(self.path, precision=self.precision), None
        except LinkerError as err:
            return None, err

    @property
    def text_linker(self):
        """The :attr:`linker` when it can link text (the workspace has text features and
        the session allows it), else None: names are then looked up lexically."""
        from fusion.features import FEATURES_FILE

        if not self.use_text_linker or not (self.path / FEATURES_FILE).is_file():
            return None
        linker, _ = self._cached("linker", self._open_linker)
        if linker is None or linker.encoder is None:  # e.g. features without a text encoder
            return None
        return linker

    def match_method(self, node_type: str | None = None) -> str:
        """How :meth:`match` finds entities: ``linker`` (align's text linker, which links to
        any type it was trained for) or ``lexical`` (always when ``node_type`` is given)."""
        return LINKER if node_type is None and self.text_linker is not None else LEXICAL

    def match(self, text: str, k: int = 5, node_type: str | None = None) -> list[Match]:
        """Entities for free text, best first, at most ``k``: the text linker's candidates
        (none when it abstains: NIL) when :meth:`match_method` is ``linker``, else
        :func:`kg.labels.lexical_lookup` over name-like literals. Text without letters or
        digits matches nothing; an unknown ``node_type`` raises
        :class:`kg.graph.GraphLookupError` (a KeyError) with the closest names."""
        if not text.strip():
            return []
        if self.match_method(node_type) == LINKER:
            found = self.text_linker.link_record(text, k=k)
            if found.nil:
                return []
            return [self._linked(iri, p) for iri, p in found.alternatives[:k]]
        return self._lexical(text, k, node_type)

    def resolve_name(self, name: str, node_type: str | None = None) -> Match:
        """The one entity a product name stands for: the text linker's link when it does not
        abstain, else the best lexical match. Raises :class:`SessionError` when nothing
        matches."""
        if name.strip() and self.match_method(node_type) == LINKER:
            link = self.text_linker.link_record(name, k=1)
            if not link.nil:
                return self._linked(link.iri, link.score)
        matches = self._lexical(name, 1, node_type)
        if not matches:
            raise SessionError(f"no entity matches the name {name!r}")
        return matches[0]

    def _linked(self, iri: str, score: float) -> Match:
        from kg.labels import display_name

        return Match(iri, float(score), display_name(self.graph, iri) or iri, LINKER)

    def _lexical(self, text: str, k: int, node_type: str | None) -> list[Match]:
        from kg.labels import lexical_lookup

        try:
            found = lexical_lookup(self.graph, text, node_type=node_type, k=k)
        except ValueError:  # no letters or digits (an unknown type is a KeyError: raised)
            return []
        return [Match(*m, LEXICAL) for m in found]

    # ------------------------------------------------------------------ linking
    def link_text(self, text: str, k: int | None = None, threshold: float | None = None,
                  nil: bool = True):  # fmt: skip
        """Mentions detected in ``text``, each linked (or NIL): a list of :class:`align.Link`.
        ``threshold``: the NIL cut (default: the calibrated one); ``nil=False``: never NIL.
        ``kgf link`` and the service's ``/link`` both answer from here."""
        return self.linker.link_text(text, k=k, threshold=threshold, nil=nil)

    def link_record(self, record, k: int | None = None):
        """One record (a string or a dict of fields) linked as a single mention."""
        return self.linker.link_record(record, k=k)

    def link_table(self, table, output, k: int = 5) -> int:
        """Link every record of a CSV table, writing the links to ``output`` (CSV); returns
        the number of records (:func:`align.link_table`)."""
        from align import link_table

        return link_table(self.linker, table, output, k=k)

    def link_images(self, paths, k: int | None = None, untrained: bool = False,
                    progress: bool = False):  # fmt: skip
        """Photos linked to the entities they show (:meth:`align.Linker.link_images`)."""
        return self.linker.link_images(paths, k=k, untrained=untrained, progress=progress)

    # ------------------------------------------------------------------ related products
    def related(self, iri: str, k: int = 10, relation: str | None = None,
                node_type: str | None = None, explain: bool = True, *,
                run: str | None = None, use_model: bool = True):  # fmt: skip
        """The ``k`` entities most related to ``iri`` (:func:`kg.related.related`): the
        index's nearest neighbours re-scored by the graph and, when ``use_model``, by the
        link-prediction run that :meth:`scorer` picks for ``relation`` (or ``run``).

        Raises :class:`kg.index.EntityIndexError` (missing or stale index, entity not in
        the index; the message names ``kgf index WORKSPACE``), a
        :class:`kg.graph.GraphLookupError` for an unknown IRI, relation or type, and
        ``fusion.model.ConfigError`` for an unusable ``run``."""
        from kg.index import EntityIndexError
        from kg.related import related

        index = self.index
        scorer = self.scorer(relation, run) if use_model else None
        try:
            items = related(self.graph, index, iri, k, relation, node_type, explain, scorer)
        except EntityIndexError as err:
            message = str(err).replace("`kgf index DIR`", f"`kgf index {self.path}`")
            raise type(err)(message) from None
        if not items:  # never silently empty: say why
            wanted = node_type or "the query's (or the relation's) node type"
            raise SessionError(
                f"no entity of {wanted} other than {iri} is in the entity index "
                f"({len(index)} entities, built from {_origin(index)}): ask for another type "
                f"(node_type='*' / --node-type '*'), or index every node with `kgf index "
                f"{self.path}` (a trained run embeds every node)"
            )
        return items

    # ------------------------------------------------------------------ questions
    @property
    def answerer(self):
        """align's :class:`align.QuestionAnswerer` over the workspace: the trained question
        scorer of ``WORKSPACE/qa-scorer``, the text / photo linker (when encoded) and, for
        relation questions, :meth:`related` with the relation's trained link run. Raises
        :class:`align.LinkerError` naming ``kgf qa-train`` when no scorer was trained."""
        return self._cached("answerer", self._open_answerer)

    def _open_answerer(self):
        from align.qa import QuestionAnswerer
        from align.qa_scorer import QA_SCORER_DIR
        from align.qa_scorers import load_scorer

        scorer = load_scorer(self.path / QA_SCORER_DIR)
        from fusion.features import FEATURES_FILE

        linker = None
        if (self.path / FEATURES_FILE).is_file():  # else only questions about a given IRI
            linker = self._cached("linker", self._open_linker)[0]
        return QuestionAnswerer(self.graph, scorer, linker, related=self._predicted,
                                predicts=self.attribute_relations())  # fmt: skip

    def _predicted(self, iri: str, relation: str, k: int) -> list[tuple[str, str, float]]:
        """A trained model's answers for ``relation``: the newest attribute-completion
        run's values when it predicts ``relation``, else the link model's related entities
        (none without a link run or an index)."""
        from kg.graph import GraphLookupError
        from kg.index import EntityIndexError
        from kg.labels import display_name

        attribute_run = self.attribute_run()
        if attribute_run is not None and relation in attribute_run.relations:
            found = self.predict([iri], [relation], k, run=attribute_run.name)
            return [(v, display_name(self.graph, v) or v, round(p, 4)) for f in found for v, p in f.values]
        if self.scorer(relation) is None:
            return []
        try:
            items = self.related(iri, k, relation=relation, explain=False)
        except (EntityIndexError, GraphLookupError, SessionError):
            return []
        return [(i.iri, i.name or i.iri, i.score) for i in items]

    def ask(self, question: str, *, product: str | None = None, image=None):
        """Answer a question about a product (:meth:`align.QuestionAnswerer.ask`): the
        product given by ``product`` (IRI), ``image`` (a photo) or named in the question;
        returns an :class:`align.Answer`. Bad input raises :class:`align.QAError`."""
        return self.answerer.ask(question, product=product, image=image)

    def qa_train(self, pairs=(), *, graph_products: int = 300, epochs: int | None = None,
                 seed: int = 0, encoder: str | None = None, scorer=None,
                 kind: str = "features", refit: bool = True, progress=None) -> dict:  # fmt: skip
        """Train the question scorer of ``kind`` (a name of :data:`align.qa_scorers.SCORERS`:
        ``features``, multilingual E5 + MLP, the default; ``bi-encoder`` / ``cross-encoder``,
        a fine-tuned English MiniLM; ``ensemble`` of those two) and save it in ``WORKSPACE/
        qa-scorer``, on labelled questions in the semiPQA layout (``pairs``: files) and on
        questions generated from up to ``graph_products`` of the workspace's products (0:
        none). Returns its hold-out metrics. ``epochs``: None for the kind's default.
        ``encoder``: the features' sentence encoder (default multilingual E5, a name of
        :func:`fusion.encoders.get_encoder`) or the fine-tuned kinds' local model folder
        (default all-MiniLM-L6-v2); ``scorer``: an untrained scorer of ``kind`` to train
        instead (e.g. one whose embedding cache is filled); ``refit``: after the hold-out
        chose the epochs, train again on all the questions (False: keep the hold-out's
        model, about half the CPU of a fine-tuned kind)."""
        from align.qa import product_attributes
        from align.qa_scorer import QA_SCORER_DIR, shuffled
        from align.qa_scorers import scorer_kind, train_scorer
        from align.qa_train import graph_questions, train_questions

        scorer_kind(kind)  # an unknown kind fails before any work
        questions = train_questions(pairs)
        if graph_products:
            graph = self.graph
            types = ["Product"] if "Product" in graph.num_nodes_dict else list(graph.num_nodes_dict)
            iris = shuffled([i for t in types for i in graph.node_iris(t)], seed)[:graph_products]
            questions += graph_questions(
                graph, lambda i: [a.candidate for a in product_attributes(graph, i)], iris, seed
            )
        scorer, metrics = train_scorer(questions, kind, encoder=encoder, scorer=scorer,
                                       epochs=epochs, seed=seed, refit=refit,
                                       progress=progress)  # fmt: skip
        scorer.save(self.path / QA_SCORER_DIR)
        self.forget("answerer")
        return metrics

    # ------------------------------------------------------------------ product search
    def search(self, query: str | None = None, k: int = 10, *, image=None, filters=None,
               method: str | None = None):  # fmt: skip
        """Products for a text ``query`` and/or a photo ``image`` ranked by text, aligned
        photo and graph facts (:class:`align.search.ProductSearch`); ``filters``:
        ``{"type": "Product"}`` or ``["type=Product"]``; ``method``: the alignment (default
        ``infonce-graph``, fitted and saved on first use). Returns
        :class:`align.search.SearchResults`; bad input raises :class:`align.search.SearchError`."""
        from align.search import parse_filters

        node_type = parse_filters(filters, self.graph)
        return self.product_search(node_type, method).search(query, image=image, k=k)

    def product_search(self, node_type: str | None = None, method: str | None = None):
        """The session's :class:`align.search.ProductSearch` for ``node_type`` and alignment
        ``method`` (:func:`align.search.open_search`, once per session)."""
        from align.search import open_search

        return self._cached(f"search:{node_type}:{method}", lambda: open_search(
            self.path, graph=self.graph, features=self._cache.get("features"),
            node_type=node_type, method=method))  # fmt: skip

    # ------------------------------------------------------------------ SPARQL
    def sparql(self, query: str, timeout: float | None = None, max_rows: int | None = None):
        """Run a read-only SPARQL query over the workspace; returns a
        :class:`kg.sparql.QueryResult`. Updates, SERVICE and syntax errors raise
        :class:`kg.sparql.SparqlError`. With ``timeout`` (seconds) the query runs in a
        worker process of :attr:`sparql_runner` that is stopped past it
        (:class:`kg.sparql.SparqlTimeout`; :class:`kg.sparql.SparqlBusy` when all
        ``max_queries`` workers are busy); without, in this process
        (:func:`kg.sparql.run_query`)."""
        from kg.sparql import graph_prefixes, run_query, with_prefixes

        if timeout is not None:  # the mapping's prefixes; the worker adds the common ones
            query = with_prefixes(query, graph_prefixes(self.graph))[0]
            return self.sparql_runner.run(query, timeout, max_rows)

        return run_query(self.graph, query, max_rows=max_rows)

    # ------------------------------------------------------------------ building on it
    def info(self) -> dict:
        """What the workspace holds (:func:`kg.report.info`): types, relations, literal
        coverage, languages, images."""
        from kg.report import info

        return info(self.graph)

    def encode(self, spec=None, ray: str | None = None):
        """Encode node features (:func:`fusion.features.build_features`, cached by content
        hash in the workspace; on Ray with ``ray``: ``"local"``, ``"auto"`` or an address);
        returns ``(features, report)``. The text linker is reopened on next use, over the
        new features."""
        from fusion.features import build_features

        features, report = build_features(self.graph, self.path, spec, ray=ray)
        with self._lock:
            self._cache["features"] = features
            self._cache.pop("linker", None)
        return features, report

    def train(self, **options):
        """Train a model on the workspace (:func:`fusion.trainer.train`, same options) with
        the session's graph and features; returns its ``TrainResult``. Without a config
        file, a node-classification run gets the settings that suit the graph
        (:func:`fusion.defaults.suited_overrides`: R-GCN's setting, plus gated features when
        the workspace has some); ``options`` and overrides still win. The link runs are
        listed again on next use."""
        from fusion.defaults import suited_overrides
        from fusion.trainer import train

        options = suited_overrides(self.path, self.graph, options)
        result = train(self.path, graph=self.graph, features=self._cache.get("features"),
                       **options)  # fmt: skip
        self.forget("link_runs", "scorers", "index", "answerer", "predictors", "attribute_run")
        return result

    def evaluate(self, run: str, split: str = "test", device: str = "auto") -> dict[str, float]:
        """Re-evaluate a trained run on ``split`` (:func:`fusion.trainer.evaluate`)."""
        from fusion.trainer import evaluate

        return evaluate(self.path, run, split, device, graph=self.graph,
                        features=self._cache.get("features"))  # fmt: skip


def _origin(index) -> str:
    """Where an index's vectors came from, in words."""
    source = index.source or {}
    if source.get("kind") == "run":
        return f"the embeddings of run {source.get('run')!r}"
    return "the encoded features" if source.get("kind") == "features" else "unrecorded vectors"

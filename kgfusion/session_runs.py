"""The trained runs a :class:`kgfusion.session.Session` answers with.

- **link-prediction runs** (``kgf train WS --task link --relation R``): a
  :class:`fusion.scoring.LinkScorer` per run, picked per relation by :meth:`TrainedRuns.scorer`
  (related products, relation questions);
- **attribute-completion runs** (``kgf train WS --task attribute --relation R``) and
  **node-classification runs** (``kgf train WS --labels FILE``): a
  :class:`fusion.predict.RunPredictor` (``kgf predict``, ``/predict``; the attribute runs'
  also for questions about an attribute the catalogue lacks).

Each run is opened once per session and kept; a run that cannot be used is remembered with
its error.
"""

from __future__ import annotations

import warnings


class SessionError(Exception):
    """A user-facing problem with the workspace or the request; the message says what to do."""


class TrainedRuns:
    """The run-related part of :class:`kgfusion.session.Session` (it provides ``path``,
    ``graph``, ``_cached``, ``_cache``, ``_lock``, ``_scorers`` and ``_warned``)."""

    # ------------------------------------------------------------------ link-prediction runs
    @property
    def link_runs(self) -> list[tuple[str, list[str]]]:
        """The workspace's link-prediction runs, oldest first: ``(run, relations)``."""
        from fusion.runs import find_runs

        return self._cached(
            "link_runs",
            lambda: [(r.name, list(r.relations)) for r in find_runs(self.path, task="link")],
        )

    def scorer(self, relation: str | None = None, run: str | None = None):
        """The :class:`fusion.scoring.LinkScorer` that scores ``relation``.

        With ``run``: that run's scorer (errors, e.g. an unknown run, are raised). Else the
        newest link run trained for ``relation`` (``rev_`` names and IRIs too) that fits the
        graph; a run trained on another version of the graph is skipped with a warning.
        None when no relation is asked for or no run predicts it."""
        from fusion.model import ConfigError
        from fusion.scoring import relation_name

        if run is not None:
            found = self._run_scorer(run)
            if isinstance(found, Exception):
                raise found
            return found
        if relation is None:
            return None
        name = relation_name(relation)[0]
        for candidate, relations in reversed(self.link_runs):  # newest first
            if name not in relations:
                continue
            found = self._run_scorer(candidate)
            if not isinstance(found, ConfigError):
                return found
            if candidate not in self._warned:
                self._warned.add(candidate)
                warnings.warn(f"link run {candidate!r} is not used for {relation}: {found}",
                              stacklevel=2)  # fmt: skip
        return None

    def _run_scorer(self, run: str):
        """The scorer of one run, or the ConfigError it raised (both kept)."""
        from fusion.model import ConfigError
        from fusion.scoring import LinkScorer

        with self._lock:
            if run not in self._scorers:
                try:
                    self._scorers[run] = LinkScorer.from_run(self.path, run, self.graph)
                except ConfigError as err:
                    self._scorers[run] = err
            return self._scorers[run]

    # ------------------------------------------------------------------ predicting runs
    def predictor(self, run: str | None = None):
        """The :class:`fusion.predict.RunPredictor` of ``run`` (default: the newest
        attribute-completion or node-classification run); ``fusion.model.ConfigError``
        naming ``kgf train`` when there is none."""
        from fusion.predict import PREDICTORS, predictable_run

        info = predictable_run(self.path, run)
        return self._cached(f"predictor:{info.name}", lambda: PREDICTORS[info.task](
            self.path, info.name, graph=self.graph, features=self._cache.get("features")))  # fmt: skip

    def attribute_run(self):
        """The newest attribute-completion run (a :class:`fusion.runs.RunInfo`), or None;
        looked up once per session (``forget("attribute_run")`` after training)."""
        from fusion.runs import find_run

        return self._cached("attribute_run", lambda: find_run(self.path, task="attribute"))

    def attribute_relations(self) -> list[str]:
        """The relations the newest attribute-completion run predicts (none without one)."""
        info = self.attribute_run()
        return list(info.relations) if info is not None else []

    def predict(self, nodes=None, relations=None, k: int = 3, run: str | None = None):
        """Predicted values of ``relations`` (attribute runs) or label columns (node runs)
        for ``nodes`` (IRIs; default: the gaps), by ``run``
        (:meth:`fusion.predict.RunPredictor.predict`)."""
        return self.predictor(run).predict(nodes, relations, k)

def prediction_record(graph, prediction) -> dict:
    """One :class:`fusion.predict.Prediction` as a JSON-ready record with display
    names (``kgf predict``'s row, ``/predict``'s item)."""
    from fusion.predict import is_node
    from kg.labels import display_name

    def name(iri: str) -> str:  # a value node's name; a class label stays as it is
        return (display_name(graph, iri) if is_node(graph, iri) else None) or iri

    best, probability = prediction.values[0]
    return {"product": prediction.node, "name": name(prediction.node),
            "relation": prediction.relation, "predicted": name(best), "probability": probability,
            "alternatives": [f"{name(v)} ({q:.3f})" for v, q in prediction.values[1:]],
            "catalogue": [name(v) for v in prediction.known], "value_iri": best}  # fmt: skip

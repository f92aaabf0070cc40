"""kg: catalogues (RDF or tables) -> typed product graphs; storage, SPARQL, exports.

>>> import kg
>>> graph = kg.load_rdf("catalogue.ttl")          # doctest: +SKIP
>>> data = graph.to_pyg()                         # doctest: +SKIP

A :class:`ProductGraph` is a data object; queries over it are functions of their modules:
:func:`kg.related.related`, :func:`kg.sparql.run_query`, :func:`kg.labels.display_name`,
:func:`kg.labels.lexical_lookup`.
"""

from .graph import GraphLookupError, GraphOptions, ProductGraph, load_graph
from .index import EntityIndex, EntityIndexError, StaleIndexError, graph_version
from .labels import LexicalMatch, display_name, lexical_lookup
from .naming import REV_PREFIX
from .rdf import RdfError, RdfSyntaxError, load_rdf
from .related import RelatedItem
from .version import __version__
from .workspace import WorkspaceError

__all__ = [
    "REV_PREFIX",
    "EntityIndex",
    "EntityIndexError",
    "GraphLookupError",
    "GraphOptions",
    "LexicalMatch",
    "ProductGraph",
    "RdfError",
    "RdfSyntaxError",
    "RelatedItem",
    "StaleIndexError",
    "WorkspaceError",
    "__version__",
    "display_name",
    "graph_version",
    "lexical_lookup",
    "load_graph",
    "load_rdf",
]

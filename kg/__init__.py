"""kg: catalogues (RDF or tables) -> typed product graphs; storage, SPARQL, exports.

>>> import kg
>>> graph = kg.load_rdf("catalogue.ttl")          # doctest: +SKIP
>>> data = graph.to_pyg()                         # doctest: +SKIP
"""

__version__ = "0.1.0"

from .graph import GraphLookupError, GraphOptions, ProductGraph  # noqa: E402
from .index import EntityIndex, EntityIndexError, StaleIndexError, graph_version  # noqa: E402
from .rdf import RdfError, RdfSyntaxError, load_rdf  # noqa: E402
from .related import RelatedItem, lexical_lookup  # noqa: E402
from .workspace import WorkspaceError, load_graph  # noqa: E402

__all__ = [
    "EntityIndex",
    "EntityIndexError",
    "RelatedItem",
    "StaleIndexError",
    "graph_version",
    "lexical_lookup",
    "GraphLookupError",
    "GraphOptions",
    "ProductGraph",
    "RdfError",
    "RdfSyntaxError",
    "WorkspaceError",
    "load_graph",
    "load_rdf",
]

"""kg: catalogues (RDF or tables) -> typed product graphs; storage, SPARQL, exports.

>>> import kg
>>> graph = kg.load_rdf("catalogue.ttl")          # doctest: +SKIP
>>> data = graph.to_pyg()                         # doctest: +SKIP
"""

__version__ = "0.1.0"

from .graph import GraphLookupError, GraphOptions, ProductGraph  # noqa: E402
from .rdf import RdfError, RdfSyntaxError, load_rdf  # noqa: E402
from .workspace import WorkspaceError, load_graph  # noqa: E402

__all__ = [
    "GraphLookupError",
    "GraphOptions",
    "ProductGraph",
    "RdfError",
    "RdfSyntaxError",
    "WorkspaceError",
    "load_graph",
    "load_rdf",
]

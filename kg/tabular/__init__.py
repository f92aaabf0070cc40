"""Tabular catalogues (CSV / JSON Lines) -> RDF (Turtle), by a declarative TOML mapping.

Each row of the table becomes one entity (an IRI built from an id column), typed by the
mapping; mapped columns become literals (text with a language tag, typed numbers and dates,
image references, the text of a file a cell names) or references: a cell that names another
entity (a brand, a category) becomes a typed node of its own, with its label, linked to the
row's entity, optionally inside a hierarchy (``skos:broader``). The output is plain Turtle
that then goes through the normal RDF ingestion (:func:`kg.load_rdf`), so a table and an
RDF catalogue give the same kind of :class:`kg.ProductGraph`.

>>> from kg.tabular import Mapping, table_to_rdf
>>> mapping = Mapping.from_toml("examples/abt_buy.toml")                      # doctest: +SKIP
>>> stats = table_to_rdf("tableA.csv", mapping, "out/catalogue.ttl")         # doctest: +SKIP
>>> print(stats.summary())                                                    # doctest: +SKIP
1,081 rows -> 1,081 schema:Product; 3,661 triples; 0 skipped rows; 0 warnings

The conversion streams: rows are read and written one at a time; only the set of entity ids
(duplicate check) and of reference node IRIs (each node is written once) stays in memory.
The Turtle file is written to a temporary file next to the target and renamed over it only
when the whole table converted, so an error never leaves a half-written catalogue behind
(a previous output stays as it was).

The mapping format (every key, values and IRIs, errors) is documented in
``docs/tabular-mapping.md``. One module per concern: :mod:`kg.tabular.mapping` (read and
validate the TOML mapping), :mod:`kg.tabular.readers` (CSV / TSV / JSON Lines rows),
:mod:`kg.tabular.conversion` (rows -> RDF statements), :mod:`kg.tabular.turtle` (the Turtle
writer), :mod:`kg.tabular.stats` and :mod:`kg.tabular.errors`.
"""

from .conversion import table_to_rdf
from .errors import MappingError, TableError
from .mapping import PREDEFINED_PREFIXES, LiteralColumn, Mapping, ReferenceColumn
from .readers import TABLE_FORMATS
from .stats import MAX_WARNINGS, TableStats
from .turtle import turtle_iri, turtle_string

__all__ = [
    "MAX_WARNINGS",
    "PREDEFINED_PREFIXES",
    "TABLE_FORMATS",
    "LiteralColumn",
    "Mapping",
    "MappingError",
    "ReferenceColumn",
    "TableError",
    "TableStats",
    "table_to_rdf",
    "turtle_iri",
    "turtle_string",
]

"""What a conversion did: rows, entities per type, triples, skipped rows, warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .mapping import PREDEFINED_PREFIXES

#: How many warning messages :class:`TableStats` keeps (all are counted).
MAX_WARNINGS = 100


@dataclass
class TableStats:
    """What :func:`table_to_rdf` did.

    ``rows``: data rows read (blank lines excluded); ``skipped_rows``: rows that gave no
    entity (all cells empty, or skipped for a missing / duplicate id); ``entities``: new
    nodes per type IRI (rows' entities and reference nodes); ``triples``: statements written;
    ``warnings``: the first :data:`MAX_WARNINGS` messages, ``warning_count`` all of them.
    """

    source: Path
    output: Path
    rows: int = 0
    skipped_rows: int = 0
    entities: dict[str, int] = field(default_factory=dict)
    triples: int = 0
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    prefixes: dict[str, str] = field(default_factory=dict, repr=False)

    def warn(self, message: str):
        self.warning_count += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)

    def summary(self, prefixes: dict[str, str] | None = None) -> str:
        """One line: rows -> entities per type; triples; skipped rows; warnings."""
        prefixes = prefixes or self.prefixes or PREDEFINED_PREFIXES
        by_ns = {ns: name for name, ns in sorted(prefixes.items(), reverse=True)}

        def short(iri: str) -> str:
            for sep in ("#", "/"):
                cut = iri.rfind(sep)
                if cut >= 0 and iri[: cut + 1] in by_ns:
                    return f"{by_ns[iri[: cut + 1]]}:{iri[cut + 1 :]}"
            return iri

        entities = ", ".join(f"{n:,} {short(t)}" for t, n in self.entities.items())
        return (
            f"{self.rows:,} rows -> {entities or 'no entities'}; {self.triples:,} triples; "
            f"{self.skipped_rows:,} skipped rows; {self.warning_count:,} warnings"
        )

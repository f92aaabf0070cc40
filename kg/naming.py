"""Short, unique, identifier-safe names for IRIs (node types and relations).

A relation is named by its predicate's local name (``http://schema.org/brand`` ->
``brand``); when two IRIs share a local name (``schema:name`` and ``foaf:name``), both are
prefixed with a namespace label (``schema_name``, ``foaf_name``) taken from well-known
prefixes or, failing that, from the namespace's last path segment; a numeric suffix settles
anything still equal. The result is deterministic: it depends only on the set of IRIs.

Every relation ``R`` also has an inverse for message passing, named ``REV_PREFIX + R``
(``rev_brand``): :meth:`kg.ProductGraph.neighbors` reports incoming edges under it,
:meth:`kg.ProductGraph.to_pyg` adds ``(dst, rev_R, src)`` edge types, and queries accept it.

Not to be confused with :mod:`kg.labels`, the human-readable names of entities.
"""

from __future__ import annotations

import re
from collections import defaultdict

WELL_KNOWN_PREFIXES = {
    "http://schema.org/": "schema",
    "https://schema.org/": "schema",
    "http://purl.org/goodrelations/v1#": "gr",
    "http://xmlns.com/foaf/0.1/": "foaf",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs",
    "http://www.w3.org/2002/07/owl#": "owl",
    "http://www.w3.org/2004/02/skos/core#": "skos",
    "http://purl.org/dc/terms/": "dcterms",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://www.w3.org/2001/XMLSchema#": "xsd",
    "http://www.w3.org/2006/vcard/ns#": "vcard",
    "http://swrc.ontoware.org/ontology#": "swrc",
}

#: The prefix of an inverse relation's name: ``rev_brand`` is ``brand`` read backwards.
REV_PREFIX = "rev_"

_NOT_IDENT = re.compile(r"[^0-9A-Za-z_]+")


def split_iri(iri: str) -> tuple[str, str]:
    """Split an IRI into (namespace, local name) at the last ``#``, ``/`` or ``:``."""
    for sep in ("#", "/", ":"):
        cut = iri.rfind(sep)
        if 0 <= cut < len(iri) - 1:
            return iri[: cut + 1], iri[cut + 1 :]
    return "", iri


def _ident(text: str) -> str:
    name = _NOT_IDENT.sub("_", text).strip("_")
    if not name:
        return "x"
    return "_" + name if name[0].isdigit() else name


def namespace_label(namespace: str) -> str:
    """A short label for a namespace: a well-known prefix or its last path segment."""
    if namespace in WELL_KNOWN_PREFIXES:
        return WELL_KNOWN_PREFIXES[namespace]
    parts = [p for p in re.split(r"[/#:.]+", namespace) if p and p not in ("http", "https", "www")]
    return _ident(parts[-1]) if parts else "ns"


def unique_local_names(iris: list[str]) -> dict[str, str]:
    """Map every IRI to a unique identifier-safe name (see module docstring)."""
    by_local: dict[str, list[str]] = defaultdict(list)
    for iri in sorted(set(iris)):
        by_local[_ident(split_iri(iri)[1])].append(iri)
    names: dict[str, str] = {}
    taken: set[str] = set()
    for local, group in sorted(by_local.items()):
        if len(group) == 1:
            names[group[0]] = local
            taken.add(local)
    for local, group in sorted(by_local.items()):
        if len(group) == 1:
            continue
        for iri in group:
            candidate = f"{namespace_label(split_iri(iri)[0])}_{local}"
            base, n = candidate, 2
            while candidate in taken:
                candidate, n = f"{base}_{n}", n + 1
            names[iri] = candidate
            taken.add(candidate)
    return names

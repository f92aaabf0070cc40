"""A :class:`kg.ProductGraph` back to RDF: its triples as pyoxigraph terms.

:func:`graph_triples` is what :meth:`kg.ProductGraph.triples` yields, and so what the
workspace's SPARQL store, :meth:`~kg.ProductGraph.to_ntriples` and
:meth:`~kg.ProductGraph.to_rdflib` hold. IRIs that lenient reading let through invalid are
made valid here (:func:`named_node`).
"""

from __future__ import annotations

from urllib.parse import quote


def graph_triples(graph):
    """Every triple of ``graph`` as a ``pyoxigraph.Triple``: types, edges, literals, image refs
    (an image reference read as an IRI is written back as an IRI)."""
    import pyoxigraph as ox

    terms = [blank_node(k) if k.startswith("_:") else named_node(k) for k in graph.nodes]
    preds = [named_node(p) for p in graph.predicates]
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    classes = [named_node(c) for c in graph.classes]
    for n, c in zip(graph.type_node.tolist(), graph.type_class.tolist(), strict=True):
        yield ox.Triple(terms[n], rdf_type, classes[c])
    for s, p, d in zip(graph.src.tolist(), graph.pred.tolist(), graph.dst.tolist(), strict=True):
        yield ox.Triple(terms[s], preds[p], terms[d])
    dtypes = [named_node(d) if d else None for d in graph.datatypes]
    for n, p, v, dt, lang in zip(
        graph.lit_node.tolist(), graph.lit_pred.tolist(), graph.lit_value,
        graph.lit_dtype.tolist(), graph.lit_lang.tolist(), strict=True,
    ):  # fmt: skip
        if dtypes[dt] is None:
            obj = named_node(v)
        elif lang >= 0:
            obj = ox.Literal(v, language=graph.languages[lang])
        else:
            obj = ox.Literal(v, datatype=dtypes[dt])
        yield ox.Triple(terms[n], preds[p], obj)


def named_node(iri: str):
    """A pyoxigraph NamedNode; an IRI read with ``lenient=True`` that is not valid (e.g. a
    space in it) is percent-encoded so that the graph still serialises to valid RDF; one that
    is still invalid then (no scheme, a bad port) becomes ``urn:kgfusion:invalid-iri:...``."""
    import pyoxigraph as ox

    try:
        return ox.NamedNode(iri)
    except ValueError:
        pass
    for safe in (":/?#[]@!$&'()*+,;=%~", ":/?#@!$&'()*+,;=~"):
        try:
            return ox.NamedNode(quote(iri.strip(), safe=safe))
        except ValueError:
            continue
    return ox.NamedNode("urn:kgfusion:invalid-iri:" + quote(iri, safe=""))


def blank_node(key: str):
    """A pyoxigraph BlankNode for the node key ``_:label``; a key that only looks like one
    (an IRI ``<_:...>`` read with ``lenient=True``) becomes an IRI (see :func:`named_node`)."""
    import pyoxigraph as ox

    try:
        return ox.BlankNode(key[2:])
    except ValueError:
        return named_node(key)

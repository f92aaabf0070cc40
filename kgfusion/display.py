"""Terminal output shared by the command line and the demo: tables and quiet libraries.

Nothing here computes; it formats what :class:`kgfusion.session.Session` returns.
"""

from __future__ import annotations


def quiet_transformers() -> None:
    """No per-model "Loading weights" bars from transformers on the command line."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def print_encode_report(features, report) -> None:
    """Print what :meth:`Session.encode` did: nodes and missing values per type and
    modality with the feature width, skipped inputs, and the encoded / cached counts."""
    from kg.report import format_table

    dims = features.dims()
    rows = [
        [node_type, modality, c["present"], c["missing"], dims[node_type][modality]]
        for node_type, mods in report.counts.items()
        for modality, c in mods.items()
    ]
    print("\n".join(format_table(["type", "modality", "nodes", "missing", "dim"], rows)))
    for problem in report.problems[:20]:
        print(f"  skipped: {problem}")
    if len(report.problems) > 20:
        print(f"  ... and {len(report.problems) - 20} more skipped")
    print(
        f"encoded {report.encoded:,} inputs, {report.cached:,} from cache, in {report.seconds:.1f}s"
    )


def related_table(items) -> tuple[list[str], list[list]]:
    """Header and rows for related items: the score, its parts (see ``kg.related``), the
    first piece of evidence. ``model``: a link-prediction run's probability; ``known``: the
    boost for an existing edge of the relation."""
    header = ["#", "score", "similarity", "model", "known", "evidence", "product", "why"]
    part = lambda item, name: f"{item.parts[name]:.3f}" if name in item.parts else "-"
    rows = [
        [
            n,
            f"{i.score:.3f}",
            part(i, "similarity"),
            part(i, "scorer"),
            part(i, "relation"),
            part(i, "evidence"),
            (i.name or i.iri)[:44],
            "; ".join(i.evidence[:1])[:64],
        ]  # fmt: skip
        for n, i in enumerate(items, 1)
    ]
    return header, rows


def related_records(items) -> list[dict]:
    """Related items as JSON-ready records: iri, type, name, score, parts, evidence."""
    return [
        {"iri": i.iri, "type": i.node_type, "name": i.name, "score": i.score,
         "parts": i.parts, "evidence": i.evidence}
        for i in items
    ]  # fmt: skip

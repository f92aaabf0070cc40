"""What is in a graph, as a dict (for ``--json``) and as readable text (``kgf info``)."""

from __future__ import annotations

from collections import Counter

from .graph import ProductGraph


def info(graph: ProductGraph) -> dict:
    """Node types, relations, literal columns (coverage, languages) and image references."""
    images = {"found": 0, "missing": 0, "remote": 0, "missing_examples": []}
    for column in graph.literal_columns():
        if column.kind != "image":
            continue
        data = graph.column(column.node_type, column.predicate, "image")
        for value, path in zip(data.values, data.paths or [], strict=True):
            if path is None:
                images["remote"] += 1
            elif path.is_file():
                images["found"] += 1
            else:
                images["missing"] += 1
                if len(images["missing_examples"]) < 3:
                    images["missing_examples"].append(value)
    languages: Counter = Counter()
    for column in graph.literal_columns():
        languages.update(column.languages)
    return {
        "nodes": graph.num_nodes,
        "edges": graph.num_edges,
        "literals": graph.num_literals,
        "triples": graph.num_triples,
        "node_types": dict(sorted(graph.num_nodes_dict.items(), key=lambda kv: -kv[1])),
        "relations": [
            {"edge_type": list(r.edge_type), "predicate": r.predicate, "count": r.count}
            for r in sorted(graph.relations, key=lambda r: -r.count)
        ],
        "literal_columns": [
            {
                "node_type": c.node_type,
                "name": c.name,
                "kind": c.kind,
                "values": c.count,
                "coverage": round(c.coverage, 4),
                "languages": c.languages,
            }
            for c in graph.literal_columns()
        ],  # fmt: skip
        "languages": dict(languages.most_common()),
        "images": images,
        "invalid_literals": graph.invalid_literals,
        "duplicates_dropped": graph.duplicates,
        "sources": [s.get("path") for s in graph.sources],
    }


def format_table(header: list[str], rows: list[list]) -> list[str]:
    """Rows as aligned text lines (header, rule, rows)."""
    cells = [[str(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    fmt = lambda row: "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths]), *map(fmt, cells)]


def format_info(report: dict, max_rows: int = 40) -> str:
    lines = [
        f"{report['nodes']:,} nodes, {report['edges']:,} edges, {report['literals']:,} literals "
        f"({report['triples']:,} triples)",
        "",
        "Node types",
        *format_table(
            ["type", "nodes"], [[t, f"{n:,}"] for t, n in report["node_types"].items()][:max_rows]
        ),
        "",
        "Relations (each also has a rev_ inverse for message passing)",
        *format_table(
            ["source", "relation", "target", "edges"],
            [[*r["edge_type"], f"{r['count']:,}"] for r in report["relations"][:max_rows]],
        ),
    ]
    if len(report["relations"]) > max_rows:
        lines.append(
            f"... and {len(report['relations']) - max_rows} more relations (--json for all)"
        )
    lines += [
        "",
        "Literal columns",
        *format_table(
            ["type", "column", "kind", "values", "coverage", "languages"],
            [
                [
                    c["node_type"],
                    c["name"],
                    c["kind"],
                    f"{c['values']:,}",
                    f"{c['coverage']:.0%}",
                    " ".join(f"{k}:{v}" for k, v in c["languages"].items()),
                ]
                for c in report["literal_columns"][:max_rows]
            ],
        ),  # fmt: skip
    ]
    images = report["images"]
    lines += [
        "",
        f"Images: {images['found']} found, {images['missing']} missing, {images['remote']} remote (not downloaded)",
    ]
    if images["missing_examples"]:
        lines.append(f"  missing e.g. {', '.join(images['missing_examples'])}")
    if report["invalid_literals"]:
        lines.append(
            f"Literals kept as text because their lexical form is invalid: {report['invalid_literals']}"
        )
    return "\n".join(lines)

"""Entity labels from a TSV / CSV file, resolved against a :class:`kg.ProductGraph`.

A labels file has one row per entity: an entity column (an IRI, or ``_:label`` for a blank
node) and one or more label columns, e.g. the AIFB split files (Bloehdorn & Sure 2007, as
used by R-GCN, Schlichtkrull et al. 2018)::

    person<TAB>id<TAB>label_affiliation
    http://www.aifb.uni-karlsruhe.de/Personen/viewPersonOWL/id1909instance<TAB>2.0<TAB>http://...id1instance

Defaults: the delimiter comes from the extension (``.tsv`` / ``.tab``: tab, ``.csv``: comma,
otherwise sniffed); the entity column is the first column; the label columns are the
columns whose name starts with ``label`` or, when there are none, the last column. An empty
label cell means "no label in that column" for that entity.

:func:`resolve_labels` maps the entities to ``(node type, index within the type)``. The
labelled entities may belong to several node types (AIFB persons are typed ``Person``,
``PhDStudent``, ``FullProfessor``... by the graph's typing rule); :class:`ResolvedLabels`
keeps, per type, the local indices and their rows. Entities that the graph does not have
are reported (count and examples) and dropped; if none remain it is an error.
"""

from __future__ import annotations

import csv
import gzip
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kg.graph import GraphLookupError, ProductGraph
from kg.hints import did_you_mean


class LabelError(ValueError):
    """A labels file that cannot be used; the message names the file and what to change."""


@dataclass
class LabelTable:
    """The rows of a labels file: ``entities[i]`` has ``labels[col][i]`` (None if empty)."""

    path: str
    entity_col: str
    label_cols: list[str]
    entities: list[str]
    labels: dict[str, list[str | None]]


@dataclass
class ResolvedLabels:
    """Labelled entities found in the graph, grouped by node type.

    ``rows[t]``: int64 positions (into ``entities``) of the labelled nodes of type ``t``;
    ``index[t]``: their indices within type ``t``; ``targets[col]``: int64 [n] class ids
    (``-1`` where the row has no label in ``col``), in the order of ``entities``.
    """

    entities: list[str]
    rows: dict[str, torch.Tensor]
    index: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    unknown: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entities)

    @property
    def node_types(self) -> list[str]:
        return list(self.index)

    def order(self) -> torch.Tensor:
        """Row positions in the order the per-type blocks are concatenated ([n] int64)."""
        if not self.index:
            return torch.zeros(0, dtype=torch.long)
        return torch.cat([self.rows[t] for t in self.index])

    def subset(self, positions) -> ResolvedLabels:
        """The rows at ``positions`` (int sequence into ``entities``), regrouped by type."""
        positions = torch.as_tensor(positions, dtype=torch.long)
        keep = torch.zeros(len(self.entities), dtype=torch.bool)
        keep[positions] = True
        new_pos = torch.full((len(self.entities),), -1, dtype=torch.long)
        new_pos[positions] = torch.arange(len(positions))
        rows, index = {}, {}
        for t in self.index:
            chosen = keep[self.rows[t]]
            if chosen.any():
                rows[t] = new_pos[self.rows[t][chosen]]
                index[t] = self.index[t][chosen]
        return ResolvedLabels(
            [self.entities[i] for i in positions.tolist()],
            rows,
            index,
            {c: y[positions] for c, y in self.targets.items()},
        )


def _delimiter(path: Path, sample: str, delimiter: str | None) -> str:
    if delimiter:
        return delimiter
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".tsv", ".tab"):
        return "\t"
    if suffixes and suffixes[-1] == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters="\t,;|").delimiter
    except csv.Error:
        return "\t" if "\t" in sample else ","


def _pick(name: str, header: list[str], path: Path, what: str) -> str:
    if name in header:
        return name
    hint = did_you_mean(name, header, paren=True)
    raise LabelError(f"{path}: no {what} column {name!r}{hint}; columns: {', '.join(header)}")


def read_labels(
    path,
    entity_col: str | None = None,
    label_cols: list[str] | str | None = None,
    delimiter: str | None = None,
) -> LabelTable:
    """Read a labels file (TSV / CSV, optionally gzipped); see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"labels file {path} not found")
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelError(f"{path}: not UTF-8 text ({err})") from None
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(path, text[:4096], delimiter))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise LabelError(f"{path} is empty; expected a header row") from None
    if len(header) < 2:
        raise LabelError(
            f"{path}: the header has {len(header)} column(s) ({header}); expected an entity "
            "column and at least one label column (is the delimiter right?)"
        )
    entity_col = _pick(entity_col, header, path, "entity") if entity_col else header[0]
    if isinstance(label_cols, str):
        label_cols = [label_cols]
    if label_cols:
        label_cols = [_pick(c, header, path, "label") for c in label_cols]
    else:
        label_cols = [h for h in header if h.lower().startswith("label") and h != entity_col]
        label_cols = label_cols or [h for h in header if h != entity_col][-1:]
    if entity_col in label_cols:
        raise LabelError(f"{path}: column {entity_col!r} cannot be both entity and label")
    e_pos = header.index(entity_col)
    l_pos = [header.index(c) for c in label_cols]
    entities: list[str] = []
    labels: dict[str, list[str | None]] = {c: [] for c in label_cols}
    seen: dict[str, int] = {}
    duplicates = 0
    for line, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise LabelError(
                f"{path}, line {line}: {len(row)} field(s), the header has {len(header)}"
            )
        entity = row[e_pos].strip()
        if entity.startswith("<") and entity.endswith(">"):
            entity = entity[1:-1]
        if not entity:
            raise LabelError(f"{path}, line {line}: empty entity in column {entity_col!r}")
        if entity in seen:
            duplicates += 1
            continue
        seen[entity] = len(entities)
        entities.append(entity)
        for c, p in zip(label_cols, l_pos, strict=True):
            labels[c].append(row[p].strip() or None)
    if duplicates:
        warnings.warn(
            f"{path}: {duplicates} repeated entit{'y' if duplicates == 1 else 'ies'}; "
            "kept the first row of each",
            stacklevel=2,
        )
    if not entities:
        raise LabelError(f"{path}: no data rows under the header")
    return LabelTable(str(path), entity_col, list(label_cols), entities, labels)


def class_vocabulary(tables: list[LabelTable], label_col: str) -> list[str]:
    """Sorted class names of ``label_col`` over the given tables (train first)."""
    return sorted({v for t in tables for v in t.labels.get(label_col, []) if v is not None})


def resolve_labels(
    graph: ProductGraph,
    table: LabelTable,
    classes: dict[str, list[str]],
    max_examples: int = 5,
) -> ResolvedLabels:
    """Map ``table``'s entities to graph nodes and its labels to class ids.

    ``classes[col]`` is the class list of a label column; a label outside it becomes ``-1``
    (no target). Unknown entities are dropped with a warning that gives their count and a
    few examples; a :class:`LabelError` if none is left.
    """
    known_pos: list[int] = []
    types: list[str] = []
    local: list[int] = []
    unknown: list[str] = []
    for i, entity in enumerate(table.entities):
        try:
            node_type, index = graph.node(entity)
        except GraphLookupError:
            unknown.append(entity)
            continue
        known_pos.append(i)
        types.append(node_type)
        local.append(index)
    if unknown:
        examples = ", ".join(unknown[:max_examples])
        message = (
            f"{table.path}: {len(unknown)} of {len(table.entities)} entities are not in the "
            f"graph (e.g. {examples})"
        )
        if not known_pos:
            raise LabelError(
                message + "; none is left: is the entity column right "
                f"({table.entity_col!r}) and is this the graph the labels belong to?"
            )
        warnings.warn(message + "; they are skipped", stacklevel=2)
    entities = [table.entities[i] for i in known_pos]
    type_arr = np.array(types, dtype=object)
    local_arr = np.array(local, dtype=np.int64)
    rows, index = {}, {}
    for t in sorted(set(types)):
        positions = np.nonzero(type_arr == t)[0]
        rows[t] = torch.from_numpy(positions.astype(np.int64))
        index[t] = torch.from_numpy(local_arr[positions])
    targets = {}
    for col in table.label_cols:
        lookup = {c: k for k, c in enumerate(classes[col])}
        values = [table.labels[col][i] for i in known_pos]
        targets[col] = torch.tensor(
            [lookup.get(v, -1) if v is not None else -1 for v in values], dtype=torch.long
        )
    return ResolvedLabels(entities, rows, index, targets, unknown)


def stratified_split(
    targets: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split row positions into ``(keep, held_out)`` with ``fraction`` of each class held out.

    ``targets``: int64 [n] class ids (-1: unlabelled rows stay in ``keep``). Every class
    with at least two rows gives at least one row to ``held_out`` when ``fraction > 0``.
    """
    generator = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for c in torch.unique(targets).tolist():
        rows = torch.nonzero(targets == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        n_held = 0 if c < 0 or len(rows) < 2 else max(1, round(fraction * len(rows)))
        held.append(rows[:n_held])
        keep.append(rows[n_held:])
    return torch.sort(torch.cat(keep)).values, torch.sort(torch.cat(held)).values

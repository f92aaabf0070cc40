"""Literal values: their kind (from the datatype and the predicate) and their number.

A literal is ``text`` (with its language tag), ``number`` (the XSD numeric types),
``boolean``, ``date`` (the XSD date types, as days since 1970-01-01, fractional for a
time of day) or ``image`` (a value of one of the image predicates, or a reference without
datatype). :func:`classify_literals` does it for all literals at once, vectorised where the
values allow; a lexical form that does not parse as its datatype is kept as text. The
:class:`~kg.graph.ProductGraph` views of literals (:class:`LiteralColumn`,
:class:`ColumnData`, :class:`LiteralValue`) are defined here too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np

from .naming import split_iri

XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
NUMERIC_TYPES = {
    XSD + t
    for t in [
        "integer",
        "decimal",
        "double",
        "float",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "negativeInteger",
        "nonPositiveInteger",
        "unsignedInt",
        "unsignedLong",
        "unsignedShort",
        "unsignedByte",
    ]
}
DATE_TYPES = {XSD + t for t in ("date", "dateTime", "dateTimeStamp", "gYear", "gYearMonth")}
KINDS = ("text", "number", "boolean", "date", "image")
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class LiteralColumn:
    node_type: str
    name: str
    predicate: str
    kind: str
    count: int
    nodes: int
    coverage: float
    languages: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnData:
    """Values of one literal column: ``index[i]`` is the node's index within its type."""

    index: np.ndarray  # int64 [n]
    values: list[str]
    languages: list[str | None]
    numbers: np.ndarray  # float64 [n], NaN where not numeric
    paths: list[Path | None] | None = None  # image columns: resolved local files


@dataclass(frozen=True)
class LiteralValue:
    predicate: str
    name: str
    value: str
    kind: str
    language: str | None
    datatype: str | None


def _kind_code(datatype: str) -> int:
    """The :data:`KINDS` code of a datatype IRI (``""``: an image reference)."""
    if datatype == "":
        return KINDS.index("image")
    if datatype in NUMERIC_TYPES:
        return KINDS.index("number")
    if datatype == XSD + "boolean":
        return KINDS.index("boolean")
    return KINDS.index("date") if datatype in DATE_TYPES else KINDS.index("text")


def classify_literals(values: list[str], dtype: np.ndarray, datatypes: list[str],
                      is_image: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """Kinds and numbers of L literals.

    Args:
        values: the L lexical forms; ``dtype`` int [L]: each one's index in ``datatypes``
            (datatype IRIs; ``""`` for an image reference); ``is_image`` bool [L]: its
            predicate is an image predicate.
    Returns:
        ``(kind, numbers, invalid)``: int8 [L] codes into :data:`KINDS`, float64 [L] (NaN
        for text and images), and ``"'value'^^type"`` for each value kept as text because it
        does not parse as its datatype.
    """
    code_of_dtype = np.array([_kind_code(dt) for dt in datatypes] or [0], dtype=np.int8)
    kind = code_of_dtype[dtype] if len(dtype) else np.zeros(0, np.int8)
    kind[is_image] = KINDS.index("image")
    numbers = np.full(len(kind), np.nan)
    invalid: list[str] = []

    def keep_as_text(rows: list[int]) -> None:
        for i in rows:
            kind[i] = KINDS.index("text")
            invalid.append(f"{values[i]!r}^^{split_iri(datatypes[dtype[i]])[1]}")

    for name, parse, fast in (
        ("number", float, np.float64),
        ("boolean", _parse_bool, None),
        ("date", _parse_date, "datetime64[D]"),
    ):
        rows = np.nonzero(kind == KINDS.index(name))[0]
        if not len(rows):
            continue
        chosen = [values[i] for i in rows.tolist()]
        vectorised = fast is not None
        if name == "date":  # numpy wraps years past int64 days around silently
            lexical = np.array(chosen, dtype=str)
            overlong = _overlong_years(lexical)
            if overlong.any():
                keep_as_text(rows[overlong].tolist())
                rows, lexical = rows[~overlong], lexical[~overlong]
                chosen = lexical.tolist()
            vectorised = not _zoned(lexical)
        if vectorised and chosen:
            try:  # vectorised parse; any odd value falls back to one at a time
                parsed = np.array(chosen, dtype=fast)
                if name == "date":
                    parsed = (parsed - np.datetime64("1970-01-01")).astype(np.float64)
                numbers[rows] = parsed
                continue
            except ValueError:
                pass
        failed = []
        for i, value in zip(rows.tolist(), chosen, strict=True):
            try:
                numbers[i] = parse(value)
            except ValueError:
                failed.append(i)
        keep_as_text(failed)
    return kind, numbers, invalid


def _parse_bool(text: str) -> float:
    value = text.strip().lower()
    if value in ("true", "1"):
        return 1.0
    if value in ("false", "0"):
        return 0.0
    raise ValueError(text)


_ZONE = re.compile(r"T.*(?:Z|[+-]\d\d(?::?\d\d)?)\s*$")


def _zoned(values: np.ndarray) -> bool:
    """Whether any date-time (str array) carries a time zone (``Z`` or ``+hh:mm``): numpy's
    datetime64 has no time zones (it warns and converts), so these dates are parsed one at a
    time. Only values with a ``T`` (a time of day) are searched."""
    timed = values[np.char.find(values, "T") >= 0] if len(values) else values
    return any(_ZONE.search(v) for v in timed.tolist())


def _overlong_years(values: np.ndarray) -> np.ndarray:
    """Mask of date literals (str array) whose year has more than 4 digits (past
    ``datetime.date``)."""
    years = np.char.partition(np.char.lstrip(values, " \t\n\r-+"), "-")
    return np.char.str_len(years[:, 0]) > 4


def _parse_date(text: str) -> float:
    value = text.strip()
    if len(value) == 4 and value.isdigit():  # gYear
        value += "-01-01"
    elif len(value) == 7 and value[4] == "-":  # gYearMonth
        value += "-01"
    if "T" in value:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed.date() - _EPOCH).days + (parsed.hour * 3600 + parsed.minute * 60) / 86400
    days = (date.fromisoformat(value[:10]) - _EPOCH).days
    if not math.isfinite(days):
        raise ValueError(text)
    return float(days)

"""Errors of a table conversion, each naming the file, row (line) and column.

:class:`TableError` is bad tabular input; :class:`MappingError` (a subclass) is an invalid
mapping file. :func:`suggest` adds "did you mean ...?" to a message.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..hints import did_you_mean


class TableError(ValueError):
    """Bad tabular input: the message names the file, the row (line) and column, and what
    to do. ``path``, ``row``, ``line`` and ``column`` hold the place when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        row: int | None = None,
        line: int | None = None,
        column: str | None = None,
    ):
        self.path = Path(path) if path is not None else None
        self.row, self.line, self.column = row, line, column
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class MappingError(TableError):
    """An invalid mapping file: unknown key (with a suggestion), bad value, unknown prefix."""


def suggest(word: str, choices) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    return did_you_mean(word, choices)

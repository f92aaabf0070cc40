"""Progress bars for long work, one helper for the whole project.

:func:`progress` wraps ``tqdm``: on a terminal, a bar redrawn at most every
``mininterval`` seconds; with output not on a terminal (a log file, a pipe, CI), one plain
line every ``KGF_PROGRESS_INTERVAL`` seconds (default 10) and a last line at the end --
never thousands of carriage returns. ``KGF_PROGRESS`` forces a mode: ``bar``, ``lines`` or
``off``.

Every module that shows progress calls this, so the behaviour is the same everywhere::

    for chunk in progress(chunks, desc="text", unit="chunk"):
        ...
    bar = progress(total=n, desc="trunk", unit="photo")
    bar.update(64)
    bar.close()

:func:`stage` prints one line naming a step that is about to start (for steps without a
natural counter), on stderr, where the bars go.
"""

from __future__ import annotations

import os
import sys

MODES = ("bar", "lines", "off")


def mode(stream=None) -> str:
    """``bar``, ``lines`` or ``off``: ``KGF_PROGRESS`` if set, else ``bar`` on a terminal
    and ``lines`` otherwise."""
    forced = os.environ.get("KGF_PROGRESS", "").strip().lower()
    if forced in MODES:
        return forced
    stream = sys.stderr if stream is None else stream
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):  # a closed or odd stream
        return "lines"


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("KGF_PROGRESS_INTERVAL", "10")))
    except ValueError:
        return 10.0


class _Discard:
    """Where a line-mode tqdm's own writes go (its ``\\r`` redraws and newlines)."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def _line_class():
    from tqdm import tqdm

    class LineProgress(tqdm):
        """tqdm that writes a whole line to stderr per refresh (one per count) instead of
        redrawing one line with ``\\r``."""

        def display(self, msg=None, pos=None):
            text = (self.__str__() if msg is None else msg).strip("\r\n ")
            if text and self.n != getattr(self, "_last_n", None):
                self._last_n = self.n
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
            return True

    return LineProgress


def progress(iterable=None, *, total=None, desc: str | None = None, unit: str = "it",
             enabled: bool = True, initial: int = 0, mininterval: float = 0.5, **options):  # fmt: skip
    """A tqdm progress bar (see the module docstring); ``enabled=False`` shows nothing.

    ``iterable``/``total``/``desc``/``unit``/``initial`` and ``options`` are tqdm's. The
    bar always writes to stderr.
    """
    from tqdm import tqdm

    chosen = mode() if enabled else "off"
    common = dict(total=total, desc=desc, unit=unit, initial=initial, **options)
    if chosen == "off":
        return tqdm(iterable, disable=True, **common)
    if chosen == "lines":
        every = _interval()
        known = total is not None or hasattr(iterable, "__len__")
        fmt = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} " if known else "{desc}: {n_fmt} "
        return _line_class()(
            iterable, file=_Discard(), mininterval=every, maxinterval=max(every, 1.0),
            miniters=1, bar_format=fmt + "[{elapsed}<{remaining}, {rate_fmt}{postfix}]",
            **common,
        )  # fmt: skip
    return tqdm(
        iterable, file=sys.stderr, mininterval=mininterval, dynamic_ncols=True, **common
    )


def stage(message: str, enabled: bool = True) -> None:
    """Print ``message`` as one line on stderr (unless progress is ``off``)."""
    if enabled and mode() != "off":
        print(message, file=sys.stderr, flush=True)

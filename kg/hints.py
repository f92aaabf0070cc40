""""Did you mean ...?" hints for error messages: the one place they are computed.

Every error that rejects a name (a registry entry, a config key, a column, a node IRI)
suggests the closest known names with :func:`did_you_mean`, so the matching rule (difflib's
ratio, :func:`difflib.get_close_matches`) and the wording are the same everywhere. It lives
in ``kg``, the bottom package, so that every package can use it.

>>> did_you_mean("lnk", ["link", "node"])
"; did you mean 'link'?"
>>> did_you_mean("gatd", ["gated", "mean"], paren=True)
" (did you mean 'gated'?)"
>>> did_you_mean("nothing like it", ["link"])
''
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

__all__ = ["close_matches", "did_you_mean"]


def close_matches(word: object, choices: Iterable[object], *, n: int = 1, cutoff: float = 0.6):
    """Up to ``n`` of ``choices`` (as strings) most similar to ``word``, best first.

    ``cutoff`` (0..1) is the least similarity ratio kept; a ``word`` that is not a string
    is compared as ``str(word)``.
    """
    pool = [c if isinstance(c, str) else str(c) for c in choices]
    return difflib.get_close_matches(str(word), pool, n=n, cutoff=cutoff)


def did_you_mean(
    word: object,
    choices: Iterable[object],
    *,
    n: int = 1,
    cutoff: float = 0.6,
    paren: bool = False,
    quote: bool = True,
    show: Callable[[str], object] | None = None,
) -> str:
    """A hint naming the ``choices`` closest to ``word``, or ``""`` when none is close.

    The hint is meant to be appended to a message: ``"; did you mean 'x'?"``, or with
    ``paren`` ``" (did you mean 'x'?)"``. ``quote`` writes each suggestion as its ``repr``
    (``'x'``) rather than bare; ``n`` > 1 lists several, comma-separated; ``show`` maps a
    matched choice to what is printed (e.g. a short key to its full dotted name).
    """
    close = close_matches(word, choices, n=n, cutoff=cutoff)
    if not close:
        return ""
    shown = [show(c) if show is not None else c for c in close]
    names = ", ".join(repr(s) if quote else str(s) for s in shown)
    return f" (did you mean {names}?)" if paren else f"; did you mean {names}?"

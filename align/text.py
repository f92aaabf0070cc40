"""Text normalisation shared by mention detection, candidate generation and pair features.

Everything here is a plain function of strings (no model, no graph):

- :func:`normalise` folds case and accents (NFKD, combining marks dropped, ``casefold``)
  and :func:`tokens` splits into word tokens (letters and digits; ``_`` separates): both
  are :mod:`kg.labels`' (the one text normaliser, shared with the graph's name lookup);
  :func:`token_spans` gives the tokens' character offsets in the original text;
- :func:`model_tokens` finds model-number-like tokens: a run of letters, digits and hyphens
  that contains a digit, matches ``[A-Za-z]*\\d[\\w-]*`` once hyphens between letters are
  allowed (``PS-LX350H``), is at least :data:`MIN_MODEL_LEN` characters long after
  squashing (``pslx350h``), and has both a letter and a digit. Pure digit strings (years,
  capacities, prices) are *numbers* (:func:`numbers`), not model numbers;
- :func:`squash` drops everything but letters and digits (``"PS-LX350H" -> "pslx350h"``),
  the form model numbers are compared in;
- :func:`parse_price` reads ``"$1,299.00"`` as ``1299.0``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kg.labels import WORD, normalise, tokens

MIN_MODEL_LEN = 4

_MODEL = re.compile(r"(?<![\w-])[A-Za-z0-9][A-Za-z0-9-]*\d[\w-]*|(?<![\w-])\d[\w-]*")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w])")
_PRICE = re.compile(r"-?\d+(?:[.,]\d+)*")
_SQUASH = re.compile(r"[^0-9a-z]+")

# function words that never start or end a mention, and are not evidence on their own
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "we",
        "were",
        "will",
        "with",
        "you",
        "your",
        "new",
        "buy",
        "get",
        "i'm",
        "im",
        "me",
    ]
)


def token_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, normalised token)`` for each word token of ``text`` (offsets into
    ``text`` itself; normalisation is per token, so offsets never drift)."""
    for match in WORD.finditer(text):
        yield match.start(), match.end(), normalise(match.group())


def squash(text: str) -> str:
    """Only letters and digits, normalised: ``"PS-LX350H" -> "pslx350h"``."""
    return _SQUASH.sub("", normalise(text))


def is_model_token(token: str) -> bool:
    """A model-number-like token: squashed length >= 4, with a letter and a digit."""
    s = squash(token)
    return len(s) >= MIN_MODEL_LEN and any(c.isdigit() for c in s) and any(c.isalpha() for c in s)


def model_tokens(text: str) -> set[str]:
    """Squashed model-number-like tokens of ``text`` (see module docstring)."""
    found = set()
    for match in _MODEL.finditer(text):
        token = match.group().strip("-")
        if is_model_token(token):
            found.add(squash(token))
    return found


def model_token_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, squashed)`` of the model-number-like tokens of ``text``."""
    for match in _MODEL.finditer(text):
        token = match.group()
        stripped = token.strip("-")
        if is_model_token(stripped):
            start = match.start() + (len(token) - len(token.lstrip("-")))
            yield start, start + len(stripped), squash(stripped)


def numbers(text: str) -> set[str]:
    """Stand-alone numbers of ``text`` as strings, decimal comma read as a point
    (``"2-1/2"`` gives ``{"2", "1", "2"}`` -> ``{"1", "2"}``)."""
    out = set()
    for match in _NUMBER.finditer(text):
        value = match.group().replace(",", ".")
        try:
            out.add(f"{float(value):g}")
        except ValueError:  # pragma: no cover - the pattern only matches numbers
            continue
    return out


def parse_price(value) -> float | None:
    """A positive price from a cell (``"$1,299.00"``, ``"399.0"``, ``12``); None if absent."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if value == value and value > 0 else None
    match = _PRICE.search(str(value))
    if not match:
        return None
    raw = match.group()
    if raw.count(",") and raw.count("."):
        raw = raw.replace(",", "")  # 1,299.00
    elif raw.count(",") == 1 and len(raw.split(",")[1]) != 3:
        raw = raw.replace(",", ".")  # 12,99
    else:
        raw = raw.replace(",", "")
    try:
        price = float(raw)
    except ValueError:
        return None
    return price if price > 0 else None


def mention_tokens(text: str) -> list[tuple[int, int, str]]:
    """Word tokens with offsets, where each model-number-like token counts as one token in
    its squashed form (``"Sony PS-LX350H"`` -> ``sony``, ``pslx350h``)."""
    models = list(model_token_spans(text))
    if not models:
        return list(token_spans(text))
    out: list[tuple[int, int, str]] = []
    m = 0
    for start, end, token in token_spans(text):
        while m < len(models) and models[m][1] <= start:
            m += 1
        if m < len(models) and models[m][0] <= start < models[m][1]:
            if not out or out[-1][:2] != models[m][:2]:
                out.append(models[m])
            continue
        out.append((start, end, token))
    return out


def analyse(text: str) -> list[str]:
    """Bag-of-tokens view for lexical scoring: the word tokens plus the squashed form of each
    model-number-like token (``"PS-LX350H"`` -> ``ps``, ``lx350h``, ``pslx350h``)."""
    out = tokens(text)
    out.extend(model_tokens(text))
    return out

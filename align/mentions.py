"""Mentions: what a piece of text or a record says, and where product mentions are in a text.

A :class:`Mention` is the unit the linker links: a text span (``start``/``end`` character
offsets into the text it came from) or a whole record (an offer, a product row: its fields
joined, ``start = 0``, ``end = len(text)``), with an optional short ``title`` (the record's
name field) and ``price``. Its token-level views are computed once, on first use.

:class:`MentionDetector` finds mention spans in free text with a dictionary built from the
catalogue's name-like literals (names, titles, labels, aliases of every linkable entity),
in one linear pass over the tokens:

1. **Tokens** (:func:`align.text.mention_tokens`): word tokens, a model-number-like token
   (``PS-LX350H``) counting as one token in squashed form (``pslx350h``).
2. **Dictionary tokens**: a token is *known* if it occurs in some entity name (plural ``s``
   / ``es`` dropped if that makes it known), or, for tokens of >= 5 characters next to a
   known token, if rapidfuzz finds a known token within edit ratio :attr:`fuzzy_cutoff`
   (typos: ``acoustimas``); at most :attr:`max_fuzzy` such look-ups per text.
3. **Runs**: maximal sequences of known tokens and model-number-like tokens separated only
   by spaces, hyphens, slashes, ``&`` or ``+`` (punctuation such as ``,`` ``.`` ``;`` and
   function words break a run).
4. **Segmentation**: each run is matched against the names sharing its tokens (inverted
   index, IDF-weighted): name ``A`` is *accepted* for run ``R`` when its matched tokens cover
   half of ``A``'s IDF mass, or cover 80 % of ``R``'s mass with at least two tokens, or
   include one of ``A``'s model numbers, or are at least three tokens and half of ``R``'s
   catalogue words (``logitech wireless mouse m315 nano steel blue`` against a catalogue
   of other Logitech mice). The accepted name with the largest matched IDF mass wins; what
   is left of the run on either side is segmented again (``"Sony turntable Bose speakers"``
   -> ``Sony turntable``, ``Bose speakers``); a side in which no name is found is absorbed
   into the span next to it, so a mention is the longest span the catalogue supports
   (``hp 45 ink cartridge``, not ``hp 45 ink``). A run in which no name is found gives its
   model-number-like tokens as mentions (an unknown model: the linker then decides,
   usually NIL). Every run of a text is segmented, so every mention is returned.

Long texts are scanned in windows of :attr:`window_chars` characters cut at whitespace
(a name straddling a cut can be split), and detection stops after :attr:`max_mentions`
spans, so the work is linear in the text and bounded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

from . import text as T

_JOIN = re.compile(r"[ \t\-/&+]{1,3}")


@dataclass(eq=False)
class Mention:
    """A span of text (or a whole record) to link; token views are computed lazily."""

    text: str
    start: int = 0
    end: int = -1
    title: str | None = None
    price: float | None = None

    def __post_init__(self):
        if self.end < 0:
            self.end = self.start + len(self.text)

    @property
    def short(self) -> str:
        return self.title if self.title else self.text

    @cached_property
    def tokens(self) -> set[str]:
        return set(T.analyse(self.text))

    @cached_property
    def title_tokens(self) -> set[str]:
        return set(T.analyse(self.short)) if self.title else self.tokens

    @cached_property
    def word_tokens(self) -> set[str]:
        return set(T.tokens(self.text))

    @cached_property
    def models(self) -> set[str]:
        return T.model_tokens(self.text)

    @cached_property
    def title_models(self) -> set[str]:
        return T.model_tokens(self.short) if self.title else self.models

    @cached_property
    def title_numbers(self) -> set[str]:
        return T.numbers(self.short)

    @cached_property
    def squashed(self) -> str:
        return T.squash(self.text)

    @cached_property
    def title_norm(self) -> str:
        return " ".join(T.tokens(self.short))


PRICE_COLUMN = re.compile(r"price|cost|amount", re.I)
TITLE_COLUMNS = ("name", "title", "label", "product", "product_name", "productname")


def record_mention(
    record: dict,
    *,
    id_col: str | None = "id",
    text_cols: list[str] | tuple[str, ...] | None = None,
    title_col: str | None = None,
    price_col: str | None = None,
) -> Mention:
    """A whole record as one mention: its text columns joined with ``". "``.

    ``text_cols`` default to every column but ``id_col`` and the price column (the first
    column named like ``price`` / ``cost`` / ``amount`` unless ``price_col`` is given);
    ``title`` is ``title_col``, else the first of ``name``, ``title``, ``label``... present,
    else the first text column. Empty cells are skipped.
    """
    columns = list(record)
    if price_col is None:
        price_col = next((c for c in columns if c != id_col and PRICE_COLUMN.search(c)), None)
    if text_cols is None:
        text_cols = [c for c in columns if c not in (id_col, price_col)]
    else:
        missing = [c for c in text_cols if c not in record]
        if missing:
            raise KeyError(
                f"record has no column(s) {', '.join(map(repr, missing))}; it has "
                f"{', '.join(map(repr, columns))}"
            )
    values = [(c, _cell(record.get(c))) for c in text_cols]
    values = [(c, v) for c, v in values if v]
    if title_col is None:
        lowered = {c.lower(): c for c, _ in values}
        title_col = next((lowered[t] for t in TITLE_COLUMNS if t in lowered), None)
        if title_col is None and values:
            title_col = values[0][0]
    title = _cell(record.get(title_col)) if title_col else ""
    text = ". ".join(v for _, v in values)
    price = T.parse_price(record.get(price_col)) if price_col else None
    return Mention(text=text, title=title or None, price=price)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


@dataclass
class _Name:
    row: int
    tokens: tuple[str, ...]
    models: frozenset[str]
    mass: float


class MentionDetector:
    """Dictionary + model-number mention detection (see the module docstring)."""

    window_chars = 20_000
    max_mentions = 256
    max_fuzzy = 2_000
    fuzzy_cutoff = 88.0
    max_postings = 2_000  # a token in more names than this is not used to find names

    def __init__(self, entities):
        self.names: list[_Name] = []
        df: dict[str, int] = {}
        rows_tokens: list[tuple[int, list[tuple[str, ...]]]] = []
        for row, aliases in enumerate(entities.aliases):
            alias_tokens = []
            seen: set[str] = set()
            for alias in aliases:
                toks = tuple(t for _, _, t in T.mention_tokens(alias) if t not in T.STOPWORDS)
                if toks:
                    alias_tokens.append(toks)
                    seen.update(toks)
            for token in seen:
                df[token] = df.get(token, 0) + 1
            rows_tokens.append((row, alias_tokens))
        n = max(len(entities), 1)
        self.idf = {t: math.log(1.0 + n / (c + 0.5)) for t, c in df.items()}
        self.postings: dict[str, list[int]] = {}
        for row, alias_tokens in rows_tokens:
            for toks in alias_tokens:
                name_id = len(self.names)
                models = frozenset(t for t in toks if T.is_model_token(t))
                self.names.append(_Name(row, toks, models, sum(self.idf[t] for t in set(toks))))
                for token in set(toks):
                    self.postings.setdefault(token, []).append(name_id)
        self.models = {t for t in self.idf if T.is_model_token(t)}
        self._vocab_list: list[str] | None = None

    # ------------------------------------------------------------------ tokens
    def _known(self, token: str) -> str | None:
        if token in self.idf:
            return token
        for suffix in ("es", "s"):
            if token.endswith(suffix) and token[: -len(suffix)] in self.idf:
                return token[: -len(suffix)]
        return None

    def _fuzzy(self, token: str, cache: dict, budget: list[int]) -> str | None:
        if token in cache:
            return cache[token]
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        from rapidfuzz import fuzz, process

        if self._vocab_list is None:
            self._vocab_list = [t for t in self.idf if len(t) >= 4]
        found = process.extractOne(
            token, self._vocab_list, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff
        )
        cache[token] = found[0] if found else None
        return cache[token]

    # ------------------------------------------------------------------ detection
    def detect(self, text: str) -> list[tuple[int, int]]:
        """Mention spans ``(start, end)`` in ``text``, in order, non-overlapping."""
        spans: list[tuple[int, int]] = []
        cache: dict[str, str | None] = {}
        budget = [self.max_fuzzy]
        for offset, window in text_windows(text, self.window_chars):
            for start, end in self._detect_window(window, cache, budget):
                spans.append((offset + start, offset + end))
                if len(spans) >= self.max_mentions:
                    return spans
        return spans

    def _detect_window(self, text: str, cache: dict, budget: list[int]):
        toks = T.mention_tokens(text)
        if not toks:
            return []
        canon: list[str | None] = []
        for _, _, token in toks:
            if token in T.STOPWORDS:
                canon.append(None)
            elif T.is_model_token(token):
                canon.append(self._known(token) or token)
            else:
                canon.append(self._known(token))
        for i, (_, _, token) in enumerate(toks):  # typos next to known tokens
            if canon[i] is None and len(token) >= 5 and token not in T.STOPWORDS:
                near = (i > 0 and canon[i - 1] is not None) or (
                    i + 1 < len(canon) and canon[i + 1] is not None
                )
                if near:
                    canon[i] = self._fuzzy(token, cache, budget)
        out: list[tuple[int, int]] = []
        run: list[int] = []
        for i in range(len(toks) + 1):
            joined = (
                i < len(toks)
                and canon[i] is not None
                and (not run or _JOIN.fullmatch(text[toks[run[-1]][1] : toks[i][0]]) is not None)
            )
            if joined:
                run.append(i)
                continue
            if run:
                out += self._segment(toks, canon, run)
            run = [i] if i < len(toks) and canon[i] is not None else []
        return out

    def _segment(self, toks, canon, run: list[int]) -> list[tuple[int, int]]:
        found = self._split(canon, run, depth=0)
        if found is None:  # no name: unknown model numbers are still mentions, one each
            return [(toks[i][0], toks[i][1]) for i in run if T.is_model_token(canon[i])]
        return [(toks[lo][0], toks[hi][1]) for lo, hi in found]

    def _split(self, canon, part: list[int], depth: int) -> list[tuple[int, int]] | None:
        """Token-index spans ``(first, last)`` of the names in ``part`` (a run), in order;
        None when no name accepts any of it. A side left over next to a name that holds no
        name of its own is absorbed into that name's span: the longest span the catalogue
        supports (``hp 45 ink cartridge``, ``logitech mouse m315 steel blue``)."""
        matched = self._best_name(canon, part) if part else None
        if matched is None or depth > 64:
            return None
        lo, hi = matched
        first, last = part[lo], part[hi]
        left = self._split(canon, part[:lo], depth + 1) if lo > 0 else []
        if left is None:
            left, first = [], part[0]
        right = self._split(canon, part[hi + 1 :], depth + 1) if hi + 1 < len(part) else []
        if right is None:
            right, last = [], part[-1]
        return [*left, (first, last), *right]

    def _best_name(self, canon, part: list[int]) -> tuple[int, int] | None:
        words = [canon[i] for i in part]
        present = set(words)
        run_mass = sum(self.idf.get(t, 0.0) for t in present)
        catalogue_words = sum(1 for t in present if t in self.idf)
        candidates: set[int] = set()
        for token in present:
            posting = self.postings.get(token)
            if posting and len(posting) <= self.max_postings:
                candidates.update(posting)
        best, best_key = None, None
        for name_id in candidates:
            name = self.names[name_id]
            common = present.intersection(name.tokens)
            mass = sum(self.idf[t] for t in common)
            accepted = (
                mass >= 0.5 * name.mass
                or (run_mass > 0 and mass >= 0.8 * run_mass and len(common) >= 2)
                or bool(common & name.models)
                or (len(common) >= 3 and 2 * len(common) >= catalogue_words)
            )
            if accepted:
                key = (mass, mass / max(name.mass, 1e-9))
                if best_key is None or key > best_key:
                    best, best_key = common, key
        if best is None:
            return None
        positions = [j for j, w in enumerate(words) if w in best]
        return positions[0], positions[-1]


def text_windows(text: str, size: int):
    """``(offset, window)`` pieces of ``text`` of about ``size`` characters, cut at a
    newline or space in the last fifth of the window where there is one."""
    start, n = 0, len(text)
    while start < n:
        end = min(start + size, n)
        if end < n:
            cut = max(text.rfind("\n", start + size * 4 // 5, end), -1)
            if cut < 0:
                cut = text.rfind(" ", start + size * 4 // 5, end)
            if cut > start:
                end = cut + 1
        yield start, text[start:end]
        start = end

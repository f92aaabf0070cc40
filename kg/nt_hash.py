"""Byte slices of a buffer interned without a Python object per slice.

:func:`group_slices` gives every slice ``buf[start:start + length]`` a group id, equal ids
for equal bytes, from a 64-bit hash computed in numpy (the slices' bytes read as
little-endian 8-byte words and folded in, FNV-style; word ``k`` of every slice that has one
is read in one numpy round, so the cost is numpy passes over the words, not Python steps
per slice). Groups are then checked exactly: every slice is compared, length and words,
with the first slice of its group, so a hash collision is never silent (the function
returns ``None`` and the caller takes a slower exact path).
:func:`first_order` renumbers a sequence of group ids in order of first appearance, and
:func:`decode_slices` (any slices) and :func:`decode_spans` (ordered, disjoint) decode
chosen slices to ``str`` in one decode and one ``str.split``. Used by :mod:`kg.nt_chunks`.
"""

from __future__ import annotations

import numpy as np

_MASKS = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [(1 << 64) - 1], np.uint64)
_MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9)
_MIX3, _SHIFT = np.uint64(0x94D049BB133111EB), np.uint64(29)
#: Longest slice hashed (a slice is read in one numpy round per 8 bytes).
LONGEST = 1 << 14
#: Zero bytes after the data, so the last slice's last word can be read whole.
PADDING = 8


def padded(data: bytes) -> np.ndarray:
    """``data`` plus :data:`PADDING` zero bytes, as uint8 (what the functions here read)."""
    return np.frombuffer(data + bytes(PADDING), np.uint8)


def _words(buf: np.ndarray) -> np.ndarray:
    """Unaligned view: element ``i`` is the little-endian uint64 of ``buf[i:i + 8]``."""
    return np.ndarray((len(buf) - PADDING + 1,), "<u8", buffer=buf, strides=(1,))


def _hash(buf, starts, lengths) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The slices' hashes (uint64), their order by decreasing word count, and the words:
    ``words[k]`` is word ``k`` (zero past the end) of the slices, in that order, that have
    one (a prefix of it). One numpy round per word index, not a Python step per slice."""
    count = np.maximum((lengths + 7) >> 3, 1)
    small = count.max() < (1 << 15)  # then a radix sort
    order = np.argsort(-(count.astype(np.int16) if small else count), kind="stable")
    starts, lengths = starts[order], lengths[order]
    active = np.searchsorted(-count[order], -np.arange(1, int(count.max()) + 2), "right")
    view = _words(buf)
    hashes = lengths.astype(np.uint64) * _MIX3
    words = []
    for k in range(len(active) - 1):
        m, last = active[k], active[k + 1]
        word = view[starts[:m] + 8 * k]
        if last < m:  # the slices whose last word this is
            word[last:] &= _MASKS[lengths[last:m] - 8 * k]
        words.append(word)
        mixed = hashes[:m]
        mixed ^= word
        mixed *= _MIX1
        mixed ^= mixed >> _SHIFT
    hashes *= _MIX2
    hashes ^= hashes >> np.uint64(32)
    out = np.empty_like(hashes)
    out[order] = hashes
    return out, order, words


def hash_slices(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """64-bit hash of each slice (uint64, shape ``(n,)``); ``buf`` from :func:`padded`."""
    if len(starts) == 0:
        return np.zeros(0, np.uint64)
    return _hash(buf, starts, lengths)[0]


def group_slices(
    buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, bits: int = 64
) -> tuple[np.ndarray, np.ndarray] | None:
    """Group equal slices: ``(group, first)``, or ``None`` on a hash collision or a slice
    over :data:`LONGEST` bytes.

    Args:
        buf: from :func:`padded`; starts, lengths: int64, shape ``(n,)``, within the data.
        bits: hash bits kept (at most ``64 - bit_length(n)``); small values force
            collisions, for tests.

    Returns:
        ``group`` (int64, shape ``(n,)``): group ids ``0..d-1`` numbered in order of first
        appearance; ``first`` (int64, shape ``(d,)``): each group's first slice.
    """
    n = len(starts)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if lengths.max() > LONGEST:
        return None
    low = max(1, n.bit_length())
    keep = max(1, min(bits, 64 - low))
    hashes, order, words = _hash(buf, starts, lengths)
    key = ((hashes >> np.uint64(64 - keep)) << np.uint64(low)) | np.arange(n, dtype=np.uint64)
    key.sort()  # by hash, then by position: each group's first slice leads it
    position = (key & np.uint64((1 << low) - 1)).astype(np.int64)
    key >>= np.uint64(low)
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    leaders = position[new]
    rank = np.empty(len(leaders), np.int64)
    rank[np.argsort(leaders)] = np.arange(len(leaders))
    group = np.empty(n, np.int64)
    group[position] = rank[np.cumsum(new) - 1]
    first = np.sort(leaders)
    leader = first[group]
    if not np.array_equal(lengths, lengths[leader]):
        return None
    ranked = np.empty(n, np.int64)  # each slice's place in ``order``
    ranked[order] = np.arange(n)
    theirs = ranked[leader[order]]  # same length: their words are in the same rounds
    if not all(np.array_equal(w, w[theirs[: len(w)]]) for w in words):
        return None
    return group, first


def first_order(group: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Renumber ``group`` (ids < ``groups``) by first appearance: ``(distinct, local)``,
    the distinct ids in order of first appearance and each element's index in it."""
    n = len(group)
    first = np.full(groups, n, np.int64)
    np.minimum.at(first, group, np.arange(n, dtype=np.int64))
    present = np.flatnonzero(first < n)
    distinct = present[np.argsort(first[present])]
    rank = np.empty(groups, np.int64)
    rank[distinct] = np.arange(len(distinct))
    return distinct, rank[group]


def decode_slices(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> list[str]:
    """The slices decoded as UTF-8 (slices must not hold ``\\n``; raises UnicodeDecodeError)."""
    if len(starts) == 0:
        return []
    span = lengths + 1
    out_start = np.cumsum(span) - span
    index = np.arange(int(span.sum()), dtype=np.int64) + np.repeat(starts - out_start, span)
    gathered = buf[index]
    gathered[out_start + lengths] = 10
    return str(memoryview(gathered[:-1]), "utf-8").split("\n")


def decode_spans(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> list[str]:
    """:func:`decode_slices` for spans in increasing order, each followed by at least one
    byte before the next: one boolean mask over the buffer, no index arrays per byte."""
    if len(starts) == 0:
        return []
    bounds = np.empty(2 * len(starts) + 2, np.int64)
    bounds[0], bounds[-1] = 0, len(buf)
    bounds[1:-1:2], bounds[2:-1:2] = starts, starts + lengths + 1  # with the byte after
    keep = np.zeros(len(bounds) - 1, bool)
    keep[1::2] = True
    gathered = buf[np.repeat(keep, np.diff(bounds))]
    gathered[np.cumsum(lengths + 1) - 1] = 10
    return str(memoryview(gathered[:-1]), "utf-8").split("\n")

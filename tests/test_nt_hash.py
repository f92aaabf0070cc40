"""Byte-slice interning (kg.nt_hash) and the pyoxigraph checks of distinct terms
(kg.nt_check) that the vectorised N-Triples chunk parser stands on."""

from __future__ import annotations

import random

import numpy as np
import pyoxigraph as ox
import pytest

from kg.nt_check import NotCanonical, check_terms, unescape
from kg.nt_hash import (
    LONGEST,
    decode_slices,
    decode_spans,
    first_order,
    group_slices,
    hash_slices,
    padded,
)


def _slices(tokens: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens laid out space-separated in one buffer: (padded buffer, starts, lengths)."""
    starts, position = [], 0
    for token in tokens:
        starts.append(position)
        position += len(token) + 1
    data = b" ".join(tokens)
    return padded(data), np.array(starts, np.int64), np.array([len(t) for t in tokens], np.int64)


def _reference(tokens: list[bytes]) -> tuple[list[int], list[int]]:
    """Group ids by first appearance and each group's first index, with a dict."""
    ids: dict[bytes, int] = {}
    first = []
    for i, token in enumerate(tokens):
        if token not in ids:
            ids[token] = len(ids)
            first.append(i)
    return [ids[t] for t in tokens], first


def test_group_slices_matches_a_dictionary_on_every_length_around_word_edges():
    rng = random.Random(7)
    vocabulary = [
        bytes(rng.choice(b"ab<>:/_#0123456789\xc3\xa9") for _ in range(length))
        for length in (0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 65, 200)
        for _ in range(3)
    ]
    vocabulary += [b"same-prefix-long-enough-for-words-X", b"same-prefix-long-enough-for-words-Y"]
    tokens = [rng.choice(vocabulary) for _ in range(3000)] + [vocabulary[-1]]  # last at the end
    buf, starts, lengths = _slices(tokens)
    group, first = group_slices(buf, starts, lengths)
    expected_group, expected_first = _reference(tokens)
    assert group.tolist() == expected_group and first.tolist() == expected_first
    assert len(set(hash_slices(buf, starts, lengths)[first].tolist())) == len(first)


def test_a_forced_hash_collision_is_detected_never_merged():
    tokens = [b"<http://a.org/1>", b"<http://a.org/2>", b"<http://a.org/3>", b"<http://a.org/1>"]
    buf, starts, lengths = _slices(tokens)
    assert group_slices(buf, starts, lengths, bits=64) is not None
    # one hash bit for three distinct slices: two of them must share a hash
    assert group_slices(buf, starts, lengths, bits=1) is None
    # equal slices alone never collide, whatever the width
    buf, starts, lengths = _slices([b"<http://a.org/1>"] * 5)
    group, first = group_slices(buf, starts, lengths, bits=1)
    assert group.tolist() == [0] * 5 and first.tolist() == [0]


def test_a_slice_over_the_hashed_length_is_left_to_the_exact_path():
    buf, starts, lengths = _slices([b"<a>", b"<" + b"x" * LONGEST + b">"])
    assert group_slices(buf, starts, lengths) is None


def test_first_order_and_decode_slices():
    distinct, local = first_order(np.array([5, 2, 5, 0, 2]), 6)
    assert distinct.tolist() == [5, 2, 0] and local.tolist() == [0, 1, 0, 2, 1]
    buf, starts, lengths = _slices([t.encode() for t in ("é", "", "<ü>")])
    assert decode_slices(buf, starts[::-1], lengths[::-1]) == ["<ü>", "", "é"]
    with pytest.raises(UnicodeDecodeError):
        decode_slices(buf, starts[:1], lengths[:1] - 1)  # half a character
    assert decode_spans(buf, starts, lengths) == ["é", "", "<ü>"]
    assert decode_spans(buf, starts[1:], lengths[1:]) == ["", "<ü>"]
    assert decode_spans(buf, starts[:0], lengths[:0]) == []


@pytest.mark.parametrize(
    "token",
    [
        "<http://a.org/a b>",  # two terms
        "<http://a.org/\\u0041>",  # an escape: the value differs from the token
        "<http://a.org/a>b>",
        "<http://a.org/s> <http://a.org/p>",
        '<http://a.org/x">',
        "_:a.",
        "<not an iri>",
        "<relative>",
    ],
)
def test_check_terms_refuses_what_is_not_exactly_one_term(token):
    with pytest.raises(NotCanonical):
        check_terms(["<http://a.org/ok>", token, "_:b0"], lenient=False)


def test_check_terms_accepts_terms_and_lenient_accepts_invalid_iris():
    check_terms(["<http://a.org/é?q=1#f>", "_:b-1", "<urn:x>", "<http://a.org/p>"], lenient=False)
    with pytest.raises(NotCanonical):
        check_terms(["<http://a.org/{x}>"], lenient=False)
    check_terms(["<http://a.org/{x}>"], lenient=True)


def _pyoxigraph_value(body: str) -> str:
    (triple,) = ox.parse(f'<a:a> <a:a> "{body}" .'.encode(), ox.RdfFormat.N_TRIPLES)
    return triple.object.value


def test_unescape_reads_escapes_as_pyoxigraph_does_in_one_pass():
    bodies = [
        r"plain",
        r"Caf\u00e9 \"Noir\"\n\\ ok",
        r"\U0001F600 \t\b\f\r\'",
        "raw ü ✓",
        r"with \u0000 a NUL",  # the batch separator inside a body: read one by one
        "",
    ]
    assert unescape(bodies) == [_pyoxigraph_value(b) for b in bodies]
    assert unescape([r"ok", r"lone \uD800 surrogate"]) is None
    assert unescape([r"ok", 'raw " quote']) is None
    assert unescape([r"ok", r"python-only \x41"]) is None
    assert unescape([r"trailing \\", r"\\"]) == ["trailing \\", "\\"]

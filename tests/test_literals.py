"""kg.literals.classify_literals: kinds, numbers and values kept as text."""

import math

import numpy as np

from kg.literals import KINDS, XSD, classify_literals

DATATYPES = ["", XSD + "string", XSD + "decimal", XSD + "boolean", XSD + "date",
             XSD + "dateTime", XSD + "gYear"]  # fmt: skip


def classify(rows: list[tuple[str, str]], image: tuple[int, ...] = ()):
    values = [value for value, _ in rows]
    dtype = np.array([DATATYPES.index(XSD + t if t else "") for _, t in rows])
    is_image = np.zeros(len(rows), dtype=bool)
    is_image[list(image)] = True
    kind, numbers, invalid = classify_literals(values, dtype, DATATYPES, is_image)
    return [KINDS[k] for k in kind], numbers, invalid


def test_each_kind_and_its_number():
    kinds, numbers, invalid = classify([
        ("red", "string"), ("12.5", "decimal"), ("true", "boolean"), ("1970-01-11", "date"),
        ("img.jpg", ""), ("http://x/p.png", "string"),
    ], image=(5,))  # fmt: skip
    assert kinds == ["text", "number", "boolean", "date", "image", "image"]
    assert numbers[1:4].tolist() == [12.5, 1.0, 10.0]
    assert math.isnan(numbers[0]) and math.isnan(numbers[4]) and invalid == []


def test_time_zones_and_partial_dates_parse_one_at_a_time():
    kinds, numbers, _ = classify([
        ("1970-01-02T12:00:00Z", "dateTime"), ("1970-01-02T12:00:00+02:00", "dateTime"),
        ("1970-01-03", "date"), ("1971", "gYear"),
    ])  # fmt: skip
    assert kinds == ["date"] * 4
    assert numbers.tolist() == [1.5, 1.5, 2.0, 365.0]


def test_unparseable_values_are_kept_as_text_and_named():
    kinds, numbers, invalid = classify([
        ("n/a", "decimal"), ("3", "decimal"), ("9999999999-01-01", "date"),
        ("1970-01-05", "date"), ("yes please", "boolean"),
    ])  # fmt: skip
    assert kinds == ["text", "number", "text", "date", "text"]
    assert numbers[1] == 3.0 and numbers[3] == 4.0
    assert sorted(invalid) == sorted(
        ["'n/a'^^decimal", "'9999999999-01-01'^^date", "'yes please'^^boolean"]
    )


def test_no_literals():
    kind, numbers, invalid = classify_literals(
        [], np.zeros(0, np.int64), [], np.zeros(0, bool)
    )
    assert kind.dtype == np.int8 and len(kind) == len(numbers) == 0 and invalid == []

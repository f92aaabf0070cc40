"""Property: any input to a catalogue reader either loads or raises the project's user error.

Hypothesis picks a real seed (the sample catalogue, GoodRelations RDF/XML, an OWL file with
internal entities, a product table + mapping), a sequence of mutation operators from
``benchmarks/fuzz.py`` (byte flips, truncation, splices, nesting bombs, entity
declarations, bad escapes, odd characters, bad encodings) and text of its own to insert.
The input is then read, saved as a workspace with its SPARQL store and read back
(``benchmarks.fuzz.run_task``); anything but success or a user-facing error
(``kgfusion.cli.user_errors()``: ``RdfError``, ``TableError``...) fails. Bounded
(``max_examples`` small, no deadline) so it stays a few seconds per format;
``python benchmarks/fuzz.py`` runs the same operators over many more inputs in
capped worker processes.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import tempfile
import warnings
from functools import cache
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kgfusion.cli import user_errors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("kgf_fuzz", ROOT / "benchmarks" / "fuzz.py")
fuzz = sys.modules.setdefault("kgf_fuzz", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fuzz)

# huge_literal (17 MiB inputs) is left to tests/test_rdf_security.py and benchmarks/fuzz.py
OPS = sorted(set(fuzz.MUTATIONS) - {"huge_literal"})
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def seeds() -> dict[str, list]:
    return fuzz.seeds()


mutations = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 2**32 - 1)), max_size=3)
inserts = st.one_of(st.none(), st.tuples(st.floats(0, 1), st.text(max_size=40)))


def mutated(seed: bytes, fmt: str, ops, insert) -> bytes:
    for op, rng_seed in ops:
        seed, _ = fuzz.mutate(random.Random(rng_seed), seed, fmt, ops=[op])
    if insert is not None:
        where, text = insert
        k = int(where * len(seed))
        seed = seed[:k] + text.encode("utf-8", "surrogatepass") + seed[k:]
    return seed


def loads_or_user_error(task: dict, folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fuzz.run_task(task, folder)
        except user_errors():
            pass


@pytest.mark.parametrize("fmt", ["nt", "ttl", "rdf", "jsonld"])
@FUZZ
@given(data=st.data(), ops=mutations, insert=inserts, lenient=st.booleans())
def test_rdf_reader_loads_or_raises_user_error(fmt, data, ops, insert, lenient):
    seed = data.draw(st.sampled_from(seeds()[fmt]), label="seed")
    content = mutated(seed, fmt, ops, insert)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input.{fmt}"
        path.write_bytes(content)
        loads_or_user_error({"format": fmt, "path": str(path), "lenient": lenient}, Path(tmp))


@FUZZ
@given(
    data=st.data(),
    ops=mutations,
    insert=inserts,
    mapping_ops=st.lists(
        st.tuples(st.sampled_from(["odd_chars", "splice", "truncate"]), st.integers(0, 2**32 - 1)),
        max_size=1,
    ),
)
def test_table_mapping_reader_loads_or_raises_user_error(data, ops, insert, mapping_ops):
    table, mapping = data.draw(st.sampled_from(seeds()["csv"]), label="seed")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "table.csv").write_bytes(mutated(table, "csv", ops, insert))
        (folder / "mapping.toml").write_bytes(mutated(mapping, "csv", mapping_ops, None))
        task = {
            "format": "csv",
            "path": str(folder / "table.csv"),
            "mapping": str(folder / "mapping.toml"),
            "lenient": False,
        }
        loads_or_user_error(task, folder)


def test_mapping_that_is_not_utf8_is_a_user_error(tmp_path):
    (tmp_path / "table.csv").write_bytes(fuzz.CSV_SEED)
    (tmp_path / "mapping.toml").write_bytes(fuzz.MAPPING_SEED.replace(b"shop", b"sh\xd7p"))
    task = {"format": "csv", "path": str(tmp_path / "table.csv"), "lenient": False}
    task["mapping"] = str(tmp_path / "mapping.toml")
    loads_or_user_error(task, tmp_path)

"""The WDC Product Corpus pair layout (LSPC 2.0), read into the DeepMatcher layout.

Web Data Commons' product-matching sets (Primpeli, Peeters and Bizer, "The WDC Training
Dataset and Gold Standard for Large-Scale Product Matching", WWW 2019 companion) are offer
pairs, one JSON object per line (gzip transparently), not two tables::

    {"id_left": 16876009, "title_left": "...", "description_left": "...",
     "brand_left": "...", "price_left": null, "specTableContent_left": "...",
     "id_right": ..., "title_right": "...", ..., "label": "1", "pair_id": "16876009#16248399"}

:func:`read_wdc_pairs` reads and checks such a file (a line that is not JSON, or lacks
``id_left`` / ``id_right`` / ``label``, is refused with its file and line number);
:func:`wdc_tables` turns pairs into the DeepMatcher layout the linker trains on: the
**right** offers become the catalogue (``tableA``), the **left** offers the mentions
(``tableB``), and each pair ``(ltable_id = id_right, rtable_id = id_left, label)``.
:func:`split_pair_ids` splits pair ids into train / valid / test by a stable hash, so the
same pair lands in the same part whatever the file or the seed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

ATTRIBUTES = ("title", "brand", "description", "price", "specTableContent")
REQUIRED = ("id_left", "id_right", "label")


class WDCError(ValueError):
    """A WDC pair file that cannot be read; the message names the file and line."""


def _open(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_wdc_pairs(path) -> list[dict]:
    """The pair objects of a WDC JSON-lines file (``.json`` or ``.json.gz``), each with a
    ``pair_id`` (``"<id_left>#<id_right>"`` when the file has none) and an int ``label``."""
    path = Path(path)
    if not path.is_file():
        raise WDCError(f"{path}: no such WDC pair file")
    out = []
    with _open(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise WDCError(f"{path}:{number}: not a JSON object ({err.msg})") from None
            missing = [k for k in REQUIRED if not isinstance(row, dict) or k not in row]
            if missing:
                raise WDCError(f"{path}:{number}: missing {', '.join(missing)}")
            try:
                row["label"] = int(row["label"])
            except (TypeError, ValueError):
                raise WDCError(f"{path}:{number}: label {row['label']!r} is not 0 or 1") from None
            if row["label"] not in (0, 1):
                raise WDCError(f"{path}:{number}: label {row['label']!r} is not 0 or 1")
            row.setdefault("pair_id", f"{row['id_left']}#{row['id_right']}")
            out.append(row)
    if not out:
        raise WDCError(f"{path}: no pairs")
    return out


def _offer(row: dict, side: str) -> dict:
    record = {"id": str(row[f"id_{side}"])}
    for name in ATTRIBUTES:
        value = row.get(f"{name}_{side}")
        record[name] = "" if value is None else str(value).strip()
    return record


def wdc_tables(pairs: list[dict]) -> tuple[dict, dict, list[tuple[str, str, int]]]:
    """``(catalogue, mentions, pairs)``: right offers by id (``{id: record}``), left offers
    by id, and ``(right id, left id, label)`` per pair (the DeepMatcher columns ``ltable_id,
    rtable_id, label``). Records have the columns ``id`` + :data:`ATTRIBUTES`."""
    catalogue: dict[str, dict] = {}
    mentions: dict[str, dict] = {}
    out = []
    for row in pairs:
        right, left = _offer(row, "right"), _offer(row, "left")
        catalogue.setdefault(right["id"], right)
        mentions.setdefault(left["id"], left)
        out.append((right["id"], left["id"], int(row["label"])))
    return catalogue, mentions, out


def split_pair_ids(pair_ids, valid: float = 0.1, test: float = 0.1, salt: str = "kgf"):
    """``{pair_id: "train" | "valid" | "test"}`` by a stable hash of ``salt + pair_id``."""
    out = {}
    for pid in pair_ids:
        h = int(hashlib.sha1(f"{salt}:{pid}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        out[pid] = "test" if h < test else "valid" if h < test + valid else "train"
    return out


def _write_csv(path: Path, header: list[str], rows) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def wdc_to_deepmatcher(train_file, out_dir, test_file=None, *, valid: float = 0.1,
                       test: float = 0.1, split_file=None) -> dict:  # fmt: skip
    """Write ``tableA.csv`` / ``tableB.csv`` / ``train.csv`` / ``valid.csv`` / ``test.csv``
    (the DeepMatcher layout) into ``out_dir`` from WDC pair files; returns the counts.

    Without ``test_file`` the pairs are split by :func:`split_pair_ids` of ``split_file``'s
    pairs (default ``train_file``; pass the larger file so that the small and the medium
    training sets are tested on the same pairs): its test part is the test set and is left
    out of training. With ``test_file`` every pair of it is a test pair, and pairs of
    ``train_file`` with the same pair id are left out of training. The catalogue and the
    mentions hold the offers of all pairs (test ones included)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_rows = read_wdc_pairs(train_file)
    if test_file is not None:
        test_rows = read_wdc_pairs(test_file)
        held = {r["pair_id"] for r in test_rows}
        parts = split_pair_ids([r["pair_id"] for r in train_rows], valid, 0.0)
    else:
        reference = read_wdc_pairs(split_file) if split_file else train_rows
        split = split_pair_ids([r["pair_id"] for r in reference + train_rows], valid, test)
        held = {pid for pid, part in split.items() if part == "test"}
        test_rows = [r for r in reference if r["pair_id"] in held]
        parts = split
    kept = [r for r in train_rows if r["pair_id"] not in held]
    catalogue, mentions, _ = wdc_tables(kept + test_rows)
    _write_csv(out_dir / "tableA.csv", ["id", *ATTRIBUTES],
               ([r[c] for c in ("id", *ATTRIBUTES)] for r in catalogue.values()))  # fmt: skip
    _write_csv(out_dir / "tableB.csv", ["id", *ATTRIBUTES],
               ([r[c] for c in ("id", *ATTRIBUTES)] for r in mentions.values()))  # fmt: skip
    header = ["ltable_id", "rtable_id", "label"]
    counts = {}
    for name, rows in (
        ("train", [r for r in kept if parts[r["pair_id"]] != "valid"]),
        ("valid", [r for r in kept if parts[r["pair_id"]] == "valid"]),
        ("test", test_rows),
    ):
        _, _, triples = wdc_tables(rows)
        _write_csv(out_dir / f"{name}.csv", header, triples)
        counts[name] = {"pairs": len(triples), "matches": sum(t[2] for t in triples)}
    counts["catalogue"], counts["mentions"] = len(catalogue), len(mentions)
    return counts

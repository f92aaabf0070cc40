"""Fuzz the catalogue readers: N mutated inputs per format, each in a capped worker process.

Formats: N-Triples, Turtle, RDF/XML, JSON-LD (``kg.load_rdf``, then a workspace save with
its SPARQL store and a load back) and CSV + TOML mapping (``kg.tabular.table_to_rdf``, then
the same). Inputs come from small real seeds (the repo's sample catalogue, the GoodRelations
RDF/XML files and the Abt-Buy table from ../shared/data when present, an OWL file with
internal entities) mutated by byte flips, truncation, splices, nesting bombs, entity
declarations, huge literals, bad escapes, odd characters and bad encodings.

Each input runs in one of a pool of reused worker processes (``--workers``, default the
number of CPUs) under an address-space cap (``resource.setrlimit(RLIMIT_AS)``) and a
per-input timeout. Outcomes:

- ``ok``: loaded (and saved, and read back with the same nodes);
- ``user error``: one of the project's user-facing errors (what ``kgf`` prints without a
  traceback: ``RdfError``, ``TableError``, ...);
- ``unhandled``: any other exception (a bug: it would be a traceback);
- ``crash``: the worker died from a signal (SIGSEGV, SIGABRT from a failed allocation...);
- ``hang``: the input ran past the timeout (the worker is killed and replaced).

Failing inputs are saved under ``--failures`` to reproduce them. The last line is
``summary: fuzz N inputs | unhandled U | crashes C | hangs H``.

    python benchmarks/fuzz.py                 # 10,000 inputs per format
    python benchmarks/fuzz.py --n 500 --formats nt ttl
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KGF_SHARED_DATA", ROOT.parent / "shared" / "data"))
FORMATS = ("nt", "ttl", "rdf", "jsonld", "csv")
OUTCOMES = ("ok", "user error", "unhandled", "crash", "hang")
HUGE = 17 << 20  # past pyoxigraph's 16 MiB token buffer

OWL_SEED = b"""<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
    <!ENTITY owl "http://www.w3.org/2002/07/owl#" >
    <!ENTITY xsd "http://www.w3.org/2001/XMLSchema#" >
    <!ENTITY shop "http://example.org/shop#" >
]>
<rdf:RDF xmlns="&shop;" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
     xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#" xmlns:owl="&owl;">
    <owl:Class rdf:about="&shop;Product"><rdfs:label xml:lang="en">Product</rdfs:label></owl:Class>
    <Product rdf:about="&shop;p1">
        <price rdf:datatype="&xsd;decimal">9.99</price>
        <released rdf:datatype="&xsd;date">2024-05-01</released>
        <rdfs:label xml:lang="en">Red car</rdfs:label>
        <rdfs:seeAlso rdf:resource="&shop;p2"/>
    </Product>
</rdf:RDF>
"""
CSV_SEED = (
    b"id,name,description,price\n"
    b'1,red car,"a red toy car, 1:43",12.50\n2,track,wooden track,\n3,"ring ""gold""",ring,120\n'
)
MAPPING_SEED = b"""[table]
format = "csv"
[entity]
id = "id"
base = "https://example.org/shop/product/"
type = "schema:Product"
[[literal]]
column = "name"
predicate = "schema:name"
language = "en"
[[literal]]
column = "description"
predicate = "schema:description"
[[literal]]
column = "price"
predicate = "schema:price"
datatype = "xsd:decimal"
"""


# --------------------------------------------------------------------------- seeds
def seeds() -> dict[str, list]:
    """Seed inputs per format: bytes, or (table, mapping) bytes for ``csv``."""
    import pyoxigraph as ox

    from kg.samples import write_sample_catalogue

    with tempfile.TemporaryDirectory() as tmp:
        ttl = write_sample_catalogue(tmp, n_products=4, image_size=16).path.read_bytes()
    triples = [q.triple for q in ox.parse(ttl, ox.RdfFormat.TURTLE)]
    out = {
        "ttl": [ttl],
        "nt": [ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)],
        "rdf": [OWL_SEED, ox.serialize(triples[:40], format=ox.RdfFormat.RDF_XML)],
        "jsonld": [ox.serialize(triples[:60], format=ox.RdfFormat.JSON_LD)],
        "csv": [(CSV_SEED, MAPPING_SEED)],
    }
    aifb = SHARED / "rdf" / "aifb" / "aifb_stripped.nt.gz"
    if aifb.is_file():
        with gzip.open(aifb, "rb") as fh:
            out["nt"].append(b"".join(fh.readline() for _ in range(60)))
    for name in ("datasheets.rdf", "shop-vocabulary.rdf"):
        path = SHARED / "rdf" / "goodrelations" / name
        if path.is_file():
            out["rdf"].append(path.read_bytes())
    abt = SHARED / "matching" / "abt_buy" / "tableA.csv"
    mapping = ROOT / "examples" / "abt_buy.toml"
    if abt.is_file() and mapping.is_file():
        with open(abt, "rb") as fh:
            out["csv"].append((b"".join(fh.readline() for _ in range(12)), mapping.read_bytes()))
    return out


# --------------------------------------------------------------------------- mutations
NESTING = {
    "nt": (b"<http://a/s> <http://a/p> ", b"[ <http://a/p> ", b" ]"),
    "ttl": (b"<http://a/s> <http://a/p> ", b"[ <http://a/p> ", b" ]"),
    "rdf": (b"", b"<rdf:Description><ex:p>", b"</ex:p></rdf:Description>"),
    "jsonld": (b"", b'{"@id": "http://a/b", "http://a/p": ', b"}"),
    "csv": (b"", b'"', b'"'),
}
ENTITIES = [
    b'<!DOCTYPE rdf:RDF [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>',
    b'<!DOCTYPE rdf:RDF [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE rdf:RDF [<!ENTITY x PUBLIC "-//x//EN" "http://example.org/x">]>',
    b'<!DOCTYPE rdf:RDF [<!ENTITY % p "x"> %p;]>',
    b'<!DOCTYPE rdf:RDF [<!ENTITY a "&b;"><!ENTITY b "&a;">]>',
    b'<!DOCTYPE rdf:RDF PUBLIC "-//W3C//DTD RDF//EN" "http://www.w3.org/rdf.dtd">',
    b'<!DOCTYPE rdf:RDF [<!ENTITY xsd "http://www.w3.org/2001/XMLSchema#">]>',
]
ENTITY_REFS = [b"&a;", b"&f;", b"&x;", b"&xsd;", b"&undefined;", b"&#0;", b"&#x110000;"]
ESCAPES = [
    b"\\u000A", b"\\u000D", b"\\u0000", b"\\u2028", b"\\uD800", b"\\U0010FFFF", b"\\U00110000",
    b"\\x", b"\\", b"\\u12", b"\\n", b'\\"', b"%zz", b"%",
]  # fmt: skip
ODD = [
    b"\x00", b"\r", b"\r\n", b"\n", b"\t", "\u00a0".encode(), "\u2028".encode(), "\u0085".encode(),
    b" ", b"[", b"]", b"{", b"}", b"<", b">", b'"', b"'", b",", b";", b".", b"@en_US", b"^^",
    b"_:", b"#", b"\xef\xbb\xbf", b'"9999999999999999999999-01-01"^^<http://www.w3.org/2001/'
    b'XMLSchema#date>', b'xml:lang="en_US"', b"rdf:ID=\"1x\"", b'"@context": "http://x/"',
    b'"@context": {"@vocab": 5}', b'"@id": "a b[1]"', b"<http://a/b c[1]>", b"1e999999",
]  # fmt: skip
BAD_BYTES = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3(",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xc0\xaf",
]


def _at(rng: random.Random, data: bytes) -> int:
    return rng.randint(0, len(data))


def flip(rng, data, fmt):
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 8])):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def truncate(rng, data, fmt):
    return data[: rng.randint(0, len(data))]


def splice(rng, data, fmt):
    i, j = sorted((_at(rng, data), _at(rng, data)))
    k = _at(rng, data)
    return data[:k] + data[i:j] + data[k:]


def nesting_bomb(rng, data, fmt):
    head, opening, closing = NESTING[fmt]
    depth = rng.choice([100, 600, 3000, 20000])
    bomb = head + opening * depth + b"1" + closing * rng.choice([depth, depth // 2, 0])
    k = _at(rng, data) if rng.random() < 0.5 else len(data)
    return data[:k] + bomb + data[k:]


def entity_decl(rng, data, fmt):
    decl = rng.choice(ENTITIES)
    start = data.find(b"?>") + 2 if data.startswith(b"<?xml") else 0
    data = data[:start] + b"\n" + decl + b"\n" + data[start:]
    for _ in range(rng.randint(0, 3)):
        k = data.rfind(b">", 0, max(1, _at(rng, data))) + 1
        data = data[:k] + rng.choice(ENTITY_REFS) + data[k:]
    return data


def huge_literal(rng, data, fmt):
    size = rng.choice([100_000, HUGE])
    filler = rng.choice([b"x", b"ab", b"\xc3\xa9"]) * (size // 2 if size == HUGE else size)
    k = data.find(b'"', _at(rng, data))
    if k < 0 or fmt == "rdf":
        k = data.find(b">", _at(rng, data)) if fmt == "rdf" else -1
    if k < 0:
        return data + filler
    return data[: k + 1] + filler + data[k + 1 :]


def bad_escape(rng, data, fmt):
    for _ in range(rng.randint(1, 4)):
        k = _at(rng, data)
        data = data[:k] + rng.choice(ESCAPES) + data[k:]
    return data


def odd_chars(rng, data, fmt):
    for _ in range(rng.randint(1, 6)):
        k = _at(rng, data)
        data = data[:k] + rng.choice(ODD) + data[k:]
    return data


def bad_encoding(rng, data, fmt):
    choice = rng.random()
    if choice < 0.2:
        return data.decode("utf-8", "replace").encode("utf-16")
    if choice < 0.4:
        return data.decode("utf-8", "replace").encode("latin-1", "replace")
    for _ in range(rng.randint(1, 4)):
        k = _at(rng, data)
        data = data[:k] + rng.choice(BAD_BYTES) + data[k:]
    return data


MUTATIONS = {
    "flip": flip, "truncate": truncate, "splice": splice, "nesting_bomb": nesting_bomb,
    "entity_decl": entity_decl, "huge_literal": huge_literal, "bad_escape": bad_escape,
    "odd_chars": odd_chars, "bad_encoding": bad_encoding,
}  # fmt: skip
WEIGHTS = {"huge_literal": 0.3, "nesting_bomb": 0.6, "entity_decl": 0.6}


def mutate(rng: random.Random, data: bytes, fmt: str, ops: list[str] | None = None):
    """Apply 1-3 (mostly 1) weighted random mutation operators (or ``ops``); returns (bytes, ops)."""
    if ops is None:
        names = list(MUTATIONS)
        weights = [WEIGHTS.get(n, 1.0) for n in names]
        ops = rng.choices(names, weights, k=rng.choices([1, 2, 3], [6, 3, 1])[0])
    for op in ops:
        data = MUTATIONS[op](rng, data, fmt)
    return data, ops


def make_input(rng: random.Random, fmt: str, seed_list: list, folder: Path, i: int) -> dict:
    """Write one mutated input under ``folder``; returns the worker task."""
    seed = rng.choice(seed_list)
    task = {"format": fmt, "lenient": rng.random() < 0.4, "gzip": rng.random() < 0.1}
    if fmt == "csv":
        table, mapping = seed
        table, ops = mutate(rng, table, fmt)
        if rng.random() < 0.3:
            mapping, more = mutate(
                rng, mapping, fmt, ops=[rng.choice(["flip", "odd_chars", "truncate", "splice"])]
            )
            ops = [*ops, *(f"mapping:{op}" for op in more)]
        path = folder / f"csv-{i}.csv"
        path.write_bytes(table)
        (folder / f"csv-{i}.toml").write_bytes(mapping)
        task["mapping"] = str(folder / f"csv-{i}.toml")
    else:
        data, ops = mutate(rng, seed, fmt)
        path = folder / f"{fmt}-{i}.{fmt}"
        if task["gzip"]:
            path = path.with_name(path.name + ".gz")
            data = gzip.compress(data)
            if rng.random() < 0.5:
                data = data[: rng.randint(0, len(data))]
        path.write_bytes(data)
    task.update(path=str(path), ops=ops, index=i)
    return task


# --------------------------------------------------------------------------- worker
def run_task(task: dict, scratch: Path) -> None:
    """Load (convert) one input, save it as a workspace with its SPARQL store, read it back."""
    import kg
    from kg.graph import load_graph

    path = Path(task["path"])
    if task["format"] == "csv":
        from kg.tabular import Mapping, table_to_rdf

        ttl = scratch / "catalogue.ttl"
        table_to_rdf(path, Mapping.from_toml(task["mapping"]), ttl)
        path = ttl
    graph = kg.load_rdf(path, lenient=task["lenient"])
    ws = graph.save(scratch / "ws", overwrite=True)
    loaded = load_graph(ws)
    if loaded.nodes != graph.nodes or loaded.lit_value != graph.lit_value:
        raise AssertionError("the workspace read back differs from the graph saved")


def worker(memory_mb: int) -> None:
    """Read JSON tasks on stdin, answer one JSON line per task on stdout."""
    import resource
    import warnings

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    warnings.simplefilter("ignore")
    sys.path.insert(0, str(ROOT))
    import kg.tabular  # noqa: F401  (imported once, not per task)
    from kgfusion.cli import user_errors

    scratch = Path(tempfile.mkdtemp(prefix="kgf-fuzz-worker-"))
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not break the protocol
    for line in sys.stdin:
        task = json.loads(line)
        result = {"outcome": "ok"}
        try:
            run_task(task, scratch)
        except Exception as err:
            if isinstance(err, user_errors()):
                result = {"outcome": "user error", "error": f"{type(err).__name__}"}
            else:
                frames = traceback.extract_tb(err.__traceback__)
                where = [
                    f"{Path(f.filename).name}:{f.lineno} {f.name}"
                    for f in frames
                    if "/kg/" in f.filename or f is frames[-1]
                ][-3:]
                result = {
                    "outcome": "unhandled",
                    "error": f"{type(err).__name__}: {str(err)[:300]}",
                    "where": where,
                }
        finally:
            shutil.rmtree(scratch / "ws", ignore_errors=True)
        out.write(json.dumps(result) + "\n")
        out.flush()


# --------------------------------------------------------------------------- parent
@dataclass
class Worker:
    """One reused worker process, its stderr log and the task it is running."""

    memory_mb: int
    log: Path
    proc: subprocess.Popen = field(init=False)
    task: dict | None = None
    started: float = 0.0

    def __post_init__(self):
        self.start()

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--memory-mb", str(self.memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.log, "wb"),  # noqa: SIM115
            env=env, start_new_session=True,
        )  # fmt: skip

    def send(self, task: dict) -> None:
        self.task, self.started = task, time.monotonic()
        self.proc.stdin.write((json.dumps(task) + "\n").encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_bytes()[-600:].decode("utf-8", "replace")
        return ""


def fuzz(n: int, formats, workers: int, timeout: float, memory_mb: int, seed: int, failures: Path):
    """Run ``n`` inputs per format; returns ``{format: Counter(outcome)}`` and failure list."""
    rng = random.Random(seed)
    all_seeds = seeds()
    counts: dict[str, Counter] = {fmt: Counter() for fmt in formats}
    failed: list[dict] = []
    folder = Path(tempfile.mkdtemp(prefix="kgf-fuzz-"))
    failures.mkdir(parents=True, exist_ok=True)
    pending = [(fmt, i) for i in range(n) for fmt in formats]
    pending.reverse()
    pool = [Worker(memory_mb, folder / f"worker{w}.log") for w in range(workers)]
    selector = selectors.DefaultSelector()
    for w in pool:
        selector.register(w.proc.stdout, selectors.EVENT_READ, w)

    def finish(w: Worker, result: dict) -> None:
        task, w.task = w.task, None
        counts[task["format"]][result["outcome"]] += 1
        if result["outcome"] not in ("ok", "user error"):
            kept = failures / Path(task["path"]).name
            shutil.copy(task["path"], kept)
            if task.get("mapping"):
                shutil.copy(task["mapping"], failures / Path(task["mapping"]).name)
            failed.append({**task, **result, "kept": str(kept)})
        for key in ("path", "mapping"):
            if task.get(key):
                Path(task[key]).unlink(missing_ok=True)

    def restart(w: Worker) -> None:
        selector.unregister(w.proc.stdout)
        w.kill()
        w.start()
        selector.register(w.proc.stdout, selectors.EVENT_READ, w)

    done, last_report = 0, time.monotonic()
    try:
        while pending or any(w.task for w in pool):
            for w in pool:
                if w.task is None and pending:
                    fmt, i = pending.pop()
                    w.send(make_input(rng, fmt, all_seeds[fmt], folder, i))
            for key, _ in selector.select(timeout=0.5):
                w = key.data
                line = w.proc.stdout.readline()
                if line:
                    finish(w, json.loads(line))
                else:  # the worker died mid-task
                    code = w.proc.wait()
                    name = signal.Signals(-code).name if code < 0 else f"exit {code}"
                    finish(w, {"outcome": "crash", "error": name, "where": [w.stderr_tail()]})
                    restart(w)
                done += 1
            now = time.monotonic()
            for w in pool:
                if w.task is not None and now - w.started > timeout:
                    finish(w, {"outcome": "hang", "error": f"no answer in {timeout:.0f} s"})
                    restart(w)
                    done += 1
            if now - last_report > 30:
                print(f"  {done}/{n * len(formats)} inputs", flush=True)
                last_report = now
    finally:
        for w in pool:
            w.kill()
        shutil.rmtree(folder, ignore_errors=True)
    return counts, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="inputs per format")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per input")
    parser.add_argument("--memory-mb", type=int, default=3072, help="address-space cap per worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--failures", type=Path, default=Path(tempfile.gettempdir()) / "kgf-fuzz-failures"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.memory_mb)
        return 0
    started = time.perf_counter()
    counts, failed = fuzz(
        args.n, args.formats, args.workers, args.timeout, args.memory_mb, args.seed, args.failures
    )
    seconds = time.perf_counter() - started
    total = sum(sum(c.values()) for c in counts.values())
    print(f"\n{total:,} inputs in {seconds:.0f} s ({args.workers} workers)\n")
    print(f"{'format':8}" + "".join(f"{o:>12}" for o in OUTCOMES))
    for fmt, c in counts.items():
        print(f"{fmt:8}" + "".join(f"{c[o]:>12,}" for o in OUTCOMES))
    by_kind: dict[tuple, list[dict]] = defaultdict(list)
    for f in failed:
        frames = [w for w in f.get("where", []) if "kg" in w or "rdf" in w or "tabular" in w]
        key = (f["format"], f["outcome"], f.get("error", "").split(":")[0], frames[-1:])
        by_kind[tuple(map(str, key))].append(f)
    if failed:
        print(f"\nfailures (inputs kept in {args.failures}):")
    for (fmt, outcome, *_), items in sorted(by_kind.items()):
        first = items[0]
        print(f"- {fmt} {outcome} x{len(items)}: {first.get('error', '')[:200]}")
        print(f"    ops {first['ops']} lenient={first['lenient']} input {first['kept']}")
        for where in first.get("where", [])[-3:]:
            print(f"    at {where.strip()[-300:]}")
    unhandled = sum(c["unhandled"] for c in counts.values())
    crashes = sum(c["crash"] for c in counts.values())
    hangs = sum(c["hang"] for c in counts.values())
    print(
        f"summary: fuzz {total} inputs | unhandled {unhandled} | crashes {crashes} | hangs {hangs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

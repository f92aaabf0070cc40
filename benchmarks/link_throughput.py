"""Linking throughput: ``Linker.link_records`` mentions per second, against its bound.

For each DeepMatcher-layout data set (default: Abt-Buy and Amazon-Google from
``../shared/data/matching``) the catalogue ``tableA.csv`` is built into a workspace with the
example mapping and encoded (minilm, cached under ``--workspace-root``); every record of
``tableB.csv`` is then linked, in batches of ``--batch`` records, by

- **batched**: the linker as it is (one encoder pass per batch over the distinct mention
  texts, candidates for the whole batch, pair features by :mod:`align.batch_features`);
- **per pair**: the same linker with the reference per-pair feature loop
  (:func:`align.pair_features.pair_features`, the path before the batched features);

and, in the same run, the **bare encoder** encodes the same mention texts: its texts/s is
the bound of the end-to-end rate (linking cannot be faster than encoding its mentions).
The stages after encoding (candidates, features, scorer, links) are also timed alone on
precomputed embeddings, for both paths. Wall seconds on a loaded machine are pessimistic;
CPU seconds (``time.process_time``, all threads of this process) are printed beside them.
torch uses ``--threads`` threads (default 2: the 2-core target).

    python benchmarks/link_throughput.py
    python benchmarks/link_throughput.py ../shared/data/matching/abt_buy --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kg  # noqa: E402
from align import Linker  # noqa: E402
from align.pair_features import pair_features  # noqa: E402
from fusion.features import FeatureSpec, build_features  # noqa: E402
from kg.tabular import Mapping, table_to_rdf  # noqa: E402
from kg.workspace import atomic_directory, write_graph  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "matching"
MAPPINGS = {"abt_buy": "abt_buy.toml", "amazon_google": "amazon_google.toml"}


class PerPairFeatures:
    """The reference feature path: :func:`align.pair_features.pair_features` per mention."""

    def __init__(self, entities):
        self.entities = entities

    def features(self, mentions, cands, graph_space, rows=None):
        return [
            pair_features(self.entities, m, c, graph_space[i], None if rows is None else rows[i])
            for i, (m, c) in enumerate(zip(mentions, cands, strict=True))
        ]


def workspace_for(data: Path, root: Path) -> Path:
    """Build (once) and encode the catalogue of ``data`` under ``root/<name>``."""
    workspace = root / data.name
    mapping = ROOT / "examples" / MAPPINGS[data.name]
    if not (workspace / "manifest.json").is_file():
        with atomic_directory(workspace, overwrite=True) as tmp:
            table_to_rdf(data / "tableA.csv", Mapping.from_toml(mapping), tmp / "catalogue.ttl")
            graph = kg.load_rdf(tmp / "catalogue.ttl")
            write_graph(graph, tmp, sparql_store=False)
    build_features(kg.load_graph(workspace), workspace, FeatureSpec(image_encoder=None))
    return workspace


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def link_all(linker: Linker, records, batch: int):
    for i in range(0, len(records), batch):
        linker.link_records(records[i : i + batch])


def after_encoding(linker: Linker, mentions, vecs, batch: int):
    """Candidates, features, scorer and links of precomputed mention embeddings."""
    for i in range(0, len(mentions), batch):
        linker._links(mentions[i : i + batch], vecs[i : i + batch], None, linker.config.k)


def measure(data: Path, args, precision: str = "auto") -> dict:
    workspace = workspace_for(data, args.workspace_root)
    with open(data / "tableB.csv", encoding="utf-8-sig", newline="") as fh:
        records = list(csv.DictReader(fh))
    linker = Linker(workspace, precision=precision)
    linker.link_records(records[:8])  # model load and first-call costs out of the timing
    mentions = [linker.mention(r) for r in records]
    texts = list(dict.fromkeys(m.text for m in mentions))
    out: dict = {"data": data.name, "entities": len(linker.entities), "mentions": len(records),
                 "distinct_texts": len(texts), "batch": args.batch,
                 "precision": linker.encoder.precision}  # fmt: skip
    best = {}
    for _ in range(args.repeat):  # the best of --repeat runs: the machine is shared
        _, wall, cpu = timed(lambda: [linker.encoder.encode(texts[i : i + args.batch])
                                      for i in range(0, len(texts), args.batch)])  # fmt: skip
        best["encoder"] = min(best.get("encoder", (1e9, 0)), (wall, cpu))
        vecs = linker.encode(mentions)
        for name, featurizer in (("batched", linker.featurizer),
                                 ("per_pair", PerPairFeatures(linker.entities))):  # fmt: skip
            saved, linker.featurizer = linker.featurizer, featurizer
            try:
                _, wall, cpu = timed(lambda: link_all(linker, records, args.batch))
                best[name] = min(best.get(name, (1e9, 0)), (wall, cpu))
                _, wall, cpu = timed(lambda v=vecs: after_encoding(linker, mentions, v, args.batch))
                best[name + "_after_encoding"] = min(best.get(name + "_after_encoding", (1e9, 0)),
                                                     (wall, cpu))  # fmt: skip
            finally:
                linker.featurizer = saved
    for key, (wall, cpu) in best.items():
        n = len(texts) if key == "encoder" else len(records)
        unit = "texts" if key == "encoder" else "mentions"
        out[key] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                    f"{unit}_per_s": round(n / wall, 1),
                    f"{unit}_per_cpu_s": round(n / max(cpu, 1e-9), 1)}  # fmt: skip
    out["speedup"] = round(best["per_pair"][0] / best["batched"][0], 2)
    out["speedup_after_encoding"] = round(
        best["per_pair_after_encoding"][0] / best["batched_after_encoding"][0], 2
    )
    out["share_of_bound"] = round(
        out["batched"]["mentions_per_s"] / out["encoder"]["texts_per_s"], 3
    )
    # the same on CPU seconds (what a loaded machine does not distort): encoder / linking
    out["cpu_share_of_bound"] = round(
        out["batched"]["mentions_per_cpu_s"] / out["encoder"]["texts_per_cpu_s"], 3
    )
    out["cpu_speedup"] = round(best["per_pair"][1] / best["batched"][1], 2)
    out["cpu_speedup_after_encoding"] = round(
        best["per_pair_after_encoding"][1] / best["batched_after_encoding"][1], 2
    )
    return out


def report(r: dict) -> None:
    print(f"{r['data']} ({r['precision']}): batched {r['batched']['mentions_per_s']:.1f} mentions/s "
          f"({r['batched']['cpu_s']:.1f} CPU s), per pair {r['per_pair']['mentions_per_s']:.1f} "
          f"mentions/s ({r['per_pair']['cpu_s']:.1f} CPU s): x{r['speedup']}; bare encoder "
          f"{r['encoder']['texts_per_s']:.1f} texts/s ({r['encoder']['cpu_s']:.1f} CPU s), "
          f"batched = {100 * r['share_of_bound']:.0f} % of that bound (CPU: "
          f"{100 * r['cpu_share_of_bound']:.0f} %); after encoding "
          f"{r['batched_after_encoding']['mentions_per_s']:.0f} vs "
          f"{r['per_pair_after_encoding']['mentions_per_s']:.0f} mentions/s "
          f"(x{r['speedup_after_encoding']})", flush=True)  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, nargs="*",
                        default=[DATA / "abt_buy", DATA / "amazon_google"],
                        help="DeepMatcher-layout folders (default: Abt-Buy, Amazon-Google)")  # fmt: skip
    parser.add_argument("--workspace-root", type=Path, default=Path("/tmp/kgf-bench/throughput"))
    parser.add_argument("--batch", type=int, default=1024,
                        help="records per link_records call (default 1024, as `kgf link --mentions`)")
    parser.add_argument("--repeat", type=int, default=1, help="keep the best of N runs")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "auto"],
                        help="mention encoder precisions, each measured in turn (default: fp32 "
                             "auto; auto = bf16 on a CPU with AMX / AVX512-BF16)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    results = []
    for data in args.data:
        if data.name not in MAPPINGS:
            parser.error(f"{data}: no example mapping (known: {', '.join(MAPPINGS)})")
        for precision in args.precisions:
            r = measure(data, args, precision)
            results.append(r)
            print(json.dumps(r, indent=2))
            report(r)
    by_precision: dict[str, list[dict]] = {}
    for r in results:
        by_precision.setdefault(r["precision"], []).append(r)
    if len(by_precision) > 1 and "fp32" in by_precision:
        for name, rows in by_precision.items():
            if name != "fp32":
                for r, base in zip(rows, by_precision["fp32"], strict=True):
                    ratio = r["batched"]["mentions_per_s"] / base["batched"]["mentions_per_s"]
                    print(f"{r['data']}: {name} {r['batched']['mentions_per_s']:.1f} vs fp32 "
                          f"{base['batched']['mentions_per_s']:.1f} mentions/s: x{ratio:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    last = list(by_precision)[-1]
    mps = np.mean([r["batched"]["mentions_per_s"] for r in by_precision[last]])
    print(f"summary: mean batched {mps:.1f} mentions/s over {len(by_precision[last])} data "
          f"set(s), mention encoder {last}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reranked linking: speed and pair F1 of a trained reranker in each inference precision.

Takes a workspace in which ``benchmarks/matching.py`` (or ``kgf link-train --reranker``)
trained a linker and a reranker, and the DeepMatcher-layout folder it was trained from.
For each of ``--precisions`` (:data:`align.rerank.PRECISIONS`: fp32, bf16, int8), on the
same trained weights and the same calibrator:

- **test pair F1** of the reranked, calibrated decision (p >= 0.5; Ditto's protocol, as
  ``benchmarks/matching.py``), and how far its logits move from fp32's (max |diff|);
- **reranked linking speed**: ``Linker.link_records(records, k=10)`` with the reranker on
  the top 10 over the first ``--sample`` tableB records, in one call (the pairs of all
  mentions batched together): mentions per wall second and per CPU second
  (``time.process_time``, all threads), and the cross-encoder's share of it.

Each precision is measured with every mention reranked and, where there is a band
(``--cascade saved``: the one stored with the reranker; ``fit``: fitted now on valid.csv,
:func:`align.pair_decision.fit_cascade`), with the cascade: only mentions / pairs whose
feature decision probability is in the band go through the cross-encoder.
Also the features-only rate of the same records, for reference. Last line:
``summary: NAME reranked mentions/s ...``.

``--train-sample N`` also measures **fine-tuning speed** in each of
``--train-precisions`` (:data:`align.rerank.TRAIN_PRECISIONS`): a fresh cross-encoder from
the base model, at the saved reranker's window, trained one epoch
(:func:`align.rerank_train.train_cross_encoder`, the code path of ``fit_reranker``) on the
first N test pairs, serialised as the reranker does; CPU ms per example (the epoch alone,
validation excluded), same seed and data in each precision.

    python benchmarks/rerank_speed.py /tmp/kgf-bench/amazon_google ../shared/data/matching/amazon_google
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from align import Linker  # noqa: E402
from align.pair_decision import decide_candidates, fit_cascade  # noqa: E402
from align.rerank import (  # noqa: E402
    PRECISIONS,
    RERANKER_DIR,
    TRAIN_PRECISIONS,
    CrossEncoder,
    Reranker,
)
from align.rerank_train import train_cross_encoder  # noqa: E402
from align.scorer import prf  # noqa: E402
from align.tables import read_table  # noqa: E402
from align.train import load_pairs  # noqa: E402


def clock(fn):
    """``(result, wall s, CPU s)`` of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def measure(workspace: Path, data: Path, precision: str, sample: int, test, ref,
            cascade: list | None = None) -> dict:  # fmt: skip
    """Pair F1 on ``test`` and the reranked linking speed in ``precision``, reranking every
    mention (``cascade`` None) or only those in the band ``cascade``."""
    linker = Linker(workspace)
    if linker.reranker is None:
        raise SystemExit(f"{workspace}: no usable reranker; train one with benchmarks/matching.py")
    reranker = linker.reranker
    reranker.encoder.set_precision(precision)
    reranker.config.cascade = cascade
    records = list(read_table(data / "tableB.csv").values())[:sample]
    linker.link_records(records[:4], k=10)  # first-call costs out of the timing
    _, wall, cpu = clock(lambda: linker.link_records(records, k=10))
    plain = Linker(workspace, rerank=False)
    plain.link_records(records[:4], k=10)
    _, f_wall, f_cpu = clock(lambda: plain.link_records(records, k=10))
    rows = [linker.entities.row_of[i] for i in test[1]]
    logits, _, ce_cpu = clock(lambda: reranker.pair_logits(linker, test[0], rows))
    scorer = plain.score_pairs(test[0], test[1], rerank=False)
    p = reranker.probability(logits, scorer, reranker.view_logits(
        [reranker.mention_text(r) for r in test[0]], list(test[1])))
    if cascade:
        p = reranker.score_pairs(linker, test[0], test[1])
    links = plain.link_records(records, k=10)
    tops = [decide_candidates(plain, [x for _, x in link.alternatives[:10]]) for link in links]
    share = float(np.mean([len(t) > 0 and reranker.in_band([t.max()])[0] for t in tops]))
    out = {
        "precision": precision, "cascade": cascade, "mentions_reranked": share,
        "pairs_reranked": float(reranker.in_band(scorer).mean()), "mentions": len(records),
        "reranked_mentions_per_s": len(records) / wall, "reranked_wall_s": wall,
        "reranked_cpu_s": cpu, "reranked_mentions_per_cpu_s": len(records) / cpu,
        "features_mentions_per_s": len(records) / f_wall, "features_cpu_s": f_cpu,
        "test_pairs_per_cpu_s": len(rows) / ce_cpu,
        "pair": prf(p >= reranker.threshold, test[2].astype(bool)),
        "max_abs_logit_diff_vs_fp32": None if ref is None else float(np.abs(logits - ref).max()),
    }  # fmt: skip
    return out, logits


def training_speed(workspace: Path, test, n: int, precisions: list[str]) -> list[dict]:
    """CPU ms per example of one fine-tuning epoch on the first ``n`` pairs of ``test``, in
    each training precision (a fresh cross-encoder each time, same seed)."""
    linker = Linker(workspace)
    saved = Reranker.load(workspace / RERANKER_DIR, "fp32")
    rows = [linker.entities.row_of[i] for i in test[1][:n]]
    lefts = [saved.mention_text(r) for r in test[0][:n]]
    rights = [saved.entity_text(linker.entities, r) for r in rows]
    y = test[2][:n].astype(np.float32)
    valid = (lefts[:32], rights[:32], test[2][:32])
    out, base = [], saved.config.base_model
    for precision in precisions:
        encoder = CrossEncoder.from_base(None if base == "minilm" else base,
                                         saved.config.max_length, pooling=saved.config.pooling)  # fmt: skip
        fit, _ = train_cross_encoder(
            encoder, (lefts, rights, y), valid, epochs=1, lr=5e-5, batch_size=16, augment=0.3,
            seed=0, progress=False, precision=precision,
        )  # fmt: skip
        h = fit["history"][0]
        out.append({"precision": precision, "examples": len(y), "cpu_s": h["cpu_s"],
                    "cpu_ms_per_example": h["cpu_ms_per_example"], "loss": h["loss"]})  # fmt: skip
        print(f"training {precision}: {h['cpu_ms_per_example']:.1f} CPU ms per example "
              f"({h['cpu_s']:.1f} CPU s for {len(y)}), loss {h['loss']:.4f}", flush=True)
    return out


def valid_cascade(workspace: Path, data: Path) -> dict:
    """The cascade band of the saved reranker fitted now on ``valid.csv``
    (:func:`align.pair_decision.fit_cascade`), for a reranker trained before cascades."""
    linker = Linker(workspace)
    reranker = linker.reranker
    reranker.config.cascade = None
    table = read_table(data / "tableB.csv")
    valid = load_pairs(linker, table, data / "valid.csv")
    features = linker.score_pairs(valid[0], valid[1], rerank=False)
    reranked = reranker.score_pairs(linker, valid[0], valid[1])
    keys = [reranker.mention_text(r) for r in valid[0]]
    return fit_cascade(features, reranked, valid[2], keys, reranker.threshold)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path, help="workspace with a trained linker + reranker")
    parser.add_argument("data", type=Path, help="its DeepMatcher-layout folder (tableB, test.csv)")
    parser.add_argument("--precisions", nargs="*", default=["fp32", "bf16", "int8"],
                        choices=list(PRECISIONS))  # fmt: skip
    parser.add_argument("--sample", type=int, default=64, help="records linked for the speed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--train-sample", type=int, default=0,
                        help="also time one fine-tuning epoch on this many test pairs")
    parser.add_argument("--train-precisions", nargs="+", default=list(TRAIN_PRECISIONS),
                        choices=list(TRAIN_PRECISIONS))
    parser.add_argument("--cascade", choices=("off", "saved", "fit"), default="saved",
                        help="besides full reranking, also measure the cascade: the band stored "
                        "with the reranker (saved), or one fitted now on valid.csv (fit)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.workspace / RERANKER_DIR).is_dir():
        parser.error(f"{args.workspace} has no {RERANKER_DIR}/")
    print(f"reranker: {Reranker.load(args.workspace / RERANKER_DIR, 'fp32').config.max_length} "
          f"tokens; torch threads {args.threads}", flush=True)  # fmt: skip
    plain = Linker(args.workspace, rerank=False)
    test = load_pairs(plain, read_table(args.data / "tableB.csv"), args.data / "test.csv")
    if args.train_sample:
        training_speed(args.workspace, test, args.train_sample, args.train_precisions)
    band = Reranker.load(args.workspace / RERANKER_DIR, "fp32").config.cascade
    if args.cascade == "fit":
        fitted = valid_cascade(args.workspace, args.data)
        band = fitted["band"]
        print(f"cascade fitted on valid.csv: {fitted}", flush=True)
    bands = [None] + ([band] if band and args.cascade != "off" else [])
    runs, ref = [], None
    for precision, cascade in [(p, b) for p in args.precisions for b in bands]:
        r, logits = measure(args.workspace, args.data, precision, args.sample, test, ref, cascade)
        ref = logits if precision == "fp32" else ref
        runs.append(r)
        print(f"{precision}, cascade {cascade} ({100 * r['mentions_reranked']:.1f} % of the "
              f"mentions, {100 * r['pairs_reranked']:.1f} % of the test pairs reranked): test pair F1 {100 * r['pair']['f1']:.2f} (P "
              f"{100 * r['pair']['precision']:.2f} R {100 * r['pair']['recall']:.2f}); reranked "
              f"top-10 {r['reranked_mentions_per_s']:.1f} mentions/s wall, "
              f"{r['reranked_mentions_per_cpu_s']:.1f} per CPU s ({r['reranked_cpu_s']:.2f} CPU s "
              f"for {r['mentions']}); features only {r['features_cpu_s']:.2f} CPU s; cross-encoder "
              f"{r['test_pairs_per_cpu_s']:.0f} test pairs per CPU s; max |logit - fp32| "
              f"{r['max_abs_logit_diff_vs_fp32']}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2, default=float))
    name = args.data.resolve().name
    print("summary: " + name + " reranked mentions/s " + " | ".join(
        f"{r['precision']}{' cascade' if r['cascade'] else ''} {r['reranked_mentions_per_s']:.1f} "
        f"({r['reranked_mentions_per_cpu_s']:.1f} per CPU s), pair F1 {100 * r['pair']['f1']:.2f}"
        for r in runs))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

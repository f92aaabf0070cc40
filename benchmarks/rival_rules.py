"""Which rival transfers to catalogues with duplicate entries? (measurement, not a method)

The calibrated pair decision (:mod:`align.pair_decision`) reads a pair's scorer logit and
its rival's, the best-scoring other candidate of the same record. On a catalogue with
several entries of one product (WDC offer clusters) that rival is often a duplicate of the
paired entity, and a decision learnt on a one-entry-per-product set rejects the pair. This
script re-fits the decision on the source set's valid.csv with the rival drawn from the
other candidates that are *not* near-duplicates of the paired entity ``e`` (mention ``m``,
candidate ``c``), for several data-set-free rules, and reports test pair F1 in-domain and on
other sets' test pairs (the saved linker loaded unchanged against their catalogues):

- ``old``: no candidate skipped (the decision as shipped);
- ``rel``: skip ``c`` when ``cos(c, e) >= cos(m, e)`` (the linker's search vectors);
- ``fixT``: skip ``c`` when ``cos(c, e) >= T``;
- ``srel``: skip ``c`` when the scorer, reading ``e``'s text as a mention, gives ``(e, c)``
  a raw probability at least the pair's own;
- ``splatt`` / ``splatt9``: skip ``c`` when that pair's Platt probability is >= 0.5 / 0.9;
- ``RULE+below``: skip only those of ``RULE``'s duplicates that the mention scores no higher
  than the pair (a better-scoring duplicate stays the rival);
- ``soft``: no skipping; each candidate's probability is weighed by ``1 - splatt(e, c)``.

It reuses the workspaces (and the linker saved in each) that ``benchmarks/matching.py``
left behind::

    python benchmarks/rival_rules.py abt_buy amazon_google wdc_computers_medium \
        --workspaces /tmp/h15c
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matching as M  # noqa: E402

from align import Linker  # noqa: E402
from align.calibration import fit_calibrator, logit  # noqa: E402
from align.mentions import Mention  # noqa: E402

RULES = ["old", "rel", "fix0.9", "fix0.95", "srel", "splatt", "splatt9"]
RULES += [f"{r}+below" for r in RULES[1:]] + ["soft"]


def context(linker, pairs) -> list[dict]:
    """Per pair: the mention's candidates' raw probabilities ``p`` [C], the pair's index
    ``j``, cosines mention-candidate ``ms`` [C] and paired entity-candidate ``es`` [C], and
    the raw probability ``d`` [C] of (paired entity's text as a mention, candidate)."""
    mentions, groups = linker.group_pairs(pairs[0], pairs[1])
    vecs = linker.encode(mentions, cache=True)
    mv, ev = linker.candidates.project(vecs), linker.candidates.search_vecs
    extra = [list(dict.fromkeys(r for _, r in g)) for g in groups]
    types = linker.config.record_types
    cands, blocks, _ = linker.score_candidates(mentions, vecs, types, extra=extra)
    out: list[dict] = [{} for _ in range(sum(len(g) for g in groups))]
    for m, (g, cand, block) in enumerate(zip(groups, cands, blocks, strict=True)):
        p, rows = linker.scorer.predict(block).astype(np.float64), cand.rows
        for pair, row in g:
            j = int(np.nonzero(rows == row)[0][0])
            out[pair] = {"p": p, "j": j, "ms": ev[rows] @ mv[m], "es": ev[rows] @ ev[row],
                         "rows": rows, "row": int(row)}  # fmt: skip
    E = linker.entities
    em = [Mention(E.texts[c["row"]], price=float(E.prices[c["row"]])
                  if np.isfinite(E.prices[c["row"]]) else None) for c in out]  # fmt: skip
    ex = [[int(r) for r in c["rows"] if r != c["row"]] for c in out]
    cc, bb, _ = linker.score_candidates(em, E.text_vecs[[c["row"] for c in out]], types,
                                        extra=ex, only_extra=True,
                                        exclude=[[c["row"]] for c in out])  # fmt: skip
    for c, block, ex_i in zip(out, bb, ex, strict=True):
        q = dict(zip(ex_i, linker.scorer.predict(block).astype(np.float64).tolist(), strict=True))
        c["d"] = np.array([q.get(int(r), np.nan) for r in c["rows"]])
    return out


def rivals(linker, ctx, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """``(raw [P], rival [P])`` with the rival skipping what ``rule`` calls a duplicate."""
    raw, rival = np.zeros(len(ctx)), np.zeros(len(ctx))
    for i, c in enumerate(ctx):
        p, j, d = c["p"], c["j"], c["d"]
        platt = np.where(np.isnan(d), 0.0, linker.calibrator.predict(logit(np.nan_to_num(d))))
        base, _, below = rule.partition("+")
        dup = np.zeros(len(p), bool)
        if base == "rel":
            dup = c["es"] >= c["ms"][j]
        elif base.startswith("fix"):
            dup = c["es"] >= float(base[3:])
        elif base == "srel":
            dup = d >= p[j]
        elif base == "splatt":
            dup = platt >= 0.5
        elif base == "splatt9":
            dup = platt >= 0.9
        if below:  # only duplicates the mention scores no higher than the pair are skipped
            dup &= p <= p[j]
        keep = ~dup
        keep[j] = False
        q = p * (1.0 - platt) if base == "soft" else p  # soft: weighed by P(not a duplicate)
        raw[i], rival[i] = p[j], (q[keep].max() if keep.any() else 0.0)
    return raw, rival


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="set whose saved linker is used (workspace name)")
    parser.add_argument("targets", nargs="*", help="other sets (workspace names)")
    parser.add_argument("--workspaces", type=Path, default=Path("/tmp/kgf-bench"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/matching"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    def folder(name):
        d = args.workspaces / f"{name}-data"
        return d if d.is_dir() else args.data / name

    src_ws = args.workspaces / args.source
    linker = Linker(src_ws, rerank=False)
    table = M.read_table(folder(args.source) / "tableB.csv")
    valid = M.load_pairs(linker, table, folder(args.source) / "valid.csv")
    test = M.load_pairs(linker, table, folder(args.source) / "test.csv")
    sets = {"valid": (linker, context(linker, valid), valid[2]),
            args.source: (linker, context(linker, test), test[2])}  # fmt: skip
    for name in args.targets:
        t = Linker(args.workspaces / name, linker_dir=src_ws / "linker", rerank=False)
        pairs = M.load_pairs(
            t, M.read_table(folder(name) / "tableB.csv"), folder(name) / "test.csv"
        )
        sets[name] = (t, context(t, pairs), pairs[2])
    for rule in RULES:
        raw, rival = rivals(linker, sets["valid"][1], rule)
        cal = fit_calibrator(np.stack([logit(raw), logit(rival)], 1), sets["valid"][2], ["a", "b"])
        res = []
        for name in [args.source, *args.targets]:
            lk, ctx, y = sets[name]
            raw, rival = rivals(lk, ctx, rule)
            f = M.prf(cal.predict(np.stack([logit(raw), logit(rival)], 1)) >= 0.5, y.astype(bool))
            res.append(f"{name} {100 * f['f1']:.2f} (P {100 * f['precision']:.1f} "
                       f"R {100 * f['recall']:.1f})")  # fmt: skip
        print(rule, np.round(cal.weights, 2), " | ".join(res), flush=True)


if __name__ == "__main__":
    main()

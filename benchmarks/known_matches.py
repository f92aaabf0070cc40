"""Known matches as decision evidence (:mod:`align.known_matches`): one trained reranker, its
calibration stage refitted with the known matches off and on, test pair F1 side by side.

    python benchmarks/known_matches.py WORKSPACE DATA [--json FILE]

``WORKSPACE``: a workspace trained by ``benchmarks/matching.py`` (linker + reranker);
``DATA``: its DeepMatcher-layout folder (for WDC, the ``*-data`` folder ``matching.py``
wrote beside the workspace). The cross-encoder is not fine-tuned again: both rows use the
same weights, so the difference is the evidence alone
(:func:`align.rerank_calibration.recalibrate`, the stage :func:`align.rerank_train.
fit_reranker` ends with). Pair F1 as in ``matching.py``: with the cascade and with every pair
reranked. Last stdout line::

    summary: NAME off F1 X (full Y) | on F1 X (full Y) | duplicate share S %
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from matching import evaluate  # noqa: E402

from align import Linker  # noqa: E402
from align.known_matches import duplicate_share  # noqa: E402
from align.rerank import RERANKER_DIR, Reranker  # noqa: E402
from align.rerank_calibration import recalibrate  # noqa: E402
from align.rerank_train import load_known_pairs  # noqa: E402
from align.tables import read_table  # noqa: E402


def compare(workspace: Path, data: Path) -> dict:
    """``{"off": figures, "on": figures, "duplicate_share": float}`` for one workspace."""
    linker = Linker(workspace, rerank=False)
    reranker = Reranker.load(workspace / RERANKER_DIR)
    table = read_table(data / "tableB.csv")
    train = load_known_pairs(linker, table, data / "train.csv")
    valid = load_known_pairs(linker, table, data / "valid.csv")
    texts = [reranker.mention_text(r) for r in train[0]]
    out = {"duplicate_share": duplicate_share(texts, train[1], train[2])}
    for setting in ("off", "on"):
        metrics = recalibrate(linker, reranker, train, valid, known_matches=setting)
        r = evaluate(workspace, data, reranker)
        out[setting] = {
            "pair": r["pair"], "pair_full_rerank": r.get("pair_full_rerank"),
            "valid_decision_f1": metrics["valid"]["decision"]["f1"],
            "weights": dict(zip(reranker.calibrator.inputs, reranker.calibrator.weights,
                                strict=True)),
            "known_matches": metrics["known_matches"],
        }  # fmt: skip
        full = out[setting]["pair_full_rerank"] or r["pair"]
        print(f"{setting:>3}: test pair F1 {100 * r['pair']['f1']:.2f} (P {100 * r['pair']['precision']:.2f} "
              f"R {100 * r['pair']['recall']:.2f}), every pair reranked {100 * full['f1']:.2f}; "
              f"valid F1 {100 * out[setting]['valid_decision_f1']:.2f}; calibrator "
              f"{ {k: round(v, 3) for k, v in out[setting]['weights'].items()} }", flush=True)  # fmt: skip
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path, help="a workspace trained by matching.py")
    parser.add_argument("data", type=Path, help="its DeepMatcher-layout folder")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    out = compare(args.workspace, args.data)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float))

    def f1(setting: str) -> str:
        full = out[setting]["pair_full_rerank"] or out[setting]["pair"]
        return f"F1 {100 * out[setting]['pair']['f1']:.2f} (full {100 * full['f1']:.2f})"

    print(f"summary: {args.workspace.name} off {f1('off')} | on {f1('on')} | duplicate share "
          f"{100 * out['duplicate_share']:.1f} %")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

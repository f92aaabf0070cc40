"""Product matching and linking benchmark on DeepMatcher-layout data (Abt-Buy, Amazon-Google).

The catalogue is ``tableA.csv``, built into a workspace with the example mapping
(``examples/abt_buy.toml`` / ``examples/amazon_google.toml``, picked by the folder name or
``--mapping``) and encoded with the workspace's default text encoder (minilm; images off).
The mentions are the records of ``tableB.csv``. ``align.train_linker`` (defaults: MLP scorer
with 32 hidden units, contrastive projection, 5 mined hard negatives per matched mention)
trains on ``train.csv`` and picks the epoch and the threshold on ``valid.csv``; this is
repeated for each of ``--seeds`` (default 0 1 2) and the figures are given as mean, min
and max over the seeds. Reported:

(a) **pair F1 on test.csv**, Ditto's protocol (Li et al., "Deep Entity Matching with
    Pre-Trained Language Models", VLDB 2021 / arXiv 2020): each test pair (mention, entity)
    is classified match / non-match by the linker's calibrated decision (probability >= 0.5:
    the pair's and its best rival's scores, :mod:`align.pair_decision`; with the reranker,
    its calibrated probability); the decision before (the scorer's probability >= the
    F1-optimal cut on valid.csv) is reported beside it; precision, recall, F1 of the match
    class;
(b) **linking** against the whole catalogue for the test split's matched mentions (each
    tableB record with at least one label-1 test pair): accuracy@1 (the top-ranked entity
    is one of its matches) and recall@10 (one of its matches is in the top 10);
(c) **mentions per second** of ``Linker.link_records`` over every tableB record (encoding,
    candidates, features, scoring; a fresh linker, nothing cached), batch of 256, with the
    last seed's linker.

``--transfer DATA ...`` also tests each seed's trained decision (and reranker) on the
test pairs of other sets, never seen in training, against their own catalogues: calibrated
vs threshold-tuned pair F1 (:func:`transfer`).

Baselines, in the same run: *dense only* (cosine of the mention and entity text
embeddings; pair threshold chosen on valid.csv the same way; linking = nearest neighbour)
and *BM25 only* (linking = the best BM25 over names). The published anchor is Ditto's test
F1: 89.33 (Abt-Buy), 75.58 (Amazon-Google), a fine-tuned RoBERTa cross-encoder.

    python benchmarks/matching.py ../shared/data/matching/abt_buy
    python benchmarks/matching.py ../shared/data/matching/abt_buy --no-rerank --quick \
        --transfer ../shared/data/matching/amazon_google   # the decision on an unseen set
    python benchmarks/matching.py ../shared/data/matching/amazon_google
    python benchmarks/matching.py DIR --mapping examples/abt_buy.toml --workspace /tmp/ws
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kg  # noqa: E402
from align import Linker, train_linker  # noqa: E402
from align.calibration import Calibrator, logit  # noqa: E402
from align.pair_decision import decision_inputs, pair_context  # noqa: E402
from align.rerank import PRECISIONS, RERANKER_DIR, TRAIN_PRECISIONS, Reranker  # noqa: E402
from align.rerank_train import train_reranker  # noqa: E402
from align.scorer import best_threshold, prf  # noqa: E402
from align.tables import read_pairs, read_table  # noqa: E402
from align.train import load_pairs  # noqa: E402
from align.wdc import wdc_to_deepmatcher  # noqa: E402
from fusion.features import FeatureSpec, build_features  # noqa: E402
from kg.tabular import Mapping, table_to_rdf  # noqa: E402
from kg.workspace import atomic_directory, write_graph  # noqa: E402

MAPPINGS = {
    "abt_buy": "abt_buy.toml", "amazon_google": "amazon_google.toml",
    "wdc_computers_medium": "wdc_computers.toml", "wdc_computers_small": "wdc_computers.toml",
}  # fmt: skip
ANCHORS = {
    "abt_buy": 89.33, "amazon_google": 75.58, "wdc_computers_medium": 88.62,
    "wdc_computers_small": 80.76,
}  # fmt: skip


def prepare_wdc(folder: Path, train: str, test_pairs: Path | None, out: Path) -> Path:
    """WDC LSPC pair files -> a DeepMatcher-layout folder ``out`` (see :mod:`align.wdc`):
    trains on ``computers_train_<train>``, tests on ``test_pairs`` or on the hash-split
    test part of ``computers_train_medium`` (the same pairs for small and medium)."""
    counts = wdc_to_deepmatcher(
        folder / f"computers_train_{train}.json.gz", out, test_pairs,
        split_file=folder / "computers_train_medium.json.gz",
    )  # fmt: skip
    print(f"WDC computers ({train}) in the DeepMatcher layout at {out}: {counts}", flush=True)
    return out


def build_workspace(data: Path, mapping: Path, workspace: Path, rebuild: bool) -> None:
    """``kgf build tableA.csv --mapping M -o WS`` then ``kgf encode WS --image none``."""
    if rebuild or not (workspace / "manifest.json").is_file():
        with atomic_directory(workspace, overwrite=True) as tmp:
            table_to_rdf(data / "tableA.csv", Mapping.from_toml(mapping), tmp / "catalogue.ttl")
            graph = kg.load_rdf(tmp / "catalogue.ttl")
            graph.sources[0].update(
                path=str(workspace.resolve() / "catalogue.ttl"),
                table=str((data / "tableA.csv").resolve()),
                mapping=str(mapping.resolve()),
            )
            write_graph(graph, tmp, sparql_store=False)
    graph = kg.load_graph(workspace)
    build_features(graph, workspace, FeatureSpec(image_encoder=None))


def linking_metrics(links, gold: list[set[str]]) -> dict:
    top1 = [link.alternatives[0][0] if link.alternatives else None for link in links]
    acc = np.mean([t in g for t, g in zip(top1, gold, strict=True)])
    rec = np.mean(
        [
            any(i in g for i, _ in link.alternatives[:10])
            for link, g in zip(links, gold, strict=True)
        ]
    )
    return {"acc@1": float(acc), "recall@10": float(rec), "mentions": len(links)}


def baselines(linker: Linker, valid, test, gold_records, gold) -> dict:
    """Dense-only and BM25-only figures over the same linker's encoder and indexes."""
    out = {}

    def cosines(records, iris):
        mentions = [linker.mention(r) for r in records]
        vecs = linker.encode(mentions, cache=True)
        rows = [linker.entities.row_of[i] for i in iris]
        return np.einsum("ij,ij->i", vecs, linker.entities.text_vecs[rows])

    v = cosines(valid[0], valid[1])
    cut = best_threshold(v, valid[2])
    t = cosines(test[0], test[1])
    out["dense_pair"] = prf(t >= cut["threshold"], test[2].astype(bool))
    mentions = [linker.mention(r) for r in gold_records]
    vecs = linker.encode(mentions, cache=True)
    pool = np.concatenate([linker.entities.type_rows[x] for x in linker.config.record_types])
    sims = vecs @ linker.entities.text_vecs[pool].T
    order = np.argsort(-sims, axis=1)[:, :10]
    dense_top = [[linker.entities.iris[pool[j]] for j in row] for row in order]
    out["dense_link"] = {
        "acc@1": float(np.mean([r[0] in g for r, g in zip(dense_top, gold, strict=True)])),
        "recall@10": float(
            np.mean([any(i in g for i in r) for r, g in zip(dense_top, gold, strict=True)])
        ),
    }
    from align import text as T

    bm25_top = []
    for m in mentions:
        s = linker.candidates.bm25.scores(T.analyse(m.text))[pool]
        bm25_top.append([linker.entities.iris[pool[j]] for j in np.argsort(-s, kind="stable")[:10]])
    out["bm25_link"] = {
        "acc@1": float(np.mean([r[0] in g for r, g in zip(bm25_top, gold, strict=True)])),
        "recall@10": float(
            np.mean([any(i in g for i in r) for r, g in zip(bm25_top, gold, strict=True)])
        ),
    }
    return out


def evaluate(workspace: Path, data: Path, reranker: Reranker | None = None) -> dict:
    """(a) test pair F1 and (b) linking figures of the trained linker in ``workspace``
    (features only, and with ``reranker`` the calibrated cross-encoder decision too)."""
    linker = Linker(workspace, rerank=False)
    table = read_table(data / "tableB.csv")
    test = load_pairs(linker, table, data / "test.csv")
    decisions = pair_decisions(linker, test)
    features_pair = decisions["calibrated"]
    gold_by_mention: dict[str, set[str]] = {}
    for (_, right, label), iri in zip(read_pairs(data / "test.csv"), test[1], strict=True):
        if label:
            gold_by_mention.setdefault(right, set()).add(iri)
    ids = sorted(gold_by_mention, key=lambda x: int(x) if x.isdigit() else x)
    gold_records = [table[i] for i in ids]
    gold = [gold_by_mention[i] for i in ids]
    links = linker.link_records(gold_records, k=10)
    linking = linking_metrics(links, gold)
    linking["nil_rate"] = float(np.mean([link.nil for link in links]))
    out = {
        "pair": features_pair, "features_pair": features_pair,
        "features_tuned_pair": decisions["tuned"], "features_platt_pair": decisions["platt"],
        "features_oracle_f1": decisions["oracle_f1"],
        "threshold": linker.config.threshold, "linking": linking, "features_linking": linking,
        "valid": linker.config.metrics.get("valid"),
        "projection": linker.config.metrics.get("projection"),
    }  # fmt: skip
    if reranker is not None:
        p = reranker.score_pairs(linker, test[0], test[1])
        out["pair"] = prf(p >= reranker.threshold, test[2].astype(bool))
        out["pair_at_0.5"] = prf(p >= 0.5, test[2].astype(bool))  # the cut before F*/2
        out["decision_cut"] = reranker.threshold
        out["pair"]["best_cut_f1"] = best_threshold(p, test[2])["f1"]  # oracle, for reference
        reranked = reranker.rerank(linker, gold_records, links, k=10,
                                   threshold=reranker.nil_threshold)  # as Linker does
        out["linking"] = linking_metrics(reranked, gold)
        out["linking"]["nil_rate"] = float(np.mean([link.nil for link in reranked]))
        if reranker.config.cascade:  # the same reranker on every pair, for comparison
            out["cascade"] = reranker.config.cascade
            out["cascade_valid"] = (reranker.config.metrics.get("valid") or {}).get("cascade")
            reranker.config.cascade = None
            try:
                full = reranker.score_pairs(linker, test[0], test[1])
                every = reranker.rerank(linker, gold_records, links, k=10,
                                        threshold=reranker.nil_threshold)  # fmt: skip
            finally:
                reranker.config.cascade = out["cascade"]
            out["pair_full_rerank"] = prf(full >= reranker.threshold, test[2].astype(bool))
            out["linking_full_rerank"] = linking_metrics(every, gold)
        out["rerank_valid"] = reranker.config.metrics.get("valid")
        v = load_pairs(linker, table, data / "valid.csv")[2]
        out["rerank_valid_rate"] = float(np.mean(v))
        out["rerank_fit"] = reranker.config.metrics.get("fit")
        out["rerank_pairs"] = reranker.config.metrics.get("pairs")
    out["_context"] = (linker, table, test, gold_records, gold)
    return out


def pair_decisions(linker: Linker, pairs) -> dict:
    """Pair P / R / F1 of the feature linker on ``pairs = (records, iris, labels)``:

    - ``calibrated``: its decision, ``Linker.score_pairs`` >= 0.5 (the pair's and its
      rival's scores, calibrated on the training set's validation pairs);
    - ``platt``: the scorer's Platt-calibrated probability alone >= 0.5;
    - ``tuned``: the decision before, the raw scorer probability >= the F1-optimal cut on
      the training set's validation pairs (``config.metrics["valid"]["tuned_threshold"]``);
    - ``oracle_f1``: for reference only, the best F1 any cut on the decision's probability
      reaches on these very pairs (it looks at the test labels)."""
    mentions, groups = linker.group_pairs(pairs[0], pairs[1])
    _, raw, rival = pair_context(linker, mentions, groups, linker.config.record_types, True)
    p = Calibrator.from_dict(linker.config.decision).predict(decision_inputs(raw, rival))
    y = np.asarray(pairs[2]).astype(bool)
    tuned = linker.config.metrics.get("valid", {}).get("tuned_threshold", linker.config.threshold)
    return {
        "calibrated": prf(p >= linker.config.threshold, y), "tuned": prf(raw >= tuned, y),
        "platt": prf(linker.calibrator.predict(logit(raw)) >= 0.5, y),
        "oracle_f1": best_threshold(p, y)["f1"], "tuned_threshold": tuned,
    }  # fmt: skip


def transfer(args, source_ws: Path, targets: list[Path], seed: int) -> list[dict]:
    """Test the linker (and reranker) trained in ``source_ws`` on each target set's
    test pairs, never seen in training: its catalogue is built into its own workspace and
    the source's saved linker is loaded against it unchanged."""
    import warnings

    out = []
    for folder in targets:
        t_args = argparse.Namespace(data=folder, wdc_train="medium", test_pairs=None,
                                    workspace=None, mapping=None)  # fmt: skip
        data, name, mapping, workspace = resolve_data(argparse.ArgumentParser(), t_args)
        workspace = source_ws.parent / workspace.name  # beside the source's workspace
        build_workspace(data, mapping, workspace, False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "trained on another graph": that is the point
            linker = Linker(workspace, linker_dir=source_ws / "linker", rerank=False)
        test = load_pairs(linker, read_table(data / "tableB.csv"), data / "test.csv")
        r = {"target": name, "seed": seed, "pairs": len(test[2]), **pair_decisions(linker, test)}
        if (source_ws / RERANKER_DIR).is_dir() and not args.no_rerank:
            reranker = Reranker.load(source_ws / RERANKER_DIR)
            p = reranker.score_pairs(linker, test[0], test[1])
            y = test[2].astype(bool)
            cut = (reranker.config.metrics.get("valid") or {}).get("best_cut", {})
            r["reranked"] = prf(p >= reranker.threshold, y)
            r["reranked_tuned"] = prf(p >= cut.get("threshold", 0.5), y)
        c, t = r["calibrated"], r["tuned"]
        print(f"transfer seed {seed} -> {name}: pair F1 calibrated {100 * c['f1']:.2f} (P "
              f"{100 * c['precision']:.2f} R {100 * c['recall']:.2f}) | tuned threshold "
              f"{100 * t['f1']:.2f} (P {100 * t['precision']:.2f} R {100 * t['recall']:.2f}) | "
              f"Platt alone {100 * r['platt']['f1']:.2f} | oracle {100 * r['oracle_f1']:.2f}"
              + (f" | reranked calibrated {100 * r['reranked']['f1']:.2f}, tuned "
                 f"{100 * r['reranked_tuned']['f1']:.2f}" if "reranked" in r else ""),
              flush=True)  # fmt: skip
        out.append(r)
    return out


def spread(values: list[float]) -> str:
    values = [100 * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="folder with tableA/B.csv, train/valid/test.csv, "
                        "or a WDC folder with computers_train_*.json.gz")  # fmt: skip
    parser.add_argument("--mapping", type=Path, help="TOML mapping for tableA (default: by name)")
    parser.add_argument(
        "--workspace", type=Path, help="workspace folder (default /tmp/kgf-bench/NAME)"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the workspace")
    parser.add_argument("--hidden", type=int, default=32, help="scorer MLP width (0: logistic)")
    parser.add_argument("--no-projection", action="store_true", help="skip contrastive projection")
    parser.add_argument("--mine-negatives", type=int, default=5, help="hard negatives per mention")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--transfer", type=Path, nargs="+", metavar="DATA",
                        help="also test the trained decision on these sets' test pairs "
                        "(never seen in training): calibrated vs threshold-tuned pair F1")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="skip the throughput and the dense / BM25 baselines")  # fmt: skip
    wdc = parser.add_argument_group("WDC LSPC computers")
    wdc.add_argument("--wdc-train", choices=("medium", "small"), default="medium",
                     help="training pair file computers_train_<this>.json.gz")  # fmt: skip
    wdc.add_argument("--test-pairs", type=Path, help="WDC pair file to test on (same format); "
                     "default: a hash split of the medium pair ids")  # fmt: skip
    rr = parser.add_argument_group("cross-encoder reranker")
    rr.add_argument("--no-rerank", action="store_true", help="features only (no cross-encoder)")
    rr.add_argument("--rerank-base", help="hf:<folder> to start from (default: offline MiniLM)")
    rr.add_argument("--rerank-epochs", type=int, default=3)
    rr.add_argument("--rerank-max-length", type=int, default=128)
    rr.add_argument("--rerank-batch", type=int, default=16)
    rr.add_argument("--rerank-lr", type=float, default=5e-5, help="the encoder's learning rate")
    rr.add_argument("--rerank-head-lr", type=float, help="the fresh head's (default 40 x lr)")
    rr.add_argument("--rerank-pooling", default="mean", choices=("mean", "cls", "pooler"),
                    help="pooler + --rerank-head-lr 5e-5: format 1, to compare")
    rr.add_argument("--rerank-negatives", type=int, default=3, help="candidate negatives/mention")
    rr.add_argument("--rerank-graph-negatives", type=int, default=1)
    rr.add_argument("--rerank-freeze", type=int, default=0, help="frozen lower layers")
    rr.add_argument("--rerank-layers", type=int, help="keep the first N layers of the base")
    rr.add_argument("--rerank-max-examples", type=int, help="cap on training examples")
    rr.add_argument("--rerank-balance", type=float, default=1.0, metavar="POWER",
                    help="matches weighted by (#non-matches/#matches) ** POWER in the loss "
                    "(1: balanced classes, the default; 0: unweighted)")
    rr.add_argument("--rerank-precision", default="auto", choices=("auto", *PRECISIONS),
                    help="inference arithmetic (auto: bf16 on a CPU with native bf16, else fp32)")
    rr.add_argument("--rerank-train-precision", default="auto",
                    choices=("auto", *TRAIN_PRECISIONS),
                    help="fine-tuning arithmetic (auto: bf16 autocast on a CPU with native "
                    "bf16, else fp32)")  # fmt: skip
    rr.add_argument("--rerank-no-cascade", action="store_true",
                    help="rerank every mention (default: only where the features' decision "
                    "probability is in the band chosen on valid)")  # fmt: skip
    rr.add_argument("--rerank-soup", action="store_true",
                    help="keep the greedy soup of the epochs (default: the best epoch)")
    rr.add_argument("--rerank-known-matches", default="auto", choices=("auto", "on", "off"),
                    help="the training pairs' matches as decision evidence "
                    "(align.known_matches; auto: when the catalogue has duplicates)")  # fmt: skip
    rr.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    return parser, parser.parse_args(argv)


def resolve_data(parser, args) -> tuple[Path, str, Path, Path]:
    """``(DeepMatcher-layout folder, name, mapping, workspace)``."""
    data = args.data
    name = data.resolve().name
    if (data / "computers_train_medium.json.gz").is_file():
        name = f"wdc_computers_{args.wdc_train}"
        if args.test_pairs:
            name += "_" + args.test_pairs.name.split(".")[0]
        root = (args.workspace or Path("/tmp/kgf-bench") / name).parent / f"{name}-data"
        data = prepare_wdc(data, args.wdc_train, args.test_pairs, root)
    mapping = args.mapping or ROOT / "examples" / MAPPINGS.get(name.split("_gold")[0], "")
    if not mapping.is_file():
        mapping = ROOT / "examples" / MAPPINGS.get(f"wdc_computers_{args.wdc_train}", "")
        if not name.startswith("wdc_") or not mapping.is_file():
            parser.error(f"no mapping for {name!r}: pass --mapping examples/<name>.toml")
    return data, name, mapping, args.workspace or Path("/tmp/kgf-bench") / name


def run_seed(args, workspace: Path, data: Path, seed: int) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    train_linker(
        workspace, data / "tableB.csv", data / "train.csv", data / "valid.csv",
        hidden=args.hidden, projection=not args.no_projection,
        mine_negatives=args.mine_negatives, seed=seed,
    )  # fmt: skip
    reranker, rerank_cpu = None, time.process_time()
    if not args.no_rerank:
        reranker = train_reranker(
            workspace, data / "tableB.csv", data / "train.csv", data / "valid.csv",
            base_model=args.rerank_base, epochs=args.rerank_epochs,
            max_length=args.rerank_max_length, batch_size=args.rerank_batch, lr=args.rerank_lr,
            candidate_negatives=args.rerank_negatives,
            graph_negative_n=args.rerank_graph_negatives, freeze_layers=args.rerank_freeze,
            layers=args.rerank_layers, max_examples=args.rerank_max_examples,
            threads=args.threads, balance=args.rerank_balance, seed=seed, progress=True,
            head_lr=args.rerank_head_lr, pooling=args.rerank_pooling,
            precision=args.rerank_precision, train_precision=args.rerank_train_precision,
            cascade=not args.rerank_no_cascade, soup=args.rerank_soup,
            known_matches=args.rerank_known_matches,
        )  # fmt: skip
    rerank_cpu = time.process_time() - rerank_cpu
    train_s, train_cpu = time.perf_counter() - started, time.process_time() - cpu
    r = evaluate(workspace, data, reranker)
    r["train_s"], r["train_cpu_s"] = train_s, train_cpu
    if reranker is not None:
        r["rerank_train_cpu_s"] = rerank_cpu
    f = r["features_pair"]
    print(f"seed {seed}: pair F1 {100 * r['pair']['f1']:.2f} (P {100 * r['pair']['precision']:.2f}, "
          f"R {100 * r['pair']['recall']:.2f}); features only {100 * f['f1']:.2f} (threshold-tuned "
          f"{100 * r['features_tuned_pair']['f1']:.2f}); "
          f"acc@1 {100 * r['linking']['acc@1']:.2f}, recall@10 "
          f"{100 * r['linking']['recall@10']:.2f}, train {train_s:.0f}s ({train_cpu:.0f} CPU s)",
          flush=True)  # fmt: skip
    if reranker is not None:
        fit = reranker.config.metrics["fit"]
        print(f"seed {seed}: cross-encoder valid AP {fit['valid_ap']:.4f} (match rate "
              f"{r['rerank_valid_rate']:.4f}), loss curve {[h['curve'] for h in fit['history']]}, "
              f"restarts {fit.get('restarts', [])}, reranker training {rerank_cpu:.0f} CPU s",
              flush=True)  # fmt: skip
        if "pair_at_0.5" in r:
            d = (reranker.config.metrics.get("valid") or {}).get("decision") or {}
            print(f"seed {seed}: decision cut {r['decision_cut']:.3f} (F*/2; valid F1 "
                  f"{100 * d.get('f1', float('nan')):.2f} vs {100 * d.get('f1_at_0.5', float('nan')):.2f} "
                  f"at 0.5); test pair F1 at 0.5 {100 * r['pair_at_0.5']['f1']:.2f}",
                  flush=True)  # fmt: skip
        if "pair_full_rerank" in r:
            full, v = r["pair_full_rerank"], r["cascade_valid"] or {}
            print(f"seed {seed}: cascade {r['cascade']} (valid: {100 * v.get('mentions_reranked', 0):.1f} % "
                  f"of mentions reranked, F1 {100 * v.get('valid_f1', 0):.2f} vs full "
                  f"{100 * v.get('valid_f1_full', 0):.2f}); test pair F1 full reranking "
                  f"{100 * full['f1']:.2f} (P {100 * full['precision']:.2f} R "
                  f"{100 * full['recall']:.2f}), acc@1 {100 * r['linking_full_rerank']['acc@1']:.2f}",
                  flush=True)  # fmt: skip
    return r


def throughput(workspace: Path, table: dict, rerank: bool, sample: int = 64) -> dict:
    """(c) mentions/s of a fresh linker (every record, batches of 1024 as `kgf link --mentions`)
    and of the linker + reranker over the top 10 (the first ``sample`` records)."""
    fresh = Linker(workspace, rerank=False)
    records = list(table.values())
    fresh.link_records(records[:8])  # model load and first-call costs out of the timing
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(records), 1024):
        fresh.link_records(records[i : i + 1024])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = {"mentions_per_s": len(records) / seconds, "link_all_s": seconds, "link_all_cpu_s": cpu,
           "mentions": len(records)}  # fmt: skip
    return out | (rerank_speed(workspace, table, sample) if rerank else {})


def rerank_speed(workspace: Path, table: dict, sample: int = 64) -> dict:
    """Mentions/s (wall and CPU) of the linker + reranker over the top 10, first ``sample``
    records."""
    reranked = Linker(workspace)  # the workspace's reranker, as `kgf link` uses it
    part = list(table.values())[:sample]
    reranked.link_records(part[:2], k=10)
    started, cpu = time.perf_counter(), time.process_time()
    reranked.link_records(part, k=10)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"reranked_mentions_per_s": len(part) / seconds, "reranked_cpu_s": cpu,
            "reranked_mentions_per_cpu_s": len(part) / cpu}  # fmt: skip


def print_report(name: str, runs: list[dict], base: dict | None, moved: list[dict]) -> None:
    """The human-readable lines after the JSON (all but the summary line)."""
    f1 = [r["pair"]["f1"] for r in runs]
    dense = "-" if base is None else f"{100 * base['dense_pair']['f1']:.2f}"
    print(f"{name}, {len(runs)} seed(s): pair F1 {spread(f1)}; precision "
          f"{spread([r['pair']['precision'] for r in runs])}, recall "
          f"{spread([r['pair']['recall'] for r in runs])}; features only, calibrated "
          f"{spread([r['features_pair']['f1'] for r in runs])}, threshold-tuned "
          f"{spread([r['features_tuned_pair']['f1'] for r in runs])}, Platt alone "
          f"{spread([r['features_platt_pair']['f1'] for r in runs])}; dense-only F1 {dense}; "
          f"Ditto {ANCHORS.get(name)}")  # fmt: skip
    line = (f"linking ({runs[0]['linking']['mentions']} matched test mentions): acc@1 "
            f"{spread([r['linking']['acc@1'] for r in runs])}, recall@10 "
            f"{spread([r['linking']['recall@10'] for r in runs])}")  # fmt: skip
    if base is not None:
        line += (f"; dense {100 * base['dense_link']['acc@1']:.2f} / "
                 f"{100 * base['dense_link']['recall@10']:.2f}; BM25 "
                 f"{100 * base['bm25_link']['acc@1']:.2f} / {100 * base['bm25_link']['recall@10']:.2f}")  # fmt: skip
    print(line)
    for target in dict.fromkeys(r["target"] for r in moved):
        rs = [r for r in moved if r["target"] == target]
        text = (f"transfer {name} -> {target}, {len(rs)} seed(s): pair F1 calibrated "
                f"{spread([r['calibrated']['f1'] for r in rs])} vs threshold-tuned "
                f"{spread([r['tuned']['f1'] for r in rs])}, Platt alone "
                f"{spread([r['platt']['f1'] for r in rs])} (oracle cut "
                f"{spread([r['oracle_f1'] for r in rs])})")  # fmt: skip
        if all("reranked" in r for r in rs):
            text += (f"; reranked calibrated {spread([r['reranked']['f1'] for r in rs])} vs "
                     f"tuned {spread([r['reranked_tuned']['f1'] for r in rs])}")  # fmt: skip
        print(text)


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    data, name, mapping, workspace = resolve_data(parser, args)
    started = time.perf_counter()
    build_workspace(data, mapping, workspace, args.rebuild)
    build_s = time.perf_counter() - started

    runs, moved = [], []
    for seed in args.seeds:
        runs.append(run_seed(args, workspace, data, seed))
        moved += transfer(args, workspace, args.transfer or [], seed)
    linker, table, test, gold_records, gold = runs[-1].pop("_context")
    for r in runs:
        r.pop("_context", None)
    nothing = {"mentions_per_s": float("nan")}
    speed = nothing if args.quick else throughput(workspace, table, not args.no_rerank)
    if args.quick and not args.no_rerank:  # the reranked rate is cheap to measure
        speed = nothing | rerank_speed(workspace, table)
    valid = load_pairs(linker, table, data / "valid.csv")
    base = None if args.quick else baselines(linker, valid, test, gold_records, gold)
    figures = {
        "data": name, "catalogue_entities": len(linker.entities), "mentions": len(table),
        "test_pairs": len(test[2]), "seeds": args.seeds, "runs": runs, **speed,
        "baselines": base, "ditto_f1": ANCHORS.get(name), "transfer": moved,
        "seconds": {"build+encode": build_s, "train": [r["train_s"] for r in runs]},
    }  # fmt: skip
    print(json.dumps(figures, indent=2, default=float))
    print()
    print_report(name, runs, base, moved)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float))
    mean = lambda key, part: 100 * np.mean([r[part][key] for r in runs])  # noqa: E731
    reranked = speed.get("reranked_mentions_per_s")
    rate = "-" if np.isnan(speed["mentions_per_s"]) else f"{speed['mentions_per_s']:.1f}"
    print(f"summary: {name} pair F1 {mean('f1', 'pair'):.2f} (P {mean('precision', 'pair'):.2f} "
          f"R {mean('recall', 'pair'):.2f}) | acc@1 {mean('acc@1', 'linking'):.2f} | recall@10 "
          f"{mean('recall@10', 'linking'):.2f} | mentions/s {rate} | "
          f"reranked mentions/s {'-' if reranked is None else f'{reranked:.1f}'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

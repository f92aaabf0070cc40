"""Fashion attribute completion: graph + fusion against single modalities, non-graph fusion
and structure-only KG embeddings, transductive and inductive.

``DIR`` (default ``../shared/data/products/fashion``; any folder with ``styles.csv`` and
``images/``) is built with ``examples/fashion.toml`` and encoded with the defaults (minilm
text, EfficientNet-Lite0 photos) into ``--workspace`` (kept: the encoder cache makes later
runs skip encoding). The task is :class:`fusion.tasks.attribute.AttributeCompletionTask`
(``kgf train --task attribute``): per relation (articleType, baseColour, season, usage,
gender) 20 % of the product -> value edges are hidden (split seed = run seed), 10 % are
validation; inductively 20 % / 10 % of the products are withheld from training and arrive
with their name, photo and edges except the predicted one. Metrics: accuracy@1 and
filtered MRR per relation and their mean, test split, mean +- std over ``--seeds`` seeds.

Training (every FusionGNN run, chosen on validation only): features standardised per node
type and modality (:func:`standardized`), Adam lr ``--lr`` 0.01, at most ``--epochs`` 150
epochs, stopped after ``--patience`` 20 epochs without a better validation MRR; the test
numbers are those of the best-validation epoch (``--select mean``) or, with ``--select
relation``, each relation's numbers at the epoch of its own best validation MRR (such a run
records both: :mod:`fashion_select`). lr 0.03 collapsed to the majority value
(dead units) and raw features took ~200 epochs to converge (``--raw-features``).
``--jobs`` runs train in parallel processes (one thread each); ``--json`` is rewritten after
every run; ``--from-json`` prints the tables and the summary of saved runs (e.g. settings or
groups run apart with ``--settings`` / ``--groups``).

Variants (groups):

- ``majority``: each relation's most frequent training value;
- ``single``: ``text`` / ``image``: a classifier (``gnn = "mlp"``, no propagation) on one
  frozen modality;
- ``non-graph``: every fusion module on text + image, no propagation (``gnn = "mlp"``);
- ``kge``: PyKEEN TransE, DistMult, RotatE, TuckER on the same training triples
  (:mod:`fashion_kge`: LCWA 1-N over the value nodes, each model's paper loss, early
  stopping on the validation MRR, at most ``--kge-epochs``; transductive only: they have no
  embedding for unseen products; skipped with the reason when PyKEEN is absent);
- ``graph``: FusionGNN, text + image, propagation over the product-value graph:
  ``--full``: every fusion x rgcn / hgt / sage / gat x early / late; default: attention
  fusion, early, rgcn and sage, and R-GCN with 3 layers;
- every variant of these groups has residual connections (``model.residual``, named
  ``<variant> +res``): they won on validation in every group; ``--no-residual``: the plain
  variants instead (and no 3-layer R-GCN: it lost on validation without them);
- ``--extra`` (graph, not in the default grid: it did not win on validation): R-GCN /
  attention / early with label inputs (``task.label_inputs``: the known values of the
  relations as an input modality, UniMP's label trick); with ``--no-residual`` also the
  plain 3-layer R-GCN;
- ``ablation`` (transductive): the chosen graph variant with text only, image only, and
  no features (structure only).

Each group's row in the summary is its variant with the best mean **validation** accuracy
(never test). Last line::

    summary: graph+fusion A | best single modality B | best non-graph fusion C | best KGE D | inductive graph+fusion E | inductive best non-graph F
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from fashion_kge import KGE_MODELS, pykeen_missing, run_kge  # noqa: E402
from fashion_select import PerRelationTrainer, per_relation_metrics  # noqa: E402

import kg  # noqa: E402
from fusion.config import DataConfig, resolve_config  # noqa: E402
from fusion.features import FeatureSpec, NodeFeatures, build_features  # noqa: E402
from fusion.fuse import FUSIONS  # noqa: E402
from fusion.tasks.attribute import relation_edge_types  # noqa: E402
from fusion.tasks.attribute_split import split_attributes  # noqa: E402
from fusion.tasks.ranking import KnownTriples, filter_scores_, rank_metrics, ranks_from_scores  # noqa: E402
from fusion.trainer import Trainer, graph_tensors  # noqa: E402
from kg.tabular import Mapping, table_to_rdf  # noqa: E402
from kg.workspace import atomic_directory, write_graph  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "products" / "fashion"
MAPPING = ROOT / "examples" / "fashion.toml"
RELATIONS = ["articleType", "baseColour", "season", "usage", "gender"]
GNNS_FULL = ("rgcn", "hgt", "sage", "gat")
GROUPS = ("graph", "non-graph", "single", "kge", "ablation")
SELECT = "mean"  # the default --select (README: chosen on validation)


def build_workspace(folder: Path, workspace: Path, limit: int = 0) -> None:
    """``kgf build DIR/styles.csv --mapping examples/fashion.toml`` + ``kgf encode``
    (``limit``: the first rows only, for a quick look)."""
    if not (workspace / "manifest.json").is_file():
        table = folder / "styles.csv"
        with atomic_directory(workspace, overwrite=True) as tmp:
            if limit:
                lines = table.read_text(encoding="utf-8").splitlines()[: limit + 1]
                table = folder / "styles.csv"
                sub = tmp / "styles.csv"
                sub.write_text("\n".join(lines) + "\n", encoding="utf-8")
                mapping = Mapping.from_toml(MAPPING)
                table_to_rdf(sub, mapping, tmp / "catalogue.ttl", data_roots=[folder])
            else:
                table_to_rdf(table, Mapping.from_toml(MAPPING), tmp / "catalogue.ttl")
            graph = kg.load_rdf(tmp / "catalogue.ttl")
            write_graph(graph, tmp, sparql_store=False)
    build_features(kg.load_graph(workspace), workspace, FeatureSpec())


def standardized(feats: NodeFeatures) -> NodeFeatures:
    """Each (node type, modality) feature matrix scaled to unit standard deviation over its
    present rows (per-dimension centred when the type has >= 100 such rows; absent rows stay
    zero). MiniLM vectors have norm 1 (entries ~0.05) while EfficientNet's have norm ~16:
    unscaled, the text path starts ~20x weaker and a run needs ~200 epochs to converge."""
    out = {}
    for t, mods in feats.features.items():
        out[t] = {}
        for m, (x, mask) in mods.items():
            x = x.float()
            if int(mask.sum()) >= 100:
                x = x - x[mask].mean(0)
            scale = x[mask].std().clamp_min(1e-8) if int(mask.sum()) > 1 else torch.tensor(1.0)
            out[t][m] = (x / scale * mask[:, None], mask)
    return dataclasses.replace(feats, features=out)


DEEP = dict(name="rgcn/attention/early/3 layers", model={"layers": 3})
EXTRA_GRAPH = (  # measured, not in the default grid: neither won on validation (README)
    dict(name="rgcn/attention/early+labels", task={"label_inputs": True}),
    DEEP,  # in the default grid with residual connections (it won on validation there)
)


def variants(full: bool, extra: bool = False, residual: bool = True) -> list[dict]:
    """Every trained variant: ``{"name", "group", "gnn", "fusion", "mode", "modalities"}``
    (and ``model`` / ``task`` / ``trainer`` config keys of its own). ``residual`` (the
    default): every variant with residual connections (``model.residual``), named
    ``<name> +res``, *instead of* the plain ones (they won on validation in every group),
    and the graph grid gains the 3-layer R-GCN (:data:`DEEP`); False: the plain variants.
    ``extra``: also :data:`EXTRA_GRAPH` (R-GCN / attention / early with label inputs, with
    3 layers)."""
    out = [dict(name=f"{m}-only", group="single", gnn="mlp", fusion="attention",
                mode="early", modalities=[m]) for m in ("text", "image")]  # fmt: skip
    out += [dict(name=f"{f} (no graph)", group="non-graph", gnn="mlp", fusion=f, mode="early",
                 modalities=None) for f in FUSIONS.names()]  # fmt: skip
    grid = ([(f, g, m) for f in FUSIONS.names() for g in GNNS_FULL for m in ("early", "late")]
            if full else [("attention", "rgcn", "early"), ("attention", "sage", "early")])  # fmt: skip
    out += [dict(name=f"{g}/{f}/{m}", group="graph", gnn=g, fusion=f, mode=m, modalities=None)
            for f, g, m in grid]  # fmt: skip
    out += [dict(group="graph", gnn="rgcn", fusion="attention", mode="early", modalities=None,
                 **v) for v in EXTRA_GRAPH if extra or (residual and v is DEEP)]  # fmt: skip
    suffix = " +res" if residual else ""  # plain: residual False said (the task's default is True)
    return [{**v, "name": v["name"] + suffix, "model": {**v.get("model", {}), "residual": residual}}
            for v in out]  # fmt: skip


def run_name(variant: str, seed: int, inductive: bool) -> str:
    """The run folder of one variant and seed (parallel runs never share one)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", variant).strip("-")
    return f"bench-{'inductive' if inductive else 'transductive'}-{slug}-s{seed}"


PER_RELATION = " per relation"  # a variant's name suffix: one model per relation


def per_relation_variants() -> list[dict]:
    """``--per-relation``: the group rows' variants trained as one model per relation
    (``task.predict = [r]``, the split still over all five: the same held-out edges), so
    that each relation's model keeps every other relation's edges in its graph."""
    wanted = {"rgcn/attention/early/3 layers +res", "concat (no graph) +res", "text-only +res"}
    return [{**v, "name": v["name"] + PER_RELATION, "per_relation": True}
            for v in variants(False) if v["name"] in wanted]  # fmt: skip


def run_per_relation(ws, graph, feats, v: dict, seed: int, inductive: bool, args) -> dict:
    """One model per relation (:func:`per_relation_variants`), their metrics merged: each
    relation's own figures, and ``acc`` / ``mrr`` their means, as one run's."""
    runs = {r: run_variant(ws, graph, feats, {**v, "per_relation": False, "name": f"{v['name']} {r}",
                                              "task": {**v.get("task", {}), "predict": [r]}},
                           seed, inductive, args) for r in RELATIONS}  # fmt: skip
    metrics = {}
    for r, res in runs.items():
        metrics.update({k: x for k, x in res["metrics"].items() if k.endswith(f".{r}")})
    for split in ("valid", "test"):
        for key in ("acc", "mrr"):
            values = [runs[r]["metrics"][f"{split}/{key}.{r}"] for r in RELATIONS
                      if f"{split}/{key}.{r}" in runs[r]["metrics"]]  # fmt: skip
            metrics[f"{split}/{key}"] = sum(values) / len(values)
    return {"metrics": metrics, "cpu_s": sum(res["cpu_s"] for res in runs.values()),
            "best_epoch": max(res["best_epoch"] for res in runs.values()),
            "epochs": max(res["epochs"] for res in runs.values())}  # fmt: skip


def run_variant(ws, graph, feats, v: dict, seed: int, inductive: bool, args) -> dict:
    """Train one variant for one seed (``args``: epochs, lr, patience, eval_every): at most
    ``args.epochs`` epochs, stopped after ``args.patience`` epochs without a better
    validation MRR; the metrics are those of the best-validation epoch; with ``--select
    relation`` also ``per_relation``: each relation's metrics at the epoch of its own best
    validation MRR (:mod:`fashion_select`; test evaluations cost ~20 % CPU transductively,
    ~50 % inductively), ``relation_epochs`` those epochs.
    ``{"metrics": {...}, ["per_relation": {...}, "relation_epochs": {...},] "cpu_s": ...,
    "best_epoch": ..., "epochs": ...}``."""
    if v.get("per_relation"):
        return run_per_relation(ws, graph, feats, v, seed, inductive, args)
    overrides = {"task.inductive": inductive, "task.split_seed": seed, "trainer.epochs": args.epochs,
                 "trainer.lr": args.lr, "trainer.patience": args.patience,
                 "trainer.eval_every": args.eval_every[inductive], "trainer.checkpoint_every": 10_000,
                 "data.modalities": v["modalities"], "data.features": v["modalities"] != []}  # fmt: skip
    overrides.update({f"model.{k}": x for k, x in v.get("model", {}).items()})
    overrides.update({f"task.{k}": x for k, x in v.get("task", {}).items()})
    overrides.update({f"trainer.{k}": x for k, x in v.get("trainer", {}).items()})
    started = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        config = resolve_config(
            None, overrides, task="attribute", relations=RELATIONS, gnn=v["gnn"],
            fusion=v["fusion"], mode=v["mode"], seed=seed, progress=False,
        )  # fmt: skip
        per_relation = getattr(args, "select", SELECT) == "relation"
        trainer = PerRelationTrainer(config, args.stop) if per_relation else Trainer(config)
        result = trainer.fit(ws, run_name=run_name(v["name"], seed, inductive), overwrite=True,
                             graph=graph, features=feats)  # fmt: skip
    out = {"metrics": result.metrics, "cpu_s": time.process_time() - started,
           "best_epoch": result.best_epoch, "epochs": result.epochs}  # fmt: skip
    if per_relation:
        out["per_relation"] = per_relation_metrics(trainer.picked)
        out["relation_epochs"] = {r: k["epoch"] for r, k in trainer.picked.items()}
    return out


def majority(edges, num, seed: int, inductive: bool) -> dict:
    """Rank each relation's values by their training frequency (ties: realistic rank)."""
    etypes = relation_edge_types(edges, RELATIONS)
    split = split_attributes(edges, etypes, num, seed=seed, inductive=inductive)
    every = torch.cat([split.triples[s] for s in split.triples])
    metrics = {}
    for which in ("valid", "test"):
        accs, mrrs = [], []
        for i, (s, r, d) in enumerate(etypes):
            pairs = split.of(which, i)
            if not len(pairs):
                continue
            counts = torch.bincount(split.of("train", i)[:, 1], minlength=num[d]).float()
            scores = counts[None].repeat(len(pairs), 1)
            mine = every[every[:, 0] == i]
            rows, cols = KnownTriples(mine[:, 1], mine[:, 2], num[s]).lookup(pairs[:, 0])
            filter_scores_(scores, rows, cols, pairs[:, 1])
            true = scores[torch.arange(len(pairs)), pairs[:, 1]]
            m = rank_metrics(ranks_from_scores(true, scores)["realistic"], (1,))
            metrics[f"{which}/acc.{r}"], metrics[f"{which}/mrr.{r}"] = m["hits@1"], m["mrr"]
            accs.append(m["hits@1"])
            mrrs.append(m["mrr"])
        metrics[f"{which}/acc"], metrics[f"{which}/mrr"] = statistics.mean(accs), statistics.mean(mrrs)
    return {"metrics": metrics, "cpu_s": 0.0}


def stats(runs: list[dict], key: str) -> tuple[float, float]:
    values = [100 * r["metrics"][key] for r in runs if key in r["metrics"]]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def pm(runs: list[dict], key: str) -> str:
    """``"mean ± std"`` of ``key`` over the runs, in %."""
    mean, std = stats(runs, key)
    return f"{mean:.1f} ± {std:.1f}"


def print_table(setting: str, results: dict[str, dict]) -> None:
    head = ["variant", "group", "valid acc", "test acc", "test MRR",
            *[f"acc {r}" for r in RELATIONS], *[f"MRR {r}" for r in RELATIONS], "CPU s/run"]  # fmt: skip
    print(f"\n### {setting}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, res in results.items():
        runs = res["runs"]
        if not runs:
            why = res.get("skipped") or "not run (the run was cut short)"
            print(f"| {name} | {res['group']} | skipped: {why} |")
            continue
        cells = [name, res["group"], f"{stats(runs, 'valid/acc')[0]:.1f}"]
        cells += [pm(runs, k) for k in ("test/acc", "test/mrr")]
        cells += [pm(runs, f"test/acc.{r}") for r in RELATIONS]
        cells += [pm(runs, f"test/mrr.{r}") for r in RELATIONS]
        cells.append(f"{statistics.mean(r['cpu_s'] for r in runs):.0f}")
        print("| " + " | ".join(cells) + " |", flush=True)


def best(results: dict[str, dict], group: str) -> str | None:
    """The variant of ``group`` with the best mean validation accuracy."""
    names = [n for n, r in results.items() if r["group"] == group and r["runs"]]
    return max(names, key=lambda n: stats(results[n]["runs"], "valid/acc")[0], default=None)


def paired_margins(a_runs: list[dict], b_runs: list[dict], key: str) -> list[float]:
    """``a - b`` in points for each seed both ran (the same seed is the same split, so the
    split's own noise cancels in the difference), in seed order."""
    a_of, b_of = ({r["seed"]: r["metrics"][key] for r in runs if "seed" in r and key in r["metrics"]}
                  for runs in (a_runs, b_runs))  # fmt: skip
    return [100 * (a_of[s] - b_of[s]) for s in sorted(a_of.keys() & b_of.keys())]


def goal_lines(results: dict[str, dict], setting: str) -> list[str]:
    """How the chosen graph variant compares with each chosen baseline: the issue's test
    (mean margin against twice the larger seed std), then the margin seed by seed."""
    g = best(results, "graph")
    lines = []
    for group in ("single", "non-graph", "kge"):
        other = best(results, group)
        if g is None or other is None:
            continue
        for key in ("test/acc", "test/acc.season", "test/acc.usage"):
            (a, sa), (b, sb) = stats(results[g]["runs"], key), stats(results[other]["runs"], key)
            need = 2 * max(sa, sb)
            ok = "OK" if a - b > need else "FAILS"
            paired = paired_margins(results[g]["runs"], results[other]["runs"], key)
            seeds = f"; per seed {' '.join(f'{m:+.1f}' for m in paired)}" if paired else ""
            lines.append(f"{setting}: {g} vs {other} on {key}: {a:.1f} vs {b:.1f}, margin "
                         f"{a - b:+.1f} (2 x std {need:.1f}) {ok}{seeds}")  # fmt: skip
    return lines


_WORKER: dict = {}


def init_worker(ws: str, raw_features: bool, threads: int) -> None:
    """Load the graph, the (standardised) features and the edge tensors once per process."""
    torch.set_num_threads(threads)
    graph, feats = kg.load_graph(Path(ws)), NodeFeatures.load(Path(ws))
    edges, num = graph_tensors(graph, DataConfig())
    _WORKER.update(ws=Path(ws), graph=graph, edges=edges, num=num,
                   feats=feats if raw_features else standardized(feats))  # fmt: skip


def run_job(job: dict, args) -> dict:
    """One run of one seed in this process (:func:`init_worker` first): a KGE model or a
    FusionGNN variant."""
    w, seed = _WORKER, job["seed"]
    if job["kind"] == "kge":
        started = time.process_time()
        split = split_attributes(w["edges"], relation_edge_types(w["edges"], RELATIONS), w["num"],
                                 seed=seed)  # fmt: skip
        res = run_kge(job["name"], w["edges"], split, w["num"], seed, epochs=args.kge_epochs,
                      patience=args.kge_patience)  # fmt: skip
        return {**res, "cpu_s": time.process_time() - started}
    return run_variant(w["ws"], w["graph"], w["feats"], job["variant"], seed,
                       job["setting"] == "inductive", args)  # fmt: skip


def run_jobs(jobs: list[dict], args, pool, every: dict) -> list[dict]:
    """Run ``jobs`` (in ``pool``, or here when None); each run's result, in ``jobs``' order,
    with a line per finished run (and ``--json`` rewritten with the runs done so far)."""
    if pool is None:
        futures = [None] * len(jobs)
        done = ((i, run_job(j, args)) for i, j in enumerate(jobs))
    else:
        futures = [pool.submit(run_job, j, args) for j in jobs]
        index = {f: i for i, f in enumerate(futures)}
        done = ((index[f], f.result()) for f in concurrent.futures.as_completed(futures))
    out: list[dict] = [{}] * len(jobs)
    for i, res in done:
        out[i], j = {**res, "seed": jobs[i]["seed"]}, jobs[i]
        print(f"  {j['setting']} {j['name']} seed {j['seed']}: valid acc "
              f"{100 * res['metrics'].get('valid/acc', float('nan')):.1f} test acc "
              f"{100 * res['metrics']['test/acc']:.1f} (best epoch {res.get('best_epoch', '-')}, "
              f"{res['cpu_s']:.0f} CPU s)", flush=True)  # fmt: skip
        if args.json:
            partial = {s: {n: {**{k: v for k, v in row.items() if k != "variant"},
                               "runs": list(row["runs"])} for n, row in table.items()}
                       for s, table in every.items()}  # fmt: skip
            for k, done in enumerate(out):
                if done:
                    partial[jobs[k]["setting"]][jobs[k]["name"]]["runs"].append(done)
            args.json.write_text(json.dumps(partial, indent=1))
    return out


def plan(args, edges, num) -> tuple[dict[str, dict], list[dict]]:
    """Every setting's result table (majority filled in; the KGE rows of a setting they
    cannot run say why) and the training jobs: transductive first, then the KGE models,
    then inductive (a run cut short still has the transductive tables in ``--json``)."""
    every, jobs = {}, []
    missing = pykeen_missing() or ("--no-kge" if args.no_kge or "kge" not in args.groups else None)
    for setting in args.settings:
        inductive = setting == "inductive"
        res = every[setting] = {"majority": {"group": "majority", "runs": [
            majority(edges, num, s, inductive) for s in range(args.seeds)]}}  # fmt: skip
        order = {"graph": 0, "non-graph": 1, "single": 2}
        every_variant = variants(args.full, args.extra, not args.no_residual)
        every_variant += per_relation_variants() if args.per_relation else []
        for v in sorted(every_variant, key=lambda v: order[v["group"]]):
            if v["group"] not in args.groups or (args.only and v["name"] not in args.only):
                continue
            res[v["name"]] = {"group": v["group"], "variant": v, "runs": []}
            jobs += [dict(kind="gnn", setting=setting, name=v["name"], variant=v, seed=s)
                     for s in range(args.seeds)]  # fmt: skip
        for m in args.kge_models:
            why = ("KG embeddings have no vector for a product unseen in training"
                   if inductive else missing)  # fmt: skip
            res[m] = {"group": "kge", "runs": [], "skipped": why}
            if not why:
                jobs += [dict(kind="kge", setting=setting, name=m, seed=s) for s in range(args.seeds)]
    rank = {("gnn", "transductive"): 0, ("kge", "transductive"): 1, ("gnn", "inductive"): 2}
    return every, sorted(jobs, key=lambda j: rank[j["kind"], j["setting"]])


def ablation_jobs(results: dict[str, dict], seeds: int) -> list[dict]:
    """The chosen (best-validation) graph variant with text only, image only, no features."""
    chosen = best(results, "graph")
    if chosen is None:
        return []
    base, jobs = results[chosen]["variant"], []
    for name, mods in (("text", ["text"]), ("image", ["image"]), ("none", [])):
        v = {**base, "modalities": mods, "name": f"{chosen} [{name}]", "group": "ablation"}
        results[v["name"]] = {"group": "ablation", "variant": v, "runs": []}
        jobs += [dict(kind="gnn", setting="transductive", name=v["name"], variant=v, seed=s)
                 for s in range(seeds)]  # fmt: skip
    return jobs


def run_all(args, ws: Path) -> dict[str, dict]:
    """Every setting's results: ``{setting: {variant: {"group", "runs": [...]}}}``."""
    init_worker(str(ws), args.raw_features, torch.get_num_threads())
    every, jobs = plan(args, _WORKER["edges"], _WORKER["num"])
    print(f"# Fashion attribute completion: {args.folder} ({_WORKER['num'].get('Product', 0)} "
          f"products), {args.seeds} seed(s), {len(jobs)} runs, {args.jobs} job(s), lr {args.lr}, "
          f"<= {args.epochs} epochs, patience {args.patience}", flush=True)  # fmt: skip
    pool = None
    if args.jobs > 1:
        pool = concurrent.futures.ProcessPoolExecutor(
            args.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
            initargs=(str(ws), args.raw_features, 1))  # fmt: skip
    try:
        for j, res in zip(jobs, run_jobs(jobs, args, pool, every), strict=True):
            every[j["setting"]][j["name"]]["runs"].append(res)
        if "transductive" in every and "ablation" in args.groups and not args.no_ablation:
            extra = ablation_jobs(every["transductive"], args.seeds)
            for j, res in zip(extra, run_jobs(extra, args, pool, every), strict=True):
                every["transductive"][j["name"]]["runs"].append(res)
    finally:
        if pool is not None:
            pool.shutdown()
    return every


def summary_line(every: dict[str, dict]) -> str:
    t, i = every.get("transductive", {}), every.get("inductive", {})

    def acc(res, group) -> str:  # "-" for a group not run (e.g. KGE without PyKEEN)
        name = best(res, group)
        return f"{stats(res[name]['runs'], 'test/acc')[0]:.1f}" if name else "-"

    return (f"summary: graph+fusion {acc(t, 'graph')} | best single modality {acc(t, 'single')} | "
            f"best non-graph fusion {acc(t, 'non-graph')} | best KGE {acc(t, 'kge')} | "
            f"inductive graph+fusion {acc(i, 'graph')} | inductive best non-graph {acc(i, 'non-graph')}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", type=Path, default=DEFAULT, help="styles.csv + images/")
    p.add_argument("--workspace", type=Path, help="kept between runs (default: a temp folder per DIR)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=150, help="at most, per run")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--patience", type=int, default=20,
                   help="epochs without a better validation MRR before stopping")
    p.add_argument("--eval-every", type=int, nargs=2, default=[1, 2], metavar=("TRANS", "IND"),
                   help="epochs between validations, transductive and inductive (an inductive "
                        "validation is one forward pass per relation)")
    p.add_argument("--raw-features", action="store_true",
                   help="the encoders' features as they are (default: standardised)")
    p.add_argument("--kge-epochs", type=int, default=100, help="at most, per KGE run")
    p.add_argument("--kge-patience", type=int, default=10,
                   help="KGE epochs without a better validation MRR before stopping")
    p.add_argument("--kge-models", nargs="+", default=list(KGE_MODELS), choices=KGE_MODELS)
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    p.add_argument("--full", action="store_true", help="the whole fusion x GNN x mode grid")
    p.add_argument("--limit", type=int, default=0, help="first N products only (quick look)")
    p.add_argument("--extra", action="store_true",
                   help="also the graph variants that did not win on validation: R-GCN with "
                        "label inputs (task.label_inputs); with --no-residual also with 3 layers")
    p.add_argument("--per-relation", action="store_true",
                   help="also the group rows' variants as one model per relation (task.predict): "
                        "each keeps the other relations' edges; 5x their CPU")
    p.add_argument("--no-residual", action="store_true",
                   help="the plain variants (default: every variant with residual connections, "
                        "model.residual, named '<variant> +res', and the 3-layer R-GCN +res)")
    p.add_argument("--residual", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--select", choices=("relation", "mean"), default=SELECT,
                   help="which epoch's metrics a FusionGNN run reports: the epoch of the best "
                        "mean validation MRR, where training stopped (mean), or each "
                        "relation's own best-validation epoch (relation: its runs record both)")
    p.add_argument("--stop", choices=("mean", "relation"), default="mean",
                   help="with --select relation: stop after --patience epochs without a better "
                        "validation MRR of the mean (mean) or of any relation (relation)")
    p.add_argument("--only", nargs="+", metavar="VARIANT",
                   help="train only these variants (e.g. 'rgcn/attention/early+labels +res'; "
                        "needs --extra / --no-residual for those); "
                        "combine with earlier runs through --from-json")
    p.add_argument("--no-kge", action="store_true")
    p.add_argument("--no-ablation", action="store_true")
    p.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS,
                   help="train only these groups (the majority baseline always runs)")
    p.add_argument("--settings", nargs="+", default=["transductive", "inductive"],
                   choices=["transductive", "inductive"])
    p.add_argument("--json", type=Path, help="write every run's metrics here")
    p.add_argument("--from-json", type=Path, nargs="+", metavar="FILE",
                   help="print the tables and the summary of earlier --json files, train nothing")
    args = p.parse_args(argv)
    if args.from_json:
        return report(merged(args.from_json), select=args.select)
    known = {v["name"] for res in (True, False) for v in variants(True, True, res)}
    known |= {v["name"] for v in per_relation_variants()}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        sys.exit(f"--only {unknown[0]!r}: no such variant; see --full / --extra / --per-relation for the names")
    tag = hashlib.sha1(f"{args.folder.resolve()}:{args.limit}".encode()).hexdigest()[:10]
    ws = args.workspace or Path(tempfile.gettempdir()) / f"kgf-fashion-{tag}"
    if not (args.folder / "styles.csv").is_file():
        sys.exit(f"{args.folder}: no styles.csv (expected the Fashion layout: styles.csv + images/)")
    build_workspace(args.folder, ws, args.limit)
    started = time.time()
    every = run_all(args, ws)
    if args.json:
        args.json.write_text(json.dumps(
            {s: {n: {k: v for k, v in r.items() if k != "variant"} for n, r in res.items()}
             for s, res in every.items()}, indent=1))  # fmt: skip
    report(every, f"; wall {time.time() - started:.0f} s", args.select)


def merged(paths: list[Path]) -> dict[str, dict]:
    """The runs of several ``--json`` files (e.g. the settings run apart), one table per
    setting; a row with runs replaces one without."""
    every: dict[str, dict] = {}
    for path in paths:
        for setting, rows in json.loads(path.read_text(encoding="utf-8")).items():
            table = every.setdefault(setting, {})
            for name, row in rows.items():
                if row["runs"] or name not in table:
                    table[name] = row
    return every


def selected(every: dict[str, dict], select: str) -> tuple[dict[str, dict], list[str]]:
    """The results with each FusionGNN run's metrics of the ``select`` epoch choice
    (``"relation"``: its ``per_relation`` metrics; majority and KGE rows as they are), and
    the rows whose runs lack them (saved by an older version: mean-selected)."""
    if select != "relation":
        return every, []
    out, old = {}, []
    for setting, rows in every.items():
        out[setting] = {}
        for name, row in rows.items():
            runs = row["runs"]
            if row["group"] not in ("majority", "kge") and runs:
                if all(r.get("per_relation") for r in runs):
                    runs = [{**r, "metrics": r["per_relation"]} for r in runs]
                else:
                    old.append(f"{setting} {name}")
            out[setting][name] = {**row, "runs": runs}
    return out, old


def report(every: dict[str, dict], wall: str = "", select: str = "mean") -> None:
    """The per-relation tables, the CPU seconds, the goal lines and the summary line
    (FusionGNN runs' metrics chosen by ``select``, see :func:`selected`)."""
    every, old = selected(every, select)
    if select == "relation":
        print("FusionGNN runs: each relation's metrics at its own best-validation epoch"
              + (f"; mean-selected (saved without them): {', '.join(old)}" if old else ""))
    for setting, res in every.items():
        print_table(setting, res)
    cpu = sum(r["cpu_s"] for res in every.values() for row in res.values() for r in row["runs"])
    print(f"\ntraining CPU seconds, all runs: {cpu:.0f}{wall}\n")
    for setting in every:
        for line in goal_lines(every[setting], setting):
            print(line)
    print(summary_line(every))


if __name__ == "__main__":
    main()

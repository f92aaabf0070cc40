"""Product question answering: semiPQA attribute ranking and Fashion QA over the graph.

1. **semiPQA** (``../shared/data/qa/semipqa``, real Amazon shopper questions, each with its
   product's attributes): the question -> attribute scorers (the fine-tuned bi-encoder of
   :mod:`align.qa_biencoder`, the fine-tuned cross-encoder of :mod:`align.qa_crossencoder`,
   their ensemble, :mod:`align.qa_ensemble`, the question memory of
   :mod:`align.qa_memory` and the ensemble with it, and the feature scorer of
   :mod:`align.qa_scorer`) are trained on ``dev.csv`` and tested on ``testseen.csv`` (or
   ``--test FILE``, same layout, e.g. unseen attribute types): P@1 and MRR of the answering
   attribute over the answerable questions, NIL accuracy over the unanswerable ones
   (threshold calibrated on dev only: the fine-tuned scorers on their attribute-wise
   hold-out, the feature scorer on out-of-fold scores of its refit recipe). The summary
   line reports ``--ours`` (default the ensemble of the bi- and cross-encoder). In the
   same run: BM25 (question vs ``key value`` text, IDF over the test file's attributes)
   and zero-shot MiniLM (cosine of all-MiniLM-L6-v2 embeddings), P@1 and MRR.
2. **Fashion QA** (``../shared/data/products/fashion``, a subset of ``--fashion-products``
   products with unique display names): the catalogue is built with ``examples/fashion.toml``
   and encoded (MiniLM text, EfficientNet-Lite0 images); questions about colour, season,
   usage, gender and type are generated from templates in en / de / es / zh, the product
   named by its display name or given by its photo (the catalogue photo flipped and
   cropped); the answer is right when its value is the product's. Reported: accuracy per
   language and per way of naming. The scorer is the semiPQA-trained one, further trained
   on questions generated from the graph's own attributes (:func:`align.qa_train.
   graph_questions`: en / de / es / zh, :mod:`align.qa_lexicon`, whose templates are not
   the test's). With ``--fashion-gaps N`` (default 40), N more products lose their season
   and usage in a copy of the catalogue and questions about them are answered by an
   attribute-completion run trained on that copy (``kgf ask`` + ``kgf predict``'s model).

    python benchmarks/qa.py                              # both parts
    python benchmarks/qa.py --test my_unseen.csv --no-fashion

Last line: ``summary: semiPQA P@1 X MRR Y | BM25 P@1 B | zero-shot P@1 Z | fashion QA en A
de D es E zh F photo P``.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SEMIPQA = DATA / "qa" / "semipqa"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------ embedding cache
def load_cache(scorer, path: Path | None) -> None:
    """Fill ``scorer.cache`` from an ``.npz`` written by :func:`save_cache` (same encoder)."""
    if path is None or not path.is_file():
        return
    with np.load(path, allow_pickle=False) as data:
        if str(data["encoder"]) != scorer.config.encoder:
            return
        for role, text, vec in zip(data["roles"], data["texts"], data["vectors"], strict=True):
            scorer.cache[(str(role), str(text))] = vec


def save_cache(scorer, path: Path | None) -> None:
    if path is None or not scorer.cache:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(scorer.cache)
    np.savez(path, encoder=np.array(scorer.config.encoder), roles=np.array([r for r, _ in keys]),
             texts=np.array([t for _, t in keys]),
             vectors=np.stack([scorer.cache[k] for k in keys]))  # fmt: skip


# ------------------------------------------------------------------ baselines
def bm25_probs(questions) -> list[np.ndarray]:
    """BM25 of each question against its attributes' ``key value`` text (IDF over all the
    file's distinct attribute texts), as scores per candidate."""
    from align.candidates import BM25Index
    from kg.labels import tokens

    docs = list(dict.fromkeys(f"{c.key} {c.value}" for q in questions for c in q.candidates))
    row = {d: i for i, d in enumerate(docs)}
    index = BM25Index([tokens(d) for d in docs])
    out = []
    for q in questions:
        scores = index.scores(tokens(q.text))
        out.append(np.array([scores[row[f"{c.key} {c.value}"]] for c in q.candidates]))
    return out


def minilm_probs(questions) -> list[np.ndarray]:
    """Zero-shot all-MiniLM-L6-v2: cosine of the question and ``key: value`` embeddings."""
    from fusion.encoders import get_encoder

    encoder = get_encoder("minilm")
    texts = list(dict.fromkeys(t for q in questions
                               for t in [q.text] + [f"{c.key}: {c.value}" for c in q.candidates]))  # fmt: skip
    vecs = encoder.encode(texts).numpy()
    row = {t: i for i, t in enumerate(texts)}
    return [vecs[[row[f"{c.key}: {c.value}"] for c in q.candidates]] @ vecs[row[q.text]]
            for q in questions]  # fmt: skip


# ------------------------------------------------------------------ semiPQA
def _epoch_line(e, loss, mrr):
    from align.qa_tuned import epoch_line

    print(f"  {epoch_line(e, loss, mrr)}", flush=True)


def features_scorer(args, dev, test):
    """The feature scorer (multilingual E5 + MLP; the one Fashion QA uses): metrics on
    ``test`` and the scorer (its embedding cache reused later)."""
    from align.qa_scorer import QAScorer
    from align.qa_train import fit_scorer, predict, rank_metrics

    scorer = QAScorer()
    load_cache(scorer, args.cache)
    started, cpu = time.perf_counter(), cpu_seconds()
    hold = fit_scorer(scorer, dev, epochs=args.epochs, seed=args.seed, progress=_epoch_line)
    save_cache(scorer, args.cache)
    print(f"  features scorer trained in {time.perf_counter() - started:.0f}s wall, "
          f"{cpu_seconds() - cpu:.0f}s CPU; hold-out {hold}", flush=True)  # fmt: skip
    probs, nils = predict(scorer, test)
    save_cache(scorer, args.cache)
    return rank_metrics(test, probs, nils, scorer.config.threshold), scorer


def _fine_tuned(args, kind: str, dev, epochs: int, fit, tag: str = "", **options):
    """``(scorer, folder)``: the ``kind`` scorer fine-tuned on dev's attribute-wise split,
    the model the hold-out kept (no refit), saved in ``--work`` and reused by later runs
    with the same data, epochs, seed and ``tag`` (the recipe's other settings);
    ``--retrain`` to fine-tune again."""
    from align.qa_scorers import scorer_class

    cls = scorer_class(kind)
    views = "-keys" if options.get("key_view") else ""
    saved = args.work / f"semipqa-{kind}{views}{tag}-{args.train.stem}-{epochs}-{args.seed}"
    if kind == "bi-encoder":
        args.bi_saved = saved
    if (saved / "config.json").is_file() and not args.retrain:
        scorer = cls.load(saved)
        print(f"  {kind} reused from {saved} (--retrain to fine-tune again); its hold-out "
              f"{scorer.config.metrics}", flush=True)  # fmt: skip
        return scorer, saved
    base = {"max_length": options.pop("max_length")}
    base |= {k: options.pop(k) for k in ("key_view", "pooling", "prior", "prior_from")
             if k in options}  # fmt: skip
    scorer = cls.from_base(**base)
    started, cpu = time.perf_counter(), cpu_seconds()
    hold = fit(scorer, dev, epochs=epochs, seed=args.seed, progress=_epoch_line, refit=False,
               **options)  # fmt: skip
    print(f"  {kind} fine-tuned in {time.perf_counter() - started:.0f}s wall, "
          f"{cpu_seconds() - cpu:.0f}s CPU; hold-out {hold}", flush=True)  # fmt: skip
    scorer.save(saved)
    return scorer, saved


def _refit(args, kind: str, hold, saved: Path, dev):
    """``hold`` (the ``kind`` scorer the hold-out kept, saved in ``saved``) refit on all of
    dev for its chosen epochs (its kind's ``refit``), saved beside it (``-refit``) and
    reused like it; ``hold`` itself with ``--no-refit`` or a kept epoch 0."""
    from align.qa_scorers import scorer_class, scorer_kind

    if args.no_refit or hold.config.epochs == 0:
        return hold
    target = saved.with_name(f"{saved.name}-refit")
    if (target / "config.json").is_file() and not args.retrain:
        print(f"  {kind} refit reused from {target}", flush=True)
        return scorer_class(kind).load(target)
    scorer = scorer_class(kind).load(saved)  # a copy: the refit replaces its weights
    started, cpu = time.perf_counter(), cpu_seconds()
    info = scorer_kind(kind).refit(scorer, dev, progress=_epoch_line)
    print(f"  {kind} refit on all of dev in {time.perf_counter() - started:.0f}s wall, "
          f"{cpu_seconds() - cpu:.0f}s CPU: {info}", flush=True)  # fmt: skip
    scorer.save(target)
    return scorer


def _tested(name: str, scorer, test, rows=None) -> tuple[dict, list]:
    """``rank_metrics`` of ``scorer`` on the test questions (its own NIL threshold) and its
    probability rows ``[C_i + 1]`` (``rows``: already computed)."""
    from align.qa_train import rank_metrics

    if rows is None:
        started, cpu = time.perf_counter(), cpu_seconds()
        rows = scorer.probabilities([q.text for q in test], [q.candidates for q in test])
        print(f"  {name} scored the test in {time.perf_counter() - started:.0f}s wall, "
              f"{cpu_seconds() - cpu:.0f}s CPU", flush=True)  # fmt: skip
    probs, nils = [r[:-1] for r in rows], [float(r[-1]) for r in rows]
    return rank_metrics(test, probs, nils, scorer.config.threshold), rows


def bi_folder(args) -> Path:
    """Where this run's bi-encoder is saved (after :func:`_fine_tuned` made or found it)."""
    return args.bi_saved


def _cross_tag(args) -> str:
    """The cross-encoder recipe in its saved folder's name (format 1's classifier head at lr
    4e-5 keeps its old name)."""
    if args.cross_pooling == "classifier" and args.cross_lr == 4e-5:
        return ""
    prior = "-prior" if args.cross_prior else ""
    prior = "-prior-bi" if args.cross_prior_bi else prior
    return (f"-{args.cross_pooling}{prior}-lr{args.cross_lr:g}-head{args.cross_head_lr:g}"
            f"-{args.cross_precision}")  # fmt: skip


def _member(args, out: dict, kind: str, dev, test, epochs: int, fit, tag: str = "", **options):
    """Fine-tune (or reuse) the ``kind`` scorer and its refit, score ``test`` with both and
    add their rows to ``out``. Returns ``(the hold-out's model, its test rows, the refit's
    test rows)``: the ensembles' weights are fitted with the first, tested with the last."""
    hold, saved = _fine_tuned(args, kind, dev, epochs, fit, tag=tag, **options)
    hold_test, hold_rows = _tested(kind, hold, test)
    final = _refit(args, kind, hold, saved, dev)
    if final is hold:
        out[kind] = (hold_test, hold.config.metrics)
        return hold, hold_rows, hold_rows
    final_test, final_rows = _tested(f"{kind} (refit)", final, test)
    out[kind] = (final_test, hold.config.metrics)
    out[f"{kind}, no refit"] = (hold_test, hold.config.metrics)
    return hold, hold_rows, final_rows


def _pooled(out: dict, name: str, ensemble, test, hold_rows, final_rows) -> None:
    """Add the test metrics of ``ensemble`` (weights and threshold fitted on its members'
    hold-out models) with its members' final (refit) rows to ``out``, and with their
    hold-out models' rows as ``<name>, no refit`` when they differ."""
    from align.qa_ensemble import pooled

    hold = ensemble.config.metrics
    rows = pooled(ensemble.config.weights, final_rows)
    out[name] = (_tested(name, ensemble, test, rows)[0], hold)
    if any(a is not b for a, b in zip(hold_rows, final_rows, strict=True)):
        rows = pooled(ensemble.config.weights, hold_rows)
        out[f"{name}, no refit"] = (_tested(name, ensemble, test, rows)[0], hold)


def fine_tuned_scorers(args, dev, test) -> dict:
    """The fine-tuned MiniLM scorers on ``test``: the bi-encoder (:mod:`align.qa_biencoder`),
    the cross-encoder (:mod:`align.qa_crossencoder`) and their ensemble
    (:mod:`align.qa_ensemble`: weights and NIL threshold fitted on the members' common
    attribute-wise hold-out of dev), the question memory and the ensemble of all three
    (:class:`align.qa_ensemble.MemoryEnsemble`). Each fine-tuned model is then refit on all
    of dev (``--no-refit``: not), as ``kgf qa-train`` does; the rows ``..., no refit`` are
    the hold-out's models. Name -> (test metrics, dev hold-out metrics)."""
    from align.qa_biencoder import fit_biencoder
    from align.qa_crossencoder import fit_crossencoder
    from align.qa_ensemble import MEMORY_MEMBERS, EnsembleConfig, EnsembleScorer, fit_ensemble
    from align.qa_memory import QuestionMemory, fit_memory

    out = {}
    bi_tag = "" if args.bi_negatives == "product" else f"-neg{args.bi_negatives}"
    bi, bi_hold_rows, bi_rows = _member(
        args, out, "bi-encoder", dev, test, args.bi_epochs, fit_biencoder, tag=bi_tag,
        lr=args.bi_lr, negatives=args.bi_negatives, max_length=args.max_length,
        key_view=args.key_view)  # fmt: skip
    if args.no_cross_encoder:
        return out
    cross, cross_hold_rows, cross_rows = _member(
        args, out, "cross-encoder", dev, test, args.cross_epochs, fit_crossencoder,
        tag=_cross_tag(args), max_length=args.cross_max_length, pooling=args.cross_pooling,
        prior=args.cross_prior,
        lr=args.cross_lr, prior_from=bi_folder(args) if args.cross_prior_bi else None,
        head_lr_multiplier=args.cross_head_lr, precision=args.cross_precision)  # fmt: skip
    both = EnsembleScorer(EnsembleConfig(members=["bi-encoder", "cross-encoder"]), [bi, cross])
    hold = fit_ensemble(both, dev, seed=args.seed)
    print(f"  ensemble weights {hold['weights']}; hold-out {hold}", flush=True)
    _pooled(out, "ensemble", both, test, [bi_hold_rows, cross_hold_rows], [bi_rows, cross_rows])
    if args.no_memory:
        return out
    memory = QuestionMemory.untrained()
    memory.config.k, memory.config.temperature = args.memory_k, args.memory_temperature
    started, cpu = time.perf_counter(), cpu_seconds()
    print(f"  memory: product-wise hold-out {fit_memory(memory, dev, seed=args.seed)} "
          f"({time.perf_counter() - started:.0f}s wall, {cpu_seconds() - cpu:.0f}s CPU)")  # fmt: skip
    memory_test, memory_rows = _tested("memory", memory, test)
    out["memory"] = (memory_test, memory.config.metrics)
    trio = EnsembleScorer(EnsembleConfig(members=list(MEMORY_MEMBERS)), [bi, cross, memory])
    hold = fit_ensemble(trio, dev, seed=args.seed)
    unseen, seen = hold["views"]
    print(f"  ensemble-memory weights {hold['weights']}; dev hold-out, attribute types unseen "
          f"(memory of the other types only): {unseen}; seen (memory less the question's product): {seen}; "
          f"the ensemble without memory on the unseen-type hold-out: {out['ensemble'][1]}",
          flush=True)  # fmt: skip
    _pooled(out, "ensemble-memory", trio, test, [bi_hold_rows, cross_hold_rows, memory_rows],
            [bi_rows, cross_rows, memory_rows])  # fmt: skip
    return out


def semipqa(args) -> tuple[dict, dict, dict, object]:
    """Train on dev, test on ``args.test``; returns (ours, BM25, zero-shot, the feature
    scorer). Ours is ``--ours`` (default the ensemble of the fine-tuned bi-encoder and
    cross-encoder; the feature scorer with --no-bi-encoder)."""
    from align.qa_train import rank_metrics, read_semipqa

    dev, test = read_semipqa(args.train), read_semipqa(args.test)
    print(f"semiPQA: train {args.train.name} ({len(dev)} questions), test {args.test.name} "
          f"({len(test)} questions, {sum(not q.labels for q in test)} NIL)", flush=True)  # fmt: skip
    features, scorer = features_scorer(args, dev, test)
    tuned = {} if args.no_bi_encoder else fine_tuned_scorers(args, dev, test)
    bm25 = rank_metrics(test, bm25_probs(test), [0.0] * len(test), float("-inf"))
    zero = rank_metrics(test, minilm_probs(test), [0.0] * len(test), float("-inf"))
    rows = [*((name, m) for name, (m, _) in tuned.items()), ("features scorer", features),
            ("BM25", bm25), ("zero-shot MiniLM", zero)]  # fmt: skip
    for name, m in rows:
        nil = "" if name in ("BM25", "zero-shot MiniLM") else f", NIL accuracy {m['nil_acc']:.3f}"
        print(f"  {name:28s} P@1 {m['p@1']:.3f}  MRR {m['mrr']:.3f}{nil}", flush=True)
    for name, (_, hold) in tuned.items():
        print(f"  {name:28s} dev hold-out P@1 {hold.get('p@1')}  MRR {hold.get('mrr')}")
    ours = tuned.get(args.ours, (None,))[0] or next(iter(tuned.values()), (features,))[0]
    return ours, bm25, zero, scorer


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=SEMIPQA / "dev.csv")
    parser.add_argument("--test", type=Path, default=SEMIPQA / "testseen.csv")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bi-encoder", action="store_true",
                        help="skip fine-tuning the bi-encoder (minutes of CPU)")  # fmt: skip
    parser.add_argument("--bi-epochs", type=int, default=3)
    parser.add_argument("--no-refit", action="store_true",
                        help="test the models the dev hold-out kept, without refitting them on "
                        "all of dev for the chosen epochs (kgf qa-train's default refit)")  # fmt: skip
    parser.add_argument("--retrain", action="store_true",
                        help="fine-tune the bi-encoder even if --work holds one from an earlier run")  # fmt: skip
    parser.add_argument("--bi-lr", type=float, default=3e-5)
    parser.add_argument("--bi-negatives", default="product", choices=["product", "batch"],
                        help="bi-encoder loss: listwise over the product's attributes, or plus "
                        "in-batch negatives across products (align.qa_negatives)")  # fmt: skip
    parser.add_argument("--key-view", action="store_true",
                        help="the bi-encoder also compares the question with the attribute's "
                        "name alone (dev hold-out MRR 0.910 vs 0.915 without, 2026-12-05)")  # fmt: skip
    parser.add_argument("--no-cross-encoder", action="store_true",
                        help="skip fine-tuning the cross-encoder (and so the ensemble)")  # fmt: skip
    parser.add_argument("--cross-epochs", type=int, default=3)
    parser.add_argument("--cross-max-length", type=int, default=96,
                        help="cross-encoder tokens per (question, attribute) pair")  # fmt: skip
    parser.add_argument("--cross-pooling", default="classifier",
                        choices=["classifier", "mean", "cls"],
                        help="cross-encoder head: format 1's sequence-classification head, or a "
                        "fresh head on the mean (or [CLS]) of the last hidden states (dev "
                        "hold-out of the ensemble: classifier 87.9, mean + --cross-prior 87.4)")  # fmt: skip
    parser.add_argument("--cross-prior", action="store_true",
                        help="cross-encoder adds the frozen MiniLM's cosine (learned weight)")  # fmt: skip
    parser.add_argument("--cross-prior-bi", action="store_true",
                        help="the prior is the fine-tuned bi-encoder's cosine (its saved folder "
                        "in --work)")  # fmt: skip
    parser.add_argument("--cross-lr", type=float, default=4e-5, help="cross-encoder encoder lr")
    parser.add_argument("--cross-head-lr", type=float, default=40.0,
                        help="the fresh pair head's lr as a multiple of --cross-lr")  # fmt: skip
    parser.add_argument("--cross-precision", default="fp32", choices=["auto", "bf16", "fp32"],
                        help="cross-encoder training arithmetic (auto: bf16 autocast where the "
                        "CPU has native bf16)")  # fmt: skip
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the question memory (and the ensemble with it)")  # fmt: skip
    parser.add_argument("--memory-k", type=int, default=10, help="neighbours that vote")
    parser.add_argument("--memory-temperature", type=float, default=0.05)
    parser.add_argument("--ours", default="ensemble",
                        choices=["ensemble-memory", "ensemble", "memory", "cross-encoder",
                                 "bi-encoder"],
                        help="the fine-tuned scorer reported in the summary line")  # fmt: skip
    parser.add_argument("--max-length", type=int, default=64,
                        help="bi-encoder tokens per text")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path("/tmp/kgf-qa-bench/e5-cache.npz"),
                        help="embedding cache (.npz) kept between runs")  # fmt: skip
    parser.add_argument("--no-fashion", action="store_true", help="semiPQA only")
    parser.add_argument(
        "--fashion-products",
        type=int,
        default=1000,
        help="products of the Fashion subset built as a workspace",
    )
    parser.add_argument(
        "--fashion-asked",
        type=int,
        default=40,
        help="products asked about (25 questions each: 5 attributes x "
        "4 languages by name, 5 by photo)",
    )
    parser.add_argument("--fashion-gaps", type=int, default=40,
                        help="more products whose season and usage are hidden: questions "
                        "about them are answered by an attribute run (0: skip)")  # fmt: skip
    parser.add_argument("--graph-products", type=int, default=200,
                        help="products whose attributes give generated training questions")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("/tmp/kgf-qa-bench"))
    args = parser.parse_args(argv)
    ours, bm25, zero, scorer = semipqa(args)
    fashion = {}
    if not args.no_fashion:
        from qa_fashion import fashion_qa  # benchmarks/ is sys.path[0] when run as a script

        fashion = fashion_qa(args, scorer)
        save_cache(scorer, args.cache)
    f = {k: f"{100 * fashion[k]:.1f}" if k in fashion else "-"
         for k in ("en", "de", "es", "zh", "photo")}  # fmt: skip
    print(f"summary: semiPQA P@1 {100 * ours['p@1']:.1f} MRR {100 * ours['mrr']:.1f} | BM25 P@1 "
          f"{100 * bm25['p@1']:.1f} | zero-shot P@1 {100 * zero['p@1']:.1f} | fashion QA en "
          f"{f['en']} de {f['de']} es {f['es']} zh {f['zh']} photo {f['photo']}")  # fmt: skip


if __name__ == "__main__":
    main()

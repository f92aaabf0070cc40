"""Does the cross-encoder learn? A small, fast check on real DeepMatcher-layout pairs.

Fine-tunes :class:`align.rerank.CrossEncoder` (offline MiniLM) with
:func:`align.rerank_train.train_cross_encoder` on ``--pairs`` labelled pairs of ``train.csv``
(mention = the tableB record, entity = the tableA record, both serialised Ditto-style by
:func:`align.serialize.serialize_record`), no linker, no mined negatives, and prints per
epoch the loss curve (mean of every 20 steps), the validation AP on ``--valid-pairs`` pairs of
``valid.csv`` (against their match rate, the AP of a random ranking), and at the end the AP
on the training pairs themselves (does it fit them?). Same-run baselines: the token Jaccard and the
MiniLM bi-encoder cosine of the same validation pairs.

``--pooling pooler --head-lr 5e-5`` is reranker format 1 (a head on BERT's pooler at the
encoder's rate), the configuration that "did not learn"; the default is the fix (mean
pooling, head at 40x the encoder's rate). ``--random-negatives`` replaces the labelled
non-matches by random entities (an easy task: a sanity check of the optimisation).

    python benchmarks/rerank_diagnose.py ../shared/data/matching/amazon_google --pairs 400
    python benchmarks/rerank_diagnose.py ../shared/data/matching/amazon_google --pairs 400 \\
        --pooling pooler --head-lr 5e-5
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from align.rerank import POOLINGS, CrossEncoder  # noqa: E402
from align.rerank_train import train_cross_encoder  # noqa: E402
from align.scorer import average_precision  # noqa: E402
from align.serialize import serialize_record  # noqa: E402

Pairs = tuple[list[str], list[str], np.ndarray]


def read_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def sample_pairs(data: Path, split: str, n: int, seed: int) -> Pairs:
    """``n`` random labelled pairs of ``split``.csv as (mention texts, entity texts, labels)."""
    left = {r["id"]: r for r in read_rows(data / "tableA.csv")}
    right = {r["id"]: r for r in read_rows(data / "tableB.csv")}
    rows = read_rows(data / f"{split}.csv")
    pick = np.random.default_rng(seed).permutation(len(rows))[:n]
    return (
        [serialize_record(right[rows[i]["rtable_id"]]) for i in pick],
        [serialize_record(left[rows[i]["ltable_id"]]) for i in pick],
        np.array([float(rows[i]["label"]) for i in pick], np.float32),
    )


def random_negatives(pairs: Pairs, seed: int) -> Pairs:
    """Every match once, plus three random entities of the set per match as non-matches."""
    lefts, rights, y = pairs
    keep = np.flatnonzero(y > 0.5)
    rng = np.random.default_rng(seed)
    others = rng.integers(0, len(rights), 3 * len(keep))
    return (
        [lefts[i] for i in keep] * 4,
        [rights[i] for i in keep] + [rights[j] for j in others],
        np.array([1.0] * len(keep) + [0.0] * 3 * len(keep), np.float32),
    )


def jaccard(a: str, b: str) -> float:
    words = lambda t: set(re.findall(r"\w+", t.lower())) - {"col", "val"}  # noqa: E731
    x, y = words(a), words(b)
    return len(x & y) / max(1, len(x | y))


def bi_encoder_cosine(lefts: list[str], rights: list[str]) -> np.ndarray:
    """Cosine of the MiniLM sentence embeddings (mean pooling) of each side, [P]."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from align.rerank import default_base_model

    tokenizer = AutoTokenizer.from_pretrained(default_base_model(), local_files_only=True)
    model = AutoModel.from_pretrained(default_base_model(), local_files_only=True).eval()

    def embed(texts):
        out = []
        for i in range(0, len(texts), 64):
            batch = tokenizer(texts[i : i + 64], padding=True, truncation=True, max_length=64,
                              return_tensors="pt")  # fmt: skip
            with torch.no_grad():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
        return torch.cat(out)

    return (embed(lefts) * embed(rights)).sum(-1).numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a DeepMatcher-layout folder")
    parser.add_argument("--pairs", type=int, default=400, help="training pairs (train.csv)")
    parser.add_argument("--valid-pairs", type=int, default=300, help="from valid.csv")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5, help="the encoder's learning rate")
    parser.add_argument("--head-lr", type=float, help="the head's (default 40 x lr)")
    parser.add_argument("--pooling", default="mean", choices=sorted(POOLINGS))
    parser.add_argument("--layers", type=int, help="keep MiniLM's first N layers (default 6)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--no-balance", action="store_true", help="unweighted loss")
    parser.add_argument("--random-negatives", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    train = sample_pairs(args.data, "train", args.pairs, args.seed)
    valid = sample_pairs(args.data, "valid", args.valid_pairs, args.seed + 1)
    if args.random_negatives:
        train, valid = random_negatives(train, args.seed), random_negatives(valid, args.seed + 1)
    print(f"{args.data.name}: {len(train[2])} training pairs ({int(train[2].sum())} matches), "
          f"{len(valid[2])} validation pairs, match rate {valid[2].mean():.3f}")  # fmt: skip
    j = np.array([jaccard(a, b) for a, b in zip(valid[0], valid[1], strict=True)])
    print(f"same-run baselines, validation AP: token Jaccard {average_precision(j, valid[2]):.3f}, "
          f"MiniLM bi-encoder cosine "
          f"{average_precision(bi_encoder_cosine(valid[0], valid[1]), valid[2]):.3f}")  # fmt: skip
    encoder = CrossEncoder.from_base(None, args.max_length, args.layers, args.pooling)
    print(f"before training: validation AP {average_precision(encoder.logits(valid[0], valid[1]), valid[2]):.3f}")  # fmt: skip
    cpu = time.process_time()
    fit, logits = train_cross_encoder(
        encoder, train, valid, epochs=args.epochs, lr=args.lr, batch_size=args.batch,
        augment=0.0, seed=args.seed, progress=False, balance=not args.no_balance,
        head_lr=args.head_lr,
    )  # fmt: skip
    cpu = time.process_time() - cpu
    for h in fit["history"]:
        print(f"epoch {h['epoch']}: loss {h['loss']:.4f} (every 20 steps: {h['curve']}), "
              f"validation AP {h['valid_ap']:.3f}")  # fmt: skip
    train_ap = average_precision(encoder.logits(train[0], train[1]), train[2])
    print(f"kept epoch {fit['best_epoch']}: validation AP {fit['valid_ap']:.3f} (match rate "
          f"{valid[2].mean():.3f}), training AP {train_ap:.3f}, validation logits mean "
          f"{logits.mean():+.3f} sd {logits.std():.3f}; {cpu:.0f} CPU s of training")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

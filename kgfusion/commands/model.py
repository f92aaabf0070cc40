"""``kgf encode``, ``kgf train``, ``kgf evaluate``: node features and fusion x GNN runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..display import print_encode_report, quiet_transformers
from ..session import Session
from .registry import CliError, command


# --------------------------------------------------------------------------- encode
def _encode_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Turn literal columns into node features per type and modality, with masks: text "
        "(name/title/label/description), images (image references), numbers. Results are "
        "cached by content hash in the workspace: re-encoding an unchanged catalogue runs no "
        "model, and a changed product re-encodes only itself."
    )
    p.epilog = (
        "examples:\n"
        "  kgf encode ws                                    # minilm text + efficientnet-lite0 images\n"
        "  kgf encode ws --text e5-multilingual             # mixed-language catalogues\n"
        "  kgf encode ws --text hf:/models/my-bert --image none --languages de en"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument(
        "--text", default="minilm", help="text encoder: minilm, e5-multilingual, hf:PATH, or none"
    )
    p.add_argument(
        "--image",
        default="efficientnet-lite0",
        help="image encoder: efficientnet-lite0, hf:PATH, or none",
    )
    p.add_argument("--no-numeric", action="store_true", help="skip numeric columns")
    p.add_argument(
        "--languages", nargs="+", default=["en"], help="preferred languages for text, in order"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=64)


@command("encode", "encode text, images and numbers into cached node features", _encode_args)
def encode(args) -> int:
    from fusion.features import FeatureSpec

    none = lambda v: None if v in (None, "none", "") else v
    spec = FeatureSpec(
        text_encoder=none(args.text), image_encoder=none(args.image), numeric=not args.no_numeric,
        languages=tuple(args.languages), batch_size=args.batch_size, device=args.device,
    )  # fmt: skip
    quiet_transformers()
    print_encode_report(*Session(args.workspace).encode(spec))
    return 0


# --------------------------------------------------------------------------- train / evaluate
def _train_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Train a fusion x GNN model on the workspace's graph (and its features, if `kgf encode` "
        "wrote some; featureless types get the R-GCN paper's one-hot input with rgcn, learnable "
        "embeddings otherwise). AIFB with the paper's settings: --config examples/aifb_rgcn.toml. "
        "Checkpoints "
        "(config.json + model.safetensors), metrics.jsonl and final node embeddings go to "
        "WORKSPACE/models/RUN."
    )
    p.epilog = (
        "examples:\n"
        "  kgf train /tmp/aifb --task node --labels ../shared/data/rdf/aifb/trainingSet.tsv \\\n"
        "      --test ../shared/data/rdf/aifb/testSet.tsv --entity-col person \\\n"
        "      --label-col label_affiliation --gnn rgcn --fusion attention\n"
        "  kgf train ws --task link --relation isAccessoryOrSparePartFor --gnn sage\n"
        "  kgf train ws --config cfg.toml --set trainer.lr=0.005 --set model.hidden=64\n"
        "  kgf evaluate ws RUN --split test"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument(
        "--task", choices=["node", "link"], help="node classification or link prediction"
    )
    p.add_argument("--labels", type=Path, help="node task: TSV/CSV of training labels")
    p.add_argument(
        "--valid", type=Path, help="node task: validation labels (else carved from --labels)"
    )
    p.add_argument("--test", type=Path, help="node task: test labels")
    p.add_argument("--entity-col", help="column naming the entity IRI")
    p.add_argument(
        "--label-col", action="append", help="label column (repeat for multi-task heads)"
    )
    p.add_argument(
        "--relation", action="append", help="link task: relation to predict (repeatable)"
    )
    p.add_argument("--gnn", help="rgcn, hgt, sage, gat or mlp (default rgcn)")
    p.add_argument(
        "--fusion", help="concat, mean, attention, gated, tensor or lowrank (default attention)"
    )
    p.add_argument(
        "--mode", choices=["early", "late"], help="fuse then propagate (early) or the reverse"
    )
    p.add_argument("--config", type=Path, help="TOML config; flags override it")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    p.add_argument("--run", help="run name (default: derived from task, gnn, fusion)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--resume", action="store_true", help="continue the run from its last checkpoint"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run")


def _parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--set {pair!r}: expected KEY=VALUE, e.g. trainer.lr=0.01")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


@command("train", "train a fusion x GNN model: node classification or link prediction", _train_args)
def train_cmd(args) -> int:
    result = Session(args.workspace).train(
        task=args.task, labels=args.labels, valid=args.valid, test=args.test,
        entity_col=args.entity_col, label_cols=args.label_col, relations=args.relation,
        gnn=args.gnn, fusion=args.fusion, mode=args.mode, config_path=args.config,
        overrides=_parse_overrides(args.set), run_name=args.run, device=args.device,
        seed=args.seed, resume=args.resume, overwrite=args.overwrite,
    )  # fmt: skip
    print(
        f"run {result.run_dir} (best epoch {result.best_epoch} of {result.epochs}, {result.seconds:.1f}s)"
    )
    for key, value in sorted(result.metrics.items()):
        print(f"  {key:28} {value:.4f}")
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace", type=Path)
    p.add_argument("run", help="run name under WORKSPACE/models (see `ls WORKSPACE/models`)")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


@command("evaluate", "re-evaluate a trained run on a split", _evaluate_args)
def evaluate_cmd(args) -> int:
    metrics = Session(args.workspace).evaluate(args.run, args.split, args.device)
    for key, value in sorted(metrics.items()):
        print(f"{key:28} {value:.4f}")
    return 0

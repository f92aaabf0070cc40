"""``kgf encode``, ``kgf train``, ``kgf evaluate``, ``kgf runs``: node features and fusion x GNN
runs, their metrics and configurations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..display import (
    add_format_argument,
    emit,
    emit_for_args,
    metrics_output,
    print_encode_report,
    quiet_transformers,
)
from ..session import Session
from .registry import CliError, add_precision_argument, command


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
        "  kgf encode ws --text hf:/models/my-bert --image none --languages de en\n"
        "  kgf encode ws --precision auto                   # large catalogues: bf16 text, ~2x"
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
    add_precision_argument(p, "fp32", "the transformers encoders",
                           "default fp32: the same features as before, bit for bit")  # fmt: skip
    p.add_argument(
        "--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
        help="encode on Ray (pip install 'kgfusion[distributed]'): a local Ray by default, "
        "'auto' for this machine's cluster, or HOST:PORT / ray://HOST:PORT",
    )  # fmt: skip


@command("encode", "encode text, images and numbers into cached node features", _encode_args)
def encode(args) -> int:
    from fusion.features import FeatureSpec

    none = lambda v: None if v in (None, "none", "") else v
    spec = FeatureSpec(
        text_encoder=none(args.text), image_encoder=none(args.image), numeric=not args.no_numeric,
        languages=tuple(args.languages), batch_size=args.batch_size, device=args.device,
        precision=args.precision,
    )  # fmt: skip
    quiet_transformers()
    print_encode_report(*Session(args.workspace).encode(spec, ray=args.ray))
    return 0


# --------------------------------------------------------------------------- train / evaluate
_TRAIN_DESCRIPTION = (
    "Train a fusion x GNN model on the workspace's graph (and its features, if `kgf encode` "
    "wrote some; featureless types get the R-GCN paper's one-hot input with rgcn, learnable "
    "embeddings otherwise). AIFB with the paper's settings: --config examples/aifb_rgcn.toml. "
    "Checkpoints "
    "(config.json + model.safetensors), metrics.jsonl (and metrics.png with matplotlib, "
    "TensorBoard logs with tensorboard installed) and final node embeddings go to "
    "WORKSPACE/models/RUN; `kgf runs WORKSPACE` lists the runs."
)
_TRAIN_EXAMPLES = (
    "examples:\n"
    "  kgf train /tmp/aifb --task node --labels ../shared/data/rdf/aifb/trainingSet.tsv \\\n"
    "      --test ../shared/data/rdf/aifb/testSet.tsv --entity-col person \\\n"
    "      --label-col label_affiliation --gnn rgcn --fusion attention\n"
    "  kgf train ws --task link --relation isAccessoryOrSparePartFor --gnn sage\n"
    "  kgf train ws --config cfg.toml --set trainer.lr=0.005 --set model.hidden=64\n"
    "  kgf train ws --task attribute --relation season --relation usage "
    "--set task.inductive=true\n"
    "  kgf train ws --task link --relation isSimilarTo --epochs 50 --lr 0.005 --hidden 32\n"
    "  kgf train ws --config cfg.toml --print-config   # the effective config, as TOML\n"
    "  kgf train ws --list-keys --task link             # every config key and its default\n"
    "  kgf evaluate ws RUN --split test\n"
    "  kgf runs ws                                      # runs, their metrics, complete or not"
)


def _train_args(p: argparse.ArgumentParser) -> None:
    p.description, p.epilog = _TRAIN_DESCRIPTION, _TRAIN_EXAMPLES
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    _train_data_args(p)
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
    p.add_argument("--epochs", type=int, help="training epochs (trainer.epochs)")
    p.add_argument("--lr", type=float, help="learning rate (trainer.lr)")
    p.add_argument("--hidden", type=int, help="hidden width of the model (model.hidden)")
    p.add_argument(
        "--run", help="run name (default: TASK-GNN-FUSION-DATE-HHMM, e.g. "
        "link-rgcn-attention-2026-12-04-1059, with -2, -3, ... when taken)",
    )  # fmt: skip
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--resume", action="store_true", help="continue the run from its last checkpoint"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run")
    p.add_argument(
        "--print-config", action="store_true",
        help="print the effective configuration (defaults < --config < flags < --set) as "
        "TOML, which --config reads back, and exit without training",
    )  # fmt: skip
    p.add_argument(
        "--list-keys", action="store_true",
        help="list the configuration keys (for --set and TOML files) with their defaults "
        "for --task, and exit",
    )  # fmt: skip
    p.add_argument("--format", choices=["table", "csv", "json", "jsonl"], default="table",
                   help="format of --list-keys (default table)")  # fmt: skip
    _scale_args(p)


def _train_data_args(p: argparse.ArgumentParser) -> None:
    """What to learn: the task and its labels or relations."""
    p.add_argument(
        "--task",
        choices=["node", "link", "attribute"],
        help="node classification, link prediction or attribute completion",
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
        "--relation",
        action="append",
        help="link / attribute task: relation to predict (repeatable)",
    )


def _scale_args(p: argparse.ArgumentParser) -> None:
    """``kgf train``'s mini-batch and multi-process options."""
    p.add_argument(
        "--batch-size", type=int, metavar="B",
        help="mini-batch training: B seed nodes (node task) or training triples (link task) "
        "per step, each on its sampled neighbourhood (trainer.batch_size; default: full batch)",
    )  # fmt: skip
    p.add_argument(
        "--fanout", metavar="K1,K2", help="neighbours sampled per hop, one per GNN layer, -1 "
        "= all (trainer.fanout; default 15,10 for two layers)",
    )  # fmt: skip
    p.add_argument(
        "--nproc", type=int, metavar="N", help="train in N local worker processes "
        "(torch.distributed.run + DistributedDataParallel; gloo on CPU, NCCL on GPU), each "
        "on its share of every --batch-size batch",
    )  # fmt: skip


#: ``kgf train`` flags that are shorthands for config keys
TRAIN_FLAGS = {"epochs": "trainer.epochs", "lr": "trainer.lr", "hidden": "model.hidden",
               "batch_size": "trainer.batch_size", "fanout": "trainer.fanout"}  # fmt: skip


def _fanout(text: str) -> list[int]:
    try:
        return [int(k) for k in str(text).split(",") if k.strip()]
    except ValueError:
        raise CliError(
            f"--fanout {text!r}: expected integers per hop, e.g. --fanout 15,10"
        ) from None


def _command_line(args) -> list[str]:
    """The ``kgf train`` arguments that ``args`` came from (set options only)."""
    parser = argparse.ArgumentParser()
    _train_args(parser)
    argv = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings:  # the workspace
            argv.insert(0, str(value))
        elif value is None or value == action.default or action.dest == "help":
            continue
        elif isinstance(value, bool):
            argv.append(action.option_strings[-1])
        else:
            for item in value if isinstance(value, list) else [value]:
                argv.append(f"{action.option_strings[-1]}={item}")
    return ["train", *argv]


def _launch(args) -> int:
    """``kgf train ... --nproc N``: the same command in N workers (fusion.distributed)."""
    from fusion.distributed import LaunchError, launch, worker_argv

    if not args.batch_size:
        raise CliError("--nproc needs --batch-size: each worker trains on its share of every batch")
    try:
        launch(args.nproc, "kgfusion.cli", worker_argv(_command_line(args)))
    except LaunchError as err:
        raise CliError(str(err)) from None
    return 0


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


def _train_settings(args) -> dict:
    """The options of ``kgf train`` that make up the run configuration
    (:func:`fusion.config.resolve_config`): the flags, then ``--set`` (which wins)."""
    overrides = {key: getattr(args, flag) for flag, key in TRAIN_FLAGS.items()
                 if getattr(args, flag) is not None}  # fmt: skip
    if "trainer.fanout" in overrides:
        overrides["trainer.fanout"] = _fanout(overrides["trainer.fanout"])
    overrides.update(_parse_overrides(args.set))
    return dict(
        task=args.task, labels=args.labels, valid=args.valid, test=args.test,
        entity_col=args.entity_col, label_cols=args.label_col, relations=args.relation,
        gnn=args.gnn, fusion=args.fusion, mode=args.mode, device=args.device, seed=args.seed,
        config_path=args.config, overrides=overrides,
    )  # fmt: skip


@command("train", "train a fusion x GNN model: node classification, link prediction or attribute completion", _train_args)
def train_cmd(args) -> int:
    if args.list_keys:
        from ..run_report import config_keys_output

        emit(config_keys_output(args.task or "node"), args.format)
        return 0
    settings = _train_settings(args)
    if args.print_config:
        from fusion.config import resolve_config

        from ..display import toml_text
        from ..run_report import effective_config

        config_path, overrides = settings.pop("config_path"), settings.pop("overrides")
        config = resolve_config(config_path, overrides, **settings)
        print(toml_text(effective_config(config)), end="")
        return 0
    from fusion.distributed import from_env, under_launcher

    if args.nproc and args.nproc > 1 and not under_launcher():
        return _launch(args)
    result = Session(args.workspace).train(
        **settings, run_name=args.run, resume=args.resume, overwrite=args.overwrite
    )
    if not from_env().is_main:  # rank 0 reports the run
        return 0
    print(
        f"run {result.run_dir.name} in {result.run_dir} (best epoch {result.best_epoch} of "
        f"{result.epochs}, {result.seconds:.1f}s)"
    )
    for key, value in sorted(result.metrics.items()):
        print(f"  {key:28} {value:.4f}")
    extras = [name for name in ("metrics.png", "tensorboard") if (result.run_dir / name).exists()]
    if extras:
        print(f"  curves: {', '.join(str(result.run_dir / name) for name in extras)}")
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace", type=Path)
    p.add_argument("run", help="run name under WORKSPACE/models (see `ls WORKSPACE/models`)")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    add_format_argument(p)
    p.add_argument("-o", "--output", type=Path, help="write the metrics to a .csv/.json file")


@command("evaluate", "re-evaluate a trained run on a split", _evaluate_args)
def evaluate_cmd(args) -> int:
    metrics = Session(args.workspace).evaluate(args.run, args.split, args.device)
    emit_for_args(metrics_output(metrics), args, what="metrics")
    return 0


# --------------------------------------------------------------------------- predict
PREDICTION_COLUMNS = ["product", "name", "relation", "predicted", "probability", "alternatives",
                      "catalogue", "value_iri"]  # fmt: skip


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Fill the catalogue's gaps with a trained run. An attribute-completion run (`kgf train "
        "WS --task attribute --relation R`): for every product without a value of the run's "
        "relations (or the products named), the model's best values with their probabilities; "
        "the model sees the whole catalogue graph less the asked products' own edges of the "
        "relation, so a value the catalogue has is predicted, not read off (column `catalogue` "
        "shows it). A node-classification run (`kgf train WS --labels FILE`): the class of "
        "every entity of the labelled types the label files leave out. Probabilities are "
        "calibrated on the run's validation split; the footer gives its test accuracy."
    )
    p.epilog = (
        "examples:\n"
        "  kgf predict fws                                  # every gap, every relation of the newest run\n"
        "  kgf predict fws --relation usage --min-probability 0.9 -o usage.csv   # the sure ones\n"
        "  kgf predict fws --name 'Puma Men Black Jacket' -k 2\n"
        "  kgf predict fws --product https://example.org/fashion/product/1163 --json\n"
        "  kgf predict /tmp/aifb --run rgcn -k 1              # AIFB: the unlabelled persons' groups"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("--run", help="the attribute or node run (default: the newest of them)")
    p.add_argument("--relation", action="append",
                   help="a relation (label column for a node run) to predict (repeatable; "
                   "default: every one of the run)")  # fmt: skip
    who = p.add_mutually_exclusive_group()
    who.add_argument("--product", action="append", metavar="IRI",
                     help="predict for this product or entity (repeatable; default: the gaps)")  # fmt: skip
    who.add_argument("--name", help="predict for the product of this name (text linker)")
    p.add_argument("-k", type=int, default=3, help="values per product, best first (default 3)")
    p.add_argument("--min-probability", type=float, default=0.0, metavar="P",
                   help="only products whose best value has at least this probability")  # fmt: skip
    p.add_argument("--triples", type=Path, metavar="FILE.nt",
                   help="also write the best value of each gap shown as N-Triples, to load next "
                   "to the catalogue (`kgf build catalogue.nt FILE.nt -o ws2`)")  # fmt: skip
    add_format_argument(p)
    p.add_argument("-o", "--output", type=Path, help="write to a .csv/.tsv/.json/.jsonl file")


@command("predict", "fill missing attribute values (or entity classes) with a trained run",
         _predict_args)  # fmt: skip
def predict_cmd(args) -> int:
    from ..display import Rows
    from ..session_runs import prediction_record

    if not 0.0 <= args.min_probability <= 1.0:
        raise CliError(f"--min-probability {args.min_probability}: give a probability in [0, 1]")
    session = Session(args.workspace)
    nodes = args.product
    if args.name is not None:
        nodes = [session.resolve_name(args.name).iri]
    predictor = session.predictor(args.run)
    found = predictor.predict(nodes, args.relation, args.k)
    kept = [p for p in found if p.values[0][1] >= args.min_probability]
    records = [prediction_record(session.graph, p) for p in kept]
    if args.triples is not None:
        from fusion.predict import gap_triples
        from kg.workspace import atomic_write_bytes

        data = gap_triples(session.graph, kept)
        atomic_write_bytes(args.triples, data)
        lines = len(data.splitlines())
        print(f"wrote {lines:,} predicted triples (gaps only) -> {args.triples}", file=sys.stderr)
    footer = [f"run {predictor.run}; test accuracy: " + ", ".join(
        f"{r} {100 * acc:.1f} %" if (acc := predictor.test_accuracy(r)) is not None else f"{r} -"
        for r in (args.relation or predictor.relations))]  # fmt: skip
    below = len(found) - len(records)
    if below:
        footer.append(f"{below} of {len(found)} below --min-probability {args.min_probability}")
    if found:
        empty = f"none of the {len(found)} predictions reaches --min-probability {args.min_probability}"
    elif nodes is None:
        empty = "no gaps: every product has a value of each relation (name products with --product)"
    else:
        empty = "no prediction: the products named are not of the relations' product type"
    rows = Rows(PREDICTION_COLUMNS, records, widths={"product": 40, "name": 40, "value_iri": 40},
                digits=3, empty=empty, footer=footer)  # fmt: skip
    emit_for_args(rows, args, what="predictions")
    return 0


# --------------------------------------------------------------------------- runs
def _runs_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The training runs of a workspace (WORKSPACE/models): task, what it predicts, model, "
        "the task's main metric on valid and test, date, and whether the run completed (an "
        "incomplete run shows its last logged epoch and can be continued with "
        "`kgf train WS --run NAME --resume`). --compare A B: the configuration keys that "
        "differ and every metric, side by side."
    )
    p.epilog = (
        "examples:\n"
        "  kgf runs ws\n"
        "  kgf runs ws --compare link-rgcn-attention-2026-12-04-1059 link-sage-gated-2026-12-04-1130\n"
        "  kgf runs ws --format json"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two runs side by side")
    add_format_argument(p)
    p.add_argument("-o", "--output", type=Path, help="write to a .csv/.json/.jsonl file")


@command("runs", "list the trained runs of a workspace, or compare two", _runs_args)
def runs_cmd(args) -> int:
    from ..run_report import compare_output, runs_output

    if not args.workspace.is_dir():
        raise CliError(f"{args.workspace}: no such workspace folder")
    rows = (
        compare_output(args.workspace, *args.compare)
        if args.compare
        else runs_output(args.workspace)
    )
    emit_for_args(rows, args, what="rows")
    return 0

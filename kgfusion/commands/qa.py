"""``kgf qa-train``, ``kgf ask``: product question answering over the graph."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..display import quiet_transformers
from ..session import Session
from .registry import CliError, command


# --------------------------------------------------------------------------- qa-train
def _qa_train_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Train the question -> attribute scorer of `kgf ask`: --scorer features (default) is\n"
        "a cross-feature scorer over multilingual E5 embeddings of the question and of each\n"
        "attribute's name (with its words in en/de/es/zh and its values in the catalogue) and\n"
        "value; --scorer bi-encoder / cross-encoder fine-tune all-MiniLM-L6-v2 (English). All\n"
        "are trained listwise; the epochs are chosen on a hold-out of whole attribute types,\n"
        "then the model is trained again on all the questions for that many epochs (the\n"
        'refit; --no-refit: not). The NIL threshold ("not in the catalogue") is calibrated on\n'
        "questions the chosen model did not train on (the hold-out, or out-of-fold scores).\n"
        "Training questions: labelled shopper questions in the semiPQA layout\n"
        "(--pairs, tab-separated qid, qa_pair_id, question, candidate, label) and questions\n"
        "generated from the workspace's own products (--graph-products). Saved as\n"
        "WORKSPACE/qa-scorer/config.json + model.safetensors."
    )
    p.epilog = (
        "examples:\n"
        "  kgf qa-train ws                                       # questions from the graph\n"
        "  kgf qa-train ws --pairs ../shared/data/qa/semipqa/dev.csv\n"
        "  kgf qa-train ws --pairs ../shared/data/qa/semipqa/dev.csv --scorer bi-encoder"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("--pairs", type=Path, nargs="*", default=[], metavar="FILE",
                   help="labelled questions, semiPQA layout")  # fmt: skip
    p.add_argument("--graph-products", type=int, default=300,
                   help="products whose attributes give generated questions (0: none)")  # fmt: skip
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: 30 features, 3 bi-encoder, 2 cross-encoder; "
                   "ensemble: each member's)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scorer", default="features", metavar="KIND",
                   help="features: a head over frozen multilingual E5 embeddings (en / de / es / "
                   "zh questions); bi-encoder: fine-tunes all-MiniLM-L6-v2 (English, better on "
                   "shopper questions, minutes of CPU); cross-encoder: fine-tunes it over "
                   "(question, attribute) pairs (English, several times the bi-encoder's CPU); "
                   "ensemble: both, pooled with weights fitted on their hold-out; memory: votes "
                   "of the nearest training questions for the names that answered them; "
                   "ensemble-memory: the ensemble plus the memory")  # fmt: skip
    p.add_argument("--no-refit", action="store_true",
                   help="keep the model trained beside the hold-out (about half the CPU of a "
                   "fine-tuned kind) instead of training it again on all the questions for the "
                   "epochs the hold-out chose (the default; semiPQA ensemble P@1 80.1 -> 81.9)")  # fmt: skip


@command("qa-train", "train the question -> attribute scorer of `kgf ask`", _qa_train_args)
def qa_train_cmd(args) -> int:
    from align.qa_tuned import epoch_line

    if not args.pairs and args.graph_products <= 0:
        raise CliError("no training questions: give --pairs FILE or --graph-products N > 0")
    session = Session(args.workspace)
    metrics = session.qa_train(
        args.pairs, graph_products=args.graph_products, epochs=args.epochs, seed=args.seed,
        kind=args.scorer, refit=not args.no_refit,
        progress=lambda e, loss, mrr: print(epoch_line(e, loss, mrr)),
    )  # fmt: skip
    print(f"question scorer saved to {session.path / 'qa-scorer'}")
    for key, value in metrics.items():
        print(f"  {key:12} {value}")
    return 0


# --------------------------------------------------------------------------- ask
def _ask_args(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "examples:\n"
        '  kgf ask ws "does the lumo racing car need batteries?"\n'
        '  kgf ask ws --image photo.jpg "what season is this for?"\n'
        '  kgf ask ws --product https://example.org/fashion/product/15970 "welche Farbe hat es?"\n'
        "The answer names the product (and the alternatives when the question or photo may mean\n"
        "another), the attribute, the values, the evidence triples and a confidence; below the\n"
        "calibrated threshold it says the catalogue has no answer. Train the scorer first:\n"
        "`kgf qa-train ws`."
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("workspace", type=Path)
    p.add_argument("question", help="the question (any language the E5 encoder knows)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--image", type=Path, help="a photo of the product")
    where.add_argument("--product", metavar="IRI", help="the product's IRI")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")


def answer_lines(answer) -> list[str]:
    """The answer as text lines: the sentence, then what it rests on."""
    lines = [answer.text]
    if answer.product:
        lines.append(f"  product     {answer.product_name} <{answer.product}> "
                     f"(by {answer.found_by}, score {answer.product_score:.3f})")  # fmt: skip
    if answer.attribute:
        lines.append(f"  attribute   {answer.attribute} <{answer.predicate}> "
                     f"(confidence {answer.confidence:.3f})")  # fmt: skip
    for s, p, o in answer.evidence[:5]:
        lines.append(f"  evidence    <{s}> <{p}> {o if not o.startswith('http') else f'<{o}>'}")
    for iri, name, score in answer.predicted[:5]:
        lines.append(f"  predicted   {name} <{iri}> ({score:.3f}, {answer.model or 'link model'})")
    for iri, name, score in answer.alternatives[:3]:
        lines.append(f"  or perhaps  {name} <{iri}> ({score:.3f})")
    if not answer.answered and answer.attributes:
        near = ", ".join(f"{w} ({p:.2f})" for w, p in answer.attributes)
        lines.append(f"  closest attributes: {near}")
    lines += [f"  note: {n}" for n in answer.notes]
    return lines


@command("ask", "answer a question about a product from the graph", _ask_args)
def ask_cmd(args) -> int:
    quiet_transformers()
    session = Session(args.workspace)
    answer = session.ask(args.question, product=args.product, image=args.image)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(answer_lines(answer)))
    return 0

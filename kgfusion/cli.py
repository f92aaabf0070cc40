"""``kgf``: the kgfusion command line.

Each subcommand is one function registered in ``COMMANDS`` with its argument parser
(:mod:`kgfusion.commands`, one module per topic);
``kgf --help`` lists them with an example each, ``kgf CMD --help`` teaches the options.
The commands parse arguments and print; the work is done by :class:`kgfusion.session.Session`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .commands import COMMANDS, CliError
from .session import SessionError

EPILOG = """\
typical session:
  kgf demo                                             # sample catalogue, end to end
  kgf build catalogue.ttl -o ws/                       # RDF (nt, nq, ttl, trig, rdf/xml, jsonld, .gz)
  kgf build products.csv --mapping map.toml -o ws/     # a table, mapped to schema.org RDF
  kgf info ws/                                         # types, relations, literal coverage, images
  kgf sparql ws/ 'SELECT ?p ?n WHERE { ?p <http://schema.org/name> ?n } LIMIT 5'
  kgf encode ws/                                       # text, image and number features
  kgf train ws/ --task attribute --relation season     # a fusion x GNN run (or --task link, --labels)
  kgf predict ws/                                      # the run fills the catalogue's gaps
  kgf index ws/ && kgf related ws/ --name 'gold ring'  # related products, explained
  kgf qa-train ws/ && kgf ask ws/ 'what colour is the gold ring?'
  kgf serve ws/                                        # the same over HTTP, docs at /docs
"""


# --------------------------------------------------------------------------- main
def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgf",
        description="kgfusion: product knowledge graphs with multimodal fusion.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kgfusion {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (add_arguments, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(handler=run)
    return parser


def _version() -> str:
    from kg import __version__

    return __version__


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that explain bad input themselves: printed without a traceback (exit 2).

    Packages that were never imported cannot have raised, so they are not imported here.
    """
    from kg.graph import GraphLookupError
    from kg.index import EntityIndexError
    from kg.rdf import RdfError
    from kg.sparql import SparqlError
    from kg.tabular import TableError
    from kg.workspace import WorkspaceError

    from .display import OutputError

    errors: tuple[type[BaseException], ...] = (
        CliError, OutputError, SessionError, FileNotFoundError, EntityIndexError, GraphLookupError, RdfError, SparqlError,
        TableError, WorkspaceError,
    )  # fmt: skip
    if "fusion.artifacts" in sys.modules:  # configs, runs and saved artefacts of fusion
        from fusion.artifacts import ConfigError

        errors += (ConfigError,)
    if "fusion.trainer" in sys.modules:
        from fusion.labels import LabelError
        from fusion.registry import UnknownNameError
        from fusion.trainer import TrainingError

        errors += (LabelError, TrainingError, UnknownNameError)
    if "align" in sys.modules:
        from align import LinkerError

        errors += (LinkerError,)
    if "fusion.encoders" in sys.modules:
        from fusion.encoders import EncoderError

        errors += (EncoderError,)
    if "fusion.ray_encode" in sys.modules:
        from fusion.ray_encode import RayUnavailable

        errors += (RayUnavailable,)
    return errors


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault(
        "HF_HUB_OFFLINE", "1"
    )  # defaults run offline: models come from PyPI packages
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    warnings.simplefilter("default")
    warnings.formatwarning = lambda message, category, *a, **k: f"warning: {message}\n"
    try:
        return args.handler(args)
    except KeyboardInterrupt:  # Ctrl-C: finished work (caches, checkpoints) is already saved
        print("\nkgf: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise
        print(f"kgf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

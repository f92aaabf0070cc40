"""The ``kgf`` command registry: ``COMMANDS`` maps a name to its argument filler and runner."""

from __future__ import annotations

import argparse
from collections.abc import Callable

COMMANDS: dict[str, tuple[Callable, Callable, str]] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``kgf NAME``: ``add_arguments`` fills its parser, the decorated function runs it."""

    def decorate(run):
        COMMANDS[name] = (add_arguments, run, help)
        return run

    return decorate


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def add_precision_argument(parser: argparse.ArgumentParser, default: str, what: str,
                           note: str) -> None:  # fmt: skip
    """``--precision auto|fp32|bf16`` (:mod:`fusion.precision`) for ``what`` (e.g. "the mention
    encoder"); ``note`` ends the help (what the default keeps or gains)."""
    parser.add_argument(
        "--precision", default=default, choices=["auto", "fp32", "bf16"],
        help=f"precision of {what}: auto = bf16 where the CPU (AVX512-BF16 / AMX) or GPU "
        f"multiplies it natively (about 2x the texts per second, embeddings within a cosine "
        f"of 1e-4), else fp32; {note}",
    )  # fmt: skip

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

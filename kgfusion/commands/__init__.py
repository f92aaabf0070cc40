"""The ``kgf`` subcommands, one module per topic, each registered in ``COMMANDS``.

Importing this package registers every command, in the order ``kgf --help`` lists them:
``graph`` (build, info, sparql), ``model`` (encode, train, evaluate, runs), ``linking``
(link-train, link, index, related), ``search`` (align, search), ``serve`` (serve, demo). A
new command is a function decorated with :func:`~kgfusion.commands.registry.command` in the module of its topic.
"""

from __future__ import annotations

# import order = registration order = the order `kgf --help` lists them
# isort: off
from . import graph, model, linking, qa, search, serve  # noqa: F401

# isort: on
from .registry import COMMANDS, CliError, command

__all__ = ["COMMANDS", "CliError", "command"]

"""The generic cases for every registered task and link decoder."""

from __future__ import annotations

from generic_cases import (  # noqa: F401  (one_thread: an autouse fixture)
    DecoderCases,
    TaskCases,
    one_thread,
)


class TestEveryTask(TaskCases):
    """Splits, loss and gradients, metrics, info, determinism, devices for every task."""


class TestEveryDecoder(DecoderCases):
    """Pairwise vs all-candidate scores, gradients, unknown names for every decoder."""

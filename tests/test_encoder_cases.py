"""The generic cases for every registered encoder (pretrained ones are marked slow)."""

from __future__ import annotations

from generic_cases import EncoderCases, one_thread  # noqa: F401  (one_thread: autouse fixture)


class TestEveryEncoder(EncoderCases):
    """Metadata, shapes, input order and batching, determinism, devices for every encoder."""

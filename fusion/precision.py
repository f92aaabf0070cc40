"""Inference precision: float32 everywhere, bfloat16 where the hardware multiplies it natively.

``"auto"`` resolves to ``"bf16"`` on a CPU with AVX512-BF16 or AMX (Intel Cooper Lake,
Sapphire Rapids and later) and on a CUDA GPU with bf16 support (Ampere and later), else to
``"fp32"``: elsewhere bf16 is emulated and slower than float32. In bf16 a transformer's
matrix products run in bfloat16 with float32 accumulation; sentence embeddings move by a
cosine of about 1e-4 (all-MiniLM-L6-v2: >= 0.9999 against float32 on Abt-Buy records) at
1.8-2.3x the texts per second on a 2-core AMD EPYC with AVX512-BF16 (more with AMX;
``benchmarks/link_throughput.py``).
"""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "bf16")


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` multiplies bfloat16 natively (CPU: AVX512-BF16 or AMX tiles)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)()
               for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))  # fmt: skip


def resolve_precision(precision: str | None, device: torch.device | str = "cpu",
                      choices: tuple[str, ...] = PRECISIONS, what: str = "precision") -> str:  # fmt: skip
    """``precision`` if it is one of ``choices``; ``"auto"`` (or None) is ``"bf16"`` where
    :func:`native_bf16` and bf16 is a choice, else ``"fp32"``. Raises ``ValueError`` naming
    ``what`` and the choices for anything else."""
    precision = precision or "auto"
    if precision == "auto":
        return "bf16" if "bf16" in choices and native_bf16(device) else "fp32"
    if precision not in choices:
        raise ValueError(f"{what} {precision!r}: not one of {['auto', *choices]}")
    return precision


def torch_dtype(precision: str) -> torch.dtype:
    """The weights' dtype for a resolved precision (``"fp32"`` or ``"bf16"``)."""
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]

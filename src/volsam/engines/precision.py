"""Numeric precision of engine forward passes: names, where bf16 is native, the autocast context."""

from __future__ import annotations

import contextlib

import torch

from volsam.engines.base import PRECISIONS, check_precision

__all__ = ["PRECISIONS", "autocast", "check_precision", "native_bf16"]


def native_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls run natively (CPUs with AVX-512 BF16 or AMX; CUDA GPUs with bf16)."""
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu helpers
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return False


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on ``device`` for ``precision == "bf16"``, a no-op otherwise."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

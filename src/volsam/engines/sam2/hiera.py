"""Hiera attention without transformers' discarded attention matrix, installed on a loaded model.

transformers' ``Sam2MultiScaleAttention.forward`` (5.x) first computes ``softmax(q·scale @ kᵀ)`` for every
window, then throws it away and calls PyTorch's fused attention on the same ``q, k, v``. The discarded
product costs a matmul, a softmax and two copies per block: on the MedSAM2 layout (512 input) about 3% of
a tracked frame on CPU (benchmarks/bench_sam2.py). This forward runs only the fused attention, so its
output is the same tensor op for op (bit-identical on CPU: tests/engines/sam2/test_hiera.py), with the
query pooling at stage changes done as transformers does it (max-pool over ``query_stride``).

Installed per model instance (:func:`install`), never by patching transformers' module globals.
:func:`uninstalled` puts transformers' own forward back for a while: OpenVINO's converter (2026.4) reads
this forward wrongly (the attention output moves by more than its own size), transformers' correctly, and
drops its unused attention matrix by itself.
"""

from __future__ import annotations

import contextlib
import logging
import types
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

_NEEDED = ("qkv", "proj", "num_attention_heads", "scale", "query_stride")


def _pool(x: torch.Tensor, stride: Any) -> torch.Tensor:
    """Max-pool ``x`` ``(B, H, W, C)`` by ``stride`` over H and W; ``(B, H', W', C)``."""
    x = F.max_pool2d(x.permute(0, 3, 1, 2), kernel_size=stride, stride=stride, ceil_mode=False)
    return x.permute(0, 2, 3, 1)


def _forward(self: Any, hidden_states: torch.Tensor, **_: Any) -> torch.Tensor:
    """``Sam2MultiScaleAttention.forward`` on ``(B, H, W, C)`` windows with only the fused attention."""
    batch, height, width, _ = hidden_states.shape
    qkv = self.qkv(hidden_states).reshape(batch, height * width, 3, self.num_attention_heads, -1)
    query, key, value = torch.unbind(qkv, 2)  # (B, H*W, heads, C) each
    if self.query_stride:
        query = _pool(query.reshape(batch, height, width, -1), self.query_stride)
        height, width = query.shape[1:3]
        query = query.reshape(batch, height * width, self.num_attention_heads, -1)
    out = F.scaled_dot_product_attention(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), scale=self.scale
    )
    return self.proj(out.transpose(1, 2).reshape(batch, height, width, -1))


def install(net: torch.nn.Module) -> int:
    """Give every Hiera attention module of ``net`` the leaner forward; returns how many were changed.

    Modules that do not look like transformers' ``Sam2MultiScaleAttention`` (another transformers version)
    keep their own forward, and so does a model set to a non-SDPA attention implementation.
    """
    changed = 0
    for module in net.modules():
        if type(module).__name__ != "Sam2MultiScaleAttention":
            continue
        config = getattr(module, "config", None)
        if (
            not all(hasattr(module, name) for name in _NEEDED)
            or getattr(config, "_attn_implementation", "sdpa") != "sdpa"
        ):
            log.debug("transformers' Hiera attention has changed or is not SDPA; keeping its own forward")
            continue
        module.forward = types.MethodType(_forward, module)
        changed += 1
    return changed


@contextlib.contextmanager
def uninstalled(net: torch.nn.Module) -> Iterator[None]:
    """Inside the block, ``net``'s Hiera attention modules run transformers' own forward (the one
    :func:`install` replaced); afterwards the leaner forward is back."""
    saved = [(m, m.__dict__.pop("forward")) for m in net.modules() if "forward" in m.__dict__ and _is_ours(m)]
    try:
        yield
    finally:
        for module, forward in saved:
            module.forward = forward


def _is_ours(module: torch.nn.Module) -> bool:
    forward = module.__dict__.get("forward")
    return isinstance(forward, types.MethodType) and forward.__func__ is _forward

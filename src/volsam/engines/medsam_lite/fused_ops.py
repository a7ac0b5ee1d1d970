"""Inference fast paths shared by the LiteMedSAM modules; each falls back to plain PyTorch.

* :func:`gelu_` / :func:`add_` work in place on fresh intermediates when no gradient is needed: on the CPU a
  fresh multi-MB tensor is page-faulted on every call, so skipping an allocation saves real time.
* :func:`conv_gelu` / :func:`linear` call oneDNN with the bias and GELU as post-ops
  (``torch.ops.mkldnn._convolution_pointwise`` / ``_linear_pointwise``, the kernels ``torch.compile`` emits
  on CPUs), saving a pass over the output. Only in fp32 CPU inference (no autograd, no autocast) and only if
  this torch build has them (:data:`ONEDNN`); otherwise the plain ``nn`` modules run. Results agree with
  the plain path to fp32 rounding (about 1e-6).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def _has_onednn_pointwise() -> bool:
    try:
        ops = torch.ops.mkldnn
        return bool(torch.backends.mkldnn.is_available()) and all(
            hasattr(ops, name) for name in ("_convolution_pointwise", "_linear_pointwise")
        )
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


#: Whether the fused oneDNN calls are used (set False to force the plain path).
ONEDNN = _has_onednn_pointwise()


@contextlib.contextmanager
def plain_ops() -> Iterator[None]:
    """Within the block the plain PyTorch path runs instead of the fused oneDNN calls (for tracing a module
    into another runtime, which cannot read ``torch.ops.mkldnn``)."""
    global ONEDNN
    saved, ONEDNN = ONEDNN, False
    try:
        yield
    finally:
        ONEDNN = saved


def gelu_(x: torch.Tensor) -> torch.Tensor:
    """GELU (erf form), in place when no gradient is needed."""
    if x.requires_grad:
        return F.gelu(x)
    return torch.ops.aten.gelu_(x)


def add_(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y + x``, written into ``y`` (a fresh intermediate) when no gradient is needed and dtypes allow."""
    if y.requires_grad or torch.result_type(y, x) != y.dtype:
        return y + x
    return y.add_(x)


def _fusable(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    return (
        ONEDNN
        and bias is not None
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
    )


def conv_gelu(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``gelu(conv(x))``; one oneDNN call for a bias-carrying ``Conv2d`` in fp32 CPU inference."""
    if isinstance(conv, nn.Conv2d) and _fusable(x, conv.weight, conv.bias):
        return torch.ops.mkldnn._convolution_pointwise(
            x, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups, "gelu", [], "none"
        )
    return gelu_(conv(x))


def linear(layer: nn.Linear, x: torch.Tensor, gelu: bool = False) -> torch.Tensor:
    """``layer(x)``, followed by GELU if asked; one oneDNN call in fp32 CPU inference."""
    if _fusable(x, layer.weight, layer.bias):
        if gelu:
            return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "gelu", [], "none")
        return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "none", [], "")
    y = layer(x)
    return gelu_(y) if gelu else y

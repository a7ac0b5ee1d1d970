"""SAM / MedSAM's ViT image encoder on another backend than torch (OpenVINO fp32 on the CPU).

:class:`ImageEncoder` is transformers' ``SamVisionEncoder`` with a plain tensor output (its
``last_hidden_state``, the ``(n, 256, grid, grid)`` embedding), which is what the converter traces;
:func:`load` converts it once (cached on disk by :mod:`volsam.engines.backends.openvino`) and returns a
callable on ``(n, 3, side, side)`` preprocessed frames, or None when torch should run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)

#: part of the cached file name: a new value when what is traced changes (old files are then not reused)
FORMAT = "v1"


class ImageEncoder(torch.nn.Module):
    """``(1, 3, side, side)`` normalised pixels -> float32 ``(1, 256, side/16, side/16)`` image embedding
    (transformers' ``SamVisionEncoder``'s ``last_hidden_state``; shares, does not copy, its modules)."""

    def __init__(self, vision_encoder: torch.nn.Module) -> None:
        super().__init__()
        self.vision_encoder = vision_encoder

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vision_encoder(pixels).last_hidden_state


def load(net: Any, backend: str, side: int, name: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``net``'s image encoder on ``backend`` as a function of a ``(n, 3, side, side)`` float32 CPU batch
    (frames run one at a time: the ViT's window reshapes are traced for one frame), or None for torch
    (``backend`` torch, or a conversion that failed: one warning)."""
    if backend == "torch":
        return None
    from volsam.engines.backends.openvino import load_or_none

    runner = load_or_none(
        ImageEncoder(net.vision_encoder).eval(),
        (1, 3, side, side),
        name=f"{name}-encoder-{FORMAT}-{side}",
        what=f"the {name} image encoder",
        dynamic_batch=False,
    )
    if runner is None:
        return None

    def encode(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([runner(frame[None]) for frame in x])

    return encode

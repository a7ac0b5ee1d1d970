"""Shared pieces of the SAM 1 / MedSAM / SAM 2 image-mode engine tests."""

from __future__ import annotations

import numpy as np


def disc_frame(height: int, width: int, seed: int = 0, centre: tuple[int, int] | None = None) -> np.ndarray:
    """A bright disc on a darker textured background, uint8 ``(height, width)``."""
    rng = np.random.default_rng(seed)
    cy, cx = centre or (height // 2, width // 2)
    y, x = np.mgrid[:height, :width]
    disc = (y - cy) ** 2 + (x - cx) ** 2 <= (min(height, width) // 4) ** 2
    return np.clip(np.where(disc, 200, 60) + rng.normal(0, 10, (height, width)), 0, 255).astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0

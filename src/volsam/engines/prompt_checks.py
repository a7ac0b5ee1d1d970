"""Prompt checks shared by the slice engines (LiteMedSAM, SAM, MedSAM, SAM 2 in image mode): frame pixels in,
validated float64 arrays out, every refusal a :class:`~volsam.core.errors.PromptError` (numpy only)."""

from __future__ import annotations

import math

import numpy as np

from volsam.core.errors import InputError, PromptError


def check_frames(frames: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` grey or ``(n, H, W, 3)`` RGB uint8 frames (one ``(H, W)`` frame becomes ``(1, H, W)``)."""
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    rgb = frames.ndim == 4 and frames.shape[3] == 3
    if not (frames.ndim == 3 or rgb) or 0 in frames.shape:
        raise InputError(f"frames must be a non-empty (n, H, W) or (n, H, W, 3) array, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8 0..255 (normalise them first), got {frames.dtype}")
    return frames


def check_box(box: tuple[float, float, float, float], frame_shape: tuple[int, int]) -> np.ndarray:
    """``(x0, y0, x1, y1)`` inclusive frame pixels -> float64 ``(4,)``, clipped to the frame.

    Raises PromptError for a malformed box, one with x1 < x0 or y1 < y0, or one wholly outside the frame."""
    height, width = frame_shape
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"box must be 4 numbers (x0, y0, x1, y1), got {box!r}") from exc
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 < x0 or y1 < y0:
        raise PromptError(f"box {box!r} is not (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1")
    if x1 < 0 or y1 < 0 or x0 > width - 1 or y0 > height - 1:
        raise PromptError(f"box {box!r} lies outside the {width}x{height} (WxH) frame")
    return np.array([max(x0, 0.0), max(y0, 0.0), min(x1, width - 1.0), min(y1, height - 1.0)])


def check_points(
    points: np.ndarray, labels: np.ndarray | None, frame_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 2)`` ``(x, y)`` frame pixels and ``(n,)`` labels (1 = object, 0 = background; None = all 1) ->
    float64 points and int64 labels. Raises PromptError for bad shapes, labels or points outside the frame."""
    height, width = frame_shape
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0 or not np.isfinite(pts).all():
        raise PromptError(f"points must be a non-empty (n, 2) array of (x, y), got shape {pts.shape}")
    lab = np.ones(len(pts), dtype=np.int64) if labels is None else np.asarray(labels).reshape(-1)
    if lab.shape != (len(pts),) or not np.isin(lab, (0, 1)).all():
        raise PromptError(f"point_labels must be {len(pts)} values of 0 (background) or 1 (object)")
    outside = (pts[:, 0] < 0) | (pts[:, 0] > width - 1) | (pts[:, 1] < 0) | (pts[:, 1] > height - 1)
    if outside.any():
        raise PromptError(f"point {pts[outside][0].tolist()} lies outside the {width}x{height} (WxH) frame")
    return pts, lab.astype(np.int64)


def check_mask_logits(mask_logits: np.ndarray, side: int) -> np.ndarray:
    """Earlier low-resolution logits: finite float32 ``(side, side)``."""
    m = np.asarray(mask_logits, dtype=np.float32)
    if m.shape != (side, side) or not np.isfinite(m).all():
        raise PromptError(f"mask_logits must be finite {side}x{side} model-space logits, got shape {m.shape}")
    return m

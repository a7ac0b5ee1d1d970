"""Checks shared by the metrics: two masks of one shape (2D or 3D), a spacing per axis, the union's box."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from volsam.core.errors import InputError


def as_masks(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as bool masks (any non-zero voxel is foreground); 2D ``[j, i]`` or 3D ``[k, j, i]``.

    Bool arrays are returned as they are (not copied): callers only read them."""
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise InputError(f"prediction shape {p.shape} does not match ground-truth shape {g.shape}")
    if p.ndim not in (2, 3):
        raise InputError(f"metrics need 2D [j, i] or 3D [k, j, i] masks, got shape {p.shape}")
    return _bool(p), _bool(g)


def _bool(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.bool_ else a != 0


def cropped(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bool masks ``p`` and ``g`` cut to the union's bounding box (unchanged when both are empty). Every metric
    here is the same on the cut: voxels outside it are background in both masks, as outside the array."""
    box = union_box(p, g)
    return (p, g) if box is None else (p[box], g[box])


def sampling(spacing_ijk: Sequence[float], ndim: int) -> tuple[float, ...]:
    """``spacing_ijk`` (mm along i, j[, k]: the array's axes reversed, ``Volume.spacing`` order) in array-axis
    order, as the distance transforms take it."""
    try:
        s = tuple(float(x) for x in spacing_ijk)
    except (TypeError, ValueError):
        raise InputError(f"spacing_ijk must be {ndim} positive mm (i, j[, k] order), got {spacing_ijk!r}") from None
    if len(s) != ndim or not all(np.isfinite(x) and x > 0 for x in s):
        raise InputError(f"spacing_ijk must be {ndim} positive mm (i, j[, k] order), got {spacing_ijk!r}")
    return s[::-1]


def union_box(p: np.ndarray, g: np.ndarray) -> tuple[slice, ...] | None:
    """The bounding box (slices) of ``p | g``; None when both are empty."""
    union = p | g
    box = []
    for axis in range(union.ndim):
        along = np.flatnonzero(union.any(axis=tuple(a for a in range(union.ndim) if a != axis)))
        if along.size == 0:
            return None
        box.append(slice(int(along[0]), int(along[-1]) + 1))
    return tuple(box)

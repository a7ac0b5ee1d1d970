"""Simulated users: the next corrective click from a prediction and the ground truth.

The rule of the CVPR 2025 interactive challenge: take the largest 26-connected error region (missed
voxels and wrongly included voxels are separate regions), click its innermost voxel (the maximum of its
distance transform, in mm with the voxel spacing; the one nearest the region's centroid among equally deep
voxels); the click is positive when the region was missed,
negative when it was wrongly included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from volsam.core.errors import InputError

_FULL = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity


@dataclass(frozen=True)
class Click:
    """A simulated click at voxel ``(i, j, k)``; ``region_voxels`` is the size of the error region it fixes."""

    i: int
    j: int
    k: int
    positive: bool
    region_voxels: int

    def ijk(self) -> tuple[int, int, int]:
        return (self.i, self.j, self.k)


def _largest_region(error: np.ndarray) -> tuple[np.ndarray, int] | None:
    labels, n = ndimage.label(error, structure=_FULL)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    best = int(np.argmax(sizes)) + 1
    return labels == best, int(sizes[best - 1])


def next_click(
    prediction: np.ndarray, truth: np.ndarray, spacing_ijk: Sequence[float] = (1.0, 1.0, 1.0)
) -> Click | None:
    """The click that fixes the largest error region of ``prediction`` against ``truth`` (bool arrays
    ``[k, j, i]``); None when they agree everywhere."""
    pred, gt = np.asarray(prediction) != 0, np.asarray(truth) != 0
    if pred.shape != gt.shape or pred.ndim != 3:
        raise InputError(f"prediction {pred.shape} and truth {gt.shape} must be 3D arrays [k, j, i] of one shape")
    candidates = []
    for positive, error in ((True, gt & ~pred), (False, pred & ~gt)):
        found = _largest_region(error)
        if found is not None:
            candidates.append((found[1], positive, found[0]))
    if not candidates:
        return None
    size, positive, region = max(candidates, key=lambda c: c[0])
    k, j, i = _innermost(region, spacing_ijk)
    return Click(i, j, k, positive, size)


def _innermost(region: np.ndarray, spacing_ijk: Sequence[float]) -> tuple[int, int, int]:
    """``(k, j, i)`` of the voxel of ``region`` farthest (in mm) from its outside; among equally deep voxels
    the one nearest the region's centroid (then the first)."""
    idx = [np.flatnonzero(region.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    lo = [int(x[0]) for x in idx]
    hi = [int(x[-1]) + 1 for x in idx]
    crop = np.pad(region[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], 1)
    sampling = (float(spacing_ijk[2]), float(spacing_ijk[1]), float(spacing_ijk[0]))
    depth = ndimage.distance_transform_edt(crop, sampling=sampling)
    deepest = np.argwhere(depth >= depth.max() - 1e-6)
    centroid = np.argwhere(crop).mean(axis=0)
    k, j, i = deepest[int(np.argmin((((deepest - centroid) * sampling) ** 2).sum(axis=1)))]
    return (int(k) - 1 + lo[0], int(j) - 1 + lo[1], int(i) - 1 + lo[2])


MIN_DEPTH_PX = 1.42  # regions no deeper than this (about one pixel and its diagonal) are not clicked


def next_click_2d(prediction: np.ndarray, truth: np.ndarray) -> tuple[int, int, bool] | None:
    """The click of "Interactive 3D Medical Image Segmentation with SAM 2" on one slice.

    Among the 8-connected error regions of ``prediction`` against ``truth`` (bool ``(H, W)`` = ``[v, u]``),
    take the one whose distance transform (in pixels) reaches deepest, ignoring regions no deeper than
    :data:`MIN_DEPTH_PX`, and click its deepest pixel: positive when the region was missed, negative when it
    was wrongly included. Returns ``(u, v, positive)`` or None when no region qualifies.
    """
    pred, gt = np.asarray(prediction) != 0, np.asarray(truth) != 0
    if pred.shape != gt.shape or pred.ndim != 2:
        raise InputError(f"prediction {pred.shape} and truth {gt.shape} must be 2D arrays of one shape")
    best: tuple[float, int, int, bool] | None = None
    for positive, error in ((True, gt & ~pred), (False, pred & ~gt)):
        if not error.any():
            continue
        depth = ndimage.distance_transform_edt(np.pad(error, 1))[1:-1, 1:-1]
        labels, n = ndimage.label(error, structure=np.ones((3, 3), dtype=bool))
        deepest = ndimage.maximum(depth, labels, index=np.arange(1, n + 1))
        region = int(np.argmax(deepest)) + 1
        d = float(deepest[region - 1])
        if d <= MIN_DEPTH_PX or (best is not None and d <= best[0]):
            continue
        v, u = np.unravel_index(int(np.argmax(np.where(labels == region, depth, -1.0))), depth.shape)
        best = (d, int(u), int(v), positive)
    return None if best is None else best[1:]

"""Simulated users: the next corrective click from a prediction and the ground truth.

:func:`next_click` is the click of the CVPR 2025 interactive challenge exactly as its evaluation script
(``CVPR25_iter_eval.py``, JunMa11/CVPR-MedSegFMCompetition) makes it for one class:

1. the error mask is ``prediction != truth`` -- missed and wrongly included voxels together;
2. its largest 26-connected component (the first in raster order among equally large ones: the script's
   ``cc3d`` numbers components in the same C raster order as ``scipy.ndimage.label``);
3. the Euclidean distance transform of that component in *voxel* units (no spacing), computed on the
   component's bounding box padded by 25 % of its size per axis (at least 1 voxel) -- so the array's border
   counts as background; a padded box over 60,000,000 voxels is max-pooled 2 x 2 x 2 first and its
   transform repeated back, as the script does;
4. among the component's voxels at the maximum, one chosen uniformly by numpy's legacy generator seeded 42
   for every click (``np.random.seed(42); np.random.choice(n)``), in ``np.argwhere`` order over ``[k, j, i]``;
5. a foreground click if the truth is foreground there, else a background click.

The script runs the transform on the GPU (cuCIM) when it has one and with scipy otherwise; this is the scipy
path (both are exact transforms, so the voxels at the maximum are the same).

:func:`next_click_2d` is the click of "Interactive 3D Medical Image Segmentation with SAM 2" (the paper's
description, ``shared/FACTS.md``): on one slice, the error region whose distance transform reaches deepest,
regions no deeper than 1.42 px ignored.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from volsam.core.errors import InputError

_FULL = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity
CHALLENGE_SEED = 42  # np.random.seed(42) before every choice
LARGE_ROI_VOXELS = 60_000_000  # padded boxes above this are max-pooled 2x2x2 before the transform
PAD_FRACTION = 0.25  # the component's box is padded by 25 % of its size per axis, at least 1 voxel


@dataclass(frozen=True)
class Click:
    """A simulated click at voxel ``(i, j, k)``.

    ``region_voxels``: size of the error component it was placed in; ``depth``: the distance transform's
    maximum there (voxels); ``candidates``: how many voxels shared that maximum (one was drawn).
    """

    i: int
    j: int
    k: int
    positive: bool
    region_voxels: int
    depth: float = 0.0
    candidates: int = 1

    def ijk(self) -> tuple[int, int, int]:
        return (self.i, self.j, self.k)


def challenge_choice(n: int) -> int:
    """The index ``np.random.seed(42); np.random.choice(n)`` draws (a fresh legacy generator, no global state)."""
    return int(np.random.RandomState(CHALLENGE_SEED).choice(n))


def next_click(prediction: np.ndarray, truth: np.ndarray, spacing_ijk: object = None) -> Click | None:
    """The challenge's click for one class: ``prediction`` and ``truth`` are masks ``[k, j, i]`` (non-zero =
    the class); None when they agree everywhere.

    ``spacing_ijk`` is not used (the challenge measures depth in voxels); passing it warns.
    """
    if spacing_ijk is not None:
        warnings.warn(
            "next_click measures depth in voxels, as the CVPR 2025 challenge does: spacing_ijk is ignored",
            DeprecationWarning,
            stacklevel=2,
        )
    pred, gt = np.asarray(prediction) != 0, np.asarray(truth) != 0
    if pred.shape != gt.shape or pred.ndim != 3:
        raise InputError(f"prediction {pred.shape} and truth {gt.shape} must be 3D arrays [k, j, i] of one shape")
    error = pred != gt
    box = _box(error)
    if box is None:
        return None
    labels, _ = ndimage.label(error[box], structure=_FULL)  # numbering in raster order, as cc3d's
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    best = int(np.argmax(sizes))
    component = labels == best
    offset, depth, candidates = _deepest(component)
    k, j, i = (int(o) + b.start for o, b in zip(offset, box, strict=True))
    return Click(i, j, k, bool(gt[k, j, i]), int(sizes[best]), depth, candidates)


def _box(mask: np.ndarray) -> tuple[slice, ...] | None:
    found = ndimage.find_objects(mask.astype(np.uint8))
    return found[0] if found else None


def _deepest(component: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Offset (in ``component``'s array) of the voxel the challenge clicks, the depth there and the number
    of voxels at that depth."""
    box = _box(component)
    if box is None:
        raise InputError("an empty error component has no voxel to click")
    region = component[box]
    shape = np.array(region.shape)
    pad = np.maximum((shape * PAD_FRACTION).astype(int), 1)
    padded = np.zeros(shape + 2 * pad, dtype=np.uint8)
    inner = tuple(slice(int(p), int(p) + int(n)) for p, n in zip(pad, shape, strict=True))
    padded[inner] = region
    if padded.size > LARGE_ROI_VOXELS:  # skimage's block_reduce(..., (2, 2, 2), np.max), then repeat back
        even = np.pad(padded, [(0, n % 2) for n in padded.shape])
        pooled = even.reshape(even.shape[0] // 2, 2, even.shape[1] // 2, 2, even.shape[2] // 2, 2).max(axis=(1, 3, 5))
        depth = ndimage.distance_transform_edt(pooled)
        depth = depth.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    else:
        depth = ndimage.distance_transform_edt(padded)
    depth = depth[inner] * region  # only the component's voxels count
    if not depth.any():  # the script's fallback: any voxel of the component
        depth = region.astype(np.float64)
    deepest = np.argwhere(depth == depth.max())
    chosen = deepest[challenge_choice(len(deepest))]
    origin = np.array([b.start for b in box])
    return chosen + origin, float(depth.max()), len(deepest)


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

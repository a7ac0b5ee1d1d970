"""Surface metrics weighted by surfel size: NSD and HD95 as DeepMind's ``surface-distance`` computes them.

Surface points are the mixed corners of :mod:`volsam.metrics.surfels`, each weighted by its contour length
(2D, mm) or surface area (3D, mm^2). The distance of a surface point to the other mask's surface is the
Euclidean distance (mm, with the spacing) to the nearest surface point of the other mask, both on the corner
lattice (surface-distance reads it from ``scipy.ndimage.distance_transform_edt`` on the union's box; here a
k-d tree finds the nearest point and the distance is evaluated with that transform's float operations).
Then, with ``A_p`` / ``A_g`` the sizes of the prediction's / truth's surface points and ``d`` their distances
to the other surface:

* NSD at tolerance ``tau``: ``(sum A_g[d_g <= tau] + sum A_p[d_p <= tau]) / (sum A_g + sum A_p)``;
* robust Hausdorff at ``percent``: per direction, the distance at which the size-weighted share of surface
  points (sorted by distance) first reaches ``percent`` / 100; the larger of the two directions. HD95 is
  ``percent`` = 95.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from volsam.core.errors import InputError
from volsam.metrics.masks import as_masks, cropped, sampling, union_box
from volsam.metrics.overlap import dice
from volsam.metrics.surfels import corner_codes, surfel_sizes


@dataclass(frozen=True)
class SurfaceDistances:
    """Every surface point of both masks: its distance (mm) to the other surface and its size.

    Sizes are contour lengths in mm (2D) or areas in mm^2 (3D). A mask without surface (empty) has no points,
    and the other mask's points are then all at distance ``inf`` (surface-distance's convention). Arrays are
    in corner-lattice order (not sorted).
    """

    pred_to_gt: np.ndarray
    gt_to_pred: np.ndarray
    pred_sizes: np.ndarray
    gt_sizes: np.ndarray

    def surface_dice(self, tolerance_mm: float) -> float:
        """NSD at ``tolerance_mm``; NaN when neither mask has a surface (both empty)."""
        if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
            raise InputError(f"tolerance_mm must be a non-negative number of mm, got {tolerance_mm!r}")
        total = float(np.sum(self.gt_sizes)) + float(np.sum(self.pred_sizes))
        if total == 0:
            return math.nan
        within = float(np.sum(self.gt_sizes[self.gt_to_pred <= tolerance_mm]))
        within += float(np.sum(self.pred_sizes[self.pred_to_gt <= tolerance_mm]))
        return within / total

    def hausdorff(self, percent: float = 100.0) -> float:
        """Robust Hausdorff distance (mm) at ``percent`` (95 for HD95); ``inf`` when a mask is empty."""
        if not (np.isfinite(percent) and 0 <= percent <= 100):
            raise InputError(f"percent must be between 0 and 100, got {percent!r}")
        return max(
            _directed(self.gt_to_pred, self.gt_sizes, percent), _directed(self.pred_to_gt, self.pred_sizes, percent)
        )


def _directed(distances: np.ndarray, sizes: np.ndarray, percent: float) -> float:
    if distances.size == 0:
        return math.inf
    order = np.lexsort((sizes, distances))  # by distance, then size: surface-distance's order, same sums
    d, a = distances[order], sizes[order]
    share = np.cumsum(a) / np.sum(a)
    idx = int(np.searchsorted(share, percent / 100.0))
    return float(d[min(idx, d.size - 1)])


def surface_distances(pred: np.ndarray, gt: np.ndarray, spacing_ijk: Sequence[float]) -> SurfaceDistances:
    """Surface points of ``pred`` and ``gt`` (2D ``[j, i]`` or 3D ``[k, j, i]``), their sizes and distances.

    ``spacing_ijk``: voxel size in mm along i, j[, k] -- the array's axes reversed (``Volume.spacing``).
    Works on the union's bounding box (plus the corners around it), so a small object in a large volume
    costs what its box costs.
    """
    p, g = as_masks(pred, gt)
    samp = sampling(spacing_ijk, p.ndim)
    box = union_box(p, g)
    if box is None:
        empty = np.zeros(0)
        return SurfaceDistances(empty, empty, empty, empty)
    p, g = p[box], g[box]
    sizes = surfel_sizes(samp)
    full = len(sizes) - 1
    code_p, code_g = corner_codes(p), corner_codes(g)
    on_p = (code_p != 0) & (code_p != full)
    on_g = (code_g != 0) & (code_g != full)
    return SurfaceDistances(
        pred_to_gt=_distances_to(on_g, on_p, samp),
        gt_to_pred=_distances_to(on_p, on_g, samp),
        pred_sizes=sizes[code_p[on_p]],
        gt_sizes=sizes[code_g[on_g]],
    )


def _distances_to(surface: np.ndarray, points: np.ndarray, samp: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) from each of ``points`` to the nearest point of ``surface`` (bool lattices of one shape;
    inf when ``surface`` is empty), in ``points``' C order.

    The nearest surface point comes from a k-d tree (exact nearest neighbour: a few times faster than a
    distance transform of the whole box on large organs); the distance is then evaluated with the float
    operations of ``scipy.ndimage.distance_transform_edt(~surface, sampling)`` -- surface-distance's
    computation -- so equal inputs give equal numbers.
    """
    at = np.argwhere(points)
    if not surface.any():
        return np.full(len(at), math.inf)
    if len(at) == 0:
        return np.zeros(0)
    on = np.argwhere(surface)
    scale = np.asarray(samp, dtype=np.float64)
    tree = cKDTree(on * scale)
    _, nearest = tree.query(at * scale, workers=-1)
    delta = on[nearest] - at
    squared = np.zeros(len(at))
    for axis, s in enumerate(scale):  # scipy: (ft - index) as float64, times sampling, squared, summed in axis order
        step = delta[:, axis].astype(np.float64) * s
        squared += step * step
    return np.sqrt(squared)


def surface_dice(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing_ijk: Sequence[float],
    tolerance_mm: float = 2.0,
    nsd_zero_below_dice: float | None = None,
    empty_value: float = float("nan"),
) -> float:
    """Normalised surface Dice (NSD) at ``tolerance_mm``: surface-distance's
    ``compute_surface_dice_at_tolerance`` (see the module notes), the challenges' NSD.

    ``nsd_zero_below_dice``: the challenges' rule -- pass 0.2 to return 0 when the Dice is <= 0.2.
    Both masks empty -> ``empty_value`` (NaN by default: surface-distance's 0 / 0); exactly one empty -> 0.0.
    """
    if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise InputError(f"tolerance_mm must be a non-negative number of mm, got {tolerance_mm!r}")
    p, g = as_masks(pred, gt)
    sampling(spacing_ijk, p.ndim)
    p, g = cropped(p, g)  # one pass over the full arrays; the rest works on the union's box
    if not p.any() and not g.any():
        return float(empty_value)
    if not p.any() or not g.any():
        return 0.0
    if nsd_zero_below_dice is not None and dice(p, g) <= nsd_zero_below_dice:
        return 0.0
    return surface_distances(p, g, spacing_ijk).surface_dice(tolerance_mm)


def robust_hausdorff(
    pred: np.ndarray, gt: np.ndarray, spacing_ijk: Sequence[float], percent: float, empty_value: float = math.inf
) -> float:
    """Robust Hausdorff distance at ``percent`` (mm): surface-distance's ``compute_robust_hausdorff``.

    Exactly one mask empty -> inf; both empty -> ``empty_value`` (inf by default, as surface-distance).
    """
    p, g = as_masks(pred, gt)
    if not p.any() and not g.any():
        sampling(spacing_ijk, p.ndim)
        return float(empty_value)
    return surface_distances(p, g, spacing_ijk).hausdorff(percent)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing_ijk: Sequence[float], empty_value: float = math.inf) -> float:
    """95th-percentile Hausdorff distance in mm, surfel-weighted (:func:`robust_hausdorff` at 95)."""
    return robust_hausdorff(pred, gt, spacing_ijk, 95.0, empty_value)


@dataclass(frozen=True)
class SegmentationScores:
    """Dice, NSD (at ``tolerance_mm``) and HD95 (mm) of one prediction."""

    dice: float
    nsd: float
    hd95: float
    tolerance_mm: float


def scores(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing_ijk: Sequence[float],
    tolerance_mm: float = 2.0,
    nsd_zero_below_dice: float | None = 0.2,
    empty_value: float = float("nan"),
) -> SegmentationScores:
    """All three metrics from one pass over the surfaces; defaults follow the challenge rules (NSD at 2 mm,
    NSD = 0 when Dice <= 0.2). ``empty_value`` is the DSC and NSD of two empty masks (their HD95 is inf);
    see :func:`dice`, :func:`surface_dice`, :func:`hd95`."""
    if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise InputError(f"tolerance_mm must be a non-negative number of mm, got {tolerance_mm!r}")
    p, g = as_masks(pred, gt)
    sampling(spacing_ijk, p.ndim)
    p, g = cropped(p, g)  # one pass over the full arrays; Dice and the surfaces work on the union's box
    dsc = dice(p, g, empty_value=empty_value)
    if not p.any() or not g.any():
        both_empty = not p.any() and not g.any()
        return SegmentationScores(dsc, float(empty_value) if both_empty else 0.0, math.inf, tolerance_mm)
    distances = surface_distances(p, g, spacing_ijk)
    if nsd_zero_below_dice is not None and dsc <= nsd_zero_below_dice:
        nsd = 0.0
    else:
        nsd = distances.surface_dice(tolerance_mm)
    return SegmentationScores(dsc, nsd, distances.hausdorff(95.0), tolerance_mm)

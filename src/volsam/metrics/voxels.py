"""Surface metrics that count boundary voxels, as MONAI's ``compute_surface_dice`` /
``compute_hausdorff_distance`` do with their defaults -- a different number from the challenges' NSD.

Kept under their own names for comparison with MONAI-based numbers; volsam's NSD and HD95 are the surfel
ones of :mod:`volsam.metrics.surface`. Here the surface of a mask is its foreground voxels with at least one
background neighbour along an axis (space outside the array is background); distances are Euclidean, in mm,
between voxel centres, and every surface voxel counts once (no size weighting). On a 1 mm lesion this NSD
at 2 mm read 0.960 where surface-distance gives 0.968; on 2.5 mm slices 0.73 vs 0.86 (``shared/FACTS.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from volsam.core.errors import InputError
from volsam.metrics.masks import as_masks, sampling, union_box


def voxel_surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing_ijk: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed distances in mm between boundary voxels: (pred -> gt, gt -> pred), one per boundary voxel.

    Both masks must be non-empty (raises :class:`InputError` otherwise).
    """
    p, g = as_masks(pred, gt)
    samp = sampling(spacing_ijk, p.ndim)
    if not p.any() or not g.any():
        raise InputError("surface distances need two non-empty masks")
    box = union_box(p, g)
    p, g = np.pad(p[box], 1), np.pad(g[box], 1)
    cross = ndimage.generate_binary_structure(p.ndim, 1)
    sp = p & ~ndimage.binary_erosion(p, structure=cross, border_value=0)
    sg = g & ~ndimage.binary_erosion(g, structure=cross, border_value=0)
    return (
        ndimage.distance_transform_edt(~sg, sampling=samp)[sp],
        ndimage.distance_transform_edt(~sp, sampling=samp)[sg],
    )


def surface_dice_voxels(
    pred: np.ndarray, gt: np.ndarray, spacing_ijk: Sequence[float], tolerance_mm: float = 2.0
) -> float:
    """MONAI-style NSD: ``(#boundary voxels of either within tolerance of the other's) / (#boundary voxels)``.

    Both empty -> NaN; exactly one empty -> 0.0.
    """
    if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise InputError(f"tolerance_mm must be a non-negative number of mm, got {tolerance_mm!r}")
    p, g = as_masks(pred, gt)
    sampling(spacing_ijk, p.ndim)
    if not p.any() and not g.any():
        return math.nan
    if not p.any() or not g.any():
        return 0.0
    d_pg, d_gp = voxel_surface_distances(p, g, spacing_ijk)
    return (int((d_pg <= tolerance_mm).sum()) + int((d_gp <= tolerance_mm).sum())) / (d_pg.size + d_gp.size)


def hd95_voxels(pred: np.ndarray, gt: np.ndarray, spacing_ijk: Sequence[float]) -> float:
    """MONAI-style HD95: ``max`` of the two directions' 95th percentiles (numpy's linear interpolation) of
    the boundary-voxel distances. Both empty -> NaN; exactly one empty -> inf."""
    p, g = as_masks(pred, gt)
    sampling(spacing_ijk, p.ndim)
    if not p.any() and not g.any():
        return math.nan
    if not p.any() or not g.any():
        return math.inf
    d_pg, d_gp = voxel_surface_distances(p, g, spacing_ijk)
    return float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))

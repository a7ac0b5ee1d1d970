"""Segmentation metrics: Dice (DSC), normalised surface Dice (NSD) and HD95 -- numpy + scipy only.

Axis order: masks are arrays indexed ``[k, j, i]`` (like ``Volume.array``); ``spacing_ijk`` is the voxel
size along (i, j, k) in mm, exactly like ``Volume.spacing`` -- it is reversed internally to match the array
axes. Any non-zero voxel is foreground.

Surfaces: the surface of a mask is its foreground voxels with at least one background 6-neighbour; space
outside the array counts as background (an object touching the border has a surface there). Distances are
Euclidean, in mm, between voxel centres (``scipy.ndimage.distance_transform_edt`` with the spacing),
counted per surface voxel (no surfel-area weighting), as in MONAI's ``compute_surface_dice`` /
``compute_hausdorff_distance`` with their defaults.

Edge cases (documented, tested):

=================  ===========================  =====================  ==========
case               dice                         surface_dice           hd95
=================  ===========================  =====================  ==========
both empty         ``empty_value`` (NaN)        ``empty_value`` (NaN)  NaN
one empty          0.0                          0.0                    inf
=================  ===========================  =====================  ==========

Speed: everything runs on the union bounding box of the two masks (plus a one-voxel background border),
so a small object in a 200^3 volume costs what its box costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from volsam.core.errors import InputError

__all__ = ["SegmentationScores", "dice", "hd95", "scores", "surface_dice", "surface_distances"]

_CROSS = ndimage.generate_binary_structure(3, 1)  # 6-connectivity


def _as_masks(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise InputError(f"prediction shape {p.shape} does not match ground-truth shape {g.shape} [k, j, i]")
    if p.ndim != 3:
        raise InputError(f"metrics need 3D masks [k, j, i], got shape {p.shape}")
    return p != 0, g != 0


def _spacing_kji(spacing_ijk: Sequence[float]) -> tuple[float, float, float]:
    s = tuple(float(x) for x in spacing_ijk)
    if len(s) != 3 or not all(np.isfinite(x) and x > 0 for x in s):
        raise InputError(f"spacing_ijk must be three positive mm (i, j, k order), got {spacing_ijk!r}")
    return (s[2], s[1], s[0])


def dice(pred: np.ndarray, gt: np.ndarray, empty_value: float = float("nan")) -> float:
    """Dice similarity coefficient ``2|P & G| / (|P| + |G|)`` of two masks ``[k, j, i]``.

    Returns ``empty_value`` (NaN by default; pass 1.0 for "both agree there is nothing") when both masks
    are empty, 0.0 when exactly one is.
    """
    p, g = _as_masks(pred, gt)
    total = int(p.sum()) + int(g.sum())
    if total == 0:
        return float(empty_value)
    return 2.0 * int(np.logical_and(p, g).sum()) / total


def _crop_union(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to their union bounding box, padded with one voxel of background all round."""
    union = p | g
    slices = ndimage.find_objects(union.astype(np.uint8))[0]
    return np.pad(p[slices], 1), np.pad(g[slices], 1)


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=_CROSS, border_value=0)


def surface_distances(pred: np.ndarray, gt: np.ndarray, spacing_ijk: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances in mm: (pred surface -> gt surface, gt surface -> pred surface).

    One value per surface voxel. Both masks must be non-empty (raises :class:`InputError` otherwise).
    """
    p, g = _as_masks(pred, gt)
    if not p.any() or not g.any():
        raise InputError("surface distances need two non-empty masks")
    sampling = _spacing_kji(spacing_ijk)
    p, g = _crop_union(p, g)
    sp, sg = _surface(p), _surface(g)
    dist_to_g = ndimage.distance_transform_edt(~sg, sampling=sampling)
    dist_to_p = ndimage.distance_transform_edt(~sp, sampling=sampling)
    return dist_to_g[sp], dist_to_p[sg]


def _nsd(d_pg: np.ndarray, d_gp: np.ndarray, tolerance_mm: float) -> float:
    within = int((d_pg <= tolerance_mm).sum()) + int((d_gp <= tolerance_mm).sum())
    return within / (d_pg.size + d_gp.size)


def surface_dice(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing_ijk: Sequence[float],
    tolerance_mm: float = 2.0,
    nsd_zero_below_dice: float | None = None,
    empty_value: float = float("nan"),
) -> float:
    """Normalised surface Dice (NSD) at ``tolerance_mm``, as in the MSD and CVPR MedSAM challenges.

    ``(#pred-surface voxels within tol of the gt surface + #gt-surface voxels within tol of the pred
    surface) / (#pred-surface voxels + #gt-surface voxels)``, distances in mm using ``spacing_ijk``
    (voxel size along i, j, k -- ``Volume.spacing`` order; masks are ``[k, j, i]``).

    ``nsd_zero_below_dice``: the challenges' rule -- pass 0.2 to return 0 when the Dice is <= 0.2.
    Both masks empty -> ``empty_value`` (NaN by default); exactly one empty -> 0.0.
    """
    if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise InputError(f"tolerance_mm must be a non-negative number of mm, got {tolerance_mm!r}")
    p, g = _as_masks(pred, gt)
    _spacing_kji(spacing_ijk)
    if not p.any() and not g.any():
        return float(empty_value)
    if not p.any() or not g.any():
        return 0.0
    if nsd_zero_below_dice is not None and dice(p, g) <= nsd_zero_below_dice:
        return 0.0
    return _nsd(*surface_distances(p, g, spacing_ijk), tolerance_mm)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing_ijk: Sequence[float]) -> float:
    """95th-percentile symmetric Hausdorff distance in mm.

    ``max(p95(d(pred surface -> gt surface)), p95(d(gt surface -> pred surface)))`` (the MONAI /
    DeepMind ``surface-distance`` definition; numpy's linear-interpolation percentile). Both masks empty
    -> NaN; exactly one empty -> inf.
    """
    p, g = _as_masks(pred, gt)
    _spacing_kji(spacing_ijk)
    if not p.any() and not g.any():
        return float("nan")
    if not p.any() or not g.any():
        return float("inf")
    d_pg, d_gp = surface_distances(p, g, spacing_ijk)
    return float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))


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
    """All three metrics with one pair of distance transforms; defaults follow the challenge rules
    (NSD at 2 mm, NSD = 0 when Dice <= 0.2). Conventions as in :func:`dice`, :func:`surface_dice`,
    :func:`hd95`."""
    p, g = _as_masks(pred, gt)
    _spacing_kji(spacing_ijk)
    dsc = dice(p, g, empty_value=empty_value)
    if not p.any() or not g.any():
        both_empty = not p.any() and not g.any()
        return SegmentationScores(
            dsc,
            float(empty_value) if both_empty else 0.0,
            float("nan") if both_empty else float("inf"),
            tolerance_mm,
        )
    d_pg, d_gp = surface_distances(p, g, spacing_ijk)
    if nsd_zero_below_dice is not None and dsc <= nsd_zero_below_dice:
        nsd = 0.0
    else:
        nsd = _nsd(d_pg, d_gp, tolerance_mm)
    hd = float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))
    return SegmentationScores(dsc, nsd, hd, tolerance_mm)

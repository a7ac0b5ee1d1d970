"""Segmentation metrics: Dice (DSC), normalised surface Dice (NSD) and HD95 -- numpy + scipy only.

NSD and HD95 are computed as DeepMind's ``surface-distance`` computes them (Nikolov et al. 2018), the
implementation the CVPR 2024 / 2025 MedSAM challenges (``CVPR25_iter_eval.py``) and MedSAM's scripts score
with: surface points on the voxel-corner lattice, each weighted by the marching-squares length (2D) or
marching-cubes area (3D) of its surface element (:mod:`volsam.metrics.surfels`, :mod:`volsam.metrics.surface`).
Tests check every number against surface-distance to 1e-6 on generated 2D and 3D pairs.

Why our own code and not a dependency: PyPI ``surface-distance`` 0.1 is the only release and is not kept up to
date -- it fails under numpy 2 (``np.Inf`` in its empty-mask branch), uses ``scipy.ndimage.filters`` /
``.morphology`` (deprecated, to be removed in SciPy 2.0) and sorts surface points as Python tuples (slow on
large organs); DeepMind's repository fixed numpy 2 but published no release. MONAI, which is maintained, has
the surfel NSD (``use_subvoxels=True``) but not the surfel HD95, and would add a large dependency for two
functions. The definition is public and short, so it lives here; surface-distance stays a test-only
reference (never imported from ``volsam``).

Axis order: masks are 2D ``[j, i]`` or 3D ``[k, j, i]`` arrays (like ``Volume.array``); ``spacing_ijk`` is
the voxel size along i, j[, k] in mm -- the array's axes reversed, exactly like ``Volume.spacing``. Any
non-zero voxel is foreground. Voxels outside the array are background: an object touching the border has a
surface there.

Edge cases (surface-distance's values; the challenges never meet "both empty": they score only the classes
present in the ground truth, and "one empty" has DSC 0, so their NSD is 0 by the DSC <= 0.2 rule):

=================  =====================  =====================  ============================
case               dice                   surface_dice (NSD)     hd95
=================  =====================  =====================  ============================
both empty         ``empty_value`` (NaN)  ``empty_value`` (NaN)  ``empty_value`` (inf)
one empty          0.0                    0.0                    inf
=================  =====================  =====================  ============================

The MONAI-style variant that counts boundary voxels (no size weighting) is kept for comparison as
:func:`surface_dice_voxels` / :func:`hd95_voxels`; it is never the default.

Speed: everything runs on the union bounding box of the two masks, so a small object in a large volume costs
what its box costs (``benchmarks/bench_metrics.py``: a 512 x 512 x 300 pair).
"""

from __future__ import annotations

from volsam.metrics.overlap import dice
from volsam.metrics.surface import (
    SegmentationScores,
    SurfaceDistances,
    hd95,
    robust_hausdorff,
    scores,
    surface_dice,
    surface_distances,
)
from volsam.metrics.voxels import hd95_voxels, surface_dice_voxels, voxel_surface_distances

__all__ = [
    "SegmentationScores",
    "SurfaceDistances",
    "dice",
    "hd95",
    "hd95_voxels",
    "robust_hausdorff",
    "scores",
    "surface_dice",
    "surface_dice_voxels",
    "surface_distances",
    "voxel_surface_distances",
]

"""NSD and HD95 against DeepMind's surface-distance (test-only reference, fixture ``sd`` in conftest.py).

Generated 2D and 3D pairs with anisotropic spacing: random blobs, eroded / dilated / shifted predictions,
objects touching the border, thin sheets, single voxels, one mask empty and both empty. surface-distance
takes (gt, pred) and the spacing in array-axis order; volsam takes (pred, gt) and (i, j[, k]).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from volsam.metrics import hd95, robust_hausdorff, scores, surface_dice, surface_distances

TOLERANCES = (0.0, 0.5, 1.0, 2.0, 2.5, 3.7)
PERCENTS = (0.0, 50.0, 90.0, 95.0, 99.0, 100.0)


def _blob(rng, shape, sigma=2.0, level=0.52):
    return ndimage.gaussian_filter(rng.random(shape), sigma) > level


def _pairs(ndim: int, n: int, seed: int):
    """``n`` (name, pred, gt, spacing in array order) of ``ndim`` dimensions."""
    rng = np.random.default_rng(seed)
    shape = (16, 21, 19) if ndim == 3 else (37, 41)
    kinds = ("blobs", "eroded", "dilated", "shifted", "border", "sheet", "voxel")
    kinds += ("pred empty", "gt empty", "both empty")
    out = []
    for m in range(n):
        kind = kinds[m % len(kinds)]
        gt = _blob(rng, shape)
        if kind == "blobs":
            pred = _blob(rng, shape)
        elif kind == "eroded":
            pred = ndimage.binary_erosion(gt)
        elif kind == "dilated":
            pred = ndimage.binary_dilation(gt, iterations=2)
        elif kind == "shifted":
            pred = np.roll(gt, int(rng.integers(1, 4)), axis=int(rng.integers(0, ndim)))
        elif kind == "border":  # both touch the array's faces
            gt[0], pred = True, gt.copy()
            pred[..., -1] = True
        elif kind == "sheet":  # one voxel thick
            gt = np.zeros(shape, bool)
            gt[(slice(3, -3),) * (ndim - 1) + (5,)] = True
            pred = np.roll(gt, 1, axis=0)
        elif kind == "voxel":
            gt, pred = np.zeros(shape, bool), np.zeros(shape, bool)
            gt[(4,) * ndim] = True
            pred[(6,) * ndim] = True
        elif kind == "pred empty":
            pred = np.zeros(shape, bool)
        elif kind == "gt empty":
            gt, pred = np.zeros(shape, bool), gt
        else:
            gt, pred = np.zeros(shape, bool), np.zeros(shape, bool)
        spacing = tuple(float(x) for x in rng.uniform(0.4, 3.0, ndim))
        out.append((f"{ndim}D-{m}-{kind}", pred, gt, spacing))
    return out


def _same(a: float, b: float) -> float:
    """Absolute difference, 0 for two equal infinities or two NaNs."""
    if (math.isnan(a) and math.isnan(b)) or a == b:
        return 0.0
    return abs(a - b)


@pytest.mark.parametrize("ndim", [2, 3])
def test_nsd_and_hausdorff_equal_surface_distance(sd, ndim):
    worst = 0.0
    pairs = _pairs(ndim, 40, seed=ndim)
    for name, pred, gt, spacing in pairs:
        ref = sd.compute_surface_distances(gt, pred, spacing)
        ours = surface_distances(pred, gt, spacing[::-1])
        # the surface points themselves: same distances and sizes (surface-distance sorts them)
        for mine, theirs in (
            ((ours.gt_to_pred, ours.gt_sizes), (ref["distances_gt_to_pred"], ref["surfel_areas_gt"])),
            ((ours.pred_to_gt, ours.pred_sizes), (ref["distances_pred_to_gt"], ref["surfel_areas_pred"])),
        ):
            order = np.lexsort((mine[1], mine[0]))
            np.testing.assert_array_equal(mine[0][order], theirs[0], err_msg=name)
            np.testing.assert_allclose(mine[1][order], theirs[1], rtol=0, atol=1e-12, err_msg=name)
        for tol in TOLERANCES:
            want = float(sd.compute_surface_dice_at_tolerance(ref, tol))
            got = surface_dice(pred, gt, spacing[::-1], tolerance_mm=tol)
            worst = max(worst, _same(got, want))
            assert _same(got, want) <= 1e-6, (name, tol, got, want)
        for pc in PERCENTS:
            want = float(sd.compute_robust_hausdorff(ref, pc))
            got = robust_hausdorff(pred, gt, spacing[::-1], pc)
            assert _same(got, want) <= 1e-6, (name, pc, got, want)
        want95 = float(sd.compute_robust_hausdorff(ref, 95))
        assert _same(hd95(pred, gt, spacing[::-1]), want95) <= 1e-6, name
        s = scores(pred, gt, spacing[::-1], nsd_zero_below_dice=None)
        assert _same(s.nsd, float(sd.compute_surface_dice_at_tolerance(ref, 2.0))) <= 1e-6, name
        assert _same(s.hd95, want95) <= 1e-6, name
    assert worst <= 1e-12  # in practice the sums differ only by their order


def test_challenge_scoring_of_a_multi_class_image(sd):
    """CVPR25_iter_eval.py's per-image numbers (mean DSC; mean NSD unless mean DSC <= 0.2) from our metrics."""
    from volsam.bench.protocols import image_scores

    rng = np.random.default_rng(7)
    shape, spacing = (14, 30, 26), (2.5, 0.8, 0.7)  # array order, as the challenge passes it
    gts = np.zeros(shape, np.uint8)
    gts[_blob(rng, shape, level=0.53)] = 1
    gts[2:6, 3:12, 4:15] = 2
    gts[9:12, 20:27, 10:20] = 3
    segs = np.where(ndimage.binary_dilation(gts == 1), 1, 0).astype(np.uint8)
    segs[3:6, 4:12, 4:14] = 2  # class 3 missed: DSC 0
    classes = [int(c) for c in np.unique(gts) if c]
    want_dsc = np.mean([sd.compute_dice_coefficient(gts == c, segs == c) for c in classes])
    distances = [sd.compute_surface_distances(gts == c, segs == c, spacing) for c in classes]
    want_nsd = np.mean([sd.compute_surface_dice_at_tolerance(d, 2.0) for d in distances])
    got = image_scores([segs == c for c in classes], [gts == c for c in classes], spacing[::-1], 2.0)
    assert got.dice == pytest.approx(want_dsc, abs=1e-12)
    assert want_dsc > 0.2 and got.nsd == pytest.approx(want_nsd, abs=1e-12)

"""Metrics with hand-derived expected values (arrays are [k, j, i], spacing is (i, j, k) mm)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from volsam.core.errors import InputError
from volsam.metrics import dice, hd95, scores, surface_dice, surface_distances


def _box(shape=(12, 12, 12), k=(2, 6), j=(3, 6), i=(3, 6)) -> np.ndarray:
    """Mask with a box of voxels k0 <= k < k1, j0 <= j < j1, i0 <= i < i1."""
    m = np.zeros(shape, dtype=bool)
    m[k[0] : k[1], j[0] : j[1], i[0] : i[1]] = True
    return m


# -- Dice --------------------------------------------------------------------------------------------------
def test_identical_masks_score_one():
    a = _box()
    assert dice(a, a) == 1.0
    assert surface_dice(a, a, (1, 1, 1)) == 1.0
    assert hd95(a, a, (1, 1, 1)) == 0.0


def test_disjoint_masks_score_zero():
    a = _box(k=(0, 3))
    b = _box(k=(8, 11))
    assert dice(a, b) == 0.0
    # 5 empty slices between them: every surface voxel is >= 6 mm from the other surface.
    assert surface_dice(a, b, (1, 1, 1), tolerance_mm=2.0) == 0.0
    assert hd95(a, b, (1, 1, 1)) >= 6.0


def test_dice_of_cubes_shifted_by_one_voxel():
    # 4x4x4 cubes, the second shifted by one voxel along i: |A| = |B| = 64, |A & B| = 4*4*3 = 48.
    a = _box(k=(2, 6), j=(2, 6), i=(2, 6))
    b = _box(k=(2, 6), j=(2, 6), i=(3, 7))
    assert dice(a, b) == pytest.approx(2 * 48 / (64 + 64))  # 0.75
    assert dice(a, b) == dice(b, a)


def test_dice_accepts_label_values():
    a = _box().astype(np.uint8) * 3
    assert dice(a, a > 0) == 1.0


# -- NSD and HD95 with anisotropic spacing -----------------------------------------------------------------
# A = 3x3 (j, i) column, L = 4 slices (k 2..5); B = A shifted by one voxel along k (k 3..6).
# Surface of A: all 36 voxels except the two interior centre voxels (k = 3, 4) -> 34 = 8L + 2.
# With spacing k = 3 mm and tolerance 2 mm:
#  * A's first face (k = 2, 9 voxels): nearest B surface is B's first face one slice away -> 3 mm: out.
#  * A's side voxels at k = 3..5 are B surface voxels too -> 0 mm: in.
#  * A's last-face centre (k = 5) is inside B; B's side voxels are 1 mm away in-plane: in.
# Symmetric for B, so NSD = (2*34 - 2*9) / (2*34) = 25/34; sorted distances per direction are
# 24 x 0, 1 x 1 mm, 9 x 3 mm -> HD95 = 3 mm. Dice = 2*27 / 72 = 0.75.
COLUMN_A = _box(shape=(10, 7, 7), k=(2, 6), j=(2, 5), i=(2, 5))
COLUMN_B = _box(shape=(10, 7, 7), k=(3, 7), j=(2, 5), i=(2, 5))


def test_nsd_shift_along_coarse_axis_falls_outside_tolerance():
    assert dice(COLUMN_A, COLUMN_B) == pytest.approx(0.75)
    assert surface_dice(COLUMN_A, COLUMN_B, spacing_ijk=(1.0, 1.0, 3.0), tolerance_mm=2.0) == pytest.approx(25 / 34)
    assert hd95(COLUMN_A, COLUMN_B, spacing_ijk=(1.0, 1.0, 3.0)) == pytest.approx(3.0)
    # a tolerance of 3 mm takes the shifted faces back in
    assert surface_dice(COLUMN_A, COLUMN_B, (1.0, 1.0, 3.0), tolerance_mm=3.0) == 1.0


def test_nsd_shift_along_fine_axis_is_inside_tolerance():
    # same shift along k, but k is now the fine (1 mm) axis: every surface voxel is within 1 mm.
    assert surface_dice(COLUMN_A, COLUMN_B, spacing_ijk=(3.0, 3.0, 1.0), tolerance_mm=2.0) == 1.0
    assert hd95(COLUMN_A, COLUMN_B, spacing_ijk=(3.0, 3.0, 1.0)) == pytest.approx(1.0)


def test_spacing_is_given_in_i_j_k_order():
    # transpose the column pair so the shift runs along i (array axis 2): the coarse axis is now i.
    a, b = COLUMN_A.transpose(2, 1, 0), COLUMN_B.transpose(2, 1, 0)
    assert surface_dice(a, b, spacing_ijk=(3.0, 1.0, 1.0)) == pytest.approx(25 / 34)
    assert surface_dice(a, b, spacing_ijk=(1.0, 1.0, 3.0)) == 1.0


def test_challenge_rule_sets_nsd_to_zero_at_low_dice():
    # 10x10 squares on one slice, overlapping by one column: Dice = 2*10/200 = 0.1, NSD at 2 mm > 0.
    a = _box(shape=(3, 14, 30), k=(1, 2), j=(2, 12), i=(2, 12))
    b = _box(shape=(3, 14, 30), k=(1, 2), j=(2, 12), i=(11, 21))
    assert dice(a, b) == pytest.approx(2 * 10 / 200)
    assert surface_dice(a, b, (1, 1, 1)) > 0
    assert surface_dice(a, b, (1, 1, 1), nsd_zero_below_dice=0.2) == 0.0
    assert scores(a, b, (1, 1, 1)).nsd == 0.0  # scores() applies the rule by default


def test_object_touching_the_border_has_a_surface_there():
    a = np.ones((4, 4, 4), dtype=bool)
    b = a.copy()
    b[0] = False  # one slice less: Dice = 2*48/112
    assert dice(a, b) == pytest.approx(96 / 112)
    # every surface voxel of either is within one slice of the other's surface
    assert surface_dice(a, b, (1, 1, 1), tolerance_mm=1.0) == 1.0


# -- empty masks -------------------------------------------------------------------------------------------
def test_both_empty():
    z = np.zeros((5, 5, 5), dtype=bool)
    assert math.isnan(dice(z, z))
    assert dice(z, z, empty_value=1.0) == 1.0
    assert math.isnan(surface_dice(z, z, (1, 1, 1)))
    assert surface_dice(z, z, (1, 1, 1), empty_value=1.0) == 1.0
    assert math.isnan(hd95(z, z, (1, 1, 1)))
    s = scores(z, z, (1, 1, 1))
    assert math.isnan(s.dice) and math.isnan(s.nsd) and math.isnan(s.hd95)


def test_one_empty():
    z = np.zeros((12, 12, 12), dtype=bool)
    a = _box()
    for p, g in ((z, a), (a, z)):
        assert dice(p, g) == 0.0
        assert surface_dice(p, g, (1, 1, 1)) == 0.0
        assert hd95(p, g, (1, 1, 1)) == math.inf
    s = scores(z, a, (1, 1, 1))
    assert (s.dice, s.nsd, s.hd95) == (0.0, 0.0, math.inf)
    with pytest.raises(InputError):
        surface_distances(z, a, (1, 1, 1))


def test_bad_inputs_raise_input_error():
    a = _box()
    with pytest.raises(InputError, match="shape"):
        dice(a, a[:-1])
    with pytest.raises(InputError, match="spacing"):
        surface_dice(a, a, (1, 1))
    with pytest.raises(InputError, match="spacing"):
        hd95(a, a, (1, 0, 1))
    with pytest.raises(InputError, match="3D"):
        dice(a[0], a[0])


# -- cropping does not change the answer; speed --------------------------------------------------------------
def _brute_force_distances(p, g, spacing_ijk):
    def surf(m):
        padded = np.pad(m, 1)
        return m & ~ndimage.binary_erosion(padded, ndimage.generate_binary_structure(3, 1))[1:-1, 1:-1, 1:-1]

    sk = np.asarray(spacing_ijk, dtype=float)[::-1]
    cp, cg = np.argwhere(surf(p)) * sk, np.argwhere(surf(g)) * sk
    d = np.sqrt(((cp[:, None, :] - cg[None, :, :]) ** 2).sum(-1))
    return np.sort(d.min(1)), np.sort(d.min(0))


def test_distances_match_brute_force_on_random_shapes():
    rng = np.random.default_rng(0)
    for _ in range(3):
        p = ndimage.gaussian_filter(rng.random((20, 24, 22)), 2) > 0.52
        g = ndimage.gaussian_filter(rng.random((20, 24, 22)), 2) > 0.52
        spacing = (0.8, 1.2, 2.5)
        got = surface_distances(p, g, spacing)
        want = _brute_force_distances(p, g, spacing)
        np.testing.assert_allclose(np.sort(got[0]), want[0])
        np.testing.assert_allclose(np.sort(got[1]), want[1])


def test_ellipsoid_in_a_200_cubed_volume():
    shape = (200, 200, 200)
    yy = np.indices(shape, dtype=np.int16)
    gt = ((yy[0] - 100) ** 2 / 30**2 + (yy[1] - 90) ** 2 / 40**2 + (yy[2] - 110) ** 2 / 35**2) <= 1
    pred = np.roll(gt, 2, axis=2)
    s = scores(pred, gt, (1.0, 1.0, 1.0))
    assert 0.9 < s.dice < 1.0 and s.nsd == 1.0 and s.hd95 == pytest.approx(2.0)


def _random_pair(rng, shape=(18, 22, 20)):
    p = ndimage.gaussian_filter(rng.random(shape), 2) > 0.53
    g = ndimage.gaussian_filter(rng.random(shape), 2) > 0.53
    return p, g


def test_agrees_with_monai_on_random_shapes():
    """MONAI (test-only reference) on random blobs with anisotropic spacing: DSC, NSD at 2 mm, HD95."""
    monai_metrics = pytest.importorskip("monai.metrics", reason="MONAI is a test-only reference (make dev)")
    import torch

    rng = np.random.default_rng(3)
    spacing_ijk = (0.7, 1.1, 2.4)
    spacing_kji = spacing_ijk[::-1]  # MONAI takes the spacing in array-axis order
    for _ in range(4):
        p, g = _random_pair(rng)
        assert p.any() and g.any()

        def onehot(m):
            return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))

        want_dice = float(monai_metrics.compute_dice(onehot(p), onehot(g), include_background=False)[0, 0])
        want_nsd = float(
            monai_metrics.compute_surface_dice(
                onehot(p), onehot(g), class_thresholds=[2.0], include_background=False, spacing=list(spacing_kji)
            )[0, 0]
        )
        want_hd = float(
            monai_metrics.compute_hausdorff_distance(
                onehot(p), onehot(g), include_background=False, percentile=95, spacing=list(spacing_kji)
            )[0, 0]
        )
        got = scores(p, g, spacing_ijk, tolerance_mm=2.0, nsd_zero_below_dice=None)
        assert got.dice == pytest.approx(want_dice, abs=1e-6)
        assert got.nsd == pytest.approx(want_nsd, abs=1e-6)
        assert got.hd95 == pytest.approx(want_hd, abs=1e-4)

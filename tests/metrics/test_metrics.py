"""Metrics with hand-derived expected values, surfel definition (arrays are [k, j, i] / [j, i]; spacing is
(i, j, k) / (i, j) mm).

Surface points are voxel corners with a mixed 2 x 2 (x 2) neighbourhood; in 3D each carries its marching-cubes
area (vertices at cell-edge midpoints), in 2D its marching-squares length. The shapes used here are boxes, whose
corner points are of four kinds (s_a = spacing along axis a):

* face point (4 voxels of a face behind it): a flat square, area s_a * s_b (the face's two axes);
* edge point (2 voxels along an edge, axis a): a rectangle, area s_a * sqrt(s_b^2 + s_c^2) / 2;
* vertex point (1 voxel): a triangle, area sqrt((s_a s_b)^2 + (s_a s_c)^2 + (s_b s_c)^2) / 8;
* in 2D, side point: length s_a (its side's axis); vertex point: sqrt(s_a^2 + s_b^2) / 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from volsam.core.errors import InputError
from volsam.metrics import dice, hd95, robust_hausdorff, scores, surface_dice, surface_distances

R2, R10, R19 = math.sqrt(2), math.sqrt(10), math.sqrt(19)


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
    assert surface_dice(a[3], a[3], (0.5, 2.0)) == 1.0 and hd95(a[3], a[3], (0.5, 2.0)) == 0.0  # 2D


def test_disjoint_masks_score_zero():
    a = _box(k=(0, 3))
    b = _box(k=(8, 11))
    assert dice(a, b) == 0.0
    # 5 empty slices between them: A's last corner row (k = 3) is 5 rows from B's first (k = 8).
    assert surface_dice(a, b, (1, 1, 1), tolerance_mm=2.0) == 0.0
    assert hd95(a, b, (1, 1, 1)) >= 5.0


def test_dice_of_cubes_shifted_by_one_voxel():
    # 4x4x4 cubes, the second shifted by one voxel along i: |A| = |B| = 64, |A & B| = 4*4*3 = 48.
    a = _box(k=(2, 6), j=(2, 6), i=(2, 6))
    b = _box(k=(2, 6), j=(2, 6), i=(3, 7))
    assert dice(a, b) == pytest.approx(2 * 48 / (64 + 64))  # 0.75
    assert dice(a, b) == dice(b, a)


def test_dice_accepts_label_values():
    a = _box().astype(np.uint8) * 3
    assert dice(a, a > 0) == 1.0


# -- 2D: a 3 x 4 pixel rectangle and its copy one row down, rows (j) 3 mm, columns (i) 1 mm -------------------
# Corner lattice of A: rows 0..4, columns 0..3; its 14 contour points: 4 vertices (sqrt(1 + 9) / 2 each),
# 2 + 2 points on the top/bottom sides (1 mm each), 3 + 3 on the left/right sides (3 mm each):
# length 22 + 2 sqrt(10). B's contour is A's one row (3 mm) further.
#  * A's top row (2 vertices + 2 side points: sqrt(10) + 2) is 3 mm from B (B's top row): out at 2 mm.
#  * A's left/right points (rows 1..3) lie on B's contour: 0.  A's bottom vertices too: 0.
#  * A's bottom side points (row 4, columns 1, 2): B's left/right points of row 4 are 1 mm away: in.
# Symmetric for B, so NSD(2 mm) = (20 + sqrt(10)) / (22 + 2 sqrt(10)); distances 0, 1 mm (shares 0.747,
# 0.818) then 3 mm: HD95 = 3.
RECT_A = np.zeros((8, 6), bool)
RECT_A[1:5, 1:4] = True
RECT_B = np.roll(RECT_A, 1, axis=0)


def test_2d_rectangles_shifted_along_the_coarse_axis():
    spacing = (1.0, 3.0)  # (i, j)
    assert dice(RECT_A, RECT_B) == pytest.approx(0.75)
    d = surface_distances(RECT_A, RECT_B, spacing)
    assert d.pred_sizes.sum() == pytest.approx(22 + 2 * R10) and d.gt_sizes.sum() == pytest.approx(22 + 2 * R10)
    assert surface_dice(RECT_A, RECT_B, spacing) == pytest.approx((20 + R10) / (22 + 2 * R10))
    assert hd95(RECT_A, RECT_B, spacing) == pytest.approx(3.0)
    assert robust_hausdorff(RECT_A, RECT_B, spacing, 70) == 0.0  # 74.7% of the contour is at 0 mm
    assert robust_hausdorff(RECT_A, RECT_B, spacing, 80) == pytest.approx(1.0)
    assert surface_dice(RECT_A, RECT_B, spacing, tolerance_mm=3.0) == 1.0


# -- 3D: a 3x3 (j, i) column of 4 slices and its copy one slice further along k ----------------------------
# Spacing (i, j, k) = (1, 1, 3). Corner rows k = 0..4 of A:
#  * each end face (rows 0 and 4): 4 face points (1 mm^2), 8 edge points (1 * sqrt(1 + 9) / 2),
#    4 vertices (sqrt(1 + 9 + 9) / 8): 4 + 4 sqrt(10) + sqrt(19) / 2;
#  * each middle row (1..3): 4 edge points along k (3 * sqrt(2) / 2) and 8 face points (3 mm^2):
#    24 + 6 sqrt(2).
# Total 80 + 8 sqrt(10) + sqrt(19) + 18 sqrt(2). B is A one row (3 mm) further along k:
#  * A's first end face is 3 mm from B's (out at 2 mm);
#  * A's middle rows and the rim of its last face lie on B's sides (0); the 4 face points of its last face
#    are 1 mm (in-plane) from B's sides: in.
# Symmetric for B: NSD(2 mm) = (76 + 4 sqrt(10) + sqrt(19) / 2 + 18 sqrt(2)) / (80 + 8 sqrt(10) + sqrt(19)
# + 18 sqrt(2)); the 3 mm face holds 14% of each surface: HD95 = 3. Dice = 2 * 27 / 72 = 0.75.
COLUMN_A = _box(shape=(10, 7, 7), k=(2, 6), j=(2, 5), i=(2, 5))
COLUMN_B = _box(shape=(10, 7, 7), k=(3, 7), j=(2, 5), i=(2, 5))
COLUMN_AREA = 80 + 8 * R10 + R19 + 18 * R2
COLUMN_NSD = (76 + 4 * R10 + R19 / 2 + 18 * R2) / COLUMN_AREA


def test_nsd_shift_along_coarse_axis_falls_outside_tolerance():
    assert dice(COLUMN_A, COLUMN_B) == pytest.approx(0.75)
    d = surface_distances(COLUMN_A, COLUMN_B, (1.0, 1.0, 3.0))
    assert d.pred_sizes.sum() == pytest.approx(COLUMN_AREA)
    assert surface_dice(COLUMN_A, COLUMN_B, spacing_ijk=(1.0, 1.0, 3.0), tolerance_mm=2.0) == pytest.approx(COLUMN_NSD)
    assert hd95(COLUMN_A, COLUMN_B, spacing_ijk=(1.0, 1.0, 3.0)) == pytest.approx(3.0)
    # a tolerance of 3 mm takes the shifted faces back in
    assert surface_dice(COLUMN_A, COLUMN_B, (1.0, 1.0, 3.0), tolerance_mm=3.0) == 1.0


def test_nsd_shift_along_fine_axis_is_inside_tolerance():
    # same shift, k now the fine (1 mm) axis: every point is 0 or 1 mm from the other surface; the 1 mm ones
    # (first face, last face's 4 face points) are 45% of the area, so HD95 = 1.
    assert surface_dice(COLUMN_A, COLUMN_B, spacing_ijk=(3.0, 3.0, 1.0), tolerance_mm=2.0) == 1.0
    assert hd95(COLUMN_A, COLUMN_B, spacing_ijk=(3.0, 3.0, 1.0)) == pytest.approx(1.0)


def test_spacing_is_given_in_i_j_k_order():
    # transpose the column pair so the shift runs along i (array axis 2): the coarse axis is now i.
    a, b = COLUMN_A.transpose(2, 1, 0), COLUMN_B.transpose(2, 1, 0)
    assert surface_dice(a, b, spacing_ijk=(3.0, 1.0, 1.0)) == pytest.approx(COLUMN_NSD)
    assert surface_dice(a, b, spacing_ijk=(1.0, 1.0, 3.0)) == 1.0
    # 2D likewise: (i, j)
    assert surface_dice(RECT_A.T, RECT_B.T, (3.0, 1.0)) == pytest.approx((20 + R10) / (22 + 2 * R10))


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
    # A's surface at corner row 0 (outside the array) is 1 mm from B's first face (row 1): everything within 1 mm
    assert surface_dice(a, b, (1, 1, 1), tolerance_mm=1.0) == 1.0
    assert surface_dice(a, b, (1, 1, 1), tolerance_mm=0.5) < 1.0
    # a full array has a surface: its 6 faces, 4 x 4 mm each less the rounded rims
    rim = 12 * 3 * R2 / 2 + 8 * math.sqrt(3) / 8
    assert surface_distances(a, a, (1, 1, 1)).gt_sizes.sum() == pytest.approx(6 * 9 + rim)


# -- empty masks -------------------------------------------------------------------------------------------
def test_both_empty():
    z = np.zeros((5, 5, 5), dtype=bool)
    assert math.isnan(dice(z, z))
    assert dice(z, z, empty_value=1.0) == 1.0
    assert math.isnan(surface_dice(z, z, (1, 1, 1)))
    assert surface_dice(z, z, (1, 1, 1), empty_value=1.0) == 1.0
    assert hd95(z, z, (1, 1, 1)) == math.inf  # surface-distance's value (no surface at all)
    assert math.isnan(hd95(z, z, (1, 1, 1), empty_value=math.nan))
    s = scores(z, z, (1, 1, 1))
    assert math.isnan(s.dice) and math.isnan(s.nsd) and s.hd95 == math.inf
    d = surface_distances(z, z, (1, 1, 1))
    assert d.pred_to_gt.size == d.gt_to_pred.size == 0 and math.isnan(d.surface_dice(2.0))
    assert math.isnan(surface_dice(z[0], z[0], (1, 1)))


def test_one_empty():
    z = np.zeros((12, 12, 12), dtype=bool)
    a = _box()
    for p, g in ((z, a), (a, z)):
        assert dice(p, g) == 0.0
        assert surface_dice(p, g, (1, 1, 1)) == 0.0
        assert hd95(p, g, (1, 1, 1)) == math.inf
    s = scores(z, a, (1, 1, 1))
    assert (s.dice, s.nsd, s.hd95) == (0.0, 0.0, math.inf)
    d = surface_distances(z, a, (1, 1, 1))  # the truth's points all at inf, none for the prediction
    assert d.pred_to_gt.size == 0 and np.isinf(d.gt_to_pred).all() and d.gt_to_pred.size == d.gt_sizes.size > 0
    assert d.surface_dice(2.0) == 0.0 and d.hausdorff(95) == math.inf


def test_bad_inputs_raise_input_error():
    a = _box()
    with pytest.raises(InputError, match="shape"):
        dice(a, a[:-1])
    with pytest.raises(InputError, match="spacing"):
        surface_dice(a, a, (1, 1))
    with pytest.raises(InputError, match="spacing"):
        hd95(a, a, (1, 0, 1))
    with pytest.raises(InputError, match="spacing"):
        surface_dice(a[0], a[0], (1, 1, 1))  # 2D needs (i, j)
    with pytest.raises(InputError, match="2D .* or 3D"):
        dice(a[0, 0], a[0, 0])
    with pytest.raises(InputError, match="tolerance"):
        surface_dice(a, a, (1, 1, 1), tolerance_mm=-1)
    with pytest.raises(InputError, match="percent"):
        robust_hausdorff(a, a, (1, 1, 1), 101)


# -- cropping does not change the answer; a big box ----------------------------------------------------------
def test_cropping_to_the_union_box_changes_nothing():
    a, b = COLUMN_A, COLUMN_B
    big_a, big_b = (np.pad(m, ((5, 9), (30, 2), (0, 41))) for m in (a, b))
    spacing = (0.7, 1.3, 2.9)
    assert scores(big_a, big_b, spacing) == scores(a, b, spacing)


def test_ellipsoid_in_a_200_cubed_volume():
    shape = (200, 200, 200)
    yy = np.indices(shape, dtype=np.int16)
    gt = ((yy[0] - 100) ** 2 / 30**2 + (yy[1] - 90) ** 2 / 40**2 + (yy[2] - 110) ** 2 / 35**2) <= 1
    pred = np.roll(gt, 2, axis=2)  # every surface point has a twin 2 mm away
    s = scores(pred, gt, (1.0, 1.0, 1.0))
    assert 0.9 < s.dice < 1.0 and s.nsd == 1.0 and 1.0 < s.hd95 <= 2.0

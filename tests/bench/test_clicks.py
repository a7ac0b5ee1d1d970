"""The click simulators on hand-made error maps whose answer is derived by hand.

CVPR 2025 rule (``next_click``): one error mask (missed and extra voxels together), its largest 26-connected
component, distance transform in voxels with the box's outside (and the array's) as background, one voxel
among those at the maximum drawn by ``np.random.seed(42); np.random.choice(n)``. For a box-shaped component
the depth of a voxel is ``min`` over the axes of ``min(r + 1, n - r)`` (``r`` its index inside the box, ``n``
the box's length), so the tied voxels are a sub-box listed in ``[k, j, i]`` raster order. The draws used
below: ``choice(7) = 6``, ``choice(8) = 6``, ``choice(64) = 38``, ``choice(72) = 51``, ``choice(128) = 102``.
"""

from __future__ import annotations

import numpy as np
import pytest

from volsam.bench import clicks
from volsam.bench.clicks import challenge_choice, next_click, next_click_2d
from volsam.core.errors import InputError


def test_the_draw_is_numpys_legacy_generator_seeded_42():
    state = np.random.get_state()
    try:
        for n, expected in ((1, 0), (7, 6), (8, 6), (64, 38), (72, 51), (128, 102)):
            np.random.seed(42)
            assert challenge_choice(n) == int(np.random.choice(n)) == expected
    finally:
        np.random.set_state(state)


def test_a_missed_slab_ties_along_its_long_axis():
    truth = np.zeros((9, 20, 20), bool)
    truth[2:7, 5:16, 5:16] = True
    pred = truth.copy()
    pred[2:7, 5:16, 5:10] = False  # missed: k 2..6 (5), j 5..15 (11), i 5..9 (5)
    # depth 3 needs r = 2 along k and i (n = 5) and 2 <= r <= 8 along j (n = 11): 7 voxels, j = 7..13.
    click = next_click(pred, truth)
    assert click is not None and click.positive and click.region_voxels == 5 * 11 * 5
    assert (click.depth, click.candidates) == (3.0, 7)
    assert (click.k, click.j, click.i) == (4, 7 + 6, 7)


def test_missed_and_extra_voxels_form_one_error_region():
    # truth fills i 1..5, the prediction i 6..10 beside it: one 6 x 10 x 10 error box, half missed, half extra.
    truth = np.zeros((10, 12, 12), bool)
    truth[2:8, 1:11, 1:6] = True
    pred = np.zeros_like(truth)
    pred[2:8, 1:11, 6:11] = True
    # depth 3: r in {2, 3} along k (n = 6), 2..7 along j and i (n = 10): 2 x 6 x 6 = 72 voxels.
    # draw 51 -> (51 // 36, 51 % 36 // 6, 51 % 6) = (1, 2, 3) -> r = (3, 4, 5) -> (k, j, i) = (5, 5, 6).
    click = next_click(pred, truth)
    assert click is not None and click.region_voxels == 600 and click.candidates == 72
    assert (click.k, click.j, click.i) == (5, 5, 6)
    assert not click.positive  # i = 6 is an extra voxel: a background click


def test_equal_regions_go_to_the_first_in_raster_order_and_the_larger_wins():
    truth = np.zeros((10, 8, 16), bool)
    pred = np.zeros_like(truth)
    pred[1:4, 1:4, 10:13] = True  # extra 3x3x3 cube, first in [k, j, i] order: centre (2, 2, 11), depth 2
    truth[5:8, 1:4, 1:4] = True  # missed 3x3x3 cube: centre (6, 2, 2)
    click = next_click(pred, truth)
    assert click is not None and (click.k, click.j, click.i, click.positive) == (2, 2, 11, False)
    assert (click.depth, click.candidates, click.region_voxels) == (2.0, 1, 27)
    truth[8, 1:4, 1:4] = True  # the missed region grows to 36 voxels and wins: (k 5..8) -> depth 2 at k 6, 7
    click = next_click(pred, truth)
    assert click is not None and click.positive and click.region_voxels == 36 and click.candidates == 2
    assert (click.k, click.j, click.i) == (6, 2, 2)  # choice(2) = 0


def test_regions_touching_at_a_corner_are_one_region():
    truth = np.zeros((8, 8, 12), bool)
    pred = np.zeros_like(truth)
    truth[0:2, 0:2, 0:2] = True  # two 2x2x2 cubes meeting at one corner: 16 voxels if 26-connected
    truth[2:4, 2:4, 2:4] = True
    pred[5:7, 5:7, 8:11] = True  # 12 extra voxels elsewhere: the largest region only with 6-connectivity
    click = next_click(pred, truth)
    assert click is not None and click.region_voxels == 16 and click.positive


def test_the_array_border_counts_as_background():
    pred = np.ones((4, 10, 10), bool)  # everything wrongly included: the error box is the whole array
    truth = np.zeros_like(pred)
    # depth 2: r in {1, 2} along k (n = 4), 1..8 along j and i: 2 x 8 x 8 = 128 voxels.
    # draw 102 -> (102 // 64, 102 % 64 // 8, 102 % 8) = (1, 4, 6) -> (k, j, i) = (2, 5, 7).
    click = next_click(pred, truth)
    assert click is not None and not click.positive and (click.depth, click.candidates) == (2.0, 128)
    assert (click.k, click.j, click.i) == (2, 5, 7)


def test_large_boxes_are_max_pooled_as_the_script_does(monkeypatch):
    truth = np.zeros((14, 14, 14), bool)
    truth[3:11, 3:11, 3:11] = True  # an 8-voxel cube missed; its box padded by 2 -> 12^3 = 1728 voxels
    pred = np.zeros_like(truth)
    # full resolution: depth 4 at r in {3, 4} per axis: 8 voxels, draw 6 -> r = (4, 4, 3) -> (7, 7, 6)
    click = next_click(pred, truth)
    assert click is not None and (click.depth, click.candidates) == (4.0, 8)
    assert (click.k, click.j, click.i) == (7, 7, 6)
    # pooled 2x2x2 (padded box over the limit): the cube is 4 pooled voxels wide (padding 2 -> blocks 1..4),
    # depth 1, 2, 2, 1 there, repeated back: depth 2 at r = 2..5 per axis, 64 voxels, draw 38 -> r = (4, 3, 4)
    monkeypatch.setattr(clicks, "LARGE_ROI_VOXELS", 1000)
    click = next_click(pred, truth)
    assert click is not None and (click.depth, click.candidates) == (2.0, 64)
    assert (click.k, click.j, click.i) == (7, 6, 7)


def test_depth_is_in_voxels_whatever_the_spacing():
    truth = np.zeros((12, 12, 12), bool)
    truth[1:11, 1:5, 1:11] = True  # thin along j
    pred = np.zeros_like(truth)
    plain = next_click(pred, truth)
    with pytest.warns(DeprecationWarning, match="ignored"):
        spaced = next_click(pred, truth, (1.0, 1.0, 5.0))
    assert plain == spaced and plain is not None and plain.j in (2, 3)


def test_agreement_gives_no_click_and_bad_shapes_are_refused():
    a = np.zeros((3, 4, 5), bool)
    assert next_click(a, a) is None
    with pytest.raises(InputError):
        next_click(a, np.zeros((3, 4, 6), bool))
    with pytest.raises(InputError):
        next_click(a[0], a[0])


# -- the 2D rule of "Interactive 3D Medical Image Segmentation with SAM 2" -------------------------------
def test_2d_click_goes_to_the_deepest_region_with_its_sign():
    truth = np.zeros((40, 40), bool)
    truth[5:25, 5:25] = True  # 20x20 object
    pred = truth.copy()
    pred[10:20, 10:20] = False  # a 10x10 hole, depth 5
    pred[30:36, 30:36] = True  # a 6x6 false positive, depth 3
    u, v, positive = next_click_2d(pred, truth)
    assert positive and 10 <= u < 20 and 10 <= v < 20
    pred[10:20, 10:20] = True
    u, v, positive = next_click_2d(pred, truth)
    assert not positive and 30 <= u < 36 and 30 <= v < 36


def test_2d_click_ignores_regions_one_pixel_thin():
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    pred = truth.copy()
    pred[5:15, 5] = False  # a one-pixel-wide missed strip: depth 1
    pred[2, 2:4] = True  # a two-pixel false positive: depth 1
    assert next_click_2d(pred, truth) is None
    assert next_click_2d(np.zeros_like(truth), truth)[2] is True
    with pytest.raises(InputError):
        next_click_2d(pred[None], truth[None])

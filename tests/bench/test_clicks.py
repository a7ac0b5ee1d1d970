"""The click simulator on hand-made masks whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from volsam.bench.clicks import next_click
from volsam.core.errors import InputError


def test_a_missed_region_gets_a_positive_click_at_its_centre():
    truth = np.zeros((9, 20, 20), bool)
    truth[2:7, 5:16, 5:16] = True
    pred = truth.copy()
    pred[2:7, 5:16, 5:10] = False  # the left part missed: 5 x 11 x 5 voxels
    click = next_click(pred, truth)
    assert click is not None and click.positive and click.region_voxels == 5 * 11 * 5
    assert (click.k, click.j, click.i) == (4, 10, 7)


def test_the_larger_error_wins_and_a_leak_gets_a_negative_click():
    truth = np.zeros((9, 20, 30), bool)
    truth[2:7, 5:16, 5:16] = True
    pred = truth.copy()
    pred[4, 10, 10] = False  # a one-voxel miss
    pred[1:8, 5:16, 16:25] = True  # a leak of 7 x 11 x 9 voxels
    click = next_click(pred, truth)
    assert click is not None and not click.positive and click.region_voxels == 7 * 11 * 9
    assert (click.k, click.j, click.i) == (4, 10, 20)


def test_spacing_moves_the_innermost_voxel():
    truth = np.zeros((12, 12, 12), bool)
    truth[1:11, 1:5, 1:11] = True  # thin along j
    pred = np.zeros_like(truth)
    iso = next_click(pred, truth)
    assert iso is not None and iso.j in (2, 3)
    # with 5 mm slices (k) and 1 mm in-plane, depth along k is large: still the middle in j, any k inside
    aniso = next_click(pred, truth, spacing_ijk=(1.0, 1.0, 5.0))
    assert aniso is not None and aniso.j in (2, 3)


def test_agreement_gives_no_click_and_bad_shapes_are_refused():
    a = np.zeros((3, 4, 5), bool)
    assert next_click(a, a) is None
    with pytest.raises(InputError):
        next_click(a, np.zeros((3, 4, 6), bool))


# -- the 2D rule of "Interactive 3D Medical Image Segmentation with SAM 2" -------------------------------
def test_2d_click_goes_to_the_deepest_region_with_its_sign():
    from volsam.bench.clicks import next_click_2d

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
    from volsam.bench.clicks import next_click_2d

    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    pred = truth.copy()
    pred[5:15, 5] = False  # a one-pixel-wide missed strip: depth 1
    pred[2, 2:4] = True  # a two-pixel false positive: depth 1
    assert next_click_2d(pred, truth) is None
    assert next_click_2d(np.zeros_like(truth), truth)[2] is True
    with pytest.raises(InputError):
        next_click_2d(pred[None], truth[None])

"""The rules that combine a corrected frame's old mask, the model's new mask and the clicks."""

from __future__ import annotations

import numpy as np

from volsam.session.corrections import combine, grow_capped, trim_box


def _disc(shape, cx, cy, r):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_a_positive_click_adds_at_most_the_area_cap_nearest_the_click():
    current = _disc((40, 40), 15, 20, 4)  # ~49 px
    new = _disc((40, 40), 20, 20, 9)  # the model answers far too large (~253 px)
    click = np.array([[21.0, 20.0]])
    uncapped = combine(current, new, click, np.array([1]), "add")
    capped = combine(current, new, click, np.array([1]), "add", area_cap=80)
    assert uncapped.sum() > 150
    assert capped.sum() == 80 and (capped & current).sum() == current.sum() and capped[20, 21]
    ys, xs = np.nonzero(capped & ~current)
    far = np.nonzero(uncapped & ~capped)
    assert np.hypot(xs - 21, ys - 20).max() <= np.hypot(far[1] - 21, far[0] - 20).min() + 1e-9  # nearest first
    assert np.array_equal(combine(current, new, click, np.array([1]), "add", area_cap=1000), uncapped)


def test_remove_and_replace():
    current = _disc((20, 20), 10, 10, 5)
    new = _disc((20, 20), 12, 10, 5)
    assert np.array_equal(combine(current, new, np.array([[3.0, 3.0]]), np.array([0]), "remove"), current & new)
    assert np.array_equal(combine(current, new, np.zeros((0, 2)), np.zeros(0), "replace"), new)


def test_grow_capped_keeps_the_old_mask_and_adds_the_nearest_pixels_up_to_the_cap():
    old = _disc((40, 40), 20, 20, 4)
    new = _disc((40, 40), 22, 20, 10)  # far larger, off-centre
    grown = grow_capped(old, new, 1.25 * old.sum())
    assert grown.sum() == int(1.25 * old.sum()) and (grown & old).sum() == old.sum()
    gap = np.hypot(*np.meshgrid(np.arange(40) - 20, np.arange(40) - 20))  # distance to the centre
    added, left = grown & ~old, new & ~grown
    assert gap[added].max() <= gap[left].min() + 1.0  # a ring around the old mask, not a far piece
    assert np.array_equal(grow_capped(old, new, 10_000), old | new)
    assert np.array_equal(grow_capped(old, new, old.sum()), old)  # no room: unchanged
    assert np.array_equal(grow_capped(old, old, 10_000), old)


def test_trim_box_moves_the_side_nearest_each_background_click_past_it():
    box = (10.0, 20.0, 50.0, 40.0)
    assert trim_box(box, np.array([[46.0, 30.0]])) == (10.0, 20.0, 45.0, 40.0)  # right side
    assert trim_box(box, np.array([[30.0, 22.0]])) == (10.0, 23.0, 50.0, 40.0)  # top side
    assert trim_box(box, np.array([[12.0, 30.0], [30.0, 39.0]])) == (13.0, 20.0, 50.0, 38.0)  # one side each
    assert trim_box(box, np.array([[70.0, 30.0]])) == box  # a click outside the box changes nothing
    assert trim_box((10.0, 20.0, 11.0, 40.0), np.array([[10.5, 30.0]])) is None  # nothing left

"""The video walk's memories (:func:`volsam.propagation.follow.follow`): the size memory that bounds a leak
where the appearance model is weak (``area_memory``), and where the object left the view (``exit_memory``,
``search_edge_touch``). The stand-in engine (bright pixels inside the box) shows the bookkeeping; the real
LiteMedSAM on generated clips is measured by benchmarks/bench_video_tracking.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.support.toy_engine import ToyEngine
from volsam.core.errors import SettingsError
from volsam.propagation import FrameStack, PropagationSettings
from volsam.propagation.follow import border_band, bound_area, follow

VIDEO = replace(PropagationSettings.video(), appearance_smooth=0.0, temporal_reach=0)  # one rule at a time


def test_bound_area_keeps_the_whole_rings_nearest_the_anchor():
    mask = np.zeros((20, 20), bool)
    mask[2:18, 2:18] = True  # 256 px
    anchor = np.zeros_like(mask)
    anchor[9:11, 9:11] = True  # 4 px in the middle
    assert bound_area(mask, anchor, 300) is mask  # small enough: as it is
    for cap in (10, 50, 100, 200):
        cut = bound_area(mask, anchor, cap)
        assert 4 <= cut.sum() <= cap and not (cut & ~mask).any()
        distance = np.hypot(*np.meshgrid(np.arange(20) - 9.5, np.arange(20) - 9.5))
        # nearest first: every kept pixel is at least as near the middle as every pixel left out
        assert distance[cut].max() <= distance[mask & ~cut].min() + 1.0
    assert bound_area(mask, anchor, 2).sum() == 4  # even the anchor is larger: the anchor's part is kept
    assert bound_area(mask, np.zeros_like(mask), 10) is mask  # no anchor: nothing to keep near


def test_the_border_band_is_the_pixels_near_the_border():
    band = border_band((10, 12), 2)
    assert band[:2].all() and band[-2:].all() and band[:, :2].all() and band[:, -2:].all()
    assert not band[2:-2, 2:-2].any()


@pytest.mark.parametrize(
    "field, value",
    [("area_memory", 0.5), ("exit_memory", -1), ("search_edge_touch", -1), ("relative_object_fraction", 1.5)],
    ids=str,
)
def test_memory_settings_are_checked(field, value):
    with pytest.raises(SettingsError):
        replace(PropagationSettings.video(), **{field: value})


def _creeping(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """An object (195-224) beside a slab of the same grey that it does not belong to, on dark tissue (40):
    the stand-in engine answers the bright pixels in its box, so boxes grown from each mask creep into the
    slab; the ring around the object is half slab, so the appearance model is weak."""
    truth = np.zeros((n, 40, 120), bool)
    truth[:, 12:28, 20:36] = True  # 256 px, still
    rng = np.random.default_rng(1)
    slab = np.zeros_like(truth)
    slab[:, 4:36, 36:110] = True  # right of the object ...
    slab[:, 4:12, 14:36] = True  # ... and above it: half the ring around it
    frames = np.where(truth | slab, 195, 40) + rng.integers(0, 30, truth.shape)
    return frames.astype(np.uint8), truth


def _areas(frames: np.ndarray, truth: np.ndarray, settings: PropagationSettings) -> list[int]:
    stack = FrameStack(frames, 2, lambda f: f)
    ys, xs = np.nonzero(truth[0])
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    results = {r.index: r.mask for r in follow(ToyEngine(), stack, 0, box=box, settings=settings, directions=(1,))}
    return [int(results[t].sum()) for t in range(len(frames))]


def test_the_size_memory_stops_a_creeping_leak_where_the_appearance_model_is_weak():
    frames, truth = _creeping()
    plain = replace(VIDEO, regrow_px=0, regrow_more_px=0)
    remembered = _areas(frames, truth, plain)
    forgetting = _areas(frames, truth, replace(plain, area_memory=0.0))
    assert forgetting[-1] > 2 * truth[0].sum(), forgetting  # the leak: boxes grown from each mask creep
    assert max(remembered) <= 1.25 * remembered[0], remembered  # cut to 1.25 x the prompted frame's area
    # a well-seen object may grow: below that separability the memory is off and the leak goes on
    assert _areas(frames, truth, replace(plain, area_memory_below=0.0)) == forgetting


def _leaving_with_patch(touching: bool) -> tuple[np.ndarray, np.ndarray]:
    """A 12 x 12 object that leaves through the right border (frames 7-11) and comes back, and while it is
    away, an object-like patch by the border where it left: on the border (``touching``) or 6 px in."""
    n, h, w = 16, 40, 120
    truth = np.zeros((n, h, w), bool)
    for t in range(n):
        x = 60 + 9 * (9 - abs(9 - t))
        if x < w:
            truth[t, 14:26, x : min(x + 12, w)] = True
    patch = np.zeros_like(truth)
    x1 = w if touching else w - 6
    patch[8:12, 16:22, x1 - 5 : x1] = True  # 30 px, in the exit zone
    rng = np.random.default_rng(0)
    frames = np.where(truth | patch, 200, 40) + rng.integers(0, 20, truth.shape)
    return frames.astype(np.uint8), truth


def test_a_patch_off_the_border_is_not_taken_for_the_object_coming_back():
    strict = replace(VIDEO, search_min_area=0.6, regrow_px=0)  # only the search where it left finds the patch
    for touching, taken_with_touch in ((False, False), (True, True)):
        frames, truth = _leaving_with_patch(touching)
        away = [_areas(frames, truth, s)[8:12] for s in (strict, replace(strict, search_edge_touch=0))]
        assert any(away[1]), away  # any region in the exit zone is taken
        assert any(away[0]) == taken_with_touch, away  # with the rule only one reaching the border


def _textured(dim_first: float, dim_later: float, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A 16 x 16 object of bright (200) and dim (135) pixels, ``dim_first`` of them dim on frame 0 and
    ``dim_later`` after, in a ring of grey 110-139 on dark tissue: the dim pixels look like the ring, so the
    prompted frame's own mask is only partly object-like."""
    rng = np.random.default_rng(0)
    truth = np.zeros((n, 40, 120), bool)
    truth[:, 12:28, 20:36] = True
    frames = np.full(truth.shape, 40.0) + rng.integers(0, 10, truth.shape)
    ring = np.zeros_like(truth)
    ring[:, 6:34, 14:42] = True
    ring &= ~truth
    frames[ring] = rng.integers(110, 140, int(ring.sum()))
    for t in range(n):
        dim = rng.random((40, 120)) < (dim_first if t == 0 else dim_later)
        frames[t][truth[t] & dim] = 135
        frames[t][truth[t] & ~dim] = 200
    return frames.astype(np.uint8), truth


def test_the_object_like_share_a_mask_needs_is_judged_against_the_prompted_mask():
    frames, truth = _textured(0.3, 0.45)  # the prompted mask is 72 % object-like, later masks 47-50 %
    absolute = _areas(frames, truth, replace(VIDEO, regrow_px=0, regrow_more_px=0))  # off by default
    relative = _areas(frames, truth, replace(VIDEO, regrow_px=0, regrow_more_px=0, relative_object_fraction=0.6))
    assert 0 in absolute[1:], absolute  # below min_object_fraction (50 %): taken for lost
    assert min(relative) > 0.9 * truth[0].sum(), relative  # needs 0.6 x 72 % = 43 %: followed throughout

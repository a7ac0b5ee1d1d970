"""The video walk's rules (:func:`volsam.propagation.follow.follow`): appearance boxes and the search for a
lost object. The stand-in engine (bright pixels inside the box) shows the bookkeeping; the real LiteMedSAM on
generated ultrasound-like clips is tested in tests/jobs/test_video_tracking.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tests.support.toy_engine import ToyEngine
from volsam.propagation import FrameStack, PropagationSettings
from volsam.propagation.follow import appearance_box, exit_zone, follow, object_regions, regrow

H, W = 40, 120
VIDEO = replace(PropagationSettings.video(), appearance_smooth=0.0, temporal_reach=0)  # one rule at a time


def _frames(truth: np.ndarray, extra: np.ndarray | None = None, extra_value: int = 150) -> np.ndarray:
    rng = np.random.default_rng(0)
    frames = np.where(truth, 200, 40) + rng.integers(0, 20, truth.shape)
    if extra is not None:
        frames = np.where(extra, extra_value, frames)
    return frames.astype(np.uint8)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def _run(frames: np.ndarray, truth: np.ndarray, settings: PropagationSettings) -> list[float]:
    stack = FrameStack(frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    ys, xs = np.nonzero(truth[0])
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    results = {r.index: r.mask for r in follow(ToyEngine(), stack, 0, box=box, settings=settings)}
    masks = [results.get(t, np.zeros((H, W), bool)) for t in range(len(frames))]
    return [_dice(m, g) for m, g in zip(masks, truth)]


def test_the_appearance_box_takes_the_whole_object_when_it_grows_past_the_box_proposals():
    truth = np.zeros((6, H, W), bool)
    for t in range(6):
        right = 30 if t < 3 else 36  # on frame 3 the object reaches 6 px further (the proposals add ~2 px)
        truth[t, 14:26, 18 : right + 1] = True
    frames = _frames(truth)
    alone = replace(VIDEO, regrow_px=0)  # the regrowth alone would also take the 6 px: this tests the boxes
    with_boxes = _run(frames, truth, alone)
    without = _run(frames, truth, replace(alone, appearance_boxes=False))
    assert with_boxes == [1.0] * 6, with_boxes
    assert without[3] < 0.9, without  # the box grown from frame 2's mask cuts the object


def test_regrowth_takes_the_object_like_pixels_next_to_the_mask_and_only_those():
    truth = np.zeros((4, H, W), bool)
    truth[:, 10:30, 20:50] = True
    frames = _frames(truth)
    frames[:, 10:30, 20:50] = np.where(np.arange(30) < 25, frames[:, 10:30, 20:50], 40)  # 5 px look like background
    frames[1:, 10:30, 20:50] = 200  # from frame 1 the whole object is bright ...

    class Under(ToyEngine):  # ... but the "model" misses its 3 right columns, as LiteMedSAM under-segments
        def predict(self, embedding, box=None, points=None, point_labels=None, mask_logits=None):
            pred = super().predict(embedding, box=box)
            pred.mask[:, 47:] = False
            return pred

    stack = FrameStack(frames, 2, lambda f: f)
    got = {r.index: r.mask for r in follow(Under(), stack, 0, box=(20, 10, 44, 29), settings=VIDEO)}
    assert [_dice(got[t], truth[t]) for t in (1, 2, 3)] == [1.0] * 3  # regrown into the 3 bright columns
    plain = {
        r.index: r.mask for r in follow(Under(), stack, 0, box=(20, 10, 44, 29), settings=replace(VIDEO, regrow_px=0))
    }
    assert all(plain[t][:, 47:].sum() == 0 for t in (1, 2, 3))
    assert got[0][:, 45:].sum() == 0  # frame 0's last 5 columns look like background: not taken
    far = np.zeros((20, 20), bool)
    far[5:8, 5:8] = True
    like = np.zeros((20, 20), bool)
    like[5:8, 5:14] = True
    like[15:18, 15:18] = True  # object-like but not touching
    assert regrow(far, like, 3).sum() == 9 + 9 and not regrow(far, like, 3)[15:18, 15:18].any()
    assert regrow(far, like, 1).sum() == 9 + 3  # one ring a step


def test_the_appearance_box_keeps_to_the_region_connected_to_the_previous_mask():
    ratio = -np.ones((20, 40))
    ratio[5:10, 5:10] = 1.0  # the object
    ratio[5:10, 30:35] = 1.0  # another object-like patch, away from it
    anchor = np.zeros((20, 40), bool)
    anchor[6:9, 6:12] = True
    assert appearance_box(ratio, anchor, 8) == (5.0, 5.0, 9.0, 9.0)
    far = np.zeros((20, 40), bool)
    far[15:18, 20:22] = True
    assert appearance_box(ratio, far, 2) is None  # nothing object-like touches it
    assert [r.sum() for r in object_regions(ratio, 10)] == [25, 25] and object_regions(ratio, 26) == []


def _leaving(n: int = 16) -> np.ndarray:
    """A 12 px square that moves right 9 px a frame, is outside from frame 7 to 11, and comes back."""
    truth = np.zeros((n, H, W), bool)
    for t in range(n):
        x = 60 + 9 * (9 - abs(9 - t))
        x0, x1 = max(x, 0), min(x + 12, W)
        if x0 < x1:
            truth[t, 14:26, x0:x1] = True
    return truth


def test_an_object_that_leaves_the_view_is_found_again_when_it_comes_back():
    truth = _leaving()
    assert not truth[7:12].any() and truth[12:].any(axis=(1, 2)).all()  # gone, then back
    frames = _frames(truth)
    searched = _run(frames, truth, VIDEO)
    ended = _run(frames, truth, replace(VIDEO, search_lost=False))
    assert min(searched[:6]) > 0.7 and searched[7:12] == [1.0] * 5  # nothing segmented while it is away
    assert min(searched[13:]) > 0.9, np.round(searched, 2)  # found again as soon as it is in view
    assert max(ended[12:]) == 0.0, np.round(ended, 2)  # without the search the direction ended


def test_the_search_takes_no_region_that_does_not_look_like_the_object():
    truth = _leaving()
    truth[7:] = False  # the object never comes back ...
    distractor = np.zeros_like(truth)
    distractor[9:, 10:30, 20:40] = True  # ... but a bright patch of another grey level appears
    frames = _frames(truth, distractor, extra_value=150)  # bright for the engine, not the object's grey
    searched = _run(frames, truth, VIDEO)
    assert searched[7:] == [1.0] * 9, np.round(searched, 2)  # left empty: correct
    unchecked = replace(VIDEO, search_area_check=False)  # the patch is 2.8 x the object: see the next test
    same_grey = _run(_frames(truth, distractor, extra_value=200), truth, unchecked)
    assert max(same_grey[9:]) == 0.0  # the rule can fail: a patch that looks like the object is taken


def test_the_search_takes_no_answer_far_larger_than_the_object():
    truth = _leaving()
    truth[7:] = False  # the object (144 px) never comes back ...
    patch = np.zeros_like(truth)
    patch[9:, 10:30, 20:40] = True  # ... but a 400 px patch of its grey appears (> 2.5 x its area)
    frames = _frames(truth, patch, extra_value=200)
    checked = _run(frames, truth, VIDEO)
    unchecked = _run(frames, truth, replace(VIDEO, search_area_check=False))
    assert checked[7:] == [1.0] * 9, np.round(checked, 2)  # left empty: correct
    assert max(unchecked[9:]) == 0.0, np.round(unchecked, 2)  # taken without the area check
    smaller = patch.copy()
    smaller[9:, 10:30, 32:40] = False  # 240 px: within max_area_ratio, taken (the rule judges by area only)
    assert max(_run(_frames(truth, smaller, extra_value=200), truth, VIDEO)[9:]) == 0.0


def test_the_exit_zone_is_the_stretch_of_border_where_the_mask_left():
    mask = np.zeros((H, W), bool)
    mask[14:26, 110:118] = True  # 2 px from the right edge (W = 120)
    zone = exit_zone(mask, 10)
    assert zone is not None
    ys, xs = np.nonzero(zone)
    assert xs.min() == W - 10 and (ys.min(), ys.max()) == (4, 35)  # a 10 px band, 10 px around rows 14-25
    inside = np.zeros((H, W), bool)
    inside[14:26, 60:72] = True
    assert exit_zone(inside, 10) is None  # lost inside the view: no zone


def test_an_object_coming_back_in_part_is_taken_where_it_left_and_nowhere_else():
    truth = _leaving()
    assert truth[12].sum() == 72 and truth[13].sum() == 144  # frame 12: half of it is back
    patch = np.zeros_like(truth)
    patch[9:, 14:26, 0:6] = True  # a half-size object-like patch at the left edge, where it did not leave
    frames = _frames(truth, patch, extra_value=200)
    strict = replace(VIDEO, search_min_area=0.6, regrow_px=0, search_edge_min_area=0.0)  # whole frame: 87 px
    edge = _run(frames, truth, replace(strict, search_edge_min_area=0.1))
    whole = _run(frames, truth, strict)
    assert edge[7:12] == [1.0] * 5, np.round(edge, 2)  # the patch at the other edge is never taken
    assert edge[12] > 0.9 and whole[12] == 0.0, (edge[12], whole[12])  # found a frame earlier
    assert min(edge[13:]) > 0.9 and min(whole[13:]) > 0.9

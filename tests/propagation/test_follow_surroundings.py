"""The video walk's appearance model when the model's first mask lies inside the object
(``PropagationSettings.box_surroundings``), and the lost-object search labelling each frame once.

The stand-in engine (bright pixels inside the box) under-segments a dotted object: it takes the bright dots
only, so on the smoothed frame the ring around its mask is mostly the object's own pixels between them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage

from tests.support.toy_engine import ToyEngine
from volsam.propagation import FrameStack, PropagationSettings
from volsam.propagation import follow as follow_module
from volsam.propagation.follow import ObjectRegions, box_ring, follow, object_regions, video_appearance

H, W = 64, 96
VIDEO = PropagationSettings.video()
BOX = (18.0, 12.0, 77.0, 51.0)  # the object's tight box (x0, y0, x1, y1)


def _dotted(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n, H, W) uint8, truth (n, H, W)): a 60 x 40 px object of grey 110 with a bright dot (200) on
    every other pixel of every other row (the stand-in takes the dots: a quarter of the object) on a
    background of 40, with a little noise; it does not move."""
    rng = np.random.default_rng(0)
    truth = np.zeros((n, H, W), bool)
    truth[:, 12:52, 18:78] = True
    y, x = np.mgrid[:H, :W]
    dots = np.where((y % 2 == 0) & (x % 2 == 0), 200, 110)
    frames = np.where(truth, dots, 40) + rng.integers(0, 10, truth.shape)
    return frames.astype(np.uint8), truth


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_the_ring_outside_the_box_is_a_ring_of_the_given_width_clipped_to_the_frame():
    ring = box_ring((2.0, 3.0, 10.0, 8.0), 3, (20, 30))
    outer = np.zeros((20, 30), bool)
    outer[0:12, 0:14] = True  # rows 3-3 .. 8+3, columns 2-2 (clipped at 0) .. 10+3
    inner = np.zeros((20, 30), bool)
    inner[3:9, 2:11] = True
    assert (ring == (outer & ~inner)).all()


def test_the_box_gives_the_surroundings_when_the_ring_around_the_mask_lies_inside_the_object():
    frames, truth = _dotted(1)
    mask = frames[0] >= 128  # what the stand-in answers: the dots only
    assert video_appearance(frames[0], mask, VIDEO) is None  # the ring around the mask: mostly the object
    assert video_appearance(frames[0], mask, replace(VIDEO, box_surroundings=False), BOX) is None
    model = video_appearance(frames[0], mask, VIDEO, BOX)
    assert model is not None
    grey = follow_module.smoothed(frames[0], VIDEO.appearance_smooth)
    likeness = model.log_ratio(grey) > 0
    inner = ndimage.binary_erosion(truth[0], iterations=2)  # smoothing blurs the outline
    assert likeness[inner].all() and not likeness[~ndimage.binary_dilation(truth[0], iterations=2)].any()


def test_a_mask_ring_that_separates_is_kept_even_with_a_box():
    frames = np.full((1, H, W), 40, np.uint8)
    frames[0, 12:52, 18:78] = 200
    mask = frames[0] >= 128
    plain = video_appearance(frames[0], mask, replace(VIDEO, box_surroundings=False))
    boxed = video_appearance(frames[0], mask, VIDEO, (0.0, 0.0, W - 1.0, H - 1.0))  # a box over the frame
    assert plain is not None and boxed is not None
    assert type(boxed) is type(plain)  # the box is only a fallback (its ring lies outside the frame here)
    grey = follow_module.smoothed(frames[0], VIDEO.appearance_smooth)
    assert (boxed.log_ratio(grey) == plain.log_ratio(grey)).all()


def _follow(frames: np.ndarray, settings: PropagationSettings) -> list[np.ndarray]:
    stack = FrameStack(frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    results = {r.index: r.mask for r in follow(ToyEngine(), stack, 0, box=BOX, settings=settings)}
    return [results[t] for t in range(len(frames))]


def test_with_the_box_surroundings_the_walk_regrows_an_under_segmented_object():
    frames, truth = _dotted()
    boxed = [_dice(m, g) for m, g in zip(_follow(frames, VIDEO), truth)]
    ring = [_dice(m, g) for m, g in zip(_follow(frames, replace(VIDEO, box_surroundings=False)), truth)]
    assert min(boxed) > 0.95, np.round(boxed, 3)  # regrown between the dots, holes filled
    assert max(ring) < 0.7, np.round(ring, 3)  # appearance rules off: the dots only


def test_object_regions_are_labelled_once_and_ordered_by_their_likeness():
    ratio = np.full((20, 20), -1.0)
    ratio[1:4, 1:4] = 0.5  # 9 px, sum 4.5
    ratio[10:12, 10:18] = 2.0  # 16 px, sum 32
    ratio[15, 15] = 3.0  # 1 px, sum 3
    regions = ObjectRegions.of(ratio)
    sizes = [int(r.sum()) for r in regions.at_least(1)]
    assert sizes == [16, 9, 1]
    assert [int(r.sum()) for r in regions.at_least(5)] == [16, 9]
    assert all((a == b).all() for a, b in zip(object_regions(ratio, 5), regions.at_least(5)))
    assert ObjectRegions.of(np.full((5, 5), -1.0)).at_least(1) == []


def test_the_search_labels_each_lost_frame_once(monkeypatch):
    n = 14
    truth = np.zeros((n, H, W), bool)
    for t in range(n):  # moves right 8 px a frame: out through the right edge from frame 5
        x = 20 + 8 * t
        if x < W:
            truth[t, 14:26, x : min(x + 12, W)] = True
    frames = np.where(truth, 200, 40).astype(np.uint8)
    calls: list[int] = []
    searching = [False]
    label, search = ndimage.label, follow_module._search

    def counted_label(*args, **kwargs):
        if searching[0]:
            calls.append(1)
        return label(*args, **kwargs)

    def counted_search(*args, **kwargs):
        searching[0] = True
        try:
            return search(*args, **kwargs)
        finally:
            searching[0] = False

    monkeypatch.setattr(follow_module.ndimage, "label", counted_label)
    monkeypatch.setattr(follow_module, "_search", counted_search)
    stack = FrameStack(frames, 2, lambda f: f)
    results = list(follow(ToyEngine(), stack, 0, box=(20.0, 14.0, 31.0, 25.0), settings=VIDEO, directions=(1,)))
    searched = [r.index for r in results if r.stop_detail == "searching"]
    assert searched, [(r.index, r.stop_detail) for r in results]
    assert len(calls) == len(searched)  # one labelling per searched frame (it was two with the exit zone)

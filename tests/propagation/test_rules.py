"""One fast toy-engine test per rule of the walk and of corrections (each threshold a named setting), and the
stop reasons the segmentation report records. The toy engine segments the bright pixels (>= 128) inside
the prompt box (tests/support/toy_engine.py), so each rule can be isolated in milliseconds."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.toy_engine import ToyEngine, ToyTracker
from volsam.core.prompts import Box2D
from volsam.core.volume import Volume
from volsam.propagation import (
    CorrectionSettings,
    EmbeddingCache,
    FrameStack,
    PropagationSettings,
    StopReason,
    cleanup_3d,
    propagate,
    segment_stack,
)
from volsam.propagation.stops import frame_stop
from volsam.segmentation import segment
from volsam.session import Session
from volsam.session.corrections import repropagate

SHAPE = (40, 32, 36)  # (k, j, i); frames (32, 36) along k
PLAIN = dict(appearance_stop=False, proposal_ratios=(0.0,), regrowth_after=0.0, cleanup_3d=False)


def _disc(r: float, cy: int = 16, cx: int = 18, shape=SHAPE[1:]) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _square(half: int, cy: int = 16, cx: int = 18, shape=SHAPE[1:]) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[cy - half : cy + half + 1, cx - half : cx + half + 1] = True
    return out


def _stack(objects: dict[int, np.ndarray]) -> FrameStack:
    image = np.full(SHAPE, 50, np.uint8)
    for s, m in objects.items():
        image[s][m] = 200
    return FrameStack(image, 2, lambda f: f)


def _walk_forward(objects: dict[int, np.ndarray], start: int, **settings) -> list:
    stack = _stack(objects)
    walker = propagate(
        ToyEngine(), stack, start, seed_mask=objects[start], directions=(1,), settings=PropagationSettings(**settings)
    )
    return list(walker)


def test_max_area_ratio_stops_a_jump_and_allows_it_when_raised():
    objects = {20: _disc(3), 21: _square(4), 22: _square(4)}  # 29 px, then 81 px: x2.8
    jumped = _walk_forward(objects, 20, **PLAIN)
    assert [r.index for r in jumped] == [20, 21] and jumped[-1].stop_reason is StopReason.AREA_JUMPED
    assert not jumped[-1].mask.any()
    allowed = _walk_forward(objects, 20, **PLAIN, max_area_ratio=3.0)
    assert np.array_equal(allowed[1].mask, objects[21]) and allowed[1].stop_reason is None


def test_min_area_ratio_stops_a_collapse_and_is_off_by_default():
    objects = {20: _disc(3), 21: _disc(1), 22: _disc(1)}  # 29 px, then 5 px
    fell = _walk_forward(objects, 20, **PLAIN, min_area_ratio=0.5)
    assert [r.index for r in fell] == [20, 21] and fell[-1].stop_reason is StopReason.AREA_FELL
    default = _walk_forward(objects, 20, **PLAIN)
    assert np.array_equal(default[1].mask, objects[21]) and np.array_equal(default[2].mask, objects[22])


def test_box_margin_is_how_far_beyond_the_previous_box_the_next_mask_may_reach():
    objects = {20: _disc(4), 21: _disc(6)}  # grows by 2 px on every side
    tight = _walk_forward(objects, 20, **PLAIN, box_margin=1.0)
    assert np.array_equal(tight[1].mask, objects[21] & _square(5))  # the box of radius 4, plus 1
    wide = _walk_forward(objects, 20, **PLAIN, box_margin=2.0)
    assert np.array_equal(wide[1].mask, objects[21])


def test_box_margin_on_the_prompted_frame_prompts_wider_but_keeps_the_users_box():
    stack = _stack({20: _disc(6)})
    engine = ToyEngine()
    box = (13.0, 11.0, 23.0, 21.0)  # radius 5 around the centre: the user's box
    first = next(propagate(engine, stack, 20, box=box, settings=PropagationSettings(box_margin=3.0)))
    assert np.array_equal(first.mask, _disc(6) & _square(5))  # cut to the user's box, whatever the margin


def test_growth_limit_cuts_the_mask_to_the_previous_one_dilated():
    objects = {20: _disc(4), 21: _square(6)}
    res = _walk_forward(objects, 20, **{**PLAIN, "box_margin": 3.0, "max_area_ratio": 10.0}, growth_limit=1)
    from scipy import ndimage

    assert np.array_equal(res[1].mask, objects[21] & ndimage.binary_dilation(_disc(4), iterations=1))


def test_frame_stop_checks_the_rules_in_order():
    s = PropagationSettings(min_area=5, min_score=0.5, min_area_ratio=0.2, max_area_ratio=2.0)
    assert frame_stop(0.9, 4, 100, s).reason is StopReason.EMPTY
    assert frame_stop(0.4, 100, 100, s).reason is StopReason.LOW_SCORE
    assert frame_stop(0.9, 19, 100, s).reason is StopReason.AREA_FELL
    assert frame_stop(0.9, 201, 100, s).reason is StopReason.AREA_JUMPED
    assert frame_stop(0.9, 100, 100, s, object_fraction=lambda: 0.3).reason is StopReason.NOT_OBJECT
    assert frame_stop(0.9, 100, 100, s, object_fraction=lambda: 0.7) is None
    base = PropagationSettings.baseline()
    assert frame_stop(0.1, 1000, 1, base) is None and frame_stop(0.1, 0, 1, base).reason is StopReason.EMPTY


def test_cleanup_3d_keeps_what_touches_the_seeds_and_fills_holes():
    masks = np.zeros((12, 20, 20), bool)
    ring = _disc(5, 10, 10, (20, 20)) & ~_disc(2, 10, 10, (20, 20))
    masks[3:7] = ring  # connected to the seed frame 5, with a hole
    masks[9:11, 2:5, 2:5] = True  # another structure, not connected
    out = cleanup_3d(masks, [5])
    assert np.array_equal(out[3:7], np.broadcast_to(_disc(5, 10, 10, (20, 20)), (4, 20, 20)))
    assert not out[8:].any()
    assert np.array_equal(cleanup_3d(masks, [10]), np.where(np.arange(12)[:, None, None] >= 9, masks, False))


def _cleanup_whole_stack(masks: np.ndarray, seeds: list[int]) -> np.ndarray:
    """cleanup_3d's rule written out on the whole stack (what it computed before it labelled the bounding box)."""
    from scipy import ndimage

    if not any(masks[s].any() for s in seeds):
        return masks
    labels, _ = ndimage.label(masks, structure=np.ones((3, 3, 3), dtype=bool))
    keep = np.unique(np.concatenate([labels[s][masks[s]] for s in seeds]))
    out = np.isin(labels, keep[keep > 0])
    for s in range(len(out)):
        out[s] = ndimage.binary_fill_holes(out[s])
    return out


@pytest.mark.parametrize("seed", range(8))
def test_cleanup_3d_in_the_bounding_box_equals_the_whole_stack_rule(seed):
    """Random sparse blobs, some seeds on empty frames or outside the objects' slices: the same masks."""
    rng = np.random.default_rng(seed)
    masks = rng.random((20, 24, 28)) > 0.93
    masks[rng.integers(0, 20, 5)] = False  # empty frames, some of them seeds
    seeds = [int(s) for s in rng.integers(0, 20, 3)]
    assert np.array_equal(cleanup_3d(masks, seeds), _cleanup_whole_stack(masks, seeds))


def test_cleanup_3d_in_place_writes_the_same_masks_into_its_input():
    rng = np.random.default_rng(3)
    masks = rng.random((20, 24, 28)) > 0.93
    seeds = [4, 11]
    expected = cleanup_3d(masks, seeds)
    assert not np.array_equal(expected, masks)  # the rule changes these masks: the in-place write is visible
    out = cleanup_3d(masks, seeds, in_place=True)
    assert out is masks and np.array_equal(masks, expected)


@pytest.mark.parametrize("cleanup", [True, False])
def test_segment_stack_applies_cleanup_only_when_asked(cleanup):
    objects = {s: _disc(4) for s in range(15, 26)}
    image = np.full(SHAPE, 50, np.uint8)
    for s, m in objects.items():
        image[s][m] = 200
    image[27:30, 2:5, 2:5] = 200  # bright, not connected to the object
    stack = FrameStack(image, 2, lambda f: f)
    settings = PropagationSettings(cleanup_3d=cleanup, appearance_stop=False, growth_limit=0, box_margin=40.0)
    result = segment_stack(ToyEngine(), stack, {20: objects[20]}, settings=settings)
    assert result.masks[28, 2:5, 2:5].any() is not cleanup  # the huge box reaches it; cleanup drops it


def test_the_report_records_where_each_direction_ended_and_why():
    image = np.full(SHAPE, 50, np.int16)
    for s in range(15, 26):
        image[s][_disc(4)] = 200
    volume = Volume(image)
    box = Box2D(14, 12, 22, 20, slice=20)
    report = segment(volume, box, engine=ToyEngine(), modality="other").meta["report"]
    assert [(w.direction, w.frame, w.reason) for w in report.stops] == [
        (-1, 14, StopReason.EMPTY),
        (1, 26, StopReason.EMPTY),
    ]
    limited = segment(volume, [box, Box2D(14, 12, 22, 20, slice=24)], engine=ToyEngine(), modality="other")
    reasons = {(w.start, w.direction): (w.frame, w.reason) for w in limited.meta["report"].stops}
    assert reasons[(20, 1)] == (23, StopReason.RANGE_END)  # the walk between two prompted slices ends before 24
    tracked = segment(volume, box, engine=ToyTracker(), modality="other", absent_patience=None)
    assert [(w.direction, w.frame, w.reason) for w in tracked.meta["report"].stops] == [
        (1, 39, StopReason.RANGE_END),
        (-1, 0, StopReason.RANGE_END),
    ]


def _column(lo: int = 10, hi: int = 30) -> tuple[FrameStack, np.ndarray]:
    objects = {s: _disc(5) for s in range(lo, hi + 1)}
    return _stack(objects), np.stack([objects.get(s, np.zeros(SHAPE[1:], bool)) for s in range(SHAPE[0])])


@pytest.mark.parametrize(("threshold", "written"), [(0.7, {20}), (0.99, set(range(20, 32)))])
def test_unchanged_dice_is_where_a_correction_stops_rewriting(threshold, written):
    stack, truth = _column()
    from scipy import ndimage

    masks = truth.copy()
    masks[21:] = [ndimage.binary_erosion(m) if m.any() else m for m in masks[21:]]  # old masks: Dice 0.75
    engine = ToyEngine()
    cache = EmbeddingCache(engine, stack)
    settings = PropagationSettings(appearance_stop=False)
    got = repropagate(
        stack, masks, 20, cache=cache, bounds=(0, 39), settings=settings, toward=-1,
        corrections=CorrectionSettings(unchanged_dice=threshold),
    )  # fmt: skip
    assert got == written


@pytest.mark.parametrize("settled", [1, 2, 4])
def test_retrack_settled_is_how_many_unchanged_slices_end_a_tracker_correction(settled):
    image = np.full(SHAPE, 50, np.int16)
    for s in range(5, 36):
        image[s][_disc(5)] = 200
    session = Session(
        Volume(image), engine=ToyTracker(), modality="other", corrections=CorrectionSettings(retrack_settled=settled)
    )
    obj = session.add_object()
    session.add_box(obj, 20, (12, 10, 24, 22))
    seen: list[int] = []
    session.on_frame = seen.append
    session.add_box(obj, 26, (12, 10, 24, 22))  # the same object: every re-tracked slice agrees
    assert sorted(seen) == sorted([*range(26, 26 + settled + 1), *range(26 - settled, 27)])

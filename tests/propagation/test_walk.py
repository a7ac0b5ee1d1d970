import numpy as np
import pytest

from tests.support.toy_engine import ToyEngine
from volsam.core import PromptError
from volsam.core.errors import SettingsError
from volsam.propagation import (
    EmbeddingCache,
    FrameStack,
    PropagationSettings,
    StopReason,
    mask_box,
    propagate,
    segment_stack,
)


def _ball(shape=(40, 32, 36), centre=(20, 16, 18), radius=(8, 9, 10)) -> np.ndarray:
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    r = ((k - centre[0]) / radius[0]) ** 2 + ((j - centre[1]) / radius[1]) ** 2 + ((i - centre[2]) / radius[2]) ** 2
    return r <= 1.0


def _stack(obj: np.ndarray, axis: int = 2) -> FrameStack:
    image = np.where(obj, 200, 50).astype(np.uint8)
    return FrameStack(image, axis, lambda f: f)


@pytest.mark.parametrize("strategy", ["volsam", "baseline"])
def test_walk_recovers_the_object_in_both_directions(strategy):
    obj = _ball()
    stack = _stack(obj)
    engine = ToyEngine()
    settings = PropagationSettings(strategy=strategy)
    box = mask_box(obj[20])
    seeds = {20: engine.predict(engine.encode(stack.frames([20]))[0], box=box).mask}
    result = segment_stack(engine, stack, seeds, settings=settings)
    assert np.array_equal(result.masks, obj)
    # cost scales with the object, not the depth: object slices 12..28 plus one empty slice at each end
    # (the seed slice 20 was encoded above, outside the walk)
    assert result.frames_encoded == 18 and sum(engine.encoded) == 19


def test_limit_bounds_the_walk_and_start_must_lie_inside():
    obj = _ball()
    stack = _stack(obj)
    out = list(propagate(ToyEngine(), stack, 20, box=mask_box(obj[20]), limit=(18, 23)))
    assert sorted(r.index for r in out) == list(range(18, 24))
    with pytest.raises(PromptError, match="outside the range"):
        list(propagate(ToyEngine(), stack, 25, box=(0, 0, 5, 5), limit=(18, 23)))


def test_score_rule_stops_and_baseline_ignores_it():
    obj = _ball()
    stack = _stack(obj)
    low = ToyEngine(score=0.2)
    res = list(propagate(low, stack, 20, seed_mask=obj[20], settings=PropagationSettings(min_score=0.5)))
    assert [r.index for r in res] == [20, 21, 19] and res[1].stop_reason is StopReason.LOW_SCORE
    assert not res[1].mask.any()
    base = list(propagate(low, stack, 20, seed_mask=obj[20], settings=PropagationSettings.baseline()))
    assert len(base) == 19


def test_several_seeds_fill_the_gaps_between_them():
    obj = _ball()
    stack = _stack(obj)
    result = segment_stack(ToyEngine(), stack, {15: obj[15], 25: obj[25]})
    assert np.array_equal(result.masks, obj)


def test_frames_along_i_and_j_round_trip():
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    for axis in (0, 1, 2):
        stack = FrameStack(arr, axis, lambda f: f)
        frames = stack.frames(list(range(len(stack))))
        assert np.array_equal(stack.to_volume(frames), arr)
    assert FrameStack(arr, 0, lambda f: f).frame_shape == (2, 3)  # rows k, columns j


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_to_volume_places_window_masks_as_labels_of_the_asked_type(axis):
    """A window's bool masks -> the label value on the whole grid in uint8 / uint16, zero outside the window and
    on frames without a mask."""
    rng = np.random.default_rng(axis)
    arr = np.zeros((6, 7, 8), np.int16)
    stack = FrameStack(arr, axis, lambda f: f).windowed((1, 4, 2, 5))
    masks = rng.random((len(stack), 3, 3)) > 0.5
    masks[0] = False
    expected = np.zeros((len(stack), *stack.full_shape), np.uint16)
    expected[:, 1:4, 2:5] = masks * 300
    for dtype, value in ((np.uint8, 1), (np.uint8, 7), (np.uint16, 300)):
        out = stack.to_volume(masks, dtype, value=value)
        assert out.dtype == dtype and out.shape == arr.shape
        assert np.array_equal(out, np.moveaxis(expected, 0, 2 - axis) // 300 * value)


def test_cache_encodes_ahead_in_batches_and_stays_bounded():
    obj = _ball()
    stack = _stack(obj)
    engine = ToyEngine()
    cache = EmbeddingCache(engine, stack, batch_size=4, capacity=6)
    cache.get(10, 1, (0, 12))
    assert engine.encoded == [3]  # 10, 11, 12: the limit cuts the batch
    cache.get(11, 1)
    assert engine.encoded == [3]
    for s in range(20, 40):
        cache.get(s, 1)
    assert len(cache._items) <= 6


def _ball_then_column() -> tuple[np.ndarray, np.ndarray]:
    """A bright cylinder (200, radius 6, slices 12..28) and, continuing it along k, a thinner column of other
    tissue (150, radius 4, slices 29..39) that the toy engine also segments (>= 128): only the first is
    the object."""
    k, j, i = np.ogrid[:40, :32, :36]
    r2 = (j - 16) ** 2 + (i - 18) ** 2
    ball = (r2 <= 36) & (k >= 12) & (k <= 28)
    column = (r2 <= 16) & (k >= 29)
    image = np.where(ball, 200, np.where(column, 150, 50)).astype(np.uint8)
    return ball, image


def test_appearance_rule_stops_where_the_object_ends_and_baseline_runs_on():
    ball, image = _ball_then_column()
    stack = FrameStack(image, 2, lambda f: f)
    res = list(propagate(ToyEngine(), stack, 20, seed_mask=ball[20]))
    forward = [r for r in res if r.index > 20]
    assert forward[-1].index == 29 and forward[-1].stop_reason is StopReason.NOT_OBJECT
    assert not forward[-1].mask.any()
    base = list(propagate(ToyEngine(), stack, 20, seed_mask=ball[20], settings=PropagationSettings.baseline()))
    assert max(r.index for r in base if r.mask.any()) == 39


def test_appearance_rules_are_off_when_object_and_surroundings_look_alike():
    ball, _ = _ball_then_column()
    flat = np.full(ball.shape, 150, np.uint8)  # the toy engine segments everything in the box; no contrast
    stack = FrameStack(flat, 2, lambda f: f)
    res = list(propagate(ToyEngine(), stack, 20, seed_mask=ball[20], settings=PropagationSettings(growth_limit=0)))
    assert all(r.stop_reason is not StopReason.NOT_OBJECT for r in res)


def test_area_regrowth_after_shrinking_stops_the_walk():
    from volsam.propagation.stops import AreaTrend as _AreaTrend

    trend = _AreaTrend(after=0.7, rise=0.2, peak=100, low=100)
    assert [trend.regrew(a) for a in (120, 80, 60, 50, 55)] == [False] * 5  # 55 <= 1.2 x 50
    assert trend.regrew(70)  # > 1.2 x 50 after falling below 0.7 x 120
    steady = _AreaTrend(after=0.7, rise=0.2, peak=100, low=100)
    assert not any(steady.regrew(a) for a in (90, 95, 130, 100, 160))  # never fell below 70 % of its peak
    off = _AreaTrend(after=0.0, rise=0.2, peak=100, low=100)
    assert not any(off.regrew(a) for a in (10, 100))


def test_settings_refuse_nonsense():
    with pytest.raises(SettingsError, match="strategy"):
        PropagationSettings(strategy="magic")
    with pytest.raises(SettingsError, match="proposal_ratios"):
        PropagationSettings(proposal_ratios=())
    with pytest.raises(SettingsError, match="ring_width"):
        PropagationSettings(ring_width=0)

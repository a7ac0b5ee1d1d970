"""Temporal smoothing of a video walk's masks (volsam.propagation.temporal), on drawn discs, and in
:func:`volsam.propagation.follow.follow` with the stand-in engine."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.support.toy_engine import ToyEngine
from volsam.core.errors import SettingsError
from volsam.data.clips import dice
from volsam.propagation import FrameStack, PropagationSettings
from volsam.propagation.follow import follow
from volsam.propagation.stops import StopReason
from volsam.propagation.temporal import signed_distance, smooth_direction, smooth_mask
from volsam.propagation.walk import SliceResult

H, W = 64, 80


def _disc(cx: float, cy: float, r: float) -> np.ndarray:
    y, x = np.mgrid[:H, :W]
    return (x - cx) ** 2 + (y - cy) ** 2 <= r**2


def _result(index: int, mask: np.ndarray, stop: StopReason | None = None) -> SliceResult:
    return SliceResult(index, mask, 0.9, None, stop)


def _moving(n: int, speed: float = 3.0) -> list[np.ndarray]:
    """A disc of radius 12 moving right by ``speed`` px a frame."""
    return [_disc(15 + speed * t, 30, 12) for t in range(n)]


def test_signed_distance_is_negative_inside_and_positive_outside():
    d = signed_distance(_disc(40, 30, 10))
    assert -10.1 < d[30, 40] < -10 and d[30, 31] < 0 and d[30, 29] > 0 and d[0, 0] > 30


def _whole_frame_reference(own, neighbours, own_weight):
    """The smoothing computed on the whole frame, as the module notes define it (the window is a shortcut)."""
    from scipy import ndimage

    centre = np.array(ndimage.center_of_mass(own))
    total, weight = own_weight * signed_distance(own), own_weight
    for mask, w in neighbours:
        move = centre - np.array(ndimage.center_of_mass(mask))
        total = total + w * ndimage.shift(signed_distance(mask), move, order=1, mode="nearest")
        weight += w
    return total / weight < 0


@pytest.mark.parametrize("seed", range(6))
def test_the_window_gives_the_whole_frames_answer(seed):
    # blobs of random size and place, some cut by the frame's border, moving up to 15 px a frame
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(5):
        cx, cy = rng.uniform(-5, W + 5), rng.uniform(-5, H + 5)
        blob = _disc(cx, cy, rng.uniform(4, 20)) | _disc(cx + rng.uniform(-8, 8), cy + rng.uniform(-8, 8), 6)
        masks.append(blob if blob.any() else _disc(W / 2, H / 2, 5))
    near = [(masks[0], 1.0), (masks[1], 2.0), (masks[3], 2.0), (masks[4], 1.0)]
    expected = _whole_frame_reference(masks[2], near, 3.0)
    got = smooth_mask(masks[2], near, 3.0)
    assert np.array_equal(got, expected if expected.any() else masks[2])


def test_a_jittering_mask_comes_closer_to_the_truth():
    rng = np.random.default_rng(0)
    truth = _moving(12)
    # the model's answers: the truth grown or shrunk by 3-4 px and moved by about 1 px, differently each frame
    noisy = []
    for t in range(len(truth)):
        r = 12 + rng.choice([-4, -3, 3, 4])
        noisy.append(_disc(15 + 3 * t + rng.normal(0, 1), 30 + rng.normal(0, 1), r))
    anchor = _result(0, truth[0])
    out = list(smooth_direction(anchor, (_result(t, noisy[t]) for t in range(1, 12)), reach=2))
    assert [r.index for r in out] == list(range(1, 12))
    before = np.mean([dice(noisy[t], truth[t]) for t in range(1, 12)])
    after = np.mean([dice(r.mask, truth[r.index]) for r in out])
    assert after > before + 0.03, (before, after)


def test_a_moving_object_is_not_smeared():
    # exact masks of a disc moving 6 px a frame stay exact: each neighbour is moved onto the frame's centroid
    truth = _moving(8, speed=6.0)
    out = list(smooth_direction(_result(0, truth[0]), (_result(t, truth[t]) for t in range(1, 8)), reach=2))
    assert min(dice(r.mask, truth[r.index]) for r in out) > 0.98


def test_frames_without_the_object_are_written_as_they_are_and_lend_nothing():
    truth = _moving(7)
    stopped = _result(3, np.zeros((H, W), bool), StopReason.EMPTY)
    big = _disc(27, 30, 25)  # frame 4's answer; frame 3's empty mask must not shrink it, nor pull frame 2
    frames = [_result(1, truth[1]), _result(2, truth[2]), stopped, _result(4, big), _result(5, truth[5])]
    out = {r.index: r for r in smooth_direction(_result(0, truth[0]), frames, reach=1)}
    assert out[3] is stopped
    assert np.array_equal(out[2].mask, smooth_mask(truth[2], [(truth[1], 1.0)], 2.0))  # frame 3 lends nothing
    assert np.array_equal(out[4].mask, smooth_mask(big, [(truth[5], 1.0)], 2.0))


def test_reach_zero_gives_the_results_as_they_are():
    truth = _moving(4)
    frames = [_result(t, truth[t]) for t in range(1, 4)]
    assert list(smooth_direction(_result(0, truth[0]), frames, reach=0)) == frames


def test_frames_are_yielded_as_soon_as_their_neighbours_are_known():
    truth = _moving(10)
    taken: list[int] = []

    def walk():
        for t in range(1, 10):
            taken.append(t)
            yield _result(t, truth[t])

    for r in smooth_direction(_result(0, truth[0]), walk(), reach=2):
        assert taken[-1] == min(r.index + 2, 9)  # frame t leaves once frame t + 2 is walked (or the walk ended)


def test_only_kept_frames_are_yielded_smoothed_by_those_past_the_range():
    truth = _moving(10)
    noisy = [_disc(15 + 3 * t, 30, 12 + (3 if t % 2 else -3)) for t in range(10)]
    whole = list(smooth_direction(_result(0, truth[0]), (_result(t, noisy[t]) for t in range(1, 10)), reach=2))
    kept = list(
        smooth_direction(_result(0, truth[0]), (_result(t, noisy[t]) for t in range(1, 10)), reach=2, keep=(0, 5))
    )
    assert [r.index for r in kept] == [1, 2, 3, 4, 5]
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(kept, whole[:5], strict=True))
    # the backward direction: frames walked downwards, the anchor after them; frame 3 is smoothed with 5 and 4
    # (walked before it) and with 2 and 1 (read past the kept range)
    walked = [_result(t, noisy[t]) for t in range(8, -1, -1)]
    down = list(smooth_direction(_result(9, truth[9]), walked, reach=2, keep=(3, 9)))
    assert [r.index for r in down] == [8, 7, 6, 5, 4, 3]
    near = [(noisy[5], 1.0), (noisy[4], 2.0), (noisy[2], 2.0), (noisy[1], 1.0)]
    assert np.array_equal(down[-1].mask, smooth_mask(noisy[3], near, 3.0))


def test_a_searching_frame_passes_through_and_lends_nothing():
    truth = _moving(5)
    searching = SliceResult(2, np.zeros((H, W), bool), 0.0, None, stop_detail="searching")  # no stop_reason
    frames = [_result(1, truth[1]), searching, _result(3, truth[3]), _result(4, truth[4])]
    out = {r.index: r for r in smooth_direction(_result(0, truth[0]), frames, reach=1)}
    assert out[2] is searching
    assert np.array_equal(out[3].mask, smooth_mask(truth[3], [(truth[4], 1.0)], 2.0))


def test_refusals():
    with pytest.raises(SettingsError, match="reach"):
        list(smooth_direction(_result(0, _moving(1)[0]), [], reach=-1))
    with pytest.raises(SettingsError, match="weight"):
        smooth_mask(_moving(1)[0], [], 0.0)
    with pytest.raises(SettingsError, match="temporal_reach"):
        PropagationSettings(temporal_reach=-1)


def _jittering_clip(n: int = 12) -> np.ndarray:
    """Frames (n, H, W) uint8: a bright disc moving right 2 px a frame whose radius jumps between 9 and 13
    (what the stand-in engine answers jitters as a model's masks do) on a dark background."""
    return np.stack([np.where(_disc(15 + 2 * t, 30, 13 if t % 2 else 9), 200, 40) for t in range(n)]).astype(np.uint8)


def _follow(frames: np.ndarray, reach: int, start: int = 0, limit=None, engine=None) -> dict[int, np.ndarray]:
    stack = FrameStack(frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    ys, xs = np.nonzero(frames[start] > 128)
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    settings = replace(PropagationSettings.video(), appearance_smooth=0.0, temporal_reach=reach)
    walk = follow(engine or ToyEngine(), stack, start, box=box, settings=settings, limit=limit)
    return {r.index: r.mask for r in walk}


def test_follow_writes_each_directions_masks_smoothed_and_walks_on_from_its_own():
    frames = _jittering_clip()
    raw = _follow(frames, 0, start=5)
    smoothed = _follow(frames, 2, start=5)
    assert sorted(smoothed) == list(range(12))
    prompted = _result(5, raw[5])
    for indices in (range(6, 12), range(4, -1, -1)):  # forward, then backward from the prompted frame
        expected = smooth_direction(prompted, [_result(t, raw[t]) for t in indices], reach=2)
        assert all(np.array_equal(smoothed[r.index], r.mask) for r in expected)
    assert np.array_equal(smoothed[5], raw[5])  # the prompted frame is the user's
    assert sum(not np.array_equal(smoothed[t], raw[t]) for t in range(12)) >= 8  # the smoothing did act


def test_a_ranged_walk_reads_past_its_ends_and_writes_the_whole_walks_masks():
    frames = _jittering_clip()
    for start, limit in ((5, (2, 8)), (9, (8, 11))):  # the second range ends at the video's end
        whole = _follow(frames, 2, start=start)
        ranged = _follow(frames, 2, start=start, limit=limit)
        assert sorted(ranged) == list(range(limit[0], limit[1] + 1))
        assert all(np.array_equal(ranged[t], whole[t]) for t in ranged), limit


def test_a_direction_with_nothing_to_write_reads_nothing():
    # prompted on the range's last frame (a video session's run between two prompted frames): no frame past it
    frames = _jittering_clip()
    for limit in ((2, 5), (5, 5)):
        counts = []
        for reach in (0, 2):
            engine = ToyEngine()
            masks = _follow(frames, reach, start=5, limit=limit, engine=engine)
            assert sorted(masks) == list(range(limit[0], 6))
            counts.append(sum(engine.encoded))
        assert counts[1] == counts[0] + (2 if limit[0] < 5 else 0), (limit, counts)  # only past the lower end


def test_a_lost_and_found_object_is_smoothed_around_the_gap():
    frames = _jittering_clip(14)
    frames[7:9] = 40  # the object is gone on frames 7 and 8: the walk searches, and finds it again on 9
    raw = _follow(frames, 0)
    assert not raw[7].any() and not raw[8].any() and raw[9].any()
    smoothed = _follow(frames, 2)
    expected = smooth_direction(_result(0, raw[0]), [_result(t, raw[t]) for t in range(1, 14)], reach=2)
    assert all(np.array_equal(smoothed[r.index], r.mask) for r in expected)
    assert not smoothed[7].any() and not smoothed[8].any()

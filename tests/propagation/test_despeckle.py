"""Speckle reduction of the frames a video walk's model encodes (volsam.propagation.despeckle)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from tests.support.toy_engine import ToyEngine
from volsam.core.errors import InputError, SettingsError
from volsam.data.clips import dice
from volsam.propagation import FrameStack, PropagationSettings
from volsam.propagation.despeckle import DespeckledFrames, applies, despeckle, model_frames
from volsam.propagation.follow import follow


@pytest.mark.parametrize("shape", [(3, 17, 23), (2, 12, 9, 3)])
@pytest.mark.parametrize("size", [3, 5, 7])
def test_each_frame_and_channel_is_the_median_with_edges_replicated(shape, size):
    frames = np.random.default_rng(size).integers(0, 256, shape, dtype=np.uint8)
    window = (size, size) + (1,) * (len(shape) - 3)
    expected = np.stack([ndimage.median_filter(f, window, mode="nearest") for f in frames])
    out = despeckle(frames, size)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out, expected)


def test_specks_go_and_a_step_edge_stays():
    frame = np.where(np.arange(40)[None, :] < 20, 40, 200).repeat(30, axis=0).astype(np.uint8)
    specked = frame.copy()
    specked[5, 5] = specked[12, 8] = 255  # bright specks on the dark side
    specked[9, 30] = specked[20, 27] = 0  # dark ones on the bright side
    assert np.array_equal(despeckle(specked[None], 5)[0], frame)


def test_applies_only_where_the_engine_does_not_shrink_the_frame_past_half_the_median():
    assert applies((128, 128), 5, 256)
    assert applies((480, 640), 5, 256)  # shrunk 2.5x: a 5 px median still spans 2 model px
    assert not applies((480, 641), 5, 256)
    assert not applies((1080, 1920), 5, 256)
    assert applies((1080, 1920), 5, 1024)
    assert not applies((128, 128), 0, 256)  # off
    assert not applies((128, 128), 5, 0)  # an engine that declares no input size


def test_the_model_view_of_a_source():
    frames = np.random.default_rng(0).integers(0, 256, (4, 20, 30), dtype=np.uint8)
    stack = FrameStack(frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    view = model_frames(stack, 5, 256)
    assert isinstance(view, DespeckledFrames)
    assert len(view) == 4 and view.frame_shape == (20, 30)
    assert np.array_equal(view.frames([1, 3]), despeckle(frames[[1, 3]], 5))
    assert model_frames(stack, 0, 256) is stack
    assert model_frames(stack, 5, 2) is stack  # a 2 px engine shrinks 30 px by 15x


def test_refusals():
    grey = np.zeros((1, 8, 8), np.uint8)
    for size in (1, 2, 4):
        with pytest.raises(SettingsError, match="odd size"):
            despeckle(grey, size)
    with pytest.raises(InputError, match="uint8"):
        despeckle(grey.astype(np.float32), 3)
    with pytest.raises(InputError, match="non-empty"):
        despeckle(np.zeros((1, 8, 8, 2), np.uint8), 3)  # neither grey nor RGB
    assert despeckle(grey[0], 3).shape == (1, 8, 8)  # one frame, as the engines take it
    for size in (-1, 1, 4):
        with pytest.raises(SettingsError, match="despeckle"):
            PropagationSettings(despeckle=size)
    assert PropagationSettings().despeckle == 0  # volumes: off
    assert PropagationSettings.video().despeckle == 5


class _SizedToy(ToyEngine):
    """The stand-in engine declaring a 64 px input, recording what it was given to encode."""

    capabilities = replace(ToyEngine.capabilities, input_size=64)

    def __init__(self):
        super().__init__()
        self.seen: list[np.ndarray] = []

    def encode(self, frames):
        self.seen.extend(np.asarray(frames))
        return super().encode(frames)


def _specked_clip(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Frames (n, 48, 48) uint8 of a bright disc moving 1 px a frame with 4 % of the pixels set to 255 or 0 at
    random (speckle the stand-in engine, which keeps the bright pixels in the box, is misled by), and the
    disc's masks."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:48, :48]
    masks = np.stack([(x - 18 - t) ** 2 + (y - 24) ** 2 <= 10**2 for t in range(n)])
    frames = np.where(masks, 200, 40).astype(np.uint8)
    specks = rng.random(frames.shape) < 0.04
    frames[specks] = np.where(rng.random(int(specks.sum())) < 0.5, 255, 0)
    return frames, masks


def _walk(frames: np.ndarray, masks: np.ndarray, size: int, engine: ToyEngine) -> dict[int, np.ndarray]:
    ys, xs = np.nonzero(masks[0])
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    settings = replace(PropagationSettings.video(), appearance_smooth=0.0, temporal_reach=0, despeckle=size)
    stack = FrameStack(frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    walk = follow(engine, stack, 0, box=box, settings=settings)
    return {r.index: r.mask for r in walk}


def test_follow_has_the_model_encode_despeckled_frames():
    frames, masks = _specked_clip()
    engine = _SizedToy()
    walked = _walk(frames, masks, 5, engine)
    assert sorted(walked) == list(range(len(frames)))
    assert engine.seen and all(any(np.array_equal(s, d) for d in despeckle(frames, 5)) for s in engine.seen)
    assert min(dice(walked[t], masks[t]) for t in walked) > 0.97
    plain = _SizedToy()
    raw = _walk(frames, masks, 0, plain)
    assert all(any(np.array_equal(s, f) for f in frames) for s in plain.seen)  # off: the frames as they are
    assert np.mean([dice(raw[t], masks[t]) for t in raw]) < np.mean([dice(walked[t], masks[t]) for t in walked])


def test_an_engine_without_an_input_size_encodes_the_frames_as_they_are():
    frames, masks = _specked_clip(4)
    engine = ToyEngine()
    seen: list[np.ndarray] = []
    encode = engine.encode
    engine.encode = lambda f: seen.extend(np.asarray(f)) or encode(f)  # type: ignore[method-assign]
    _walk(frames, masks, 5, engine)
    assert seen and all(any(np.array_equal(s, f) for f in frames) for s in seen)

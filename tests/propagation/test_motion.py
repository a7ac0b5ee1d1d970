"""The walk's motion proposal (``PropagationSettings.motion``, used for videos): each frame is also prompted
with the previous box moved by the object's last shift, so a moving object is followed instead of left
behind. The stand-in engine (bright pixels inside the box) shows the bookkeeping; the real LiteMedSAM on a
moving video is tested in tests/test_video_job.py."""

from __future__ import annotations

import numpy as np

from tests.support.toy_engine import ToyEngine
from volsam.propagation import FrameStack, PropagationSettings, propagate

N, H, W, STEP = 10, 40, 120, 7  # a 12 px square moving 7 px a frame to the right (more than box margin + growth)


def _frames() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((N, H, W), bool)
    for t in range(N):
        truth[t, 14:26, 4 + STEP * t : 16 + STEP * t] = True
    rng = np.random.default_rng(0)
    frames = np.where(truth, 200, 40) + rng.integers(0, 20, truth.shape)
    return frames.astype(np.uint8), truth


def _walk(motion: bool) -> list[float]:
    frames, truth = _frames()
    stack = FrameStack(frames, 2, lambda f: f)  # array [k, j, i]: the frames along k
    settings = PropagationSettings(regrowth_after=0.0, growth_limit=4, roi_context=0.0, motion=motion)
    results = {r.index: r.mask for r in propagate(ToyEngine(), stack, 0, box=(4, 14, 15, 25), settings=settings)}
    masks = [results.get(t, np.zeros((H, W), bool)) for t in range(N)]
    return [float((m & g).sum() / (m | g).sum()) for m, g in zip(masks, truth)]


def test_the_motion_proposal_follows_a_moving_object_that_the_plain_walk_loses():
    followed, plain = _walk(motion=True), _walk(motion=False)
    # the first step has no motion to go by and lags; the shift then catches up and holds the object
    assert min(followed) >= 0.5 and followed[5:] == [1.0] * (N - 5), followed
    assert plain[3:] == [0.0] * (N - 3), plain  # without it the box and growth limit lag and the object is lost

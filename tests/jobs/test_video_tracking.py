"""LiteMedSAM following an object through a generated ultrasound-like clip (volsam.data.clips) with
``volsam segment``'s video job: the object leaves the view and comes back, and the walk must find it again.
The frame-by-frame walk of the volumes (what videos used before the video walk) loses it for good: Dice 0 on
every frame after its return. The whole family is measured by benchmarks/bench_video_tracking.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.video import write_video
from volsam.core.prompts import Box2D
from volsam.data.clips import ClipSpec, dice, make_clip
from volsam.engines import get as get_engine
from volsam.jobs.request import SegmentRequest
from volsam.jobs.video import segment_video

# 16 frames of 64x64: in view, out through the right edge on frames 6..11, back from frame 12
CLIP = ClipSpec(name="out-and-back", frames=16, size=(64, 64), speed=6.0, exit=2, speckle=0.4)
RETURNED = [13, 14, 15]  # mostly in view again
MIN_RETURNED_DICE = 0.7
MIN_MEAN_DICE = 0.8


def _dices(tmp_path, strategy: str) -> list[float]:
    clip = make_clip(CLIP)
    video = write_video(tmp_path / f"{strategy}.mp4", clip.frames)
    x0, y0, x1, y1 = clip.box(0)
    out = tmp_path / f"{strategy}.npz"
    engine = get_engine("medsam-lite", device="cpu")
    segment_video(video, [Box2D(x0, y0, x1, y1, slice=0)], out, SegmentRequest(strategy=strategy), engine=engine)
    with np.load(out) as data:
        masks = data["masks"] > 0
    return [dice(m, g) for m, g in zip(masks, clip.masks)]


@pytest.mark.slow
def test_litemedsam_finds_an_object_again_when_it_comes_back_into_view(tmp_path):
    truth = make_clip(CLIP).masks.sum(axis=(1, 2))
    assert not truth[6:12].any() and truth[RETURNED].min() > 0.5 * truth[0]
    dices = _dices(tmp_path, "volsam")
    assert min(dices[t] for t in RETURNED) >= MIN_RETURNED_DICE, np.round(dices, 3)
    assert np.mean(dices) >= MIN_MEAN_DICE, np.round(dices, 3)

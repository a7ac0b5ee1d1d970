"""``segment_video(frames=(first, last))``: a walk within a range of frames, with the real LiteMedSAM on a
generated clip whose object leaves the view and comes back (volsam.data.clips), so the range also cuts the
lost-object search short.

Why a ranged walk gives the whole walk's masks on the range's frames: the walk (``follow`` for the volsam
strategy, ``propagate`` for the baseline) segments the prompted frame from its prompt, then goes outward one
frame at a time, each frame prompted from the previous one's mask (and the prompted frame's appearance),
forward to the end, then backward from the prompted frame again. Nothing a frame gets depends on a frame
further from the prompted frame, so ending a direction at the limit changes nothing before it. ``follow``'s
search for a lost object prompts only the frame it walks to (``_search`` is given that frame alone), never a
frame past the limit, and the embedding cache encodes one frame per batch with the video settings (a batch is
never cut short by the limit).

The runs share one LiteMedSAM behind a :class:`~volsam.engines.cache.CachedEngine` (embeddings by the frame's
pixels): a ranged run is served the embeddings its whole walk encoded (the same frames or windows), 25 frames
encoded instead of 44; what each run walks, prompts, decodes and writes stays its own, and a frame encoded alone
gives the embedding a re-encoding would (one frame per batch, checked below)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.support.video import write_video
from volsam.core.prompts import Box2D
from volsam.data.clips import ClipSpec, make_clip
from volsam.engines import get as get_engine
from volsam.engines.cache import CachedEngine
from volsam.jobs.request import SegmentRequest
from volsam.jobs.video import segment_video

# 16 frames of 64x64: in view on frames 0..5, out through the right edge, back in view from frame 12
CLIP = ClipSpec(name="out-and-back", frames=16, size=(64, 64), speed=6.0, exit=2, speckle=0.4)
PROMPTED = 3
# volsam: ends while the object is out of view / after it came back / one frame; the baseline walk stops once
# the object is lost (frame 6 forward): a range that ends before
RANGES = {"volsam": [(1, 9), (2, 14), (3, 3)], "baseline": [(1, 4)]}


@pytest.fixture(scope="module")
def lite():
    return CachedEngine(get_engine("medsam-lite", device="cpu"), 512)


@pytest.mark.parametrize("strategy", ["volsam", "baseline"])
def test_a_ranged_walk_writes_the_whole_walks_masks_on_its_frames(tmp_path, lite, strategy):
    clip = make_clip(CLIP)
    video = write_video(tmp_path / "clip.mp4", clip.frames)
    prompts = [Box2D(*clip.box(PROMPTED), slice=PROMPTED)]
    request = SegmentRequest(label=3, strategy=strategy)
    assert request.settings(video=True).batch_size == 1  # what makes a cached embedding equal a re-encoding
    whole = segment_video(video, prompts, tmp_path / "whole.npz", request, engine=lite)
    with np.load(whole.output) as data:
        full = data["masks"]
    assert whole.walk_range == (0, CLIP.frames - 1) and full[PROMPTED].any()
    if strategy == "volsam":
        assert full[13].any() and not full[8].any()  # it was lost, then found again: the search ran
    steps: list[tuple[str, int, int]] = []
    for lo, hi in RANGES[strategy]:
        steps.clear()
        out = tmp_path / f"r{lo}-{hi}"  # a PNG folder: every frame of the video is written
        result = segment_video(
            video, prompts, out, request, engine=lite, progress=lambda *s: steps.append(s), frames=(lo, hi)
        )
        ranged = np.stack([np.asarray(Image.open(out / f"frame_{t:06d}.png")) for t in range(CLIP.frames)])
        walked = hi - lo + 1 if strategy == "volsam" else result.frames_segmented  # the baseline may stop sooner
        assert result.walk_range == (lo, hi) and 0 < result.frames_segmented == walked <= hi - lo + 1
        assert steps == [("segmenting", n, hi - lo + 1) for n in range(1, walked + 1)]  # totals: the range
        for t in range(CLIP.frames):
            if lo <= t <= hi:
                assert np.array_equal(ranged[t], full[t]), (strategy, (lo, hi), t)
            else:
                assert not ranged[t].any(), (strategy, (lo, hi), t)  # not walked: an empty mask
        meta = json.loads((out / "segmentation.json").read_text())
        assert meta["walk_range"] == [lo, hi] and meta["frames_segmented"] == walked

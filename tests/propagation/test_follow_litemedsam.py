"""The real LiteMedSAM following a dark object through strong speckle (benchmarks/bench_video_tracking.py's
speckle-full clip, seed 1, its first 12 frames as an H.264 video): on the prompted frame the model answers
two thirds of the object, the ring around that mask lies inside the object, and without the box's
surroundings (``PropagationSettings.box_surroundings``) every appearance rule is off and the walk shrinks to
a sliver (Dice 0.08 by frame 11). The whole family is measured by the benchmark."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.support.video import write_video
from volsam.data.clips import clip_family, dice, make_clip
from volsam.engines import get as get_engine
from volsam.engines.base import SliceEmbedding
from volsam.io.video import open_frames
from volsam.propagation import PropagationSettings
from volsam.propagation.follow import follow

LATE = [8, 9, 10, 11]


class _Once:
    """The engine with each frame encoded once for both runs (keyed by its pixels)."""

    def __init__(self, inner):
        self.inner, self.name, self.capabilities = inner, inner.name, inner.capabilities
        self.kept: dict[bytes, SliceEmbedding] = {}

    def encode(self, frames: np.ndarray) -> list[SliceEmbedding]:
        out = []
        for f in frames:
            key = f.tobytes()
            if key not in self.kept:
                (self.kept[key],) = self.inner.encode(f[None])
            out.append(self.kept[key])
        return out

    def predict(self, *args, **kwargs):
        return self.inner.predict(*args, **kwargs)

    def predict_boxes(self, *args, **kwargs):
        return self.inner.predict_boxes(*args, **kwargs)


@pytest.mark.slow
def test_the_box_surroundings_keep_litemedsam_on_an_object_in_strong_speckle(tmp_path):
    spec = {s.name: s for s in clip_family(12, (128, 128), 1)}["speckle-full"]
    clip = make_clip(spec)
    video = write_video(tmp_path / "speckle.mp4", clip.frames)
    engine = _Once(get_engine("medsam-lite", device="cpu"))
    box = tuple(float(c) for c in clip.box(0))

    def dices(settings: PropagationSettings) -> list[float]:
        masks = {r.index: r.mask for r in follow(engine, open_frames(video), 0, box=box, settings=settings)}
        return [dice(masks[t], clip.masks[t]) for t in range(len(clip.masks))]

    plain = replace(PropagationSettings.video(), despeckle=0)  # the rule alone (speckle reduction holds 0.45-0.5)
    boxed = dices(plain)
    ring = dices(replace(plain, box_surroundings=False))
    assert min(boxed[t] for t in LATE) >= 0.7 and np.mean(boxed) >= 0.85, np.round(boxed, 3)  # measured 0.77, 0.87
    assert max(ring[t] for t in LATE[1:]) < 0.3, np.round(ring, 3)  # measured 0.10 at most

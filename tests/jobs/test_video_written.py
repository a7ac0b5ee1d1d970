"""``segment_video(on_written=...)``: each segmented frame's index, reported once its mask is in the output --
with the real LiteMedSAM on a short generated clip (what a video session's live view relies on)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.support.video import disc_frames, write_video
from volsam.core.prompts import Box2D
from volsam.engines import get as get_engine
from volsam.jobs.request import SegmentRequest
from volsam.jobs.video import segment_video

N, H, W = 8, 64, 80


@pytest.fixture(scope="module")
def lite():
    return get_engine("medsam-lite", device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, truth = disc_frames(N, (H, W), speed=3.0)
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames), truth


def _box(mask: np.ndarray, frame: int) -> Box2D:
    ys, xs = np.nonzero(mask)
    return Box2D(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()), slice=frame)


def test_each_walked_frame_is_reported_once_its_png_is_complete(tmp_path, clip, lite):
    """A box on frame 5 within frames 2..7: frames 5, 6, 7 then 4, 3, 2 (the walk's order), each reported once,
    after its PNG is written (read in the callback: the final mask) and before its progress step; the frames
    outside the range (written empty at the end) are not reported; the progress is as without the callback."""
    path, truth = clip
    out = tmp_path / "masks"
    calls: list[tuple] = []
    at_report: dict[int, np.ndarray] = {}

    def written(t: int) -> None:
        calls.append(("written", t))
        at_report[t] = np.asarray(Image.open(out / f"frame_{t:06d}.png"))

    result = segment_video(
        path,
        [_box(truth[5], 5)],
        out,
        SegmentRequest(label=3),
        engine=lite,
        frames=(2, 7),
        on_written=written,
        progress=lambda *step: calls.append(step),
    )
    assert [c[1] for c in calls if c[0] == "written"] == [5, 6, 7, 4, 3, 2]
    steps = [c for c in calls if c[0] != "written"]
    assert steps == [("segmenting", n, 6) for n in range(1, 7)]  # the progress callback is unchanged
    assert all(calls[2 * n][0] == "written" and calls[2 * n + 1][0] == "segmenting" for n in range(6))
    for t in range(N):
        final = np.asarray(Image.open(result.output / f"frame_{t:06d}.png"))
        if t in at_report:
            assert np.array_equal(at_report[t], final) and final.any(), t
        else:
            assert not final.any(), t  # outside the range: filled empty at the end, never reported


def test_an_error_in_the_callback_stops_the_run_and_leaves_nothing(tmp_path, clip, lite):
    path, truth = clip
    out = tmp_path / "masks"

    def stop(t: int) -> None:
        if t == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment_video(path, [_box(truth[0], 0)], out, engine=lite, on_written=stop)
    assert not out.exists()  # no partial set of masks (new_outputs_only)

"""``volsam segment VIDEO`` (the job :func:`volsam.jobs.video.segment_video`) on a real video whose stream
changes its picture size at frame 3: the walk stops with the reader's InputError (the frame and both sizes)
and no output is left behind."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.bombs import resizing_video
from tests.support.toy_engine import ToyEngine
from tests.support.video import disc_frames
from volsam.core.errors import InputError
from volsam.core.prompts import Box2D
from volsam.jobs.video import segment_video


@pytest.mark.parametrize("output", ["masks.npz", "masks"])
def test_the_job_stops_at_the_frame_of_another_size_and_leaves_no_output(tmp_path, output):
    path = resizing_video(tmp_path / "resized.webm", [disc_frames(3, (48, 64))[0], disc_frames(3, (72, 96))[0]])
    with pytest.raises(InputError, match=r"resized\.webm: frame 3 is 96x72 pixels but the video was opened as 64x48"):
        segment_video(path, [Box2D(10, 12, 34, 34, slice=0)], tmp_path / output, engine=ToyEngine())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resized.webm"]


def test_the_same_video_without_the_change_segments(tmp_path):
    """The control: the first part alone (the same frames, the same box) is segmented on every frame."""
    path = resizing_video(tmp_path / "same.webm", [disc_frames(6, (48, 64))[0]])
    result = segment_video(path, [Box2D(10, 12, 34, 34, slice=0)], tmp_path / "masks.npz", engine=ToyEngine())
    masks = np.load(result.output)["masks"]
    assert masks.shape == (6, 48, 64) and all(m.any() for m in masks)

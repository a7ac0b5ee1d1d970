"""A video stream whose picture size changes after its first frames (real VP8 / MJPEG files whose later
keyframes declare another size, made with PyAV): the frame sources refuse the first frame of another size with
an InputError naming the frame and both sizes, before converting or keeping it; a picture far larger than the
opened one is refused by FFmpeg's decoder itself (``max_pixels``), so that frame is never allocated."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.support.bombs import resizing_video
from tests.support.memory import memory_mb, reset_peak
from tests.support.video import disc_frames
from volsam.core.errors import InputError
from volsam.io.video import VideoFrames, decoder_pixel_cap, iter_frames, probe_video

H, W = 48, 64


def _parts(*sizes: tuple[int, int], n: int = 3) -> list[np.ndarray]:
    return [disc_frames(n, size, seed=i)[0] for i, size in enumerate(sizes)]


def _changed(path: Path, h: int, w: int) -> str:
    return re.escape(f"{path}: frame 3 is {w}x{h} pixels but the video was opened as {W}x{H} (W x H)")


@pytest.mark.parametrize("codec", ["libvpx", "mjpeg"])
@pytest.mark.parametrize("size", [(72, 96), (64, 48), (24, 32)], ids=["larger", "transposed", "smaller"])
def test_a_frame_of_another_size_is_refused_naming_the_frame_and_both_sizes(tmp_path, codec, size):
    path = resizing_video(
        tmp_path / f"resized.{'webm' if codec == 'libvpx' else 'avi'}", _parts((H, W), size), codec=codec
    )
    info = probe_video(path)
    assert (info.width, info.height, info.frame_count) == (W, H, 6)  # the header and the first picture
    with VideoFrames(path) as reader:
        assert reader.frames([0, 1, 2]).shape == (3, H, W)
        with pytest.raises(InputError, match=_changed(path, *size)):
            reader.frame(4)  # a seek: the keyframe of frame 3 is decoded first, and refused
        with pytest.raises(InputError, match=_changed(path, *size)):
            reader.frame(3)
        assert all(f.shape == (H, W) for f in reader._cache.values())  # nothing of the new size was kept
    with pytest.raises(InputError, match=_changed(path, *size)):
        [tf.index for tf in iter_frames(path)]


def test_the_refused_frame_is_never_converted(tmp_path, monkeypatch):
    """The check reads the decoded frame's header: the bad frame is not turned into an RGB array."""
    import volsam.io.video as video

    path = resizing_video(tmp_path / "resized.webm", _parts((H, W), (72, 96)))
    converted: list[tuple[int, int]] = []
    real = video._picture
    monkeypatch.setattr(
        video, "_picture", lambda frame, colour: converted.append((frame.height, frame.width)) or real(frame, colour)
    )
    with VideoFrames(path, colour=True) as reader, pytest.raises(InputError, match="frame 3 is 96x72"):
        reader.frames(list(range(6)))
    assert converted == [(H, W)] * 3


def test_a_much_larger_keyframe_is_refused_by_the_decoder_before_it_allocates_the_picture(tmp_path):
    """64 x 48 then a 4096 x 4096 keyframe (24 MB of YUV, 48 MB of RGB) in a 30 kB file: the decoder's cap
    (2**20 pixels for so small a video) refuses it; the process's peak memory does not move by that picture."""
    big = np.full((2, 4096, 4096), 120, np.uint8)
    path = resizing_video(tmp_path / "bomb.webm", [_parts((H, W))[0], big])
    assert path.stat().st_size < 64 * 1024 and decoder_pixel_cap(W, H) == 2**20
    with VideoFrames(path) as reader:
        reader.frames([0, 1, 2])
        reset_peak()  # the peak is measured from here
        before = memory_mb()["VmHWM"]
        with pytest.raises(InputError, match=r"near frame 3 .*refuses any picture over 1,048,576 pixels .*64x48"):
            reader.frame(3)
        grown = memory_mb()["VmHWM"] - before
    assert grown < 12, grown  # the 4096 x 4096 picture alone would be 24 MB (YUV 4:2:0)

"""Videos as frame streams: probing, frames in the tracking access pattern, bounded memory, grey = BT.601
luma, DICOM cine, and a clear InputError for every file that cannot be used. Videos are made in the tests."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest

from tests.support.video import disc_frames, write_cine, write_video
from volsam.core.errors import InputError
from volsam.io import read_volume
from volsam.io.video import (
    DicomCineFrames,
    VideoFrames,
    is_video_input,
    iter_frames,
    open_frames,
    probe_video,
    to_grey,
)

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("name", "codec", "fps"),
    [("clip.mp4", "libx264", NTSC), ("clip.avi", "mpeg4", Fraction(25)), ("clip.mov", "libx264", Fraction(15))],
)
def test_probe_reports_frames_fps_size_duration_and_codec(tmp_path, name, codec, fps):
    frames, _ = disc_frames(n=9, size=(48, 64))
    path = write_video(tmp_path / name, frames, fps=fps, codec=codec)
    info = probe_video(path)
    assert info.frame_count == 9
    assert info.fps == fps
    assert (info.width, info.height) == (64, 48)
    assert info.duration == pytest.approx(9 / float(fps), abs=1.5 / float(fps))
    assert info.codec == ("h264" if codec == "libx264" else codec)
    assert info.to_json()["fps"] == f"{fps.numerator}/{fps.denominator}"


def _tracking_order(n: int, start: int) -> list[int]:
    """What a tracker asks for: the prompted frame, forward to the end, then backward to 0."""
    return [start, *range(start + 1, n), *range(start - 1, -1, -1)]


@pytest.mark.parametrize("gop", [None, 5], ids=["one-keyframe", "keyframe-every-5"])
def test_frames_in_tracking_order_equal_sequential_decoding(tmp_path, gop):
    frames, _ = disc_frames(n=30, size=(40, 48))
    path = write_video(tmp_path / "clip.mp4", frames, gop=gop)
    reference = np.stack([f.picture for f in iter_frames(path, colour=False)])
    assert reference.shape == (30, 40, 48)
    with VideoFrames(path, capacity=6) as video:
        assert len(video) == 30 and video.frame_shape == (40, 48)
        got = {t: video.frames([t])[0] for t in _tracking_order(30, 12)}
        assert all(np.array_equal(got[t], reference[t]) for t in range(30))
        assert video.max_cached <= 6
        # frame 12 from its keyframe, then one decode per frame forward (13..29); backward, chunks of 3 frames
        # (9..11, 6..8, 3..5, 0..2) each decoded from its keyframe: with one keyframe 13 + 17 + 12 + 9 + 6 + 3;
        # with a keyframe every 5 frames 3 + 17 + 7 + 4 + 6 + 3
        assert video.decoded <= (60 if gop is None else 40)
    # the luma of the decoded frames is the source picture up to the codec's loss (it smooths the noise)
    assert np.abs(reference.astype(int) - frames.astype(int)).mean() < 6


def _peak_bytes_tracking(path, capacity: int) -> tuple[int, int]:
    tracemalloc.start()
    with VideoFrames(path, capacity=capacity) as video:
        n = len(video)
        for t in _tracking_order(n, n // 3):
            video.frames([t])
        cached = video.max_cached
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, cached


def test_memory_does_not_grow_with_the_number_of_frames(tmp_path):
    frames, _ = disc_frames(n=120, size=(64, 80))
    short = write_video(tmp_path / "short.mp4", frames[:20], gop=10)
    long = write_video(tmp_path / "long.mp4", frames, gop=10)
    peak_short, cached_short = _peak_bytes_tracking(short, capacity=8)
    peak_long, cached_long = _peak_bytes_tracking(long, capacity=8)
    assert cached_short == cached_long == 8
    frame_bytes = 64 * 80
    # 6x the frames; the peak may grow by the timestamp index (8 bytes a frame) and noise, never by frames
    assert peak_long - peak_short < 20 * frame_bytes, (peak_short, peak_long)
    assert peak_long < 100 * frame_bytes


def test_the_cache_follows_a_memory_budget(tmp_path):
    frames, _ = disc_frames(n=4, size=(64, 80))
    path = write_video(tmp_path / "clip.mp4", frames)
    with VideoFrames(path, cache_mb=64 * 80 * 10 / 2**20) as grey, VideoFrames(path, colour=True) as colour:
        assert grey.capacity == 10
        assert colour.frames([0, 1]).shape == (2, 64, 80, 3)


def test_grey_frames_are_bt601_luma_of_the_decoded_rgb(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    path = write_video(tmp_path / "lossless.mkv", rgb, codec="ffv1", pix_fmt="bgr0")  # exact RGB round trip
    with VideoFrames(path, colour=True) as colour, VideoFrames(path) as grey:
        assert np.array_equal(colour.frames([0, 1, 2]), rgb)
        expected = np.rint(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)
        assert np.abs(grey.frames([0, 1, 2]).astype(int) - expected).max() <= 1  # float32 rounding
        assert np.array_equal(grey.frames([2])[0], to_grey(rgb[2]))
    assert to_grey(np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)).tolist() == [76, 150, 29]


def test_missing_empty_and_folder_inputs_are_refused(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe_video(tmp_path / "nothing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp4: empty file"):
        VideoFrames(tmp_path / "empty.mp4")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        probe_video(tmp_path / "dir.mp4")


def test_broken_files_are_refused_with_the_path_and_the_reason(tmp_path):
    frames, _ = disc_frames(n=20, size=(48, 64))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all " * 100)
    with pytest.raises(InputError, match=r"junk\.mp4: not a readable video \(.+\)"):
        probe_video(junk)
    mp4 = write_video(tmp_path / "good.mp4", frames).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(mp4[: len(mp4) // 2])  # the sample table (moov) is at the end: lost
    with pytest.raises(InputError, match=r"cut\.mp4: not a readable video"):
        probe_video(tmp_path / "cut.mp4")
    damaged = bytearray(mp4)
    damaged[len(mp4) // 3 : len(mp4) // 3 + 400] = b"\xff" * 400  # frame data overwritten
    (tmp_path / "damaged.mp4").write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=r"damaged\.mp4: broken video data near frame \d+ \(.+\)"):
        with VideoFrames(tmp_path / "damaged.mp4") as video:
            video.frames(list(range(len(video))))
    # an AVI cut near its end: FFmpeg alone would read it as a 1-frame video; the header says 20
    avi = write_video(tmp_path / "good.avi", frames, codec="mpeg4").read_bytes()
    (tmp_path / "cut.avi").write_bytes(avi[: int(len(avi) * 0.8)])
    with pytest.raises(InputError, match=r"cut\.avi: truncated or damaged: the headers promise about 20 frames"):
        probe_video(tmp_path / "cut.avi")


def test_files_without_pictures_are_unsupported(tmp_path):
    sound = tmp_path / "sound.mp4"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(InputError, match=r"sound\.mp4: no video stream in the file \(streams: audio\)"):
        probe_video(sound)
    assert not is_video_input(tmp_path / "notes.txt")


def test_dicom_cine_is_a_time_series_with_its_frame_rate(tmp_path):
    frames, _ = disc_frames(n=7, size=(30, 40))
    cine = write_cine(tmp_path / "cine.dcm", frames, frame_time_ms=40.0)
    assert is_video_input(cine)
    info = probe_video(cine)
    assert (info.frame_count, info.fps, info.width, info.height) == (7, Fraction(25), 40, 30)
    with open_frames(cine) as source:
        assert isinstance(source, DicomCineFrames)
        assert np.array_equal(source.frames([6, 0, 3]), frames[[6, 0, 3]])
    rgb = np.stack([frames, frames // 2, frames], axis=-1)
    coloured = write_cine(tmp_path / "rgb.dcm", rgb, frame_time_ms=None, rate=30)
    with DicomCineFrames(coloured) as source, DicomCineFrames(coloured, colour=True) as colour:
        assert source.info.fps == 30 and source.info.colour
        assert np.array_equal(source.frames([2])[0], to_grey(rgb[2]))
        assert np.array_equal(colour.frames([2])[0], rgb[2])
    assert [f.index for f in iter_frames(cine)] == list(range(7))


def test_a_multiframe_dicom_without_timing_is_not_a_cine(tmp_path):
    frames, _ = disc_frames(n=3, size=(20, 20))
    still = write_cine(tmp_path / "stack.dcm", frames, frame_time_ms=None)
    assert not is_video_input(still)
    with pytest.raises(InputError, match=r"stack\.dcm: 3 frames but no FrameTime.*not a cine"):
        DicomCineFrames(still)


def test_read_volume_of_a_cine_keeps_its_frame_rate_and_points_colour_loops_to_the_video_route(tmp_path):
    frames, _ = disc_frames(n=5, size=(20, 24))
    grey = read_volume(write_cine(tmp_path / "grey.dcm", frames, frame_time_ms=40.0))
    assert np.array_equal(grey.array, frames) and grey.meta["fps"] == 25.0
    assert "fps" not in read_volume(write_cine(tmp_path / "stack.dcm", frames, frame_time_ms=None)).meta
    rgb = write_cine(tmp_path / "rgb.dcm", np.stack([frames] * 3, axis=-1), frame_time_ms=40.0)
    with pytest.raises(
        InputError, match=r"rgb\.dcm: a colour cine loop; segment it as a video: --box \.\.\. --frame N"
    ):
        read_volume(rgb)

"""Video outputs: per-frame PNG masks and the .npz written out of order, the overlay video keeping the
input's fps, frame count and timestamps, contour colours, and refusals of unusable output names."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from tests.support.video import disc_frames, write_video
from volsam.core.errors import InputError, OutputError
from volsam.io.overlay import colour_of
from volsam.io.video import iter_frames, probe_video
from volsam.io.video_out import (
    NpzMasks,
    OverlayVideoWriter,
    PngMaskFolder,
    open_mask_sink,
    read_frame_mask,
    render_contours,
    sidecar_path,
)


def _labels(t: int, shape=(12, 16)) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    out[2 : 4 + t, 3:9] = 1
    out[8:10, 10:15] = 2
    return out


def test_png_folder_written_in_tracking_order_reads_back_with_empty_frames_filled(tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "frame_000009.png").write_bytes(b"stale")  # beyond this video: removed
    (tmp_path / "masks" / "notes.txt").write_text("kept")
    sink = open_mask_sink(tmp_path / "masks", 6, (12, 16), Fraction(25))
    assert isinstance(sink, PngMaskFolder)
    for t in (3, 4, 5, 2, 1):  # forward from frame 3, then backward; frame 0 never segmented
        sink.write(t, _labels(t))
    assert np.array_equal(sink.read(4), _labels(4)) and not sink.read(0).any()
    out = sink.finish()
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{t:06d}.png" for t in range(6)] + ["notes.txt"]  # no temporary file left
    assert not sink.read(0).any() and np.array_equal(sink.read(5), _labels(5))


def test_npz_is_filled_on_disk_and_holds_masks_and_fps(tmp_path):
    sink = open_mask_sink(tmp_path / "masks.npz", 5, (12, 16), Fraction(30000, 1001), dtype=np.uint16)
    assert isinstance(sink, NpzMasks)
    for t in (2, 3, 4, 1):
        sink.write(t, _labels(t).astype(np.uint16) * 300)
    assert np.array_equal(sink.read(3), _labels(3).astype(np.uint16) * 300)
    sink.finish()
    with np.load(tmp_path / "masks.npz") as data:
        masks, fps = data["masks"], float(data["fps"])
    assert masks.shape == (5, 12, 16) and masks.dtype == np.uint16
    assert not masks[0].any() and np.array_equal(masks[4], _labels(4).astype(np.uint16) * 300)
    assert fps == pytest.approx(30000 / 1001)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks.npz"]  # the memory map is gone
    assert sidecar_path(tmp_path / "masks.npz") == tmp_path / "masks.json"
    assert sidecar_path(tmp_path / "masks") == tmp_path / "masks" / "segmentation.json"


def test_an_aborted_npz_leaves_nothing(tmp_path):
    sink = open_mask_sink(tmp_path / "masks.npz", 3, (4, 4), Fraction(25))
    sink.write(0, np.ones((4, 4), np.uint8))
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_volume_and_image_names_are_refused_for_video_masks(tmp_path):
    for name in ("seg.nii.gz", "seg.png"):
        with pytest.raises(OutputError, match="a folder .* or one .npz"):
            open_mask_sink(tmp_path / name, 3, (4, 4), Fraction(25))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        open_mask_sink(tmp_path / "file", 3, (4, 4), Fraction(25))
    with pytest.raises(OutputError, match=r"\.mp4, \.mov, \.mkv or \.avi"):
        OverlayVideoWriter(tmp_path / "out.gif", Fraction(25), (16, 12))


@pytest.mark.parametrize(
    ("source", "codec", "fps", "overlay"),
    [
        ("in.mp4", "libx264", Fraction(30000, 1001), "out.mp4"),
        ("in.avi", "mpeg4", Fraction(25), "out.avi"),
        ("in.mov", "libx264", Fraction(24), "out.mkv"),
    ],
)
def test_overlay_video_keeps_fps_frame_count_and_timestamps(tmp_path, source, codec, fps, overlay):
    frames, truth = disc_frames(n=11, size=(48, 64))
    src = write_video(tmp_path / source, frames, fps=fps, codec=codec)
    info = probe_video(src)
    writer = OverlayVideoWriter(tmp_path / overlay, info.fps, (info.width, info.height), info.time_base)
    times = []
    for tf in iter_frames(src):
        times.append(float(tf.pts * tf.time_base))
        writer.add(render_contours(tf.picture, truth[tf.index].astype(np.uint8), 2), tf.pts)
    assert not (tmp_path / overlay).exists()  # appears only when complete
    out = writer.close()
    back = probe_video(out)
    assert (back.frame_count, back.fps, back.width, back.height) == (11, fps, 64, 48)
    assert back.duration == pytest.approx(info.duration, abs=1.01 / float(fps))
    back_times = [float(tf.pts * tf.time_base) for tf in iter_frames(out)]
    assert np.allclose(np.diff(back_times), np.diff(times), atol=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source, overlay])


def test_contours_are_drawn_in_each_label_colour_on_the_edge_only():
    picture = np.full((20, 20), 90, np.uint8)
    labels = np.zeros((20, 20), np.uint8)
    labels[4:12, 4:12] = 1
    labels[14:18, 2:19] = 3
    rgb = render_contours(picture, labels, thickness=2)
    assert tuple(rgb[4, 8]) == colour_of(1) and tuple(rgb[5, 8]) == colour_of(1)  # two pixels wide
    assert tuple(rgb[7, 8]) == (90, 90, 90)  # the inside is untouched
    assert tuple(rgb[17, 10]) == colour_of(3) and tuple(rgb[0, 0]) == (90, 90, 90)
    colour = np.stack([picture, picture // 2, picture], axis=-1)
    assert np.array_equal(render_contours(colour, labels)[7, 8], colour[7, 8])


def test_mask_prompt_images_are_checked_against_the_frame_size(tmp_path):
    from PIL import Image

    mask = np.zeros((12, 16), np.uint8)
    mask[3:6, 4:9] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert read_frame_mask(tmp_path / "m.png", (12, 16)).astype(bool).sum() == 15
    with pytest.raises(InputError, match=r"m\.png: mask is 16x12 \(WxH\), the video 20x12"):
        read_frame_mask(tmp_path / "m.png", (12, 20))
    with pytest.raises(InputError, match="no such mask file"):
        read_frame_mask(tmp_path / "none.png", (12, 16))

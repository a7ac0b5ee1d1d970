"""``volsam segment VIDEO``: the real LiteMedSAM on a small video made in the test, and the refusals."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import numpy as np
import pytest

from tests.support.video import disc_frames, moving_disc_video, write_video
from volsam.cli.main import run
from volsam.io.video import probe_video


def _run(capsys, *args) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_segment_video_writes_png_masks_sidecar_and_overlay(tmp_path, capsys):
    truth = moving_disc_video(tmp_path / "echo.mp4", n=4, size=(64, 80), fps=Fraction(24))
    ys, xs = np.nonzero(truth[1])
    box = f"{xs.min()},{ys.min()},{xs.max()},{ys.max()}"
    masks, overlay = tmp_path / "masks", tmp_path / "overlay.mp4"
    code, out, err = _run(
        capsys, "segment", tmp_path / "echo.mp4", "--box", box, "--frame", 1, "-o", masks, "--overlay", overlay
    )
    assert code == 0, err
    assert f"wrote {masks} (4 frames at 24 fps, 80x64; object on 4 frames, frames 0..3" in out
    assert sorted(p.name for p in masks.iterdir()) == [f"frame_{t:06d}.png" for t in range(4)] + ["segmentation.json"]
    meta = json.loads((masks / "segmentation.json").read_text())
    assert meta["video"]["fps"] == "24/1" and meta["prompts"] == [
        {"box": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())], "frame": 1, "label": 1}
    ]
    back = probe_video(overlay)
    assert (back.frame_count, back.fps, back.width, back.height) == (4, Fraction(24), 80, 64)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--box", "1,1,9,9", "--slice", "0"], "--slice applies to volumes, not to a video"),
        (["--box", "1,1,9,9", "--frame", "0", "--window", "lung", "--axis", "j"], "--axis, --window apply to volumes"),
        (["--box", "1,1,9,9"], "--box on a video needs --frame N"),
        (["--box", "1,1,9,9", "--frame", "7"], r"frame 7 is outside the video \(0..2\)"),
        (["--box", "1,1,9,9", "--frame", "0", "--frames", "1"], "--frames takes FIRST,LAST frame numbers"),
    ],
)
def test_video_refusals_are_one_line(tmp_path, capsys, extra, message):
    frames, _ = disc_frames(n=3, size=(24, 32))
    video = write_video(tmp_path / "clip.avi", frames, codec="mpeg4")
    code, _, err = _run(capsys, "segment", video, "-o", tmp_path / "masks", *extra)
    assert code == 3
    assert err.startswith("volsam: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "masks").exists()


def test_broken_video_and_frame_on_a_volume_are_refused(tmp_path, capsys):
    (tmp_path / "broken.mov").write_bytes(b"\x00\x00\x00\x18ftypqt  " + b"garbage" * 50)
    code, _, err = _run(
        capsys, "segment", tmp_path / "broken.mov", "--box", "1,1,5,5", "--frame", "0", "-o", tmp_path / "m"
    )
    assert code == 2 and "broken.mov: not a readable video" in err
    (tmp_path / "scan.nii.gz").write_bytes(b"x")
    code, _, err = _run(
        capsys, "segment", tmp_path / "scan.nii.gz", "--box", "1,1,5,5", "--frame", "0", "-o", tmp_path / "s.nii.gz"
    )
    assert code == 3 and "--frame applies to videos and DICOM cine files" in err
    code, _, err = _run(
        capsys, "segment", tmp_path / "scan.nii.gz", "--box", "1,1,5,5", "--frames", "0,3", "-o", tmp_path / "s.nii.gz"
    )
    assert code == 3 and "--frames applies to videos and DICOM cine files" in err


def test_segment_video_within_a_frame_range(tmp_path, capsys):
    """``--frames 1,2``: frames 1..2 walked (the sidecar's walk_range), frames 0 and 3 written empty; frames
    1..2 hold the masks of the whole-video run."""
    truth = moving_disc_video(tmp_path / "echo.mp4", n=4, size=(64, 80), fps=Fraction(24))
    ys, xs = np.nonzero(truth[1])
    box = f"{xs.min()},{ys.min()},{xs.max()},{ys.max()}"
    whole, ranged = tmp_path / "whole.npz", tmp_path / "ranged.npz"
    assert _run(capsys, "segment", tmp_path / "echo.mp4", "--box", box, "--frame", 1, "-o", whole)[0] == 0
    code, out, err = _run(capsys, "segment", tmp_path / "echo.mp4", "--box", box, "--frame", 1, "--frames", "1,2",
                          "-o", ranged)  # fmt: skip
    assert code == 0, err
    full, part = np.load(whole)["masks"], np.load(ranged)["masks"]
    assert full.any(axis=(1, 2)).all()  # the whole run finds the disc on every frame ...
    assert not part[[0, 3]].any() and np.array_equal(part[1:3], full[1:3])  # ... the ranged one only on 1..2
    assert json.loads(ranged.with_suffix(".json").read_text())["walk_range"] == [1, 2]
    assert json.loads(whole.with_suffix(".json").read_text())["walk_range"] == [0, 3]


def test_info_prints_the_timing_of_a_video(tmp_path, capsys):
    frames, _ = disc_frames(n=5, size=(24, 32))
    video = write_video(tmp_path / "clip.mp4", frames, fps=Fraction(30000, 1001))
    code, out, err = _run(capsys, "info", video)
    assert code == 0, err
    assert "frames:   5\n" in out and "fps:      30000/1001 (29.970)" in out and "32 x 24 (W x H pixels)" in out

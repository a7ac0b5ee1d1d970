"""Every path of ``volsam segment`` (one object on a volume, a prompts file, a video) refuses the same bad
option value with the same one line and exit code, before reading its input or writing anything: the flags
become one validated :class:`~volsam.jobs.request.SegmentRequest`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.support.video import disc_frames, write_video
from volsam.cli.main import run
from volsam.core.errors import EngineError, PromptError, SettingsError
from volsam.core.volume import Volume
from volsam.io import write_volume
from volsam.jobs.request import SegmentRequest

BAD = [  # (flags, the one line, exit code, the error type the Python API raises)
    (["--strategy", "foo"], "strategy 'foo' is not one of volsam, baseline", 2, SettingsError, {"strategy": "foo"}),
    (["--absent-frames", "0"], r"absent frames \(--absent-frames\) must be >= 1, got 0", 2, SettingsError,
     {"absent_frames": 0}),
    (["--axis", "q"], "axis 'q' is not one of i, j, k, axial, coronal, sagittal", 2, SettingsError, {"axis": "q"}),
    (["--modality", "XR"], "modality 'XR' is not one of auto, CT, MR, PET, other", 2, SettingsError,
     {"modality": "XR"}),
    (["--precision", "fp16"], "unknown precision 'fp16'", 5, EngineError, {"precision": "fp16"}),
    (["--engine", "nope"], "unknown engine 'nope'", 5, EngineError, {"engine": "nope"}),
    (["--label", "0"], "label must be an integer in 1..65535, got 0", 3, PromptError, {"label": 0}),
    (["--overlay-convention", "upside-down"], "overlay convention 'upside-down' is not one of radiological", 2,
     SettingsError, {"overlay_convention": "upside-down"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    image = write_volume(Volume(np.zeros((6, 12, 10), np.int16)), folder / "scan.nii.gz")
    prompts = folder / "prompts.json"
    prompts.write_text(
        json.dumps({"version": 1, "objects": [{"label": 1, "prompts": [{"box": [1, 1, 5, 5], "slice": 2}]}]})
    )
    frames, _ = disc_frames(n=3, size=(24, 32))
    video = write_video(folder / "clip.avi", frames, codec="mpeg4")
    return {
        "volume": [image, "--box", "1,1,5,5", "--slice", "2"],
        "prompts file": [image, "--prompts", prompts],
        "video": [video, "--box", "1,1,9,9", "--frame", "0"],
    }


@pytest.mark.parametrize(("flags", "line", "code", "error", "field"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_each_path_refuses_a_bad_value_with_the_same_line(tmp_path, capsys, inputs, flags, line, code, error, field):
    seen = set()
    for path, args in inputs.items():
        out = tmp_path / path.replace(" ", "-")
        got = run([str(a) for a in ["segment", *args, "-o", out / "seg.nii.gz", *flags]])
        err = capsys.readouterr().err
        assert got == code, (path, err)
        assert err.startswith("volsam: error: ") and len(err.strip().splitlines()) == 1, (path, err)
        seen.add(err)
        assert not out.exists(), path
    assert len(seen) == 1, seen  # the very same line on every path
    assert re.search(line, seen.pop())
    with pytest.raises(error, match=line):
        SegmentRequest(**field)

"""DICOM-SEG output from the command line (real LiteMedSAM on a small DICOM series of real anatomy), the
prompts-file path (several named objects, toy engine) and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from tests.session.test_session import _volume
from tests.support.dicom import write_series
from tests.support.toy_engine import ToyEngine
from volsam.cli.main import run
from volsam.core import Volume
from volsam.data.lesions import lesion_cases
from volsam.io import read_volume, write_volume
from volsam.io.dicom_seg import read_dicom_seg
from volsam.jobs.request import SegmentRequest
from volsam.jobs.volume import load_mask_prompt, segment_file_with_prompts
from volsam.metrics import dice
from volsam.propagation import PropagationSettings

HALF = 1  # slices kept on each side of the lesion's middle slice (3 slices: one LiteMedSAM run of a few seconds)


@pytest.fixture(scope="module")
def short_case():
    """A cropped dark lesion in the MNI152 T1, cut to 3 slices around its middle: (image, truth, box)."""
    case = lesion_cases(n_per_kind=1, crop=True, variants=False)[0]
    mid = case.middle_box.slice
    keep = slice(mid - HALF, mid + HALF + 1)
    image = Volume(case.image.array[keep], case.image.spacing, case.image.origin, case.image.direction)
    return image, case.label.array[keep] > 0, case.middle_box


def _run(capsys, *args) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_segment_a_dicom_series_to_dicom_seg(tmp_path, capsys, short_case):
    image, truth, b = short_case
    folder = tmp_path / "dicom"
    write_series(image, folder, shuffle_names=True, modality="MR")
    out = tmp_path / "seg.dcm"
    box = f"{b.u0},{b.v0},{b.u1},{b.v1}"
    code, stdout, err = _run(capsys, "segment", folder, "--box", box, "--slice", HALF, "-o", out, "--label", 2)
    assert code == 0, err
    assert "wrote" in stdout
    source = read_volume(folder)
    seg = read_dicom_seg(out, source)
    assert seg.same_grid(source) and seg.meta["labels"] == {2: "object 2"}
    assert set(np.unique(seg.array)) == {0, 2}
    assert dice(seg.array > 0, truth) > 0.7
    algorithm = pydicom.dcmread(out).SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert "medsam-lite" in algorithm.AlgorithmParameters
    # the SEG resumes a session as a mask prompt on the same series
    prompt = load_mask_prompt(out, source, label=2)
    assert np.array_equal(prompt.binary(), seg.array == 2)


def test_non_dicom_input_with_a_dcm_output_is_refused(tmp_path, capsys, short_case):
    image, _, b = short_case
    nifti = write_volume(image, tmp_path / "scan.nii.gz")
    box = f"{b.u0},{b.v0},{b.u1},{b.v1}"
    code, stdout, err = _run(capsys, "segment", nifti, "--box", box, "--slice", HALF, "-o", tmp_path / "seg.dcm")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "needs a DICOM series as input" in lines[0] and "nifti" in lines[0]
    assert not (tmp_path / "seg.dcm").exists()
    code, _, err = _run(
        capsys, "segment", nifti, "--box", box, "--slice", HALF, "-o", tmp_path / "x.nii.gz", "--format", "dicom-seg"
    )
    assert code != 0 and "name it .dcm" in err and len(err.strip().splitlines()) == 1


def test_prompts_file_writes_one_segment_per_named_object(tmp_path):
    folder = tmp_path / "dicom"
    write_series(_volume(), folder, modality="MR")
    prompts = {
        "version": 1,
        "objects": [
            {"label": 1, "name": "upper block", "prompts": [{"box": [6, 8, 20, 18], "slice": 9}]},
            {"label": 3, "name": "lower block", "prompts": [{"box3d": [30, 24, 6, 44, 34, 12]}]},
        ],
    }
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    settings = PropagationSettings(appearance_stop=False, regrowth_after=0.0, roi_context=0.0)
    out = tmp_path / "seg"  # no suffix: --format dicom-seg names the format
    result = segment_file_with_prompts(
        folder,
        tmp_path / "prompts.json",
        out,
        SegmentRequest(output_format="dicom-seg"),
        engine=ToyEngine(),
        settings=settings,
    )
    ds = pydicom.dcmread(result.output)
    assert [(s.SegmentNumber, s.SegmentLabel) for s in ds.SegmentSequence] == [(1, "upper block"), (2, "lower block")]
    assert "toy" in ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters
    image = read_volume(folder)
    back = read_dicom_seg(out, image)
    assert back.meta["labels"] == {1: "upper block", 3: "lower block"}
    assert (back.array == 1).sum() > 0 and (back.array == 3).sum() == 11 * 15 * 7  # the toy finds block B exactly
    assert {label for label, _, voxels in result.objects if voxels} == {1, 3}
    nifti = segment_file_with_prompts(folder, tmp_path / "prompts.json", tmp_path / "seg.nii.gz", engine=ToyEngine(),
                                      settings=settings)  # fmt: skip
    assert np.array_equal(read_volume(nifti.output).array, back.array)  # the same label map either way

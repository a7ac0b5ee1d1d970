"""The command line end to end, with the real LiteMedSAM weights on small crops of real anatomy."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tests.support.dicom import write_series
from tests.support.shared_encoder import sharing_litemedsam
from volsam.cli.main import run
from volsam.core import Volume
from volsam.data.lesions import lesion_cases
from volsam.io import read_volume, write_volume
from volsam.metrics import dice


@pytest.fixture(scope="module")
def case():
    """A cropped dark lesion in the MNI152 T1 (about 70 x 70 x 22 voxels) with its ground truth."""
    return lesion_cases(n_per_kind=1, crop=True, variants=False)[0]


@pytest.fixture(scope="module", autouse=True)
def encoder():
    """The module's CLI runs share one LiteMedSAM encoder (:func:`sharing_litemedsam`): without it the four
    full-volume runs encoded the same slices of the same image four times over (about 1 s a slice on 2
    cores, most of this module's time)."""
    import volsam.jobs.request as request_module

    with sharing_litemedsam(request_module, "get_engine") as shared:
        yield shared


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_segment_box_on_a_slice_writes_a_label_map_on_the_input_grid(tmp_path, capsys, case):
    image = write_volume(case.image, tmp_path / "scan.nii.gz")
    out = tmp_path / "lesion.nii.gz"
    b = case.middle_box
    code, stdout, err = _run(
        capsys, "segment", image, "--box", f"{b.u0},{b.v0},{b.u1},{b.v1}", "--slice", b.slice, "-o", out, "--label", 3
    )
    assert code == 0, err
    assert "wrote" in stdout
    seg = read_volume(out)
    assert seg.same_grid(read_volume(image))
    assert seg.array.dtype == np.uint8 and set(np.unique(seg.array)) == {0, 3}
    assert dice(seg.array > 0, case.label.array > 0) > 0.75


@pytest.mark.slow
def test_segment_dicom_series_with_box3d_and_overlays(tmp_path, capsys, case):
    folder = tmp_path / "dicom"
    write_series(case.image, folder, shuffle_names=True, modality="MR")
    out, pngs = tmp_path / "seg.nii.gz", tmp_path / "pngs"
    box = ",".join(str(v) for v in case.box3d.as_tuple())
    code, stdout, err = _run(capsys, "segment", folder, "--box3d", box, "-o", out, "--overlay", pngs)
    assert code == 0, err
    seg = read_volume(out)
    assert seg.same_grid(read_volume(folder))
    truth = case.label.array > 0
    assert dice(seg.array > 0, truth) > 0.75
    lo, hi = case.box3d.lower(), case.box3d.upper()
    outside = seg.array.copy()
    outside[lo[2] : hi[2] + 1, lo[1] : hi[1] + 1, lo[0] : hi[0] + 1] = 0
    assert not outside.any()  # nothing outside the 3D box
    written = sorted(p.name for p in pngs.iterdir())
    assert "montage.png" in written and any(n.startswith("slice_") for n in written)


def test_info_prints_geometry_and_modality(tmp_path, capsys, case):
    folder = tmp_path / "dicom"
    write_series(case.image, folder, modality="MR")
    code, stdout, err = _run(capsys, "info", folder)
    assert code == 0, err
    nk, nj, ni = case.image.array.shape
    assert f"{ni}" in stdout and "MR" in stdout and "spacing" in stdout.lower()


def test_points_prompt_positive_and_negative(tmp_path, capsys, case):
    image = write_volume(case.image, tmp_path / "scan.nii.gz")
    truth = case.label.array > 0
    k = case.middle_box.slice
    jj, ii = np.argwhere(truth[k]).mean(axis=0).round().astype(int)
    out = tmp_path / "pts.nii.gz"
    code, _, err = _run(capsys, "segment", image, "--point", f"{ii},{jj},{k}", "--point", "0,0,0,neg", "-o", out)
    assert code == 0, err
    seg = read_volume(out).array > 0
    assert seg[k, jj, ii]  # the clicked voxel is in the object


# -- refusals: one line on stderr, non-zero exit, no traceback, no output file --------------------------------


@pytest.mark.slow
def test_prompts_file_with_two_objects_and_a_correction(tmp_path, capsys, case):
    """Real weights: the lesion from its box plus a background click beside it, and a second object from a
    box elsewhere; each is written with its own label."""
    import json

    image = write_volume(case.image, tmp_path / "scan.nii.gz")
    b = case.middle_box
    doc = {
        "objects": [
            {
                "label": 4,
                "name": "lesion",
                "prompts": [
                    {"box": [b.u0, b.v0, b.u1, b.v1], "slice": b.slice},
                    {"point": [b.u0 - 3, b.v0 - 3, b.slice], "positive": False},
                ],
            },
            {"label": 9, "name": "corner", "prompts": [{"box": [2, 2, 12, 12], "slice": b.slice}]},
        ]
    }
    (tmp_path / "prompts.json").write_text(json.dumps(doc))
    out = tmp_path / "seg.nii.gz"
    code, stdout, err = _run(capsys, "segment", image, "--prompts", tmp_path / "prompts.json", "-o", out)
    assert code == 0, err
    assert "4 'lesion'" in stdout and "9 'corner'" in stdout
    seg = read_volume(out)
    assert seg.same_grid(case.image) and set(np.unique(seg.array)) <= {0, 4, 9}
    assert dice(seg.array == 4, case.label.array > 0) > 0.85
    line = _refused(capsys, tmp_path, "segment", image, "--prompts", tmp_path / "prompts.json", "--box", "1,1,5,5")
    assert "--prompts replaces" in line
    (tmp_path / "bad.json").write_text(json.dumps({"objects": [{"label": 1, "prompts": [{"box": [1, 2]}]}]}))
    line = _refused(capsys, tmp_path, "segment", image, "--prompts", tmp_path / "bad.json")
    assert "objects[0].prompts[0]" in line


def _refused(capsys, tmp_path, *args) -> str:
    out = tmp_path / "out.nii.gz"
    code, _, err = _run(capsys, *args, "-o", out)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1, err
    assert lines[0].startswith("volsam: error:"), err
    assert "Traceback" not in err
    assert not out.exists()
    return lines[0]


@pytest.fixture()
def small_image(tmp_path, case) -> Path:
    return write_volume(case.image, tmp_path / "small.nii.gz")


def test_missing_file(capsys, tmp_path):
    line = _refused(capsys, tmp_path, "segment", tmp_path / "nope.nii.gz", "--box", "1,1,5,5", "--slice", "0")
    assert "nope.nii.gz" in line


def test_truncated_file(capsys, tmp_path, small_image):
    data = small_image.read_bytes()
    bad = tmp_path / "truncated.nii.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(data)[:5000]))
    _refused(capsys, tmp_path, "segment", bad, "--box", "1,1,5,5", "--slice", "0")


def test_not_an_image(capsys, tmp_path):
    bad = tmp_path / "notes.nii.gz"
    bad.write_text("this is not an image")
    _refused(capsys, tmp_path, "segment", bad, "--box", "1,1,5,5", "--slice", "0")


@pytest.mark.parametrize(
    "prompt, message",
    [
        (["--box", "1,1,500,5", "--slice", "3"], "outside"),
        (["--box", "1,1,5,5", "--slice", "999"], "slice 999"),
        (["--box", "1,1,five,5", "--slice", "3"], "integers"),
        (["--box", "1,1,5", "--slice", "3"], "needs 4"),
        (["--box", "9,9,5,5", "--slice", "3"], "empty box"),
        (["--box", "1,1,5,5"], "--slice"),
        (["--box3d", "1,1,1,500,5,5"], "outside"),
        (["--point", "1,1,1,maybe"], "neg"),
        ([], "give a prompt"),
        (["--box", "1,1,5,5", "--slice", "3", "--window", "wide"], "window"),
        (["--box", "1,1,5,5", "--slice", "3", "--axis", "q"], "axis"),
        (["--box", "1,1,5,5", "--slice", "3", "--engine", "nope"], "nope"),
    ],
)
def test_bad_prompts_and_options(capsys, tmp_path, small_image, prompt, message):
    line = _refused(capsys, tmp_path, "segment", small_image, *prompt)
    assert message in line


def test_unknown_option_is_one_line(capsys, tmp_path, small_image):
    _refused(capsys, tmp_path, "segment", small_image, "--bogus", "1")


def test_four_d_file_is_a_clean_error(capsys, tmp_path):
    img = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros((3, 8, 8), np.float32))] * 2)
    path = tmp_path / "four_d.nii.gz"
    sitk.WriteImage(img, str(path))
    line = _refused(capsys, tmp_path, "segment", path, "--box", "1,1,5,5", "--slice", "0")
    assert "4D" in line


def test_odd_but_valid_inputs_give_a_result(capsys, tmp_path, case):
    """A 2D image, NaN voxels and a constant image are segmented (or cleanly refused), never a crash."""
    k = case.middle_box.slice
    b = case.middle_box
    box = f"{b.u0},{b.v0},{b.u1},{b.v1}"
    two_d = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(case.image.array[k].astype(np.float32)), str(two_d))
    code, _, err = _run(capsys, "segment", two_d, "--box", box, "--slice", "0", "-o", tmp_path / "a.nii.gz")
    assert code == 0, err
    assert read_volume(tmp_path / "a.nii.gz").array.shape[0] == 1

    with_nan = case.image.array[k - 1 : k + 2].astype(np.float32)  # 3 slices: NaN handling needs no more
    with_nan[:, :3, :3] = np.nan
    nan_path = write_volume(Volume(with_nan, case.image.spacing), tmp_path / "nan.nii.gz")
    code, _, err = _run(capsys, "segment", nan_path, "--box", box, "--slice", 1, "-o", tmp_path / "b.nii.gz")
    assert code == 0, err

    flat = write_volume(Volume(np.full((5, 20, 20), 7, np.int16)), tmp_path / "flat.nii.gz")
    code, _, err = _run(capsys, "segment", flat, "--box", "2,2,10,10", "--slice", "2", "-o", tmp_path / "c.nii.gz")
    if code != 0:  # a constant image has nothing to find: a clean one-line refusal is fine
        assert len([x for x in err.splitlines() if x.startswith("volsam: error:")]) == 1
        assert "Traceback" not in err
    else:
        assert read_volume(tmp_path / "c.nii.gz").array.shape == (5, 20, 20)


def test_help_and_demo_listing(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "segment" in out and "info" in out and "demo" in out

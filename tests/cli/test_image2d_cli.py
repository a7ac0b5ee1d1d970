"""``volsam segment`` on 2D images, with the real LiteMedSAM weights on a 2D slice of real anatomy (the middle
slice of a cropped lesion case on MNI152): PNG (grey and colour), 16-bit TIFF, a CVPR 2024 2D .npz with its
boxes, a 2D DICOM to DICOM-SEG; refusals before the model runs."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file

from volsam.cli.main import run
from volsam.data.lesions import lesion_case
from volsam.io import read_image
from volsam.io.dicom_seg import read_dicom_seg
from volsam.metrics import dice


@pytest.fixture(scope="module")
def slice2d():
    """(grey uint8 (H, W), colour RGB (H, W, 3), truth bool (H, W), box x0,y0,x1,y1) of one lesion slice."""
    case = lesion_case("dark-00", crop=True)
    box = case.middle_box
    raw = case.image.array[box.slice].astype(np.float32)
    lo, hi = np.percentile(raw[raw > 0], (0.5, 99.5))
    grey = np.rint(np.clip((raw - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    colour = np.stack([grey, np.rint(grey * 0.8), np.rint(grey * 0.6)], axis=-1).astype(np.uint8)
    truth = case.label.array[box.slice] > 0
    return grey, colour, truth, (box.u0, box.v0, box.u1, box.v1)


def _run(capsys, *args) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _box(box) -> str:
    return ",".join(str(v) for v in box)


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
def test_png_box_to_label_png_and_overlay(tmp_path, capsys, slice2d, colour):
    grey, rgb, truth, box = slice2d
    Image.fromarray(rgb if colour else grey).save(tmp_path / "slice.png")
    out, overlay = tmp_path / "mask.png", tmp_path / "overlay"
    code, stdout, err = _run(
        capsys, "segment", tmp_path / "slice.png", "--box", _box(box), "-o", out, "--overlay", overlay
    )
    assert code == 0, err
    mask = np.asarray(Image.open(out))
    assert mask.shape == grey.shape and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert dice(mask > 0, truth) > 0.85
    shown = np.asarray(Image.open(overlay / "slice_0000.png"))
    assert shown.shape == (*grey.shape, 3)
    picture = rgb if colour else np.repeat(grey[..., None], 3, axis=2)
    assert np.array_equal(shown[-3:, -3:], picture[-3:, -3:])  # drawn on the picture itself, far from the object
    assert "wrote" in stdout


def test_tiff_points_and_several_boxes(tmp_path, capsys, slice2d):
    grey, _, truth, (x0, y0, x1, y1) = slice2d
    tifffile.imwrite(tmp_path / "slice.tif", grey.astype(np.uint16) * 200)  # 16-bit
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    out = tmp_path / "points.nii.gz"
    code, _, err = _run(
        capsys, "segment", tmp_path / "slice.tif", "--box", _box((x0, y0, x1, y1)), "--point", f"{cx},{cy}", "-o", out
    )
    assert code == 0, err
    seg = read_image(out)
    assert seg.shape == (1, *grey.shape) and dice(seg.array[0] > 0, truth) > 0.8
    two = tmp_path / "two.png"
    far = (0, 0, 12, 12)
    code, stdout, err = _run(
        capsys,
        "segment",
        tmp_path / "slice.tif",
        "--box",
        _box((x0, y0, x1, y1)),
        "--box",
        _box(far),
        "-o",
        two,
        "--label",
        4,
    )
    assert code == 0, err and "2 objects" in stdout
    labels = np.asarray(Image.open(two))
    assert dice(labels == 4, truth) > 0.8 and not (labels[:13, :13] == 4).any()
    assert set(np.unique(labels)) <= {0, 4, 5}


def test_cvpr_npz_uses_its_boxes(tmp_path, capsys, slice2d):
    _, rgb, truth, box = slice2d
    path = tmp_path / "2DBox_MR_lesion.npz"
    np.savez_compressed(path, imgs=rgb, boxes=np.array([box]), gts=truth.astype(np.uint8))
    code, stdout, err = _run(capsys, "segment", path, "-o", tmp_path / "out.npz")
    assert code == 0, err
    with np.load(tmp_path / "out.npz") as data:
        segs = data["segs"]
    assert segs.shape == truth.shape and dice(segs == 1, truth) > 0.85


def test_dicom_2d_to_dicom_seg(tmp_path, capsys):
    source = get_testdata_file("examples_rgb_color.dcm")  # an RGB ultrasound still, no patient geometry
    out = tmp_path / "seg.dcm"
    code, _, err = _run(capsys, "segment", source, "--box", "100,80,200,160", "-o", out)
    assert code == 0, err
    seg = pydicom.dcmread(out)
    assert (
        seg.Modality == "SEG"
        and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == pydicom.dcmread(source).SeriesInstanceUID
    )
    mask = read_dicom_seg(out, read_image(source))
    assert mask.shape == (1, 240, 320) and mask.array.any()
    ys, xs = np.nonzero(mask.array[0])
    assert xs.min() >= 95 and xs.max() <= 205 and ys.min() >= 75 and ys.max() <= 165


def test_refusals_come_before_the_model(tmp_path, capsys, slice2d, monkeypatch):
    from volsam.jobs.request import SegmentRequest

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(SegmentRequest, "load_engine", no_model)
    grey, _, _, box = slice2d
    Image.fromarray(grey).save(tmp_path / "slice.png")
    cases = [
        (("--box", _box(box), "-o", tmp_path / "slice.png"), "slice.png"),  # the input itself
        (("--box", "1,2,3", "-o", tmp_path / "m.png"), "needs 4 comma-separated integers"),
        (("--box", f"0,0,{grey.shape[1]},5", "-o", tmp_path / "m.png"), "outside"),
        (("--box", _box(box), "--box", "0,0,5,5", "--point", "3,3", "-o", tmp_path / "m.png"), "several --box"),
        (("-o", tmp_path / "m.png"), "give a prompt"),
        (("--box", _box(box), "-o", tmp_path / "m.gif"), "m.gif"),
    ]
    for args, needle in cases:
        code, _, err = _run(capsys, "segment", tmp_path / "slice.png", *args)
        assert code != 0 and needle in err and len(err.strip().splitlines()) == 1, (args, err)
    volume = tmp_path / "vol.tif"
    tifffile.imwrite(volume, np.zeros((3, 20, 20), np.uint8), photometric="minisblack")
    code, _, err = _run(capsys, "segment", volume, "--box", "1,1,5,5", "-o", tmp_path / "v.nii.gz")
    assert code != 0 and "3 slices: a box or point without a slice applies to 2D images" in err
    assert not (tmp_path / "m.png").exists() and not (tmp_path / "v.nii.gz").exists()

"""Every input volsam cannot use raises InputError with one line that names the file; odd-but-valid
inputs (2D, 4D with channel, vector pixels, NaN/Inf) are read as documented."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

from volsam.core.errors import InputError
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> str:
    message = str(exc.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.fixture()
def float_volume() -> Volume:
    rng = np.random.default_rng(0)
    return Volume(rng.random((20, 30, 40)).astype(np.float32), spacing=(0.7, 0.9, 3.0))


def test_missing_path(tmp_path):
    with pytest.raises(InputError) as exc:
        read_volume(tmp_path / "nope.nii.gz")
    _one_line(exc, "nope.nii.gz", "no such file")


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError) as exc:
        read_volume(tmp_path)
    _one_line(exc, str(tmp_path), "no DICOM images")


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no DICOM images"):
        read_volume(tmp_path)


@pytest.mark.parametrize(
    "name", ["scan.nii.gz", "scan.nii", "scan.nrrd", "scan.mha", "scan.npz", "scan.zip", "scan.dcm"]
)
def test_text_file_with_an_image_name(tmp_path, name):
    path = tmp_path / name
    path.write_text("this is a text file, not an image\n" * 20)
    with pytest.raises(InputError) as exc:
        read_volume(path)
    _one_line(exc, name)


def test_gzipped_text_named_nii_gz(tmp_path):
    path = tmp_path / "scan.nii.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"hello, I am not a NIfTI header" * 30)
    with pytest.raises(InputError) as exc:
        read_volume(path)
    _one_line(exc, "scan.nii.gz", "not a NIfTI")


def test_empty_file(tmp_path):
    (tmp_path / "scan.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        read_volume(tmp_path / "scan.nii.gz")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_truncated_file(tmp_path, float_volume, suffix):
    good = write_volume(float_volume, tmp_path / f"good{suffix}")
    data = good.read_bytes()
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as exc:
        read_volume(bad)
    _one_line(exc, f"bad{suffix}")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "scan.gif"
    path.write_bytes(b"GIF89a")
    with pytest.raises(InputError) as exc:
        read_volume(path)
    _one_line(exc, "scan.gif", "unsupported", ".nii.gz", ".png")


def test_four_d_needs_a_channel_and_channel_picks_one(tmp_path):
    data = np.stack([np.full((3, 4, 5), c, np.float32) for c in range(3)])  # (t, k, j, i)
    image = sitk.GetImageFromArray(data, isVector=False)
    image.SetSpacing((0.5, 0.6, 2.0, 1.0))
    path = tmp_path / "brats.nii.gz"
    sitk.WriteImage(image, str(path))
    with pytest.raises(InputError) as exc:
        read_volume(path)
    _one_line(exc, "brats.nii.gz", "4D", "3 volumes", "channel=0..2")
    vol = read_volume(path, channel=2)
    assert vol.shape == (3, 4, 5)
    assert np.all(vol.array == 2)
    assert vol.spacing == pytest.approx((0.5, 0.6, 2.0))
    assert vol.meta["channel"] == 2
    with pytest.raises(InputError, match="out of range"):
        read_volume(path, channel=3)


def test_vector_pixels_need_a_channel(tmp_path):
    data = np.stack([np.full((3, 4, 5), c, np.float32) for c in range(3)], axis=-1)
    path = tmp_path / "rgb.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(data, isVector=True), str(path))
    with pytest.raises(InputError, match="3 values per voxel"):
        read_volume(path)
    assert np.all(read_volume(path, channel=1).array == 1)


def test_channel_on_a_3d_file_is_refused(tmp_path, float_volume):
    path = write_volume(float_volume, tmp_path / "v.nrrd")
    with pytest.raises(InputError, match="channel=0 applies to 4D"):
        read_volume(path, channel=0)


def test_series_on_a_nifti_is_refused(tmp_path, float_volume):
    path = write_volume(float_volume, tmp_path / "v.nii.gz")
    with pytest.raises(InputError, match="DICOM"):
        read_volume(path, series="1.2.3")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_nan_and_inf_voxels_are_kept(tmp_path, suffix):
    # ITK 5's NIfTI reader turns NaN/Inf into 0; volsam puts them back.
    array = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    array[0, 0, 0], array[1, 2, 3], array[2, 3, 4] = np.nan, np.inf, -np.inf
    back = read_volume(write_volume(Volume(array), tmp_path / f"nan{suffix}"))
    np.testing.assert_array_equal(back.array, array)


def test_nan_kept_in_the_picked_channel_of_a_4d_nifti(tmp_path):
    data = np.zeros((2, 3, 4, 5), np.float64)
    data[1, 0, 1, 2] = np.nan
    path = tmp_path / "four.nii"
    sitk.WriteImage(sitk.GetImageFromArray(data, isVector=False), str(path))
    assert np.isnan(read_volume(path, channel=1).array[0, 1, 2])
    assert not np.isnan(read_volume(path, channel=0).array).any()


def test_nan_kept_with_scl_slope(tmp_path):
    # a NIfTI with scl_slope 2, scl_inter 1 (written by hand): ITK scales, NaN must stay NaN
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    array[1, 1, 1] = np.nan
    path = write_volume(Volume(array), tmp_path / "scaled.nii")
    data = bytearray(path.read_bytes())
    data[112:120] = np.array([2.0, 1.0], "<f4").tobytes()
    path.write_bytes(bytes(data))
    back = read_volume(path)
    expected = array * 2 + 1
    np.testing.assert_allclose(back.array, expected)


def test_nifti_pixel_type_is_the_stored_type(tmp_path):
    # int16 voxels with scl_slope 0.5: ITK returns floats, meta says what the file stores
    path = write_volume(Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4)), tmp_path / "s.nii")
    data = bytearray(path.read_bytes())
    data[112:120] = np.array([0.5, 0.0], "<f4").tobytes()
    path.write_bytes(bytes(data))
    vol = read_volume(path)
    assert vol.array.dtype.kind == "f"
    np.testing.assert_allclose(vol.array.ravel(), np.arange(24) * 0.5)
    assert vol.meta["pixel_type"] == "int16"

"""write_volume -> read_volume keeps voxels, dtype and the grid (size, spacing, origin, direction)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.io.conftest import DIRECTIONS, ORIGIN, SPACING
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume

FORMATS = [".nii.gz", ".nii", ".nrrd", ".mha"]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("direction", list(DIRECTIONS), ids=list(DIRECTIONS))
def test_geometry_round_trip(tmp_path, mni_crop, suffix, direction):
    vol = Volume(mni_crop, spacing=SPACING, origin=ORIGIN, direction=DIRECTIONS[direction])
    path = write_volume(vol, tmp_path / f"img{suffix}")
    back = read_volume(path)
    assert back.same_grid(vol, tol=1e-5)
    assert np.array_equal(back.array, vol.array)
    assert back.array.dtype == np.int16
    assert back.axis_names() == vol.axis_names()
    assert back.meta["source"] == str(path)
    assert back.meta["pixel_type"] == "int16"


@pytest.mark.parametrize("suffix", FORMATS)
def test_nrrd_and_mha_keep_full_precision_nifti_float32(tmp_path, suffix):
    vol = Volume(
        np.zeros((2, 3, 4), np.uint8),
        spacing=(0.123456789, 1, 2),
        origin=(-1234.56789, 0.1, 7),
        direction=DIRECTIONS["oblique"],
    )
    back = read_volume(write_volume(vol, tmp_path / f"p{suffix}"))
    # NIfTI stores its geometry as float32: ~1e-7 relative; the others are exact to double precision.
    tol = 2e-4 if suffix.startswith(".nii") else 1e-9
    assert back.same_grid(vol, tol=tol)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_dtypes_are_kept_and_nan_survives(tmp_path, dtype):
    array = np.arange(60).reshape(3, 4, 5).astype(dtype)
    if array.dtype.kind == "f":
        array[1, 2, 3] = np.nan
    vol = Volume(array, spacing=(0.5, 0.5, 2.0))
    back = read_volume(write_volume(vol, tmp_path / "d.nii.gz"))
    assert back.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.array, array)  # NaN == NaN here
    if array.dtype.kind == "f":
        assert np.isnan(back.array[1, 2, 3])


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize(("top", "dtype"), [(1, np.uint8), (255, np.uint8), (256, np.uint16), (65535, np.uint16)])
def test_label_maps_are_uint8_or_uint16_on_the_exact_grid(tmp_path, suffix, top, dtype):
    labels = np.zeros((3, 4, 5), np.int64)
    labels[1, 1:3, 2:4] = top
    vol = Volume(labels, spacing=SPACING, origin=ORIGIN, direction=DIRECTIONS["oblique"])
    back = read_volume(write_volume(vol, tmp_path / f"lab{suffix}", label=True))
    assert back.array.dtype == dtype
    assert np.array_equal(back.array, labels)
    assert back.same_grid(vol, tol=1e-5)


def test_bool_arrays_are_label_maps_by_default(tmp_path):
    mask = np.zeros((2, 3, 4), bool)
    mask[0, 1, 2] = True
    back = read_volume(write_volume(Volume(mask), tmp_path / "m.nii.gz"))
    assert back.array.dtype == np.uint8 and back.array.sum() == 1


def test_float_label_values_that_are_integers_are_accepted(tmp_path):
    back = read_volume(write_volume(Volume(np.full((1, 2, 2), 3.0)), tmp_path / "f.mha", label=True))
    assert back.array.dtype == np.uint8 and back.array.max() == 3


def test_image_with_label_false_keeps_int_dtype(tmp_path):
    vol = Volume(np.full((1, 2, 2), 7, np.int32))
    assert read_volume(write_volume(vol, tmp_path / "i.nrrd", label=False)).array.dtype == np.int32


def test_two_dimensional_file_reads_as_one_slice(tmp_path):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.arange(20, dtype=np.float32).reshape(4, 5))
    image.SetSpacing((0.5, 0.7))
    image.SetOrigin((3.0, 4.0))
    sitk.WriteImage(image, str(tmp_path / "flat.nii.gz"))
    vol = read_volume(tmp_path / "flat.nii.gz")
    assert vol.shape == (1, 4, 5)
    assert vol.spacing == pytest.approx((0.5, 0.7, 1.0))
    assert vol.origin[:2] == pytest.approx((3.0, 4.0))
    assert np.array_equal(vol.array[0], np.arange(20, dtype=np.float32).reshape(4, 5))

"""DICOM series: ordering by position (not by name), oblique anisotropic geometry, rescale, several
series, zipped series, refused series."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.io.conftest import DIRECTIONS, SPACING
from tests.support.dicom import write_series
from volsam.core.errors import InputError
from volsam.core.volume import Volume
from volsam.io import list_series, read_volume


def _zip_folder(folder, archive, prefix="export/"):
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def test_oblique_series_with_shuffled_names_reads_back_exactly(tmp_path, mni_volume):
    paths = write_series(mni_volume, tmp_path / "series", modality="MR", series_description="t1 crop")
    names = [p.name for p in paths]
    assert sorted(names) != names  # reading by file name would scramble the slices
    vol = read_volume(tmp_path / "series")
    assert vol.same_grid(mni_volume, tol=1e-4)
    assert np.array_equal(vol.array, mni_volume.array)
    assert vol.array.dtype.kind in "iu"
    assert vol.meta["modality"] == "MR"
    assert vol.meta["format"] == "dicom"
    assert vol.meta["series_description"] == "t1 crop"
    assert vol.meta["series_uid"] == pydicom.dcmread(paths[0]).SeriesInstanceUID
    assert vol.meta["pixel_type"] == "uint16"
    assert vol.meta["source"] == str(tmp_path / "series")


@pytest.mark.parametrize("direction", ["identity", "flip_xy", "oblique"])
def test_right_handed_directions_round_trip(tmp_path, mni_crop, direction):
    src = Volume(mni_crop, spacing=SPACING, origin=(-3.5, 7.25, 100.0), direction=DIRECTIONS[direction])
    write_series(src, tmp_path)
    vol = read_volume(tmp_path)
    assert vol.same_grid(src, tol=1e-4)
    assert np.array_equal(vol.array, src.array)


def test_left_handed_direction_comes_back_along_the_normal(tmp_path, mni_crop):
    # DICOM slices are ordered along row x column; a left-handed k axis therefore comes back reversed,
    # which is the same physical image: every voxel keeps its world position.
    src = Volume(mni_crop, spacing=SPACING, origin=(1.0, 2.0, 3.0), direction=DIRECTIONS["las"])
    write_series(src, tmp_path)
    vol = read_volume(tmp_path)
    assert np.array_equal(vol.array, src.array[::-1])
    assert np.allclose(vol.direction[:, 2], -src.direction[:, 2])
    assert np.allclose(vol.direction[:, :2], src.direction[:, :2])
    nk = src.shape[0]
    assert np.allclose(vol.index_to_world((0, 0, 0)), src.index_to_world((0, 0, nk - 1)), atol=1e-4)
    assert np.allclose(vol.index_to_world((5, 7, 2)), src.index_to_world((5, 7, nk - 1 - 2)), atol=1e-4)


def test_ct_rescale_intercept_is_applied(tmp_path, mni_crop):
    hu = mni_crop.astype(np.int32) * 4 - 1000  # -780..-60, stored as value + 1024
    src = Volume(hu, spacing=SPACING)
    write_series(src, tmp_path, modality="CT", rescale=(1.0, -1024.0))
    vol = read_volume(tmp_path)
    assert np.array_equal(vol.array, hu)
    assert vol.array.dtype.kind == "i"
    assert vol.meta["modality"] == "CT"


def test_fractional_rescale_slope_gives_floats(tmp_path):
    values = np.arange(2 * 3 * 4).reshape(2, 3, 4) * 0.25 - 1.5
    write_series(Volume(values), tmp_path, modality="PT", rescale=(0.25, -1.5))
    vol = read_volume(tmp_path)
    assert vol.array.dtype.kind == "f"
    np.testing.assert_allclose(vol.array, values)
    assert vol.meta["pixel_type"] == "uint16"


def test_per_slice_rescale_is_not_truncated(tmp_path):
    paths = write_series(Volume(np.full((3, 2, 2), 100.0)), tmp_path, modality="PT", shuffle_names=False)
    for path, slope in zip(paths, ["1", "0.37", "2.5"], strict=True):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = slope, "0"
        ds.save_as(path)
    vol = read_volume(tmp_path)
    assert vol.array.dtype == np.float64
    np.testing.assert_allclose(vol.array[:, 0, 0], [100.0, 37.0, 250.0])


def test_two_series_need_a_choice(tmp_path, mni_crop):
    a = Volume(mni_crop, spacing=SPACING)
    b = Volume(mni_crop[:5, :10, :12] + 1, spacing=(1.0, 1.0, 2.0))
    write_series(a, tmp_path / "a", series_uid="1.2.826.0.1.3680043.8.498.1", series_description="T1 axial")
    write_series(b, tmp_path / "b", series_uid="1.2.826.0.1.3680043.8.498.2", series_description="T2 small")
    with pytest.raises(InputError) as exc:
        read_volume(tmp_path)
    message = str(exc.value)
    assert "\n" not in message
    for needle in (
        "2 DICOM series",
        "series=",
        "1.2.826.0.1.3680043.8.498.1",
        "'T1 axial' (12 files)",
        "1.2.826.0.1.3680043.8.498.2",
        "'T2 small' (5 files)",
    ):
        assert needle in message, message
    vol = read_volume(tmp_path, series="1.2.826.0.1.3680043.8.498.2")
    assert np.array_equal(vol.array, b.array)
    assert vol.meta["series_description"] == "T2 small"
    uids = [s.uid for s in list_series(tmp_path)]
    assert uids == ["1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"]
    with pytest.raises(InputError) as exc:
        read_volume(tmp_path, series="9.9.9")
    assert "9.9.9" in str(exc.value) and "1.2.826.0.1.3680043.8.498.1" in str(exc.value)


def test_zipped_series(tmp_path, mni_volume, monkeypatch):
    write_series(mni_volume, tmp_path / "series")
    archive = _zip_folder(tmp_path / "series", tmp_path / "series.zip")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    vol = read_volume(archive)
    assert vol.same_grid(mni_volume, tol=1e-4)
    assert np.array_equal(vol.array, mni_volume.array)
    assert vol.meta["format"] == "dicom-zip"
    assert vol.meta["source"] == str(archive)
    assert list(scratch.iterdir()) == []  # the unpacked copy is gone


def test_two_series_in_a_zip_need_a_choice(tmp_path, mni_crop):
    write_series(Volume(mni_crop), tmp_path / "s" / "a", series_uid="1.2.3.4.1")
    write_series(Volume(mni_crop[:4]), tmp_path / "s" / "b", series_uid="1.2.3.4.2")
    archive = _zip_folder(tmp_path / "s", tmp_path / "two.zip")
    with pytest.raises(InputError, match=r"two\.zip holds 2 DICOM series"):
        read_volume(archive)
    assert read_volume(archive, series="1.2.3.4.2").shape == (4, 48, 40)


def test_other_files_in_the_folder_are_ignored(tmp_path, mni_volume):
    write_series(mni_volume, tmp_path)
    (tmp_path / "README.txt").write_text("exported by a PACS")
    (tmp_path / "DICOMDIR").write_bytes(b"\x00" * 200)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")
    (tmp_path / "notes.dcm").write_text("not dicom either")
    assert np.array_equal(read_volume(tmp_path).array, mni_volume.array)


def test_several_images_at_one_position_are_refused(tmp_path, mni_crop):
    paths = write_series(Volume(mni_crop[:4]), tmp_path, shuffle_names=False)
    extra = pydicom.dcmread(paths[1])
    extra.SOPInstanceUID = extra.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    extra.save_as(tmp_path / "echo2.dcm")
    with pytest.raises(InputError, match="5 images at 4 positions"):
        read_volume(tmp_path)


def test_a_missing_slice_is_refused(tmp_path, mni_crop):
    paths = write_series(Volume(mni_crop[:6], spacing=SPACING), tmp_path, shuffle_names=False)
    paths[3].unlink()
    with pytest.raises(InputError, match="uneven slice gaps .*missing slices"):
        read_volume(tmp_path)


def test_mixed_sizes_in_one_series_are_refused(tmp_path, mni_crop):
    write_series(Volume(mni_crop[:3]), tmp_path / "a", series_uid="1.2.3.9")
    write_series(Volume(mni_crop[:3, :10, :10]), tmp_path / "b", series_uid="1.2.3.9")
    with pytest.raises(InputError, match="different sizes"):
        read_volume(tmp_path)


def test_instance_number_orders_slices_without_positions(tmp_path, mni_crop):
    paths = write_series(Volume(mni_crop[:5]), tmp_path)
    for path in paths:
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.save_as(path)
    vol = read_volume(tmp_path)
    assert np.array_equal(vol.array, mni_crop[:5])


def test_single_dicom_file_is_one_slice():
    path = get_testdata_file("CT_small.dcm")
    vol = read_volume(path)
    assert vol.shape == (1, 128, 128)
    assert vol.meta["modality"] == "CT"
    assert vol.origin == pytest.approx((-158.135803, -179.035797, -75.699997))
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(vol.array[0], ds.pixel_array.astype(np.int32) - 1024)


def test_a_folder_with_one_pydicom_test_file(tmp_path):
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "IM1")
    vol = read_volume(tmp_path)
    assert vol.shape == (1, 64, 64) and vol.meta["modality"] == "MR"

"""write_volume: atomic replacement, temporary files, folders, extensions and label checks."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from volsam.core.errors import OutputError
from volsam.core.volume import Volume
from volsam.io import atomic as atomic_module
from volsam.io import read_volume, write_volume
from volsam.io import writers as writers_module


@pytest.fixture()
def vol() -> Volume:
    return Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), spacing=(0.7, 0.9, 3.0))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".npz"])
def test_success_leaves_only_the_output(tmp_path, vol, suffix):
    out = write_volume(vol, tmp_path / f"seg{suffix}", label=True)
    assert out == tmp_path / f"seg{suffix}"
    assert [p.name for p in tmp_path.iterdir()] == [f"seg{suffix}"]


def test_temporary_file_is_hidden_in_the_same_folder_with_the_real_extension(tmp_path, vol, monkeypatch):
    seen = []
    real = sitk.WriteImage

    def spy(image, path, *args, **kwargs):
        seen.append(path)
        return real(image, path, *args, **kwargs)

    monkeypatch.setattr(writers_module.sitk, "WriteImage", spy)
    write_volume(vol, tmp_path / "scan.nii.gz")
    (temp,) = seen
    name = temp.rsplit("/", 1)[-1]
    assert temp.startswith(str(tmp_path))
    assert name.startswith(".scan.tmp-") and name.endswith(".nii.gz")


def test_missing_folders_are_created(tmp_path, vol):
    out = write_volume(vol, tmp_path / "a" / "b" / "c.nrrd")
    assert np.array_equal(read_volume(out).array, vol.array)


def _old_file(tmp_path):
    old = tmp_path / "seg.nii.gz"
    old.write_bytes(b"previous result")
    return old


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path, vol, monkeypatch):
    old = _old_file(tmp_path)

    def failing(image, path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half written")
        raise RuntimeError("ITK ERROR: NiftiImageIO(0x1): disk full")

    monkeypatch.setattr(writers_module.sitk, "WriteImage", failing)
    with pytest.raises(OutputError) as exc:
        write_volume(vol, old)
    assert "disk full" in str(exc.value) and "\n" not in str(exc.value)
    assert old.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["seg.nii.gz"]


def test_failed_replace_keeps_the_old_file_and_no_temp(tmp_path, vol, monkeypatch):
    old = _old_file(tmp_path)

    def failing_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic_module.os, "replace", failing_replace)
    with pytest.raises(OutputError, match="Permission denied"):
        write_volume(vol, old)
    assert old.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["seg.nii.gz"]


def test_failed_npz_write_keeps_the_old_file(tmp_path, vol, monkeypatch):
    old = tmp_path / "seg.npz"
    old.write_bytes(b"previous result")

    def failing(volume, array, fh, key="segs"):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers_module, "save_npz", failing)
    with pytest.raises(OutputError, match="No space left"):
        write_volume(vol, old, label=True)
    assert old.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["seg.npz"]


def test_replacing_an_existing_file(tmp_path, vol):
    old = _old_file(tmp_path)
    write_volume(vol, old)
    assert np.array_equal(read_volume(old).array, vol.array)


def test_parent_is_a_file(tmp_path, vol):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        write_volume(vol, tmp_path / "file" / "seg.nii.gz")


def test_target_is_a_folder(tmp_path, vol):
    (tmp_path / "seg.nii.gz").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        write_volume(vol, tmp_path / "seg.nii.gz")


@pytest.mark.parametrize("name", ["seg.png", "seg.nii.bz2", "seg", ".nii.gz", "seg.mhd", "seg.dcm"])
def test_unknown_extension(tmp_path, vol, name):
    with pytest.raises(OutputError) as exc:
        write_volume(vol, tmp_path / name)
    assert name in str(exc.value) and ".nii.gz" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ([0, 70000], "<= 65535"),
        ([-1, 2], ">= 0"),
        ([0.0, 1.5], "integer values"),
        ([0.0, np.nan], "integer values"),
    ],
)
def test_bad_label_values(tmp_path, values, needle):
    labels = Volume(np.array(values).reshape(1, 1, 2))
    with pytest.raises(OutputError, match=needle):
        write_volume(labels, tmp_path / "seg.nii.gz", label=True)
    assert list(tmp_path.iterdir()) == []


# -- 3D Slicer's segmentation file ---------------------------------------------------------------------------
def _seg_volume() -> Volume:
    array = np.zeros((5, 6, 7), np.uint8)  # [k, j, i]
    array[1:4, 1:4, 2:6] = 1
    array[4, 5, 6] = 3
    direction = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, -1]])  # a rotation and a flip of k
    return Volume(array, spacing=(0.7, 0.9, 3.0), origin=(10.0, -4.5, 2.25), direction=direction)


def test_seg_nrrd_holds_the_label_map_on_its_grid_with_named_segments(tmp_path):
    labels = _seg_volume()
    out = writers_module.write_labels(labels, tmp_path / "a" / "seg.seg.nrrd", names={1: "liver", 3: "lesion"})
    assert out == tmp_path / "a" / "seg.seg.nrrd" and [p.name for p in out.parent.iterdir()] == ["seg.seg.nrrd"]
    back = read_volume(out)
    assert np.array_equal(back.array, labels.array) and back.array.dtype == np.uint8
    assert np.allclose(back.spacing, labels.spacing) and np.allclose(back.origin, labels.origin)
    assert np.allclose(back.direction, labels.direction)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(out))
    reader.ReadImageInformation()
    meta = {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}
    assert meta["Segment0_Name"] == "liver" and meta["Segment1_Name"] == "lesion"
    assert meta["Segment1_LabelValue"] == "3" and meta["Segment1_Extent"] == "6 6 5 5 4 4"
    assert b"encoding: gzip" in out.read_bytes()[:400]


def test_seg_nrrd_names_come_from_a_sessions_label_map(tmp_path):
    labels = _seg_volume().with_array(_seg_volume().array, labels={1: "kidney", 3: "cyst"})
    out = write_volume(labels, tmp_path / "s.seg.nrrd", label=True)  # write_volume sends label maps there too
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(out))
    reader.ReadImageInformation()
    assert [reader.GetMetaData(f"Segment{n}_Name") for n in (0, 1)] == ["kidney", "cyst"]


def test_seg_nrrd_refuses_images_and_other_names(tmp_path, vol):
    with pytest.raises(OutputError, match="holds label maps, not images"):
        write_volume(vol, tmp_path / "x.seg.nrrd")
    with pytest.raises(OutputError, match=r"named NAME\.seg\.nrrd"):
        writers_module.write_slicer_seg(_seg_volume(), tmp_path / "x.nrrd")
    with pytest.raises(OutputError, match="<= 65535"):
        writers_module.write_labels(Volume(np.array([[[0, 70000]]])), tmp_path / "big.seg.nrrd")
    assert list(tmp_path.iterdir()) == []


def test_seg_nrrd_never_overwrites_its_input(tmp_path):
    source = tmp_path / "in.seg.nrrd"
    writers_module.write_labels(_seg_volume(), source)
    before = source.read_bytes()
    with pytest.raises(OutputError):
        writers_module.write_labels(read_volume(source), source)
    assert source.read_bytes() == before


def test_seg_nrrd_reads_in_slicerio(tmp_path):
    slicerio = pytest.importorskip("slicerio", reason="slicerio is installed in the slicer-core test venv")
    out = writers_module.write_labels(_seg_volume(), tmp_path / "s.seg.nrrd", names={1: "liver"})
    seg = slicerio.read_segmentation(str(out))
    assert [(s["name"], s["labelValue"]) for s in seg["segments"]] == [("liver", 1), ("object 3", 3)]
    assert seg["segments"][0]["color"] == pytest.approx([230 / 255, 25 / 255, 75 / 255], abs=1e-6)

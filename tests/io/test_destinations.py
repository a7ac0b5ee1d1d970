"""Where outputs may go (volsam.io.destinations): never an input, whatever the path's spelling; files and
folders where they fit; parents created; a failed job's new outputs removed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from volsam.core.errors import OutputError
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume
from volsam.io.destinations import Destination, NewOutputs, check_destinations, new_outputs_only


@pytest.fixture
def image(tmp_path):
    return write_volume(Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5)), tmp_path / "scan.nii.gz")


def _refused(dest, inputs, match):
    with pytest.raises(OutputError, match=match):
        check_destinations([dest], inputs)


def test_an_output_may_not_be_an_input_by_any_spelling(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spelling in ("scan.nii.gz", "./scan.nii.gz", "sub/../scan.nii.gz", str(image)):
        (tmp_path / "sub").mkdir(exist_ok=True)
        _refused(Destination(tmp_path / spelling, "label map"), [image], "would replace the input")
    link = tmp_path / "link.nii.gz"
    link.symlink_to(image)
    _refused(Destination(link, "label map"), [image], "would replace the input")
    hard = tmp_path / "hard.nii.gz"
    os.link(image, hard)
    _refused(Destination(hard, "label map"), [image], "would replace the input")
    check_destinations([Destination(tmp_path / "other.nii.gz", "label map")], [image])  # fine


def test_nothing_goes_inside_an_input_folder(tmp_path):
    series = tmp_path / "dicom"
    series.mkdir()
    _refused(Destination(series / "seg.nii.gz", "label map"), [series], "inside the input folder")
    _refused(Destination(series / "png", "overlay folder", folder=True), [series], "inside the input folder")
    check_destinations([Destination(tmp_path / "seg.nii.gz", "label map")], [series])


def test_files_folders_parents_and_duplicates(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "afolder").mkdir()
    _refused(Destination(tmp_path / "afile", "overlay folder", folder=True), [], "must be a folder")
    _refused(Destination(tmp_path / "afolder", "label map"), [], "must be a file")
    _refused(Destination(tmp_path / "afile" / "seg.nii.gz", "label map"), [], "is a file, not a folder")
    with pytest.raises(OutputError, match="would be the same file"):
        check_destinations([Destination(tmp_path / "a.json", "sidecar"), Destination(tmp_path / "a.json", "masks")])
    check_destinations([Destination(tmp_path / "new" / "deeper" / "seg.nii.gz", "label map")])  # created later
    assert not (tmp_path / "new").exists()  # checking writes nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    _refused(Destination(locked / "seg.nii.gz", "label map"), [], "no permission")


def test_a_failure_removes_only_what_the_block_created(tmp_path):
    keep = tmp_path / "old.nii.gz"
    keep.write_text("old")
    dests = [
        Destination(keep, "label map"),
        Destination(tmp_path / "new" / "png", "overlay folder", folder=True),
        Destination(tmp_path / "seg.nii.gz", "label map"),
    ]
    with pytest.raises(KeyboardInterrupt), new_outputs_only(dests):
        keep.write_text("replaced")
        (tmp_path / "new" / "png").mkdir(parents=True)
        (tmp_path / "new" / "png" / "slice_0001.png").write_text("x")
        (tmp_path / "seg.nii.gz").write_text("x")
        raise KeyboardInterrupt
    assert keep.read_text() == "replaced"  # existed before: never removed
    assert not (tmp_path / "seg.nii.gz").exists() and not (tmp_path / "new").exists()
    guard = NewOutputs(dests)
    guard.remove()  # nothing new: nothing happens
    assert keep.exists()


def test_write_volume_never_overwrites_the_file_a_volume_came_from(tmp_path, image):
    vol = read_volume(image)
    before = image.read_bytes()
    with pytest.raises(OutputError, match="would replace the input"):
        write_volume(vol.with_array(vol.array > 10), image, label=True)
    assert image.read_bytes() == before
    out = write_volume(vol.with_array(vol.array > 10), tmp_path / "a" / "b" / "seg.nii.gz", label=True)
    assert out.is_file()  # missing parent folders are created

"""The file job's label map without full-size copies (issue 21, memory): one object's label map is written as
``segment`` made it, several are painted in turn (later wins), and the voxel counts and label list come without
``np.unique``; the written voxels are those of painting every object onto zeros, as before."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.toy_engine import ToyEngine
from volsam.core import Box2D, Volume
from volsam.io import read_volume, write_volume
from volsam.io.labels import count_value, label_array
from volsam.jobs.request import SegmentRequest
from volsam.jobs.volume import segment_file
from volsam.segmentation import segment


def _image(tmp_path):
    array = np.zeros((9, 40, 48), np.float32)  # [k, j, i]: two bright blocks that touch on slices 3..5
    array[1:8, 8:20, 6:22] = 200.0
    array[3:6, 16:30, 18:40] = 200.0
    return write_volume(Volume(array, spacing=(0.7, 0.7, 1.0)), tmp_path / "img.nii.gz")


def _painted(path, objects, label):
    """The label map as the job made it before: zeros, each object's voxels painted in turn."""
    image = read_volume(path)
    request = SegmentRequest(label=label)
    out = np.zeros(image.shape, np.uint8 if label + len(objects) <= 256 else np.uint16)
    for n, group in enumerate(objects):
        labelmap = segment(image, group, engine=ToyEngine(), axis="k", label=label + n, settings=request.settings())
        out[labelmap.array > 0] = label + n
    return out


@pytest.mark.parametrize("label", [1, 7, 300])
def test_one_object_is_written_as_painting_it_onto_zeros(tmp_path, label):
    path = _image(tmp_path)
    box = Box2D(8, 10, 20, 18, slice=4)
    result = segment_file(path, [box], tmp_path / "out.nii.gz", SegmentRequest(label=label), engine=ToyEngine())
    written = read_volume(tmp_path / "out.nii.gz").array
    expected = _painted(path, [[box]], label)
    assert written.dtype == expected.dtype and np.array_equal(written, expected)
    assert result.voxels == int(np.count_nonzero(expected)) > 0
    assert result.objects == [(label, int(np.count_nonzero(expected == label)))]


def test_several_objects_are_painted_in_turn_later_wins(tmp_path):
    path = _image(tmp_path)
    objects = [[Box2D(8, 10, 20, 18, slice=4)], [Box2D(17, 15, 39, 29, slice=4)]]
    result = segment_file(path, [], tmp_path / "out.nii.gz", SegmentRequest(label=2), engine=ToyEngine(),
                          objects=objects)  # fmt: skip
    written = read_volume(tmp_path / "out.nii.gz").array
    expected = _painted(path, objects, 2)
    assert np.array_equal(written, expected) and set(np.unique(written)) == {0, 2, 3}
    assert result.objects == [(2, int((expected == 2).sum())), (3, int((expected == 3).sum()))]


@pytest.mark.parametrize("shape", [(0,), (5,), (33, 4, 3), (16, 2), (17, 1, 1)])
@pytest.mark.parametrize("block", [1, 4, 16])
def test_count_value_counts_like_numpy(shape, block):
    array = np.random.default_rng(len(shape) + block).integers(0, 4, shape).astype(np.uint16)
    for value in range(5):
        assert count_value(array, value, block) == int(np.count_nonzero(array == value))
    assert count_value(np.array(3), 3) == 1


def test_a_ready_label_map_is_not_copied_for_writing(tmp_path):
    ready = np.zeros((3, 4, 5), np.uint8)
    assert label_array(ready, tmp_path / "x.nii.gz") is ready
    wide = np.full((3, 4, 5), 2, np.int32)  # other types still become the smallest label type, as a copy
    narrowed = label_array(wide, tmp_path / "x.nii.gz")
    assert narrowed.dtype == np.uint8 and not np.shares_memory(narrowed, wide)

"""CVPR-challenge .npz: imgs (D, H, W) -> array [k, j, i]; spacing (z, y, x) by default; segs output."""

from __future__ import annotations

import numpy as np
import pytest

from volsam.core.errors import InputError
from volsam.core.volume import Volume
from volsam.io import read_npz, read_volume, write_volume


@pytest.fixture()
def case(tmp_path):
    imgs = np.random.default_rng(1).integers(0, 256, size=(6, 7, 8), dtype=np.uint8)
    boxes = np.array([[1, 2, 0, 5, 6, 4]])
    path = tmp_path / "CT_Abd_case.npz"
    np.savez_compressed(
        path, imgs=imgs, gts=(imgs > 128).astype(np.uint8), spacing=np.array([3.0, 0.9, 0.7]), boxes=boxes
    )
    return path, imgs


def test_imgs_and_spacing_zyx(case):
    path, imgs = case
    vol = read_volume(path)
    assert np.array_equal(vol.array, imgs)
    assert vol.array.dtype == np.uint8
    assert vol.size == (8, 7, 6)
    assert vol.spacing == (0.7, 0.9, 3.0)  # (i, j, k) = (x, y, z)
    assert vol.origin == (0.0, 0.0, 0.0)
    assert np.array_equal(vol.direction, np.eye(3))
    assert vol.meta["format"] == "npz" and vol.meta["modality"] is None
    assert vol.meta["spacing_order"] == "zyx"


def test_spacing_xyz_option_for_medsam_preprocessed_files(case):
    path, _ = case
    assert read_npz(path, spacing_order="xyz").spacing == (3.0, 0.9, 0.7)


def test_missing_spacing_means_1mm(tmp_path):
    path = tmp_path / "nospacing.npz"
    np.savez(path, imgs=np.zeros((2, 3, 4), np.float32))
    vol = read_volume(path)
    assert vol.spacing == (1.0, 1.0, 1.0) and vol.meta["spacing_in_file"] is False


def test_object_arrays_such_as_clicks_are_not_unpickled(tmp_path):
    path = tmp_path / "clicks.npz"
    np.savez(
        path,
        imgs=np.zeros((2, 3, 4), np.uint8),
        spacing=[1, 1, 1],
        clicks=np.array([{"fg": [[1, 2, 3]], "bg": []}], dtype=object),
    )
    assert read_volume(path).shape == (2, 3, 4)


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        ({"gts": np.zeros((2, 3, 4))}, "no 'imgs' (or 'segs') array"),
        ({"imgs": np.zeros((2, 3, 4, 5))}, "(D, H, W)"),
        ({"imgs": np.zeros((64, 64, 3), np.float32)}, "2D colour 'imgs' (64, 64, 3) must be uint8"),
        ({"imgs": np.zeros((2, 3, 4)), "spacing": np.array([1.0, -1.0, 1.0])}, "positive"),
        ({"imgs": np.full((2, 3, 4), "a")}, "non-numeric"),
    ],
)
def test_bad_npz(tmp_path, arrays, needle):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError) as exc:
        read_volume(path)
    assert needle in str(exc.value) and "bad.npz" in str(exc.value)


def test_segs_output_like_the_challenge(case, tmp_path):
    path, imgs = case
    image = read_volume(path)
    seg = image.with_array((imgs > 100).astype(np.int64) + (imgs > 200))
    out = write_volume(seg, tmp_path / "out" / "CT_Abd_case.npz", label=True)
    with np.load(out) as data:
        assert sorted(data.keys()) == ["direction", "origin", "segs", "spacing", "spacing_order"]
        assert data["segs"].dtype == np.uint8
        assert data["segs"].shape == imgs.shape  # (D, H, W)
        assert np.array_equal(data["segs"], seg.array)
        assert data["spacing"].tolist() == [3.0, 0.9, 0.7]  # same order as the input file


def test_segs_spacing_follows_the_input_order(tmp_path):
    vol = Volume(np.ones((2, 3, 4), np.uint8), spacing=(0.5, 0.6, 2.0), meta={"spacing_order": "xyz"})
    with np.load(write_volume(vol, tmp_path / "s.npz", label=True)) as data:
        assert data["spacing"].tolist() == [0.5, 0.6, 2.0]


def test_a_volsam_npz_label_map_reads_back_onto_the_input_grid(tmp_path):
    """``-o seg.npz`` is complete: segs + spacing as the challenges expect, plus origin, direction and the
    spacing order, so that ``volsam info seg.npz`` and ``read_volume`` put it back on the input's grid."""
    from volsam.core.volume import Volume
    from volsam.io import read_volume, write_volume

    direction = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    image = Volume(
        np.zeros((4, 5, 6), np.int16), spacing=(0.7, 0.8, 2.5), origin=(10.0, -5.0, 3.0), direction=direction
    )
    labels = image.with_array((np.arange(120).reshape(4, 5, 6) % 7 == 0).astype(np.uint8))
    back = read_volume(write_volume(labels, tmp_path / "seg.npz", label=True))
    assert back.same_grid(image) and np.array_equal(back.array, labels.array)
    assert back.meta["npz_key"] == "segs"

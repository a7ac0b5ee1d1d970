"""describe() / format_description(): the facts `volsam info` prints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.io.conftest import OBLIQUE
from volsam.core.volume import Volume
from volsam.io import describe, format_description, read_volume
from volsam.io.samples import mni152_path


def test_mni152_t1():
    d = describe(read_volume(mni152_path("t1")))
    assert d["size"] == [197, 233, 189]
    assert d["spacing"] == [1.0, 1.0, 1.0]
    assert d["axes"] == "RAS"  # the template is stored RAS: i towards R, j towards A
    assert d["slice_plane"] == "axial"
    assert d["direction"] == [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    assert (d["min"], d["max"]) == (0.0, 255.0)
    assert d["modality"] == "unknown" and d["modality_source"] is None
    assert d["dtype"] == "uint8" and d["format"] == "nifti" and d["nan_count"] == 0
    json.dumps(d)  # plain values only


def test_values_by_hand():
    array = np.array([[[-1000.0, 0.0], [np.nan, 40.0]]], dtype=np.float32)  # (k, j, i) = (1, 2, 2)
    vol = Volume(array, spacing=(0.5, 0.8, 2.5), origin=(1, 2, 3), direction=np.diag([-1.0, -1.0, 1.0]))
    d = describe(vol)
    assert d["size"] == [2, 2, 1]
    assert d["spacing"] == [0.5, 0.8, 2.5]
    assert d["origin"] == [1.0, 2.0, 3.0]
    assert d["axes"] == "RAS"
    assert d["min"] == -1000.0 and d["max"] == 40.0
    assert d["mean"] == pytest.approx(-320.0)  # (-1000 + 0 + 40) / 3, NaN ignored
    assert d["nan_count"] == 1
    assert d["modality"] == "CT" and d["modality_source"] == "guess"  # minimum below -500
    assert d["dtype"] == "float32"


def test_modality_from_meta_wins_over_the_guess():
    vol = Volume(np.full((1, 2, 2), -1000, np.int16), meta={"modality": "PT", "series_uid": "1.2.3"})
    d = describe(vol)
    assert d["modality"] == "PT" and d["modality_source"] == "file"
    assert d["series_uid"] == "1.2.3"


def test_oblique_sagittal_stack():
    # k along world x (L): the k-slices are sagittal even when tilted
    direction = OBLIQUE @ np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    d = describe(Volume(np.zeros((3, 4, 5), np.uint8), direction=direction))
    assert d["slice_plane"] == "sagittal"
    assert d["modality"] == "unknown"


def test_all_nan():
    d = describe(Volume(np.full((1, 1, 2), np.nan)))
    assert d["min"] is None and d["max"] is None and d["mean"] is None and d["nan_count"] == 2
    assert "n/a" in format_description(d)


def test_format_description_text():
    vol = Volume(
        np.array([[[-1000.0, np.nan]]]),
        spacing=(0.7, 0.9, 3.0),
        meta={
            "source": "/data/ct.nii.gz",
            "format": "nifti",
            "pixel_type": "int16",
            "series_uid": "1.2.3",
            "series_description": "abdomen",
        },
    )
    text = format_description(describe(vol))
    lines = text.splitlines()
    assert lines[0] == "source     /data/ct.nii.gz (nifti)"
    assert "size       2 x 1 x 1 voxels (i, j, k)" in lines
    assert any(line.startswith("spacing    0.7 x 0.9 x 3 mm") for line in lines)
    assert "axes       i -> L, j -> P, k -> S; k-slices are axial" in lines
    assert "modality   CT (guessed: minimum below -500)" in lines
    assert "dtype      float64 (stored as int16)" in lines
    assert "NaN voxels: 1" in text
    assert "series     1.2.3 (abdomen)" in lines

"""Overlay PNGs as radiology viewers show them: display orientation from the direction matrix, the
radiological convention by default, the slice index and edge letters on each image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from volsam.core.errors import OutputError
from volsam.io.overlay import display_orientation, write_overlays

RAS_STORED = np.diag([-1.0, -1.0, 1.0])  # a NIfTI written in RAS: i runs to the patient's right, j to anterior
CORONAL = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)  # i to L, j to I, slices along P
SAGITTAL = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], float)  # i to P, j to I, slices along L
SWAPPED = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], float)  # i to P, j to L: rows and columns swap on screen


@pytest.mark.parametrize(
    ("direction", "convention", "plane", "edges", "flips"),
    [
        (np.eye(3), "radiological", "axial", ("R", "L", "A", "P"), (False, False, False)),
        (RAS_STORED, "radiological", "axial", ("R", "L", "A", "P"), (False, True, True)),
        (np.eye(3), "neurological", "axial", ("L", "R", "A", "P"), (False, True, False)),
        (CORONAL, "radiological", "coronal", ("R", "L", "S", "I"), (False, False, False)),
        (SAGITTAL, "radiological", "sagittal", ("A", "P", "S", "I"), (False, False, False)),
        (SWAPPED, "radiological", "axial", ("R", "L", "A", "P"), (True, False, False)),
    ],
    ids=["lps", "ras-stored", "neurological", "coronal", "sagittal", "i-and-j-swapped"],
)  # fmt: skip
def test_display_orientation_follows_the_direction_matrix(direction, convention, plane, edges, flips):
    o = display_orientation(direction, convention)
    assert (o.plane, o.edges, (o.transpose, o.flip_x, o.flip_y)) == (plane, edges, flips)


def test_an_oblique_slice_takes_the_nearest_axes():
    angle = np.deg2rad(20)
    c, s = np.cos(angle), np.sin(angle)
    tilted = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ RAS_STORED
    assert display_orientation(tilted).edges == ("R", "L", "A", "P")
    with pytest.raises(OutputError, match="convention"):
        display_orientation(np.eye(3), "upside-down")


def test_overlays_put_the_patients_left_on_the_right_and_carry_the_slice_index(tmp_path):
    grey = np.full((3, 40, 60), 60, np.uint8)
    labels = np.zeros_like(grey)
    labels[1, 2:8, 2:8] = 1  # small i, small j: with RAS storage, the patient's left and posterior
    paths = write_overlays(grey, labels, tmp_path / "rad", direction=RAS_STORED)
    assert [p.name for p in paths] == ["slice_0001.png", "montage.png", "orientation.json"]
    shown = np.asarray(Image.open(paths[0]))
    marked = np.argwhere((shown[..., 0] != shown[..., 1]) | (shown[..., 1] != shown[..., 2]))  # coloured pixels
    assert marked[:, 1].min() > 45 and marked[:, 0].min() > 25  # right of the screen (L), bottom (P)
    assert (shown[:10, :20] >= 200).all(axis=-1).any()  # "k=1" in white, top left
    about = json.loads((tmp_path / "rad" / "orientation.json").read_text())
    assert about["edges"] == ["R", "L", "A", "P"] and about["flip_x"] and about["flip_y"]
    neuro = write_overlays(grey, labels, tmp_path / "neuro", direction=RAS_STORED, convention="neurological")
    mirrored = np.asarray(Image.open(neuro[0]))
    marked = np.argwhere((mirrored[..., 0] != mirrored[..., 1]) | (mirrored[..., 1] != mirrored[..., 2]))
    assert marked[:, 1].max() < 15  # the patient's left on the screen's left

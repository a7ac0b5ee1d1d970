"""Shared fixtures of the io tests: a small crop of the MNI152 T1 and direction matrices."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from volsam.core.volume import Volume
from volsam.io.samples import mni152_path


def rotation(axis: int, degrees: float) -> np.ndarray:
    """3x3 rotation by ``degrees`` about world axis ``axis`` (0=x, 1=y, 2=z)."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    a, b = [(1, 2), (0, 2), (0, 1)][axis]
    m = np.eye(3)
    m[a, a], m[a, b], m[b, a], m[b, b] = c, -s, s, c
    return m


OBLIQUE = rotation(0, 20.0) @ rotation(1, 20.0)
DIRECTIONS = {
    "identity": np.eye(3),
    "flip_xy": np.diag([-1.0, -1.0, 1.0]),
    "las": np.diag([-1.0, 1.0, 1.0]),  # left-handed: i runs towards R
    "oblique": OBLIQUE,
    "oblique_left": OBLIQUE @ np.diag([1.0, 1.0, -1.0]),
}
SPACING = (0.7, 0.9, 3.0)
ORIGIN = (12.345678, -98.7654321, 33.3)


@pytest.fixture(scope="session")
def mni_crop() -> np.ndarray:
    """40 x 48 x 12 voxels (i, j, k) of real brain from the MNI152 T1, as int16 [k, j, i]."""
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("t1"))))
    return np.ascontiguousarray(array[90:102, 100:148, 80:120]).astype(np.int16)


@pytest.fixture()
def mni_volume(mni_crop: np.ndarray) -> Volume:
    """The crop on an anisotropic, oblique grid."""
    return Volume(mni_crop.copy(), spacing=SPACING, origin=(10.5, -20.25, 30.125), direction=OBLIQUE)

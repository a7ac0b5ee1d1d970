import numpy as np
import pytest

from volsam.core import InputError, Volume


def _rot(deg_x: float, deg_z: float) -> np.ndarray:
    ax, az = np.radians(deg_x), np.radians(deg_z)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ rx


def test_size_is_ijk_and_shape_is_kji():
    vol = Volume(np.zeros((4, 5, 6)))
    assert vol.size == (6, 5, 4)
    assert vol.shape == (4, 5, 6)


def test_index_world_round_trip_oblique_anisotropic():
    vol = Volume(np.zeros((3, 4, 5)), spacing=(0.7, 0.9, 3.0), origin=(10, -20, 5), direction=_rot(20, 30))
    ijk = np.array([[0, 0, 0], [4, 3, 2], [1.5, 2.5, 0.5]])
    assert np.allclose(vol.world_to_index(vol.index_to_world(ijk)), ijk)
    # voxel (0, 0, 1) is one k-step (3 mm) along the direction's third column
    step = vol.index_to_world((0, 0, 1)) - vol.index_to_world((0, 0, 0))
    assert np.allclose(step, 3.0 * vol.direction[:, 2])


def test_axis_names_and_planes():
    lps = Volume(np.zeros((2, 2, 2)))
    assert lps.axis_names() == ("L", "P", "S")
    assert lps.slice_plane(2) == "axial" and lps.slice_plane(1) == "coronal" and lps.slice_plane(0) == "sagittal"
    flipped = Volume(np.zeros((2, 2, 2)), direction=np.diag([-1.0, -1.0, 1.0]))
    assert flipped.axis_names() == ("R", "A", "S")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"array": np.zeros((2, 2))}, "3D array"),
        ({"array": np.zeros((2, 2, 2)), "spacing": (1, 0, 1)}, "spacing"),
        ({"array": np.zeros((2, 2, 2)), "origin": (0, np.nan, 0)}, "origin"),
        ({"array": np.zeros((2, 2, 2)), "direction": np.eye(3) * 2}, "direction"),
    ],
)
def test_bad_geometry_is_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        Volume(**kwargs)


def test_with_array_keeps_grid_and_checks_shape():
    vol = Volume(np.zeros((2, 3, 4)), spacing=(1, 2, 3), origin=(1, 2, 3))
    lab = vol.with_array(np.ones((2, 3, 4), np.uint8))
    assert lab.same_grid(vol) and lab.array.dtype == np.uint8
    with pytest.raises(InputError, match="does not match"):
        vol.with_array(np.ones((3, 3, 4)))

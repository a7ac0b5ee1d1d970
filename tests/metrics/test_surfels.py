"""The surfel tables: geometry checked by hand, and every code against surface-distance's lookup tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from volsam.metrics.surfels import corner_codes, surfel_sizes


def _reversed_bits(n_bits: int) -> np.ndarray:
    """Our code -> surface-distance's code (its kernel gives the voxel at offset t the bit 2^(n-1-ours))."""
    return np.array([int(f"{c:0{n_bits}b}"[::-1], 2) for c in range(2**n_bits)])


def test_every_code_matches_surface_distance(sd):
    from surface_distance import lookup_tables

    rng = np.random.default_rng(0)
    for spacing in [(1.0, 1.0, 1.0), (0.7, 1.1, 2.4), *(tuple(rng.uniform(0.2, 4.0, 3)) for _ in range(8))]:
        want = lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
        np.testing.assert_allclose(surfel_sizes(spacing)[_reversed_bits(8)], want, rtol=0, atol=1e-12)
        want2 = lookup_tables.create_table_neighbour_code_to_contour_length(spacing[:2])
        np.testing.assert_allclose(surfel_sizes(spacing[:2])[_reversed_bits(4)], want2, rtol=0, atol=1e-12)


def test_sizes_by_hand():
    s = (2.0, 3.0, 5.0)  # array order (k, j, i)
    sizes = surfel_sizes(s)
    one_voxel = 1 << 7  # the voxel at offset (1, 1, 1)
    assert sizes[0] == sizes[255] == 0.0
    assert sizes[one_voxel] == pytest.approx(math.sqrt((2 * 3) ** 2 + (2 * 5) ** 2 + (3 * 5) ** 2) / 8)
    face_k = 0b1111_0000  # the four voxels with t_k = 1: a flat square across k
    assert sizes[face_k] == pytest.approx(3 * 5)
    edge_i = 0b1100_0000  # t = (1, 1, 0) and (1, 1, 1): an edge along i
    assert sizes[edge_i] == pytest.approx(5 * math.hypot(2, 3) / 2)
    # a surface and its complement are the same surface
    assert np.allclose(sizes, sizes[::-1])
    lengths = surfel_sizes((2.0, 3.0))  # 2D, array order (j, i)
    assert lengths[0b0001] == pytest.approx(math.hypot(2, 3) / 2)
    assert lengths[0b0011] == pytest.approx(3.0)  # two voxels side by side along i: a run along i
    assert lengths[0b0101] == pytest.approx(2.0)
    assert lengths[0b0110] == lengths[0b1001] == pytest.approx(math.hypot(2, 3))  # a saddle: two pieces


def test_sphere_area_is_close_to_four_pi_r_squared():
    # midpoint marching cubes follows the voxel steps, so a digitised sphere's area exceeds 4 pi r^2 a little
    r = 20.0
    k, j, i = np.ogrid[-25:26, -25:26, -25:26]
    ball = k**2 + j**2 + i**2 <= r**2
    assert 1.0 < surfel_sizes((1.0, 1.0, 1.0))[corner_codes(ball)].sum() / (4 * math.pi * r**2) < 1.1
    # the same ball sampled at 2.5 mm along k: coarser steps, a little more area
    kk, jj, ii = np.ogrid[-10:11, -25:26, -25:26]
    coarse = (kk * 2.5) ** 2 + jj**2 + ii**2 <= r**2
    assert 1.0 < surfel_sizes((2.5, 1.0, 1.0))[corner_codes(coarse)].sum() / (4 * math.pi * r**2) < 1.2


def test_corner_codes_of_a_single_voxel_and_the_border():
    m = np.zeros((3, 3, 3), bool)
    m[1, 1, 1] = True
    codes = corner_codes(m)
    assert codes.shape == (4, 4, 4)
    assert np.count_nonzero(codes) == 8 and set(np.unique(codes[codes > 0]).tolist()) == {1 << b for b in range(8)}
    full = corner_codes(np.ones((2, 2), bool))
    assert full.tolist() == [[8, 12, 4], [10, 15, 5], [2, 3, 1]]  # the border is background
    assert ndimage.label(codes > 0)[1] == 1

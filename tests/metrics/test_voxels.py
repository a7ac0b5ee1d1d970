"""MONAI (test-only reference): the boundary-voxel variants equal its defaults; its subvoxel NSD equals ours."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from volsam.core.errors import InputError
from volsam.metrics import dice, hd95_voxels, scores, surface_dice_voxels, voxel_surface_distances

monai_metrics = pytest.importorskip("monai.metrics", reason="MONAI is a test-only reference (make dev)")
torch = pytest.importorskip("torch")

SPACING_IJK = (0.7, 1.1, 2.4)
SPACING_KJI = SPACING_IJK[::-1]  # MONAI takes the spacing in array-axis order


def _random_pair(rng, shape=(18, 22, 20)):
    p = ndimage.gaussian_filter(rng.random(shape), 2) > 0.53
    g = ndimage.gaussian_filter(rng.random(shape), 2) > 0.53
    return p, g


def _onehot(m):
    return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")
def test_agrees_with_monai_on_random_shapes():
    """DSC, boundary-voxel NSD at 2 mm and HD95 equal MONAI's defaults; surfel NSD equals use_subvoxels=True."""
    rng = np.random.default_rng(3)
    for _ in range(4):
        p, g = _random_pair(rng)
        assert p.any() and g.any()
        want_dice = float(monai_metrics.compute_dice(_onehot(p), _onehot(g), include_background=False)[0, 0])
        want_nsd = float(
            monai_metrics.compute_surface_dice(
                _onehot(p), _onehot(g), class_thresholds=[2.0], include_background=False, spacing=list(SPACING_KJI)
            )[0, 0]
        )
        want_surfel_nsd = float(
            monai_metrics.compute_surface_dice(
                _onehot(p), _onehot(g), class_thresholds=[2.0], spacing=list(SPACING_KJI), use_subvoxels=True
            )[0, 0]
        )
        want_hd = float(
            monai_metrics.compute_hausdorff_distance(
                _onehot(p), _onehot(g), include_background=False, percentile=95, spacing=list(SPACING_KJI)
            )[0, 0]
        )
        assert dice(p, g) == pytest.approx(want_dice, abs=1e-6)
        assert surface_dice_voxels(p, g, SPACING_IJK, 2.0) == pytest.approx(want_nsd, abs=1e-6)
        assert hd95_voxels(p, g, SPACING_IJK) == pytest.approx(want_hd, abs=1e-4)
        got = scores(p, g, SPACING_IJK, tolerance_mm=2.0, nsd_zero_below_dice=None)
        assert got.nsd == pytest.approx(want_surfel_nsd, abs=1e-6)  # MONAI computes in float32
        assert got.nsd != pytest.approx(want_nsd, abs=1e-3)  # and the two definitions differ


def _brute_force_distances(p, g, spacing_ijk):
    def surf(m):
        padded = np.pad(m, 1)
        cross = ndimage.generate_binary_structure(m.ndim, 1)
        return m & ~ndimage.binary_erosion(padded, cross)[(slice(1, -1),) * m.ndim]

    sk = np.asarray(spacing_ijk, dtype=float)[::-1]
    cp, cg = np.argwhere(surf(p)) * sk, np.argwhere(surf(g)) * sk
    d = np.sqrt(((cp[:, None, :] - cg[None, :, :]) ** 2).sum(-1))
    return np.sort(d.min(1)), np.sort(d.min(0))


def test_voxel_distances_match_brute_force_in_2d_and_3d():
    rng = np.random.default_rng(0)
    for shape, spacing in (((20, 24, 22), (0.8, 1.2, 2.5)), ((40, 36), (0.6, 1.9))):
        p = ndimage.gaussian_filter(rng.random(shape), 2) > 0.52
        g = ndimage.gaussian_filter(rng.random(shape), 2) > 0.52
        got = voxel_surface_distances(p, g, spacing)
        want = _brute_force_distances(p, g, spacing)
        np.testing.assert_allclose(np.sort(got[0]), want[0])
        np.testing.assert_allclose(np.sort(got[1]), want[1])


def test_voxel_variants_edge_cases():
    z = np.zeros((5, 5, 5), bool)
    a = z.copy()
    a[1:3, 1:3, 1:3] = True
    assert math.isnan(surface_dice_voxels(z, z, (1, 1, 1))) and math.isnan(hd95_voxels(z, z, (1, 1, 1)))
    assert surface_dice_voxels(z, a, (1, 1, 1)) == 0.0 and hd95_voxels(a, z, (1, 1, 1)) == math.inf
    with pytest.raises(InputError, match="non-empty"):
        voxel_surface_distances(z, a, (1, 1, 1))

"""The synthetic-lesion benchmark set: determinism, geometry, extents, prompts and contrast."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from volsam.core.errors import InputError
from volsam.core.volume import Volume
from volsam.data.lesions import (
    KINDS,
    NOISE_SIGMA,
    LesionCase,
    boundary_contrast,
    lesion_cases,
    middle_slice_box,
    tight_box3d,
)
from volsam.io.samples import mni152_path

N_PER_KIND = 3
# |boundary_contrast| of every isotropic case lies in this range: visible but not trivial. The shell's std
# includes the anatomy around the lesion (grey/white matter, sulci), so ~1-3 means "like a grey/white
# boundary"; a lesion painted at constant high contrast on a noise-only background would score > 10.
CONTRAST_RANGE = (0.5, 6.0)


@pytest.fixture(scope="module")
def cases() -> list[LesionCase]:
    return lesion_cases(n_per_kind=N_PER_KIND, seed=0, crop=True)


@pytest.fixture(scope="module")
def by_name(cases) -> dict[str, LesionCase]:
    return {c.name: c for c in cases}


@pytest.fixture(scope="module")
def mni() -> tuple[Volume, np.ndarray]:
    img = sitk.ReadImage(str(mni152_path("t1")))
    t1 = Volume(
        sitk.GetArrayFromImage(img),
        spacing=img.GetSpacing(),
        origin=img.GetOrigin(),
        direction=np.reshape(img.GetDirection(), (3, 3)),
    )
    gm = sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("gm")))).astype(float)
    wm = sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("wm")))).astype(float)
    return t1, (gm + wm) / 255.0


def _label_world(case: LesionCase) -> np.ndarray:
    k, j, i = np.nonzero(case.label.array)
    return case.label.index_to_world(np.stack([i, j, k], axis=1).astype(float))


def test_case_list(cases):
    names = [c.name for c in cases]
    assert len(names) == len(set(names)) == N_PER_KIND * len(KINDS) + 4
    assert names[:2] == ["dark-00", "dark-01"]
    assert names[-4:] == ["dark-00-aniso", "ring-00-aniso", "dark-01-flip-ik", "ring-01-flip-k"]
    for kind in KINDS:
        assert sum(c.kind == kind and not c.variant for c in cases) == N_PER_KIND
    assert len(lesion_cases(n_per_kind=1, crop=True, variants=False)) == len(KINDS)


def test_deterministic():
    a = lesion_cases(n_per_kind=2, seed=7, crop=True)
    b = lesion_cases(n_per_kind=2, seed=7, crop=True)
    for x, y in zip(a, b, strict=True):
        assert x.name == y.name and x.box3d == y.box3d and x.middle_box == y.middle_box
        np.testing.assert_array_equal(x.image.array, y.image.array)
        np.testing.assert_array_equal(x.label.array, y.label.array)
        assert x.image.same_grid(y.image)
    c = lesion_cases(n_per_kind=2, seed=8, crop=True)
    assert any(x.box3d != z.box3d for x, z in zip(a, c, strict=True))


def test_arrays_and_grids(cases):
    for c in cases:
        assert c.image.array.dtype == np.int16 and c.label.array.dtype == np.uint8
        assert set(np.unique(c.label.array)) == {0, 1}
        assert c.image.same_grid(c.label)
        assert c.image.array.min() >= 0
        assert c.image.meta["modality"] == "MR"


def test_box3d_is_the_tight_box(cases):
    for c in cases:
        b = c.box3d
        lab = c.label.array
        c.box3d.validate(c.label.size)
        inside = lab[b.k0 : b.k1 + 1, b.j0 : b.j1 + 1, b.i0 : b.i1 + 1]
        assert inside.sum() == lab.sum()
        for axis in range(3):  # each face of the box touches the label
            assert inside.take(0, axis=axis).any() and inside.take(-1, axis=axis).any()
        assert tight_box3d(lab) == b


def test_middle_box_is_the_tight_2d_box_on_the_middle_slice(cases):
    for c in cases:
        m, b = c.middle_box, c.box3d
        assert m.slice == (b.k0 + b.k1) // 2
        jj, ii = np.nonzero(c.label.array[m.slice])
        assert (m.u0, m.v0, m.u1, m.v1) == (ii.min(), jj.min(), ii.max(), jj.max())
        assert b.i0 <= m.u0 <= m.u1 <= b.i1 and b.j0 <= m.v0 <= m.v1 <= b.j1
        m.validate(c.image.size)


def test_crop_keeps_a_margin(cases):
    for c in cases:
        b, (ni, nj, nk) = c.box3d, c.image.size
        assert b.k0 >= 4 and nk - 1 - b.k1 >= 4  # four slices beyond each end (MNI grid allowing)
        assert min(b.i0, b.j0, ni - 1 - b.i1, nj - 1 - b.j1) >= 20


def test_lesions_lie_inside_the_brain_in_tissue(cases, mni):
    t1, tissue = mni
    for c in cases:
        ijk = np.rint(t1.world_to_index(_label_world(c))).astype(int)
        assert np.all((ijk >= 0) & (ijk < np.array(t1.size)))
        assert np.all(t1.array[ijk[:, 2], ijk[:, 1], ijk[:, 0]] > 0), c.name
        assert (tissue[ijk[:, 2], ijk[:, 1], ijk[:, 0]] > 0.5).mean() > 0.85, c.name
        # and a 2-voxel shell around the lesion is still brain
        grown = ndimage.binary_dilation(c.label.array > 0, iterations=2)
        assert np.all(c.image.array[grown] > 0), c.name


def test_kinds_have_the_promised_extents(cases):
    for c in cases:
        b = c.box3d
        slices, inplane = b.k1 - b.k0 + 1, max(b.i1 - b.i0 + 1, b.j1 - b.j0 + 1)
        if c.variant == "aniso":
            continue
        if c.kind == "small":
            assert 5 <= slices <= 9 and 6 <= inplane <= 12, (c.name, slices, inplane)
        elif c.kind == "flat":
            assert 3 <= slices <= 6 and 20 <= inplane <= 40, (c.name, slices, inplane)
        elif c.kind == "dark":
            assert 10 <= slices <= 30, (c.name, slices)
        elif c.kind == "ring":
            assert 12 <= slices <= 30, (c.name, slices)


def test_lesions_are_textured_and_moderately_contrasted(cases):
    for c in cases:
        if c.variant == "aniso":
            continue
        contrast = boundary_contrast(c.image.array, c.label.array)
        assert CONTRAST_RANGE[0] <= abs(contrast) <= CONTRAST_RANGE[1], (c.name, contrast)
        if c.kind == "dark" or (c.kind in ("small", "flat") and c.name[-2:] in ("00", "02")):
            assert contrast < 0, c.name
        if c.kind in ("dark", "bright", "ring"):
            core = ndimage.binary_erosion(c.label.array > 0, iterations=2)
            assert c.image.array[core].std() > 1.5 * NOISE_SIGMA, c.name  # not a constant blob


def test_ring_has_a_bright_rim_and_a_darker_core(cases):
    for c in cases:
        if c.kind != "ring" or c.variant == "aniso":
            continue
        lab = c.label.array > 0
        rim = lab & ~ndimage.binary_erosion(lab, iterations=2)
        core = ndimage.binary_erosion(lab, iterations=4)
        assert c.image.array[rim].mean() > c.image.array[core].mean() + 40, c.name


def test_anisotropic_copies(by_name):
    for base in ("dark-00", "ring-00"):
        orig, aniso = by_name[base], by_name[f"{base}-aniso"]
        assert aniso.image.spacing == (1.0, 1.0, 3.0) and aniso.label.spacing == (1.0, 1.0, 3.0)
        np.testing.assert_allclose(aniso.image.direction, orig.image.direction)
        vol = orig.label.array.sum() * np.prod(orig.label.spacing)
        vol_aniso = aniso.label.array.sum() * np.prod(aniso.label.spacing)
        assert abs(vol_aniso - vol) / vol < 0.1, (base, vol, vol_aniso)
        assert np.linalg.norm(_label_world(aniso).mean(0) - _label_world(orig).mean(0)) < 1.5
        b = aniso.box3d
        assert b.k1 - b.k0 + 1 == pytest.approx((orig.box3d.k1 - orig.box3d.k0 + 1) / 3, abs=1)


def test_flipped_copies_keep_the_world_geometry(by_name):
    for base, variant in (("dark-01", "flip-ik"), ("ring-01", "flip-k")):
        orig, flip = by_name[base], by_name[f"{base}-{variant}"]
        np.testing.assert_allclose(_label_world(flip).mean(0), _label_world(orig).mean(0), atol=1e-6)
        # same voxels, stored in the other order along the flipped axes
        axes = (0, 2) if variant == "flip-ik" else (0,)
        np.testing.assert_array_equal(np.flip(flip.image.array, axes), orig.image.array)
        # voxel (i, j, k) of the flipped copy sits where voxel (ni-1-i, j, nk-1-k) (or (i, j, nk-1-k)) was
        ni, _, nk = flip.image.size
        ijk = np.array([[0, 0, 0], [3, 5, 7], [ni - 1, 2, nk - 1]], dtype=float)
        src = ijk.copy()
        src[:, 2] = nk - 1 - ijk[:, 2]
        if variant == "flip-ik":
            src[:, 0] = ni - 1 - ijk[:, 0]
        np.testing.assert_allclose(flip.image.index_to_world(ijk), orig.image.index_to_world(src), atol=1e-9)
        # the prompt is computed in the flipped index space
        ob, fb = orig.box3d, flip.box3d
        assert (fb.k0, fb.k1) == (nk - 1 - ob.k1, nk - 1 - ob.k0)
        if "i" in variant.removeprefix("flip-"):
            assert (fb.i0, fb.i1) == (ni - 1 - ob.i1, ni - 1 - ob.i0)
        else:
            assert (fb.i0, fb.i1) == (ob.i0, ob.i1)
        assert flip.image.axis_names() != orig.image.axis_names()


def test_full_size_case_and_crop_is_a_block_of_it(by_name):
    full = lesion_cases(n_per_kind=1, seed=0, crop=False, variants=False)[0]
    assert full.name == "dark-00"
    assert full.image.size == (197, 233, 189) and full.image.spacing == (1.0, 1.0, 1.0)
    crop = by_name["dark-00"]
    offset = np.rint(full.image.world_to_index(crop.image.origin)).astype(int)  # i, j, k
    ni, nj, nk = crop.image.size
    block = tuple(slice(o, o + n) for o, n in zip(offset[::-1], (nk, nj, ni), strict=True))
    np.testing.assert_array_equal(full.image.array[block], crop.image.array)
    np.testing.assert_array_equal(full.label.array[block], crop.label.array)
    assert full.label.array.sum() == crop.label.array.sum()


def test_helpers_reject_bad_input():
    with pytest.raises(InputError):
        tight_box3d(np.zeros((3, 3, 3)))
    with pytest.raises(InputError):
        middle_slice_box(np.zeros((3, 3, 3)))
    with pytest.raises(InputError):
        lesion_cases(n_per_kind=0)
    with pytest.raises(InputError):
        lesion_cases(n_per_kind=1, crop=-3)

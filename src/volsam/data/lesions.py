"""Synthetic lesions inserted into real anatomy (MNI152 2009 T1): 3D ground truth on a real MR background.

Each case is the MNI152 T1 (197x233x189 voxels at 1 mm, skull-stripped, 0..255) with one lesion painted
into the brain and mild acquisition noise added everywhere inside the head. Lesion kinds (``KINDS``):

* ``dark``   hypointense, irregular (an ellipsoid whose radius is modulated by a smooth random function of
  direction), internal texture (correlated noise), 10-30 slices along k.
* ``ring``   ring-enhancing: bright rim 2-3 mm thick around a darker necrotic core, in mildly hypointense
  perilesional oedema that is *not* labelled (the label is rim + core, like a tumour-core label).
* ``small``  5-9 slices, 6-12 mm in-plane extent; even cases hypo-, odd cases hyperintense.
* ``flat``   20-40 mm in-plane but 3-6 slices thick; even cases hypo-, odd cases hyperintense.
* ``bright`` hyperintense, irregular, textured, 8-24 slices.

Placement: centres in white matter, every lesion voxel at least 4 mm (ring: 8 mm) below the brain surface
and at least 92 % of the label in grey or white matter (no lesion sits mostly in CSF).
Intensities are relative to the median T1 of the tissue just around the lesion (white matter ~220, grey
matter ~165), so contrast is moderate: a dark lesion in white matter is about as dark as cortex. Every
boundary has a partial-volume ramp 1-1.6 mm wide; the label is the 50 % iso-surface of that ramp.
Noise: white Gaussian, sigma ``NOISE_SIGMA`` (0..255 scale), added inside the head; zeros stay zeros.
Images are int16, labels uint8 (1 = lesion), both ``[k, j, i]`` on the MNI grid (LPS geometry of the file).

Variants (``variants=True``): ``<case>-aniso`` resamples a case to 1x1x3 mm along k (each thick slice is the
mean of three 1 mm slices -- linear interpolation at the slab centre plus slab averaging -- and the label is
sampled at the slab centre, nearest neighbour); ``<case>-flip-ik`` / ``<case>-flip-k`` flip the arrays along
i and k / k with origin and direction changed so the world geometry is unchanged. Prompts (``box3d``,
``middle_box``) are always computed in the index space of the case as delivered.

Determinism: every case draws from ``numpy.random.default_rng([seed, kind, index])``; the noise is one field
per ``seed`` shifted per case, so a cropped case is exactly a sub-block of the same full-size case.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from volsam.core.errors import InputError
from volsam.core.prompts import Box2D, Box3D
from volsam.core.volume import Volume
from volsam.data.lesion_render import KINDS, NOISE_SIGMA, Lesion, anatomy, plan_lesion, render_lesion

__all__ = [
    "KINDS",
    "NOISE_SIGMA",
    "LesionCase",
    "boundary_contrast",
    "iter_lesion_cases",
    "lesion_cases",
    "middle_slice_box",
    "tight_box3d",
]

CROP_MARGIN = 24  # crop mode: voxels kept around the lesion in-plane (i, j)
CROP_MARGIN_K = 4  # crop mode: slices kept beyond each end of the lesion along k (in delivered slices)
ANISO_FACTOR = 3  # the anisotropic variant has 3 mm slices


@dataclass(frozen=True, eq=False)
class LesionCase:
    """One benchmark case. ``box3d`` is the tight box of the label (i0, j0, k0, i1, j1, k1 inclusive);
    ``middle_box`` is the tight 2D box of the label on the middle slice of its k range (what a user draws).
    ``variant`` is "" for an original case, else "aniso", "flip-ik" or "flip-k"."""

    name: str
    kind: str
    image: Volume
    label: Volume
    box3d: Box3D
    middle_box: Box2D
    variant: str = ""


# -- prompts from a label ---------------------------------------------------------------------------------
def tight_box3d(label: np.ndarray) -> Box3D:
    """Tight inclusive box ``(i0, j0, k0, i1, j1, k1)`` of the non-zero voxels of ``label[k, j, i]``."""
    nz = np.nonzero(np.asarray(label))
    if nz[0].size == 0:
        raise InputError("cannot box an empty label")
    (k0, j0, i0), (k1, j1, i1) = [int(a.min()) for a in nz], [int(a.max()) for a in nz]
    return Box3D(i0, j0, k0, i1, j1, k1)


def middle_slice_box(label: np.ndarray) -> Box2D:
    """Tight 2D box ``(i0, j0, i1, j1)`` of ``label[k, j, i]`` on slice ``(k0 + k1) // 2`` of its k range."""
    box = tight_box3d(label)
    k = (box.k0 + box.k1) // 2
    jj, ii = np.nonzero(np.asarray(label)[k])
    if ii.size == 0:
        raise InputError(f"the label is empty on its middle slice k={k}")
    return Box2D(int(ii.min()), int(jj.min()), int(ii.max()), int(jj.max()), slice=k)


def boundary_contrast(image: np.ndarray, label: np.ndarray) -> float:
    """Signed contrast-to-noise of a lesion boundary (voxel units, arrays ``[k, j, i]``).

    ``(mean(band inside) - mean(shell outside)) / std(shell outside)``, where the inside band is the label
    voxels 2-3 voxels from its border (past the partial-volume ramp; for a ring lesion, the rim) and the
    shell is the non-zero background 3-5 voxels outside. Negative for hypointense lesions. The shell's
    standard deviation includes real anatomy (grey/white matter, sulci), not only noise.
    """
    lab = np.asarray(label) != 0
    img = np.asarray(image, dtype=np.float64)
    cross = ndimage.generate_binary_structure(3, 1)
    inner = ndimage.binary_erosion(lab, cross, iterations=1)
    inner &= ~ndimage.binary_erosion(lab, cross, iterations=3)
    shell = ndimage.binary_dilation(lab, cross, iterations=5)
    shell &= ~ndimage.binary_dilation(lab, cross, iterations=2)
    shell &= img > 0
    if not inner.any() or shell.sum() < 10:
        raise InputError("the label is too thin or too close to the border to measure its contrast")
    return float((img[inner].mean() - img[shell].mean()) / img[shell].std())


def _region(lesion: Lesion, crop: int, k_step: int) -> tuple[slice, slice, slice]:
    """Full grid (crop 0) or the lesion box + ``crop`` voxels in-plane + CROP_MARGIN_K delivered slices
    along k; with ``k_step`` > 1 the k range is aligned to whole thick slabs of the full grid."""
    shape = anatomy().t1.shape
    if crop <= 0:
        k0, k1 = 0, shape[0]
    else:
        lo, hi = lesion.bbox()
        k0 = max(int(lo[0]) - CROP_MARGIN_K * k_step, 0)
        k1 = min(int(hi[0]) + 1 + CROP_MARGIN_K * k_step, shape[0])
    k0 = (k0 // k_step) * k_step
    k1 = k0 + ((k1 - k0 + k_step - 1) // k_step) * k_step
    while k1 > shape[0]:
        k1 -= k_step
    if crop <= 0:
        return (slice(k0, k1), slice(0, shape[1]), slice(0, shape[2]))
    lo, hi = lesion.bbox()
    j0, j1 = max(int(lo[1]) - crop, 0), min(int(hi[1]) + 1 + crop, shape[1])
    i0, i1 = max(int(lo[2]) - crop, 0), min(int(hi[2]) + 1 + crop, shape[2])
    return (slice(k0, k1), slice(j0, j1), slice(i0, i1))


def _case(lesion: Lesion, crop: int, seed: int, variant: str = "") -> LesionCase:
    grid = anatomy().grid
    k_step = ANISO_FACTOR if variant == "aniso" else 1
    region = _region(lesion, crop, k_step)
    img, lab = render_lesion(lesion, region, seed)
    corner = np.array([region[2].start, region[1].start, region[0].start], dtype=np.float64)  # i, j, k
    spacing = np.array(grid.spacing)
    direction = grid.direction.copy()
    if variant == "aniso":
        # thick slab m = 1 mm slices 3m..3m+2 (relative to the region start), centred on 3m+1
        img = ndimage.uniform_filter1d(img, ANISO_FACTOR, axis=0, mode="nearest")[1::ANISO_FACTOR]
        lab = lab[1::ANISO_FACTOR]
        corner[2] += 1
        spacing[2] *= ANISO_FACTOR
    origin = grid.index_to_world(corner)
    if variant.startswith("flip"):
        flip_i, flip_k = "i" in variant.removeprefix("flip-"), "k" in variant.removeprefix("flip-")
        nk, _, ni = img.shape
        far = corner + np.array([ni - 1 if flip_i else 0, 0, nk - 1 if flip_k else 0])
        origin = grid.index_to_world(far)
        direction[:, 0] *= -1 if flip_i else 1
        direction[:, 2] *= -1 if flip_k else 1
        rev = (slice(None, None, -1 if flip_k else 1), slice(None), slice(None, None, -1 if flip_i else 1))
        img, lab = img[rev], lab[rev]
    img = np.ascontiguousarray(np.rint(img).astype(np.int16))
    lab = np.ascontiguousarray(lab)
    name = lesion.name + (f"-{variant}" if variant else "")
    meta = {"case": name, "kind": lesion.kind, "variant": variant, "seed": seed}
    geom = dict(spacing=tuple(spacing), origin=tuple(origin), direction=direction)
    source = "MNI152 2009 T1 + synthetic lesion"
    image = Volume(img, **geom, meta={**meta, "modality": "MR", "source": source})
    label = Volume(lab, **geom, meta=meta)
    return LesionCase(name, lesion.kind, image, label, tight_box3d(lab), middle_slice_box(lab), variant)


# -- public entry points ----------------------------------------------------------------------------------
_VARIANTS = (("dark", 0, "aniso"), ("ring", 0, "aniso"), ("dark", 1, "flip-ik"), ("ring", 1, "flip-k"))


def _crop_margin(crop: bool | int) -> int:
    if crop is True:
        return CROP_MARGIN
    if crop is False or crop is None:
        return 0
    if isinstance(crop, (int, np.integer)) and crop >= 0:
        return int(crop)
    raise InputError(f"crop must be True, False or a margin in voxels >= 0, got {crop!r}")


def iter_lesion_cases(
    n_per_kind: int = 4, seed: int = 0, crop: bool | int = False, variants: bool = True
) -> Iterator[LesionCase]:
    """Yield the cases of :func:`lesion_cases` one at a time (full-size cases are ~26 MB each)."""
    if not isinstance(n_per_kind, (int, np.integer)) or n_per_kind < 1:
        raise InputError(f"n_per_kind must be a positive integer, got {n_per_kind!r}")
    margin = _crop_margin(crop)
    plans: dict[tuple[str, int], Lesion] = {}
    for kind in KINDS:
        for index in range(n_per_kind):
            plans[kind, index] = plan_lesion(kind, index, seed)
            yield _case(plans[kind, index], margin, seed)
    if variants:
        for kind, index, variant in _VARIANTS:
            yield _case(plans[kind, min(index, n_per_kind - 1)], margin, seed, variant)


def lesion_case_names(n_per_kind: int = 4, variants: bool = True) -> list[str]:
    """The names :func:`iter_lesion_cases` yields, in the same order, without rendering anything."""
    names = [f"{kind}-{index:02d}" for kind in KINDS for index in range(n_per_kind)]
    if variants:
        names += [f"{kind}-{min(index, n_per_kind - 1):02d}-{variant}" for kind, index, variant in _VARIANTS]
    return names


def lesion_case(name: str, seed: int = 0, crop: bool | int = False) -> LesionCase:
    """One case of the set by name (``ring-02``, ``dark-00-aniso``...), rendered on its own."""
    parts = name.split("-", 2)
    try:
        kind, index = parts[0], int(parts[1])
    except (IndexError, ValueError):
        raise InputError(f"not a lesion case name: {name!r} (expected <kind>-<nn>[-variant])") from None
    variant = parts[2] if len(parts) == 3 else ""
    if kind not in KINDS or index < 0 or variant not in ("", *(v for _, _, v in _VARIANTS)):
        raise InputError(f"not a lesion case name: {name!r}")
    return _case(plan_lesion(kind, index, seed), _crop_margin(crop), seed, variant)


def lesion_cases(
    n_per_kind: int = 4, seed: int = 0, crop: bool | int = False, variants: bool = True
) -> list[LesionCase]:
    """The synthetic-lesion benchmark set: ``n_per_kind`` cases of each kind in ``KINDS`` (named
    ``<kind>-<nn>``), then with ``variants`` four copies: ``dark-00-aniso``, ``ring-00-aniso`` (1x1x3 mm),
    ``dark-01-flip-ik``, ``ring-01-flip-k`` (flipped index axes, same world geometry).

    ``crop``: False -> full 197x233x189 MNI grid; True -> the lesion box plus ``CROP_MARGIN`` (24) voxels
    in-plane and ``CROP_MARGIN_K`` (4) slices beyond each end along k; an int -> that in-plane margin.
    A cropped case is exactly the corresponding block of the full-size case (same seed). The default set
    is 24 cases; full-size ones take ~26 MB each (use :func:`iter_lesion_cases` to stream them).
    """
    return list(iter_lesion_cases(n_per_kind, seed, crop, variants))

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

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from volsam.core.errors import InputError
from volsam.core.prompts import Box2D, Box3D
from volsam.core.volume import Volume
from volsam.io.samples import mni152_path

__all__ = [
    "KINDS",
    "LesionCase",
    "boundary_contrast",
    "iter_lesion_cases",
    "lesion_cases",
    "middle_slice_box",
    "tight_box3d",
]

KINDS = ("dark", "ring", "small", "flat", "bright")
NOISE_SIGMA = 5.0  # 0..255 scale; white matter ~220 -> SNR ~44
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


# -- anatomy and noise (cached per process) ---------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Anatomy:
    t1: np.ndarray  # float32 [k, j, i], 0..255
    tissue: np.ndarray  # float32 0..1, grey + white matter probability
    wm: np.ndarray  # float32 0..1
    depth2: np.ndarray  # float32, mm to the outside of the brain, on a 2 mm grid (index // 2)
    grid: Volume  # geometry of the MNI file (array is a placeholder view of t1)


@functools.lru_cache(maxsize=1)
def _anatomy() -> _Anatomy:
    img = sitk.ReadImage(str(mni152_path("t1")))
    t1 = sitk.GetArrayFromImage(img).astype(np.float32)
    gm = sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("gm")))).astype(np.float32) / 255.0
    wm = sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("wm")))).astype(np.float32) / 255.0
    depth2 = ndimage.distance_transform_edt(t1[::2, ::2, ::2] > 0, sampling=2.0).astype(np.float32)
    direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    grid = Volume(t1, spacing=img.GetSpacing(), origin=img.GetOrigin(), direction=direction)
    return _Anatomy(t1=t1, tissue=np.clip(gm + wm, 0, 1), wm=wm, depth2=depth2, grid=grid)


@functools.lru_cache(maxsize=2)
def _noise(seed: int, shape: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng([seed, 9_999])
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(NOISE_SIGMA)


# -- lesion shapes ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _KindSpec:
    semi_ij: tuple[float, float]  # in-plane semi-axes (mm), uniform range
    semi_k: tuple[float, float]  # semi-axis along k (mm)
    irregularity: tuple[float, float]  # std of the relative radius perturbation
    slices: tuple[int, int]  # allowed number of labelled slices (inclusive)
    inplane: tuple[float, float]  # allowed max(i, j) extent in mm (inclusive)
    tilt_deg: float  # largest tilt of the lesion's axes out of the axial plane
    depth_mm: float  # minimum depth of every lesion voxel below the brain surface
    white_matter: bool  # centre in white matter (else anywhere in grey or white matter)


_SPECS = {
    "dark": _KindSpec((6.0, 15.0), (5.0, 14.0), (0.12, 0.2), (10, 30), (10.0, 45.0), 30.0, 4.0, True),
    "ring": _KindSpec((8.0, 14.0), (7.0, 13.0), (0.08, 0.14), (12, 30), (14.0, 40.0), 30.0, 8.0, True),
    "small": _KindSpec((3.0, 6.0), (2.0, 4.5), (0.05, 0.12), (5, 9), (6.0, 12.0), 45.0, 4.0, True),
    "flat": _KindSpec((10.0, 19.0), (1.5, 2.8), (0.06, 0.12), (3, 6), (20.0, 40.0), 0.0, 4.0, True),
    "bright": _KindSpec((5.0, 12.0), (4.0, 10.0), (0.1, 0.18), (8, 24), (9.0, 35.0), 30.0, 4.0, True),
}


def _rotation(rng: np.random.Generator, tilt_deg: float) -> np.ndarray:
    """Rotation (columns = lesion axes in i, j, k) turned freely about k and tilted by at most tilt_deg."""
    theta = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(theta), np.sin(theta)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    tilt = np.deg2rad(rng.uniform(0, tilt_deg))
    phi = rng.uniform(0, 2 * np.pi)
    axis = np.array([np.cos(phi), np.sin(phi), 0.0])
    kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rt = np.eye(3) + np.sin(tilt) * kx + (1 - np.cos(tilt)) * kx @ kx  # Rodrigues
    return rt @ rz


@dataclass(frozen=True, eq=False)
class _Lesion:
    """A lesion planned on the 1 mm MNI grid: fields on a local box starting at ``lo`` (k, j, i)."""

    name: str
    kind: str
    lo: tuple[int, int, int]
    alpha: np.ndarray  # partial-volume fraction of lesion, 0..1
    intensity: np.ndarray  # lesion intensity (texture included)
    gain: np.ndarray  # multiplies the background (oedema), 1 = unchanged
    noise_shift: tuple[int, int, int]

    @property
    def label(self) -> np.ndarray:
        return self.alpha >= 0.5

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive (lo, hi) of the label, global (k, j, i) indices."""
        nz = np.nonzero(self.label)
        lo = np.array([a.min() for a in nz]) + self.lo
        hi = np.array([a.max() for a in nz]) + self.lo
        return lo, hi


def _signed_distance(
    rng: np.random.Generator, spec: _KindSpec, shape: tuple[int, int, int]
) -> tuple[np.ndarray, tuple[int, int, int]] | None:
    """Draw one irregular shape; return (signed distance in mm on a local box, box origin k, j, i) or None
    when the box would leave the volume."""
    a = np.array([rng.uniform(*spec.semi_ij), rng.uniform(*spec.semi_ij), rng.uniform(*spec.semi_k)])
    rot = _rotation(rng, spec.tilt_deg)
    amp = rng.uniform(*spec.irregularity)
    n_terms = 8
    omega = rng.standard_normal((n_terms, 3))
    omega *= (rng.uniform(2.0, 5.5, n_terms) / np.linalg.norm(omega, axis=1))[:, None]
    phase = rng.uniform(0, 2 * np.pi, n_terms)
    half = np.ceil(1.7 * np.sqrt((rot * a) ** 2 @ np.ones(3)) + 3).astype(int)  # per axis i, j, k
    centre = _pick_centre(rng, spec, float(a.max()) * 1.3)
    if centre is None:
        return None
    lo_ijk = centre - half
    hi_ijk = centre + half + 1
    if np.any(lo_ijk < 0) or np.any(hi_ijk > np.array(shape[::-1])):
        return None
    kk, jj, ii = np.meshgrid(*(np.arange(-h, h + 1, dtype=np.float32) for h in half[::-1]), indexing="ij")
    p = np.stack([ii, jj, kk], axis=-1)  # mm from the centre (1 mm voxels), i, j, k
    x = p @ rot.astype(np.float32)  # coordinates along the lesion's axes
    u = x / a.astype(np.float32)
    rho = np.linalg.norm(u, axis=-1)
    n = u / np.maximum(rho, 1e-6)[..., None]
    n[rho < 1e-6] = (0.0, 0.0, 1.0)  # the centre voxel: any direction
    f = np.cos(n @ omega.T.astype(np.float32) + phase.astype(np.float32)).sum(-1) * np.float32(
        amp * np.sqrt(2.0 / n_terms)
    )
    b = np.clip(1.0 + f, 0.5, 1.6)  # boundary radius along direction n, in ellipsoid units
    s = (rho - b) * np.linalg.norm(n * a.astype(np.float32), axis=-1)  # mm along the ray
    return s.astype(np.float32), (int(lo_ijk[2]), int(lo_ijk[1]), int(lo_ijk[0]))


def _pick_centre(rng: np.random.Generator, spec: _KindSpec, radius_mm: float) -> np.ndarray | None:
    """A voxel (i, j, k) in tissue, at least ``radius_mm`` + the kind's depth below the brain surface."""
    anat = _anatomy()
    ok = anat.depth2 >= radius_mm + spec.depth_mm
    if spec.white_matter:
        ok &= anat.wm[::2, ::2, ::2] > 0.6
    else:
        ok &= anat.tissue[::2, ::2, ::2] > 0.6
    cand = np.flatnonzero(ok)
    if cand.size == 0:
        return None
    k, j, i = np.unravel_index(cand[rng.integers(cand.size)], ok.shape)
    return np.array([2 * i, 2 * j, 2 * k]) + rng.integers(0, 2, 3)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _texture(rng: np.random.Generator, shape: tuple[int, ...], sigma: float | None = None) -> np.ndarray:
    """Correlated noise with unit standard deviation (Gaussian-filtered, sigma 1-2 voxels by default)."""
    sigma = rng.uniform(1.0, 2.0) if sigma is None else sigma
    t = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return t / max(float(t.std()), 1e-6)


def _plan(kind: str, index: int, seed: int) -> _Lesion:
    """Draw lesion ``index`` of ``kind`` until its extents, depth and tissue checks hold."""
    spec = _SPECS[kind]
    anat = _anatomy()
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    for _ in range(200):
        drawn = _signed_distance(rng, spec, anat.t1.shape)
        if drawn is None:
            continue
        s, lo = drawn
        label = s <= 0
        box = tuple(slice(o, o + n) for o, n in zip(lo, s.shape, strict=True))
        nz = np.nonzero(label)
        n_slices = int(np.ptp(nz[0])) + 1
        inplane = max(int(np.ptp(nz[1])), int(np.ptp(nz[2]))) + 1
        if not spec.slices[0] <= n_slices <= spec.slices[1]:
            continue
        if not spec.inplane[0] <= inplane <= spec.inplane[1]:
            continue
        gk, gj, gi = (ax + o for ax, o in zip(nz, lo, strict=True))
        if anat.depth2[gk // 2, gj // 2, gi // 2].min() < spec.depth_mm:
            continue
        if (anat.tissue[box][label] > 0.5).mean() < 0.92:
            continue
        return _paint(rng, kind, index, s, lo, anat.t1[box])
    raise RuntimeError(f"could not place a {kind} lesion #{index} (seed {seed})")  # never for fixed seeds


def _paint(
    rng: np.random.Generator, kind: str, index: int, s: np.ndarray, lo: tuple[int, int, int], t1: np.ndarray
) -> _Lesion:
    """Intensities relative to the local tissue ``T`` (median T1 1-5 mm outside the lesion)."""
    shell = (s > 1) & (s <= 5) & (t1 > 0)
    tissue = float(np.median(t1[shell]))
    hypo = kind == "dark" or (kind in ("small", "flat") and index % 2 == 0)
    tex = _texture(rng, s.shape)
    gain = np.ones_like(s)
    if kind == "ring":
        rim_mm = rng.uniform(2.0, 3.0)
        rim, core = tissue * (1 + rng.uniform(0.2, 0.35)), tissue * (1 - rng.uniform(0.35, 0.5))
        rim_mm = rim_mm + 0.5 * _texture(rng, s.shape, 3.0)  # uneven rim thickness
        w_rim = _smoothstep(rim_mm + 0.5 + s)  # 1 within the rim (depth -s < rim), 0 in the core
        intensity = core + (rim - core) * w_rim + tissue * (0.03 * w_rim + 0.08 * (1 - w_rim)) * tex
        oedema, width = rng.uniform(0.06, 0.12), rng.uniform(3.0, 6.0)
        gain = 1 - oedema * _smoothstep(1 - s / width) * (s > 0)
    elif hypo:
        contrast = rng.uniform(0.22, 0.35) if kind == "dark" else rng.uniform(0.2, 0.32)
        intensity = tissue * (1 - contrast) + tissue * rng.uniform(0.05, 0.08) * tex
    else:
        intensity = tissue * (1 + rng.uniform(0.15, 0.25)) + tissue * rng.uniform(0.04, 0.07) * tex
    ramp = rng.uniform(1.0, 1.6)  # partial-volume ramp width (mm)
    alpha = _smoothstep(0.5 - s / ramp)
    shift = tuple(int(x) for x in rng.integers(0, 10_000, 3))
    return _Lesion(
        name=f"{kind}-{index:02d}",
        kind=kind,
        lo=lo,
        alpha=alpha.astype(np.float32),
        intensity=intensity.astype(np.float32),
        gain=gain.astype(np.float32),
        noise_shift=(shift[0], shift[1], shift[2]),
    )


# -- rendering --------------------------------------------------------------------------------------------
def _render(lesion: _Lesion, region: tuple[slice, slice, slice], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32) and label (uint8) of ``lesion`` on ``region`` (k, j, i slices of the MNI grid)."""
    anat = _anatomy()
    base = anat.t1[region]
    img = base.copy()
    lab = np.zeros(base.shape, dtype=np.uint8)
    local, target = [], []
    for r, o, n in zip(region, lesion.lo, lesion.alpha.shape, strict=True):
        a, b = max(r.start, o), min(r.stop, o + n)
        local.append(slice(a - o, b - o))
        target.append(slice(a - r.start, b - r.start))
    lt, tt = tuple(local), tuple(target)
    alpha = lesion.alpha[lt]
    img[tt] = img[tt] * lesion.gain[lt] * (1 - alpha) + lesion.intensity[lt] * alpha
    lab[tt] = lesion.label[lt]
    noise = _noise(seed, anat.t1.shape)
    idx = [
        (np.arange(r.start, r.stop) + d) % n for r, d, n in zip(region, lesion.noise_shift, noise.shape, strict=True)
    ]
    head = base > 0
    img = np.where(head, np.maximum(img + noise[np.ix_(*idx)], 0), 0)
    return img, lab


def _region(lesion: _Lesion, crop: int, k_step: int) -> tuple[slice, slice, slice]:
    """Full grid (crop 0) or the lesion box + ``crop`` voxels in-plane + CROP_MARGIN_K delivered slices
    along k; with ``k_step`` > 1 the k range is aligned to whole thick slabs of the full grid."""
    shape = _anatomy().t1.shape
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


def _case(lesion: _Lesion, crop: int, seed: int, variant: str = "") -> LesionCase:
    grid = _anatomy().grid
    k_step = ANISO_FACTOR if variant == "aniso" else 1
    region = _region(lesion, crop, k_step)
    img, lab = _render(lesion, region, seed)
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
    plans: dict[tuple[str, int], _Lesion] = {}
    for kind in KINDS:
        for index in range(n_per_kind):
            plans[kind, index] = _plan(kind, index, seed)
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
    return _case(_plan(kind, index, seed), _crop_margin(crop), seed, variant)


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

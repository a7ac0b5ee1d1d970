"""How the synthetic lesions of :mod:`volsam.data.lesions` are planned and painted into the MNI152 T1:
the anatomy (T1, grey / white matter maps, brain depth), the kinds' shape and intensity specs, the
irregular surfaces, textures and partial-volume ramps. Arrays are ``[k, j, i]`` on the MNI grid (1 mm).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from volsam.core.volume import Volume
from volsam.io.samples import mni152_path

KINDS = ("dark", "ring", "small", "flat", "bright")
NOISE_SIGMA = 5.0  # 0..255 scale; white matter ~220 -> SNR ~44


# -- anatomy and noise (cached per process) ---------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Anatomy:
    t1: np.ndarray  # float32 [k, j, i], 0..255
    tissue: np.ndarray  # float32 0..1, grey + white matter probability
    wm: np.ndarray  # float32 0..1
    depth2: np.ndarray  # float32, mm to the outside of the brain, on a 2 mm grid (index // 2)
    grid: Volume  # geometry of the MNI file (array is a placeholder view of t1)


@functools.lru_cache(maxsize=1)
def anatomy() -> _Anatomy:
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
class Lesion:
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
    anat = anatomy()
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


def plan_lesion(kind: str, index: int, seed: int) -> Lesion:
    """Draw lesion ``index`` of ``kind`` until its extents, depth and tissue checks hold."""
    spec = _SPECS[kind]
    anat = anatomy()
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
) -> Lesion:
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
    return Lesion(
        name=f"{kind}-{index:02d}",
        kind=kind,
        lo=lo,
        alpha=alpha.astype(np.float32),
        intensity=intensity.astype(np.float32),
        gain=gain.astype(np.float32),
        noise_shift=(shift[0], shift[1], shift[2]),
    )


# -- rendering --------------------------------------------------------------------------------------------
def render_lesion(lesion: Lesion, region: tuple[slice, slice, slice], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32) and label (uint8) of ``lesion`` on ``region`` (k, j, i slices of the MNI grid)."""
    anat = anatomy()
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

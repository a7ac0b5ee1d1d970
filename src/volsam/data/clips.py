"""Synthetic ultrasound-like clips with a known object on every frame, for measuring video tracking.

:func:`make_clip` draws a dark, rotating, deforming ellipse-like object moving through speckle and returns the
grey frames ``(n, H, W)`` uint8 and the exact masks ``(n, H, W)`` bool. Each factor of a clip is a field of
:class:`ClipSpec`, so a benchmark can vary one at a time (or all together):

* ``speckle`` 0..1: share of the image made of multiplicative speckle (the magnitude of a spatially
  correlated complex Gaussian field, Rayleigh-distributed, mean 1; grain ``speckle_grain`` px). The field
  decorrelates from frame to frame by ``1 - speckle_memory`` (probe and tissue move).
* ``contrast`` 0..1: the object's echo level is ``1 - contrast`` times the tissue's at the same place
  (0 = invisible).
* ``speed``: px per frame of the object's centre; it bounces inside the frame (its direction turns slowly
  too), or with ``exit`` > 0 it goes straight out through the right edge, stays fully outside for ``exit``
  frames and comes back the way it left.
* ``deform`` 0..1: relative amplitude of the radii "breathing" (period ``period`` frames, the two axes out of
  phase) and of a three-lobed wobble of the outline that travels around it.
* ``rotation``: degrees per frame.

The tissue has slow echo variations: a smoothed random field (sigma a tenth of the frame's shorter side;
standard deviation about 15 % on 128 px frames, more on smaller ones) clipped to x0.7..1.3, so the object may
lie on darker or brighter tissue than its surroundings; the echo map is blurred by 1 px (a boundary is never a perfect
step). Masks are the object's outline sampled at pixel centres, before blurring and
speckle, cut to the frame (a leaving object has a partial mask, then none).

Everything draws from ``numpy.random.default_rng(seed)``: the same spec gives the same clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class ClipSpec:
    """One clip's factors (see the module notes). ``size`` = (H, W); ``radius`` is the semi-major axis as a
    fraction of the frame's shorter side, ``aspect`` the minor / major ratio."""

    name: str = "clip"
    frames: int = 40
    size: tuple[int, int] = (128, 128)
    speckle: float = 0.6
    speckle_grain: float = 1.2
    speckle_memory: float = 0.7
    contrast: float = 0.6
    speed: float = 1.5
    deform: float = 0.15
    period: float = 24.0
    rotation: float = 2.0
    exit: int = 0
    radius: float = 0.2
    aspect: float = 0.6
    brightness: float = 120.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.frames < 1 or min(self.size) < 16:
            raise ValueError(f"a clip needs >= 1 frame of at least 16x16 px, got {self.frames} x {self.size}")
        for name in ("speckle", "contrast", "deform", "speckle_memory"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in 0..1, got {getattr(self, name)!r}")
        if self.speed < 0 or self.exit < 0 or not 0 < self.aspect <= 1 or not 0 < self.radius < 0.5:
            raise ValueError("speed and exit must be >= 0, aspect in (0, 1], radius in (0, 0.5)")

    def varied(self, name: str, **changes: object) -> ClipSpec:
        """This spec with ``changes`` and the name ``name``."""
        return replace(self, name=name, **changes)  # type: ignore[arg-type]

    def to_json(self) -> dict:
        out = asdict(self)
        out["size"] = list(self.size)
        return out


@dataclass(frozen=True)
class Clip:
    """Grey frames ``(n, H, W)`` uint8, the object's masks ``(n, H, W)`` bool and the spec that made them."""

    frames: np.ndarray
    masks: np.ndarray
    spec: ClipSpec

    def box(self, t: int) -> tuple[int, int, int, int] | None:
        """The tight box ``(x0, y0, x1, y1)`` (inclusive pixels) of the object on frame ``t``; None when absent."""
        ys, xs = np.nonzero(self.masks[t])
        if ys.size == 0:
            return None
        return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _centres(spec: ClipSpec, r_max: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) object centres (x, y) in px."""
    h, w = spec.size
    n = spec.frames
    if spec.exit > 0:  # straight out through the right edge, outside for ``exit`` frames, then back
        x0 = 0.55 * w
        out_at = (w + r_max - x0) / max(spec.speed, 1e-6)  # frame at which it is fully outside
        turn = out_at + spec.exit / 2
        t = np.arange(n, dtype=float)
        x = x0 + spec.speed * (turn - np.abs(turn - t))
        y = 0.45 * h + 0.06 * h * np.sin(t / 7.0)
        return np.stack([x, y], axis=1)
    lo_x, hi_x = r_max + 3, w - r_max - 3
    lo_y, hi_y = r_max + 3, h - r_max - 3
    pos = np.array([0.4 * w, 0.45 * h])
    heading = rng.uniform(0, 2 * np.pi)
    turn = rng.choice([-1, 1]) * np.deg2rad(4.0)
    out = []
    for _ in range(n):
        out.append(pos.copy())
        step = spec.speed * np.array([np.cos(heading), np.sin(heading)])
        nxt = pos + step
        if not lo_x <= nxt[0] <= hi_x:
            heading = np.pi - heading
        if not lo_y <= nxt[1] <= hi_y:
            heading = -heading
        pos = np.clip(pos + spec.speed * np.array([np.cos(heading), np.sin(heading)]), [lo_x, lo_y], [hi_x, hi_y])
        heading += turn
    return np.array(out)


def _speckle(shape: tuple[int, int], grain: float, rng: np.random.Generator) -> np.ndarray:
    """A complex Gaussian field smoothed to ``grain`` px, unit mean power."""
    field = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    if grain > 0:
        field = ndimage.gaussian_filter(field.real, grain) + 1j * ndimage.gaussian_filter(field.imag, grain)
    return field / np.sqrt(np.mean(np.abs(field) ** 2))


def make_clip(spec: ClipSpec) -> Clip:
    """Render ``spec``: grey frames (n, H, W) uint8 and the object's masks (n, H, W) bool."""
    rng = np.random.default_rng(spec.seed)
    h, w = spec.size
    r_major = spec.radius * min(h, w)
    r_max = r_major * (1 + spec.deform) * (1 + 0.5 * spec.deform)
    centres = _centres(spec, r_max, rng)
    y, x = np.mgrid[:h, :w].astype(float)
    tissue = 1.0 + 0.15 * ndimage.gaussian_filter(rng.normal(size=(h, w)), min(h, w) / 10) / 0.02
    tissue = np.clip(tissue, 0.7, 1.3)
    angle0 = rng.uniform(0, np.pi)
    rayleigh_mean = np.sqrt(np.pi) / 2  # mean of |z| for a unit-power complex Gaussian
    field = _speckle((h, w), spec.speckle_grain, rng)
    keep = spec.speckle_memory
    frames, masks = [], []
    for t in range(spec.frames):
        phase = 2 * np.pi * t / spec.period
        rx = r_major * (1 + spec.deform * np.sin(phase))
        ry = r_major * spec.aspect * (1 + spec.deform * np.sin(phase + 2.0))
        theta = angle0 + np.deg2rad(spec.rotation) * t
        dx, dy = x - centres[t, 0], y - centres[t, 1]
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        phi = np.arctan2(v / ry, u / rx)
        wobble = 1 + 0.5 * spec.deform * np.sin(3 * phi + phase)
        inside = (u / rx) ** 2 + (v / ry) ** 2 <= wobble**2
        echo = np.where(inside, (1 - spec.contrast), 1.0) * tissue
        echo = ndimage.gaussian_filter(echo, 1.0)
        if t > 0:
            field = keep * field + np.sqrt(1 - keep**2) * _speckle((h, w), spec.speckle_grain, rng)
        grain = np.abs(field) / rayleigh_mean
        picture = spec.brightness * echo * ((1 - spec.speckle) + spec.speckle * grain)
        frames.append(np.clip(np.rint(picture), 0, 255).astype(np.uint8))
        masks.append(inside)
    return Clip(np.stack(frames), np.stack(masks), spec)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two bool masks: the benchmark's per-frame score. 1.0 when both are empty (an absent object
    correctly reported absent); 0.0 for any pixel predicted where the truth is empty (a false mask) and for
    an empty prediction of a present object."""
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return float(2 * np.logical_and(pred, truth).sum() / total)


def clip_family(frames: int = 40, size: tuple[int, int] = (128, 128), seed: int = 0) -> list[ClipSpec]:
    """The benchmark's clips: a middle-of-the-road clip, each factor varied on its own to both sides where
    it has two, a clip that leaves the view and returns, and everything hard at once."""
    base = ClipSpec(name="base", frames=frames, size=size, seed=seed)
    return [
        base,
        base.varied("speckle-none", speckle=0.0),
        base.varied("speckle-full", speckle=1.0, speckle_grain=1.8),
        base.varied("contrast-low", contrast=0.3),
        base.varied("contrast-high", contrast=0.9),
        base.varied("fast", speed=4.0),
        base.varied("deforming", deform=0.35, period=16.0),
        base.varied("rotating", rotation=6.0, aspect=0.45),
        base.varied("leaves-view", exit=6, speed=4.0),
        base.varied(
            "all-hard", speckle=1.0, speckle_grain=1.8, contrast=0.4, speed=3.0, deform=0.3, rotation=5.0, seed=seed + 1
        ),
    ]


__all__ = ["Clip", "ClipSpec", "clip_family", "dice", "make_clip"]

"""Modality-aware intensity normalisation to uint8 0..255 (the MedSAM family's input convention).

* CT: a window (level L, width W in HU) then a linear rescale of [L - W/2, L + W/2] to 0..255.
  Presets (level/width): abdomen 40/400 (default), lung -600/1500, brain 40/80, mediastinum 50/350,
  bone 400/1800.
* MR, PET and anything else: clip to the 0.5..99.5 percentiles of the non-zero voxels, rescale to 0..255,
  keep zero voxels 0 (background stays background).
* 8-bit pictures (2D PNG / JPEG / BMP / 8-bit TIFF, CVPR 2024 2D ``.npz``: ``meta["display_values"]``), with
  modality ``auto``: their 0..255 values as they are (``display``), as videos; a 16-bit or DICOM 2D image is
  scaled like MR. (Colour images reach the engines as RGB, unnormalised: :class:`volsam.propagation.FrameStack`.)

Fit once per volume (:func:`fit_normalizer`), then apply slice by slice (:meth:`Normalizer.apply`), so the
cost of applying scales with the slices a propagation visits. NaN voxels map to 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from volsam.core.errors import InputError
from volsam.core.volume import Volume

log = logging.getLogger(__name__)

#: CT window presets, name -> (level, width) in HU.
WINDOWS: dict[str, tuple[float, float]] = {
    "abdomen": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "brain": (40.0, 80.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
}
DEFAULT_CT_WINDOW = "abdomen"
MODALITIES = ("auto", "CT", "MR", "PET", "other")
_DICOM_MODALITY = {"CT": "CT", "MR": "MR", "PT": "PET", "PET": "PET", "NM": "PET"}
_PERCENTILES = (0.5, 99.5)
_MAX_SAMPLES = 2_000_000  # voxels sampled for percentiles (exact below this count)


def parse_window(text: str) -> tuple[float, float]:
    """A preset name (``abdomen``, ``lung``, ``brain``, ``bone``, ``mediastinum``) or ``L,W`` in HU."""
    key = text.strip().lower()
    if key in WINDOWS:
        return WINDOWS[key]
    parts = key.split(",")
    try:
        level, width = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"window {text!r} is neither a preset ({', '.join(WINDOWS)}) nor LEVEL,WIDTH in HU") from None
    if not (np.isfinite(level) and np.isfinite(width)) or width <= 0:
        raise InputError(f"window {text!r}: the width must be a positive number of HU")
    return level, width


def guess_modality(volume: Volume) -> tuple[str, str]:
    """Modality of ``volume`` and why: the DICOM Modality tag when there is one, else CT when the image
    holds clearly negative values (HU of air/fat), else MR. Returns ``(modality, reason)``."""
    tag = volume.meta.get("modality")
    if isinstance(tag, str) and tag.upper() in _DICOM_MODALITY:
        return _DICOM_MODALITY[tag.upper()], f"DICOM Modality tag {tag!r}"
    if volume.meta.get("display_values"):
        return "display", "an 8-bit picture: values 0..255 used as they are"
    finite = volume.array[np.isfinite(volume.array)] if volume.array.dtype.kind == "f" else volume.array
    lo = float(finite.min()) if finite.size else 0.0
    if lo < -500:
        return "CT", f"minimum intensity {lo:g} < -500 looks like Hounsfield units"
    return "MR", f"no DICOM modality and minimum intensity {lo:g} >= -500: treated as MR (percentile scaling)"


@dataclass(frozen=True)
class Normalizer:
    """Maps raw intensities linearly from [low, high] to 0..255 (clipped); ``keep_zero`` keeps raw zeros 0."""

    modality: str
    low: float
    high: float
    keep_zero: bool

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Normalise an array of any shape (e.g. one slice [j, i]) to uint8."""
        x = np.asarray(raw, dtype=np.float32)
        span = max(self.high - self.low, 1e-6)
        out = (np.clip(x, self.low, self.high) - self.low) * (255.0 / span)
        out = np.nan_to_num(out, nan=0.0)
        if self.keep_zero:
            out[x == 0] = 0.0
        return np.rint(out).astype(np.uint8)

    def describe(self) -> str:
        if self.modality == "display":
            return "display values 0..255 as they are"
        if self.modality == "CT":
            level, width = (self.low + self.high) / 2, self.high - self.low
            return f"CT window level {level:g} / width {width:g} HU"
        return f"{self.modality}: percentiles {_PERCENTILES} of non-zero voxels -> [{self.low:g}, {self.high:g}]"


def _percentile_range(array: np.ndarray) -> tuple[float, float]:
    flat = array.reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    sample = flat[::step].astype(np.float64)
    sample = sample[np.isfinite(sample) & (sample != 0)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, _PERCENTILES)
    if hi <= lo:  # constant image: map its value to the top of the range
        return float(lo) - 1.0, float(hi)
    return float(lo), float(hi)


def fit_normalizer(volume: Volume, modality: str = "auto", window: str | None = None) -> Normalizer:
    """Choose and fit the intensity normalisation for ``volume``; logs one line saying what was chosen.

    Args:
        modality: ``auto`` (see :func:`guess_modality`), ``CT``, ``MR``, ``PET`` or ``other``.
        window: CT only: a preset name or ``L,W``; default abdomen. Giving a window implies CT.
    """
    if modality not in MODALITIES and modality.upper() not in MODALITIES:
        raise InputError(f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
    modality = modality if modality in ("auto", "other") else modality.upper()
    if modality == "auto" and window is None and volume.meta.get("display_values"):
        norm = Normalizer("display", 0.0, 255.0, keep_zero=False)
        log.info("modality display (an 8-bit picture): values 0..255 as they are")
        return norm
    if modality == "auto":
        if window is not None:
            chosen, reason = "CT", "a CT window was given"
        else:
            chosen, reason = guess_modality(volume)
    else:
        chosen, reason = modality, "given"
    if chosen == "CT":
        level, width = parse_window(window or DEFAULT_CT_WINDOW)
        norm = Normalizer("CT", level - width / 2, level + width / 2, keep_zero=False)
    else:
        if window is not None:
            raise InputError(f"--window applies to CT only, but the modality is {chosen}")
        low, high = _percentile_range(volume.array)
        norm = Normalizer(chosen, low, high, keep_zero=True)
    log.info("modality %s (%s); %s", chosen, reason, norm.describe())
    return norm

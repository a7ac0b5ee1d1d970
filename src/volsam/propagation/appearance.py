"""An intensity model of an object and its surroundings, learned from the frames already segmented.

Propagation uses it to tell whether a new frame's mask still covers the object (its pixels look like the
object's pixels so far) or the model has started outlining neighbouring tissue after the object ended, and
to choose between candidate masks. Frames are uint8 ``(H, W)`` (0..255, after
:mod:`volsam.preprocess`); masks are bool ``(H, W)``.

The model is two smoothed grey-level histograms: the pixels inside the accepted masks, and the pixels in a
ring of ``ring_width`` px around them. Histograms (not a mean or a median) describe textured and
ring-enhancing objects, whose inside mixes dark and bright tissue.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from volsam.propagation.settings import PropagationSettings

log = logging.getLogger(__name__)

BINS = 32  # grey-level bins over 0..255 (8 levels each)
SMOOTH_BINS = 1.0  # Gaussian smoothing of the histograms, in bins
FLOOR = 1e-3  # probability floor so that an unseen grey level does not decide alone


def surroundings(mask: np.ndarray, ring_width: int) -> np.ndarray:
    """The ring of ``ring_width`` px around ``mask`` (bool (H, W))."""
    return ndimage.binary_dilation(mask, iterations=ring_width) & ~mask


class AppearanceModel:
    """Grey-level histograms of an object's inside and of its surroundings."""

    def __init__(self, ring_width: int = 3):
        self.ring_width = ring_width
        self._inside = np.zeros(BINS)
        self._around = np.zeros(BINS)

    def update(self, frame: np.ndarray, mask: np.ndarray) -> None:
        """Add one frame's inside and surroundings pixels."""
        bins = self._bins(frame)
        self._inside += np.bincount(bins[mask], minlength=BINS)
        self._around += np.bincount(bins[surroundings(mask, self.ring_width)], minlength=BINS)

    @property
    def ready(self) -> bool:
        return bool(self._inside.sum() > 0 and self._around.sum() > 0)

    def log_ratio(self, frame: np.ndarray) -> np.ndarray:
        """Per pixel ``log p(grey | inside) - log p(grey | surroundings)``, float (H, W); > 0 = object-like."""
        return self._table()[self._bins(frame)]

    def separability(self) -> float:
        """How well the two histograms separate the pixels they were built from, 0..1.

        The fraction of inside pixels classified as inside minus the fraction of surroundings pixels classified
        as inside (Youden's J of the pixel classifier ``log_ratio > 0``); 0 when the model has no data.
        """
        if not self.ready:
            return 0.0
        positive = self._table() > 0
        p_in = self._inside / self._inside.sum()
        p_out = self._around / self._around.sum()
        return float(p_in[positive].sum() - p_out[positive].sum())

    def object_fraction(self, frame: np.ndarray, mask: np.ndarray) -> float:
        """Fraction of ``mask``'s pixels that look like the object (NaN for an empty mask)."""
        if not mask.any():
            return float("nan")
        return float((self.log_ratio(frame)[mask] > 0).mean())

    def _table(self) -> np.ndarray:
        def density(counts: np.ndarray) -> np.ndarray:
            smooth = ndimage.gaussian_filter1d(counts.astype(float), SMOOTH_BINS, mode="nearest")
            return np.maximum(smooth / max(smooth.sum(), 1.0), FLOOR)

        return np.log(density(self._inside)) - np.log(density(self._around))

    @staticmethod
    def _bins(frame: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(frame, dtype=np.int32) * BINS // 256, 0, BINS - 1)


def appearance_model(frame: np.ndarray, mask: np.ndarray, settings: PropagationSettings) -> AppearanceModel | None:
    """The prompted frame's appearance model for the walk, None when the settings do not use one or when it
    cannot separate the object from its surroundings (``settings.min_separability``)."""
    if not settings.volsam or not (settings.appearance_stop or len(settings.proposal_ratios) > 1):
        return None
    model = AppearanceModel(settings.ring_width)
    model.update(frame, mask)
    separability = model.separability()
    if separability < settings.min_separability:
        log.info("object and surroundings look alike (separability %.2f): appearance rules off", separability)
        return None
    return model

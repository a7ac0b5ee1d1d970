"""Temporal smoothing of a video walk's masks: :func:`smooth_direction`.

A slice engine segments each frame on its own, so its masks jitter from frame to frame where the model is
unsure (low contrast, strong speckle: on the benchmark's contrast-low clip, seed 0, the written area jumps
between 614 and 1075 px for a 1040-1140 px object). An object in a video changes little between frames, so
each frame's mask is replaced by the weighted mean of the signed distance maps of its own mask and of the
masks up to ``reach`` frames before and after it in the same walk, each moved so that its centroid lies on
the frame's own (the object moves), cut at zero. The weights fall linearly with the distance in frames
(``reach + 1`` for the frame itself, 1 at ``reach``). The walk goes on from the model's own masks: only what
is written is smoothed.

Frames are taken in walking order, one direction of a walk at a time; a frame is yielded once the ``reach``
frames after it are known (or the direction ended), so at most ``2 * reach + 1`` masks are held. A frame
without an object (empty mask, a stop rule) is written as it is and lends its mask to no neighbour. Masks are
bool ``(H, W)`` (rows, columns); distances are in pixels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace

import numpy as np
from scipy import ndimage

from volsam.core.errors import SettingsError
from volsam.propagation.frames import centroid, expand_box, mask_box
from volsam.propagation.walk import SliceResult


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the mask's edge in px, negative inside ``mask`` (bool (H, W), not empty), float64 (H, W)."""
    return ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)


def smooth_mask(own: np.ndarray, neighbours: Iterable[tuple[np.ndarray, float]], own_weight: float) -> np.ndarray:
    """``own`` (bool (H, W), not empty) smoothed with ``neighbours`` ((mask, weight) pairs, masks not empty):
    the pixels where the weighted mean of the signed distances (each neighbour's map moved by linear
    interpolation so that its centroid lies on ``own``'s; beyond the frame its edge values continue) is below
    zero. ``own`` as it is when that leaves nothing. Computed in the window that holds every mask with a margin
    of twice the largest move plus 3 px, so that large frames cost what the object's size does, with the whole
    frame's answer: a mask's distances are exact in a window whose border is background, and a pixel whose
    moved value the window cuts lies over 3 px outside every mask where it is and where it is moved to, so
    every term of its mean is positive either way."""
    if own_weight <= 0:
        raise SettingsError(f"the frame's own weight must be > 0, got {own_weight!r}")
    centre = centroid(own)  # (x, y)
    pairs = [(mask, float(w), centre - centroid(mask)) for mask, w in neighbours]
    margin = 2 * np.ceil(max((np.abs(move).max() for _, _, move in pairs), default=0.0)) + 3
    boxes = [mask_box(own)] + [mask_box(mask) for mask, _, _ in pairs]
    union = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    x0, y0, x1, y1 = (int(v) for v in expand_box(union, margin, own.shape))
    window = (slice(y0, y1 + 1), slice(x0, x1 + 1))
    total = own_weight * signed_distance(own[window])
    weight = own_weight
    for mask, w, move in pairs:
        total += w * ndimage.shift(signed_distance(mask[window]), move[::-1], order=1, mode="nearest")  # (rows, cols)
        weight += w
    smoothed = np.zeros_like(own)
    smoothed[window] = total / weight < 0
    return smoothed if smoothed.any() else own


def _has_object(result: SliceResult) -> bool:
    return result.stop_reason is None and bool(result.mask.any())


def smooth_direction(
    anchor: SliceResult, results: Iterable[SliceResult], reach: int, keep: tuple[int, int] | None = None
) -> Iterator[SliceResult]:
    """``results`` (one direction of a walk, in walking order, one result a frame: the frames after
    ``anchor``, the prompted frame, which is not yielded again) with each mask smoothed over the frames up to
    ``reach`` before and after it by frame number (see the module notes); ``anchor`` counts as the frame before
    the first. Only frames whose index lies in
    ``keep`` (first, last inclusive; None: all) are yielded: a walk that reads ``reach`` frames past a
    range's end smooths the range's last frames as a walk through the whole video does. ``reach`` 0: the
    results as they are."""
    if reach < 0:
        raise SettingsError(f"reach must be >= 0 frames, got {reach!r}")
    lo, hi = keep if keep is not None else (-np.inf, np.inf)
    window: deque[SliceResult] = deque([anchor])  # up to reach frames already out, then those not yet out
    pending = 0  # the frames at the window's end not yet out

    def out(k: int) -> Iterator[SliceResult]:
        """The window's frame ``k``, smoothed, when it is kept."""
        result = window[k]
        if not lo <= result.index <= hi:
            return
        if reach == 0 or not _has_object(result):
            yield result
            return
        near = [
            (r.mask, float(reach + 1 - abs(r.index - result.index)))
            for r in window
            if r is not result and abs(r.index - result.index) <= reach and _has_object(r)
        ]
        yield replace(result, mask=smooth_mask(result.mask, near, float(reach + 1)))

    for result in results:
        window.append(result)
        pending += 1
        if pending > reach:  # the oldest frame not yet out now has its reach frames after it
            yield from out(len(window) - pending)
            pending -= 1
            while len(window) - pending > reach:  # of the frames out, the reach nearest stay
                window.popleft()
    for k in range(len(window) - pending, len(window)):
        yield from out(k)


__all__ = ["signed_distance", "smooth_direction", "smooth_mask"]

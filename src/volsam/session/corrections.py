"""Local corrections for slice engines: re-segment one frame from all of an object's prompts there, then
re-propagate from it only until the result agrees with what was there, or the next frame the user
prompted, or the object ends.

Masks here are frame stacks ``(n_frames, H, W)`` in the window of a :class:`~volsam.propagate.FrameStack`
(frame pixels: x = column, y = row).
"""

from __future__ import annotations

import logging

import numpy as np

from volsam.core.errors import PromptError
from volsam.propagate import EmbeddingCache, FrameStack, PropagationSettings, mask_box, predict_seed, propagate

log = logging.getLogger(__name__)

UNCHANGED_DICE = 0.97  # a re-propagated frame this close to the old mask ends the walk in that direction


def _dice2d(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def correction_box(
    mask: np.ndarray, positives: np.ndarray, user_box: tuple[float, float, float, float] | None
) -> tuple[float, float, float, float] | None:
    """The box to prompt a corrected frame with: the user's box on it if there is one; otherwise the box of
    the current mask and the positive clicks ``(n, 2)`` (x, y), grown by a tenth of its side (at least
    2 px) so that the object can grow towards a click; None when there is neither mask nor positive click."""
    if user_box is not None:
        return user_box
    xs: list[float] = []
    ys: list[float] = []
    current = mask_box(mask)
    if current is not None:
        xs += [current[0], current[2]]
        ys += [current[1], current[3]]
    for x, y in np.asarray(positives, dtype=float).reshape(-1, 2):
        xs.append(x)
        ys.append(y)
    if not xs:
        return None
    h, w = mask.shape
    pad = max(2.0, 0.1 * max(max(xs) - min(xs) + 1, max(ys) - min(ys) + 1))
    return (max(0.0, min(xs) - pad), max(0.0, min(ys) - pad), min(w - 1.0, max(xs) + pad), min(h - 1.0, max(ys) + pad))


def resegment_frame(
    cache: EmbeddingCache,
    s: int,
    current: np.ndarray,
    *,
    user_box: tuple[float, float, float, float] | None,
    points: np.ndarray,
    labels: np.ndarray,
    settings: PropagationSettings,
) -> np.ndarray:
    """Frame ``s`` segmented again from the user's box there (or the current mask's box, see
    :func:`correction_box`) together with every click on it; returns the new bool mask ``(H, W)``."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    box = correction_box(current, points[labels == 1], user_box)
    if box is None:  # only background clicks on a frame without the object: nothing to take away
        return current.copy()
    mask, _ = predict_seed(
        cache,
        s,
        box=box,
        points=points if len(points) else None,
        point_labels=labels if len(points) else None,
        settings=settings,
    )
    return mask


def repropagate(
    stack: FrameStack,
    masks: np.ndarray,
    start: int,
    *,
    cache: EmbeddingCache,
    bounds: tuple[int, int],
    settings: PropagationSettings,
    toward: int = 0,
) -> set[int]:
    """Walk from frame ``start`` (whose mask in ``masks`` is already the corrected one) in both directions
    within ``bounds`` = (first, last) frame, inclusive, writing new masks into ``masks`` until a frame comes
    out within :data:`UNCHANGED_DICE` of its old mask. When the object ends before that, the old masks up
    to the bound are cleared (they continued what the correction removed). When the corrected frame itself
    is now empty, the object ends there: the frames beyond it, away from ``toward`` (-1 / +1: the side of
    the object's nearest prompted frame), are cleared up to the bound. Returns the frames written."""
    lo, hi = bounds
    if not lo <= start <= hi:
        raise PromptError(f"frame {start} is outside the correction range {lo}..{hi}")
    written = {start}
    if not masks[start].any():  # the object ends here: it is gone beyond, away from where it was prompted
        away = 1 if toward < 0 else -1
        end = hi if away > 0 else lo
        for t in range(start + away, end + away, away):
            if masks[t].any():
                masks[t] = False
                written.add(t)
        return written
    for step, end in ((1, hi), (-1, lo)):
        if start == end:
            continue
        walk_limit = (start, end) if step > 0 else (end, start)
        walker = propagate(
            cache.engine,
            stack,
            start,
            seed_mask=masks[start],
            limit=walk_limit,
            settings=settings,
            cache=cache,
            directions=(step,),
        )
        next(walker)  # the start frame itself
        reached = start
        for res in walker:
            reached = res.index
            if res.mask.any() and _dice2d(res.mask, masks[res.index]) >= UNCHANGED_DICE:
                log.debug("correction walk %+d: frame %d unchanged, stopping", step, res.index)
                break
            masks[res.index] = res.mask
            written.add(res.index)
            if not res.mask.any():
                for t in range(res.index + step, end + step, step):
                    if masks[t].any():
                        masks[t] = False
                        written.add(t)
                break
        log.debug("correction walk %+d from %d reached %d", step, start, reached)
    return written

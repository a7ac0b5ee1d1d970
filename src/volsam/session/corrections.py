"""Local corrections for slice engines: re-segment one frame from all of an object's prompts there, then
re-propagate from it only until the result agrees with what was there, or the next frame the user
prompted, or the object ends.

Masks here are frame stacks ``(n_frames, H, W)`` in the window of a :class:`~volsam.propagation.FrameStack`
(frame pixels: x = column, y = row). The thresholds are fields of
:class:`~volsam.propagation.settings.CorrectionSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy import ndimage

from volsam.core.errors import PromptError, SettingsError
from volsam.engines.base import FrameSource
from volsam.propagation import EmbeddingCache, PropagationSettings, mask_box, predict_seed, propagate
from volsam.propagation.settings import CorrectionSettings

log = logging.getLogger(__name__)

BoxXY = tuple[float, float, float, float]


class EditMode(str, Enum):
    """How a corrected frame combines the model's new mask with the current one (:func:`combine`)."""

    REPLACE = "replace"  # take the new mask (a box, or the first prompt on a frame without the object)
    ADD = "add"  # the latest click was on the object: only add the piece under it
    REMOVE = "remove"  # the latest click was on background: only take voxels away

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def of(cls, value: EditMode | str) -> EditMode:
        """``value`` as an EditMode; SettingsError for anything else."""
        try:
            return cls(value)
        except ValueError:
            raise SettingsError(f"edit mode {value!r} is not one of replace, add, remove") from None


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two 2D masks; 1.0 when both are empty."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def correction_box(
    mask: np.ndarray,
    positives: np.ndarray,
    user_box: BoxXY | None,
    template: BoxXY | None = None,
    corrections: CorrectionSettings | None = None,
) -> BoxXY | None:
    """The box to prompt a corrected frame with.

    The user's box on the frame if there is one. Otherwise the box of the current mask and the positive
    clicks ``(n, 2)`` (x, y), grown by ``corrections.box_pad_fraction`` of its side (at least
    ``box_pad_min`` px) so that the object can grow towards a click. On a frame without the object,
    ``template`` (the box of the object on the nearest frame that has it) moved to centre on the clicks when
    they lie outside it. None when there is nothing to go on.
    """
    if user_box is not None:
        return user_box
    corrections = corrections or CorrectionSettings()
    h, w = mask.shape
    pos = np.asarray(positives, dtype=float).reshape(-1, 2)
    current = mask_box(mask)
    if current is None and template is not None and len(pos):
        x0, y0, x1, y1 = template
        cx, cy = pos.mean(axis=0)
        if not all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in pos):
            hw, hh = (x1 - x0) / 2, (y1 - y0) / 2
            x0, x1, y0, y1 = cx - hw, cx + hw, cy - hh, cy + hh
        xs, ys = [x0, x1, *pos[:, 0]], [y0, y1, *pos[:, 1]]
    else:
        xs = ([current[0], current[2]] if current is not None else []) + list(pos[:, 0])
        ys = ([current[1], current[3]] if current is not None else []) + list(pos[:, 1])
    if not xs:
        return None
    side = max(max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)
    pad = max(corrections.box_pad_min, corrections.box_pad_fraction * side)
    return (max(0.0, min(xs) - pad), max(0.0, min(ys) - pad), min(w - 1.0, max(xs) + pad), min(h - 1.0, max(ys) + pad))


def _carve(mask: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """``mask`` without, around each background click inside it, the largest disc centred on the click that
    stays inside the mask (the click marks the middle of a wrong area); the largest remaining piece."""
    out = mask.copy()
    depth = ndimage.distance_transform_edt(mask)
    yy, xx = np.ogrid[: mask.shape[0], : mask.shape[1]]
    for x, y in np.asarray(negatives, dtype=float).reshape(-1, 2):
        r = float(depth[int(round(y)), int(round(x))])
        if r > 0:
            out &= (yy - y) ** 2 + (xx - x) ** 2 > r * r
    labels, n = ndimage.label(out)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        out = labels == int(np.argmax(sizes)) + 1
    return out


@dataclass(frozen=True)
class FrameEdit:
    """What the user gave on one frame (frame pixels): their box there (None: none), the clicks ``(n, 2)``
    (x, y) with labels ``(n,)`` (1 object, 0 background), and ``template``: the object's box on the nearest
    frame that has it (see :func:`correction_box`); ``clicks_to_model`` whether the clicks also go to the
    model's prompt encoder with the box."""

    user_box: BoxXY | None
    points: np.ndarray
    labels: np.ndarray
    template: BoxXY | None = None
    clicks_to_model: bool = True  # False: the model gets the box only; clicks act through the add/remove rules


def _fill_clicks(mask: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """``mask`` plus, around each object click it still misses, the disc centred on the click that reaches
    the mask (the click marks the middle of a missed area next to it); unchanged when the mask is empty."""
    missed = [(x, y) for x, y in positives if not mask[int(round(y)), int(round(x))]]
    if not missed or not mask.any():
        return mask
    out = mask.copy()
    gap = ndimage.distance_transform_edt(~mask)
    yy, xx = np.ogrid[: mask.shape[0], : mask.shape[1]]
    for x, y in missed:
        r = float(gap[int(round(y)), int(round(x))])
        out |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    return out


def resegment_frame(
    cache: EmbeddingCache,
    s: int,
    current: np.ndarray,
    edit: FrameEdit,
    settings: PropagationSettings,
    mode: EditMode | str = EditMode.REPLACE,
    area_cap: float | None = None,
    corrections: CorrectionSettings | None = None,
) -> np.ndarray:
    """Frame ``s`` segmented again from the user's box there (or the box of :func:`correction_box`)
    together with every click on it; returns the new bool mask ``(H, W)``.

    ``area_cap`` (pixels): in ``add`` mode the object may not grow beyond this area on the frame; the added
    pixels nearest the object clicks are kept (cross-sections change smoothly from frame to frame, and the
    model's answer to a click on a small object is often far too large).

    Clicks are obeyed: when the model's mask still covers a background click, the frame is segmented again
    from the box with its side nearest the click moved past it (:func:`trim_box`; without a box of the
    user's there), and when that still covers a click (or loses an object click) the current mask is carved
    around the click instead (:func:`_carve`); a background click on a frame without the object changes
    nothing. ``mode`` ``add`` (the latest click was on the object) keeps the current mask and adds the
    model's piece under the object clicks; ``remove`` (a background click) only takes voxels away;
    ``replace`` takes the model's mask as it is.
    """
    mode = EditMode.of(mode)
    corrections = corrections or CorrectionSettings()
    new = _resegment(cache, s, current, edit, settings, corrections)
    return combine(current, new, edit.points, edit.labels, mode, area_cap, corrections)


def _nearest(current: np.ndarray, added: np.ndarray, clicks: np.ndarray, cap: float) -> np.ndarray:
    """``current`` plus the pixels of ``added`` nearest to ``clicks``, up to ``cap`` pixels in all."""
    room = int(cap) - int(current.sum())
    extra = added & ~current
    if room <= 0:
        return current.copy()
    if int(extra.sum()) <= room:
        return current | extra
    yy, xx = np.nonzero(extra)
    d = np.min([(yy - y) ** 2 + (xx - x) ** 2 for x, y in clicks], axis=0)
    keep = np.argsort(d, kind="stable")[:room]
    out = current.copy()
    out[yy[keep], xx[keep]] = True
    return out


def grow_capped(old: np.ndarray, new: np.ndarray, cap: float) -> np.ndarray:
    """``old`` plus the pixels of ``new`` nearest to ``old``, up to ``cap`` pixels in all (``old | new`` when
    that is within the cap; ``old`` unchanged when it is already at or over it)."""
    extra = new & ~old
    room = int(cap) - int(old.sum())
    if room <= 0 or not extra.any():
        return old.copy()
    if int(extra.sum()) <= room:
        return old | extra
    gap = ndimage.distance_transform_edt(~old)
    yy, xx = np.nonzero(extra)
    keep = np.argsort(gap[yy, xx], kind="stable")[:room]
    out = old.copy()
    out[yy[keep], xx[keep]] = True
    return out


def combine(
    current: np.ndarray,
    new: np.ndarray,
    points: np.ndarray,
    labels: np.ndarray,
    mode: EditMode | str,
    area_cap: float | None = None,
    corrections: CorrectionSettings | None = None,
) -> np.ndarray:
    """The corrected frame from the current mask, the model's new one and the clicks (``(n, 2)`` (x, y),
    labels 1/0): ``add`` keeps the current mask and adds the new pieces under the object clicks (no further
    from the mask than ``corrections.add_reach`` times the click's distance plus ``add_reach_px``, at most
    ``area_cap`` pixels in all, nearest the clicks first); ``remove`` keeps only what both masks have;
    ``replace`` takes the new mask."""
    mode = EditMode.of(mode)
    corrections = corrections or CorrectionSettings()
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    if mode is EditMode.ADD:
        positives = points[np.asarray(labels) == 1]
        pieces, _ = ndimage.label(new)
        keep = {int(pieces[int(round(y)), int(round(x))]) for x, y in positives} - {0}
        added = np.isin(pieces, list(keep)) if keep else new
        if current.any():  # no further from the mask than about twice the click's distance to it
            gap = ndimage.distance_transform_edt(~current)
            reach = max([float(gap[int(round(y)), int(round(x))]) for x, y in positives] + [1.0])
            added &= gap <= corrections.add_reach * reach + corrections.add_reach_px
        grown = _fill_clicks(current | added, positives)
        if area_cap is not None and current.any() and len(positives) and grown.sum() > area_cap:
            grown = _nearest(current, grown, positives, area_cap)
        return grown
    if mode is EditMode.REMOVE:
        return current & new
    return new


def _resegment(
    cache: EmbeddingCache,
    s: int,
    current: np.ndarray,
    edit: FrameEdit,
    settings: PropagationSettings,
    corrections: CorrectionSettings,
) -> np.ndarray:
    user_box, template = edit.user_box, edit.template
    points = np.asarray(edit.points, dtype=np.float32).reshape(-1, 2)
    labels = np.asarray(edit.labels, dtype=np.int64).reshape(-1)
    negatives = points[labels == 0]
    positives = points[labels == 1]

    def covers(m: np.ndarray) -> bool:
        return bool(m.any()) and all(m[int(round(y)), int(round(x))] for x, y in positives)

    if user_box is None and not current.any() and len(positives):
        # the object is new on this frame: the clicks alone first (a neighbour's box is usually too large
        # at an object's end), the neighbour's box when they give nothing that covers them
        mask, _ = predict_seed(cache, s, points=points, point_labels=labels, settings=settings)
        if not covers(mask):
            box = correction_box(current, positives, None, template, corrections)
            if box is not None:
                mask, _ = predict_seed(cache, s, box=box, points=points, point_labels=labels, settings=settings)
        return mask if not any(mask[int(round(y)), int(round(x))] for x, y in negatives) else _carve(mask, negatives)
    box = correction_box(current, positives, user_box, template, corrections)
    if box is None:  # only background clicks on a frame without the object: nothing to take away
        return current.copy()
    with_clicks = edit.clicks_to_model and len(points) > 0
    mask, _ = predict_seed(
        cache,
        s,
        box=box,
        points=points if with_clicks else None,
        point_labels=labels if with_clicks else None,
        settings=settings,
    )
    if len(positives) and not covers(mask):
        clicks_only, _ = predict_seed(cache, s, points=points, point_labels=labels, settings=settings)
        if covers(clicks_only):
            log.debug("frame %d: the box's mask missed an object click; segmented from the clicks alone", s)
            mask = clicks_only
    inside = [bool(mask[int(round(y)), int(round(x))]) for x, y in negatives]
    trimmed = trim_box(box, negatives) if any(inside) and user_box is None else None
    if trimmed is not None:  # a box edit: the box's side nearest the click moves past it
        cut, _ = predict_seed(cache, s, box=trimmed, settings=settings)
        if cut.any() and not any(cut[int(round(y)), int(round(x))] for x, y in negatives):
            if covers(cut) or not len(positives):
                log.debug("frame %d: segmented again from the box moved past the background click", s)
                return cut
    if any(inside):
        log.debug("frame %d: the model kept a background click; carving the mask around it instead", s)
        return _carve(current if current.any() else mask, negatives)
    return mask


def trim_box(box: BoxXY, negatives: np.ndarray) -> BoxXY | None:
    """``box`` (x0, y0, x1, y1) with, for each background click inside it, the edge nearest the click moved
    just past it (the click marks the middle of a wrongly included band along that side); None when that
    leaves no box."""
    x0, y0, x1, y1 = box
    for x, y in np.asarray(negatives, dtype=float).reshape(-1, 2):
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            continue
        gaps = {"x0": x - x0, "x1": x1 - x, "y0": y - y0, "y1": y1 - y}
        side = min(gaps, key=gaps.get)
        if side == "x0":
            x0 = x + 1
        elif side == "x1":
            x1 = x - 1
        elif side == "y0":
            y0 = y + 1
        else:
            y1 = y - 1
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def repropagate(
    stack: FrameSource,
    masks: np.ndarray,
    start: int,
    *,
    cache: EmbeddingCache,
    bounds: tuple[int, int],
    settings: PropagationSettings,
    toward: int = 0,
    grow: bool = True,
    mode: EditMode | str = EditMode.REPLACE,
    corrections: CorrectionSettings | None = None,
    on_frame: Callable[[int], None] | None = None,
    on_written: Callable[[int], None] | None = None,
) -> set[int]:
    """Carry the corrected frame ``start`` (its mask in ``masks`` is already the new one) to its neighbours
    within ``bounds`` = (first, last) frame, inclusive; returns the frames written.

    ``toward`` (-1 / +1) is the side of the object's nearest prompted frame: the masks there came from a
    stronger prompt, so on that side the walk only fills frames that have no mask yet (a gap before the
    object). On the other side it re-propagates until a frame comes out within ``corrections.unchanged_dice`` of
    its old mask; when the object ends first, the old masks beyond, up to the bound, are cleared (they
    continued what the correction removed). Without ``grow`` (a correction that only took voxels away) the
    walk does not carry the object into frames that had none. An empty corrected frame ends the object
    there. ``mode`` ``add`` only adds to old masks (and never clears), growing each
    by at most ``corrections.neighbour_growth`` times its old area (:func:`grow_capped`), ``remove`` only takes
    away.

    ``on_frame(index)`` is called after each neighbour the model segmented (progress; it may raise, e.g.
    :class:`~volsam.core.errors.Cancelled`, to stop: ``masks`` is then partly written and the caller rolls
    the step back); ``on_written(index)`` after each frame of ``masks`` written or cleared (a live preview
    reads it there).
    """
    mode = EditMode.of(mode)
    corrections = corrections or CorrectionSettings()
    lo, hi = bounds
    if not lo <= start <= hi:
        raise PromptError(f"frame {start} is outside the correction range {lo}..{hi}")
    away = -toward if toward else 1
    written = {start}

    def clear_beyond(t: int, step: int) -> None:
        end = hi if step > 0 else lo
        for u in range(t + step, end + step, step):
            if masks[u].any():
                masks[u] = False
                written.add(u)
                if on_written is not None:
                    on_written(u)

    if not masks[start].any():
        if mode is not EditMode.ADD:
            clear_beyond(start, away)
        return written
    for step in (away, -away):
        end = hi if step > 0 else lo
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
        prev_area = int(masks[start].sum())
        for res in walker:
            if on_frame is not None:
                on_frame(res.index)
            old = masks[res.index]
            if step != away and old.any():
                break  # towards the prompt: the frames that have the object keep it
            if step == away and res.mask.any() and agreement(res.mask, old) >= corrections.unchanged_dice:
                break
            if step == away and not old.any() and (not grow or res.mask.sum() > prev_area):
                break  # a removal does not extend the object; an extension only while it narrows
            if mode is EditMode.ADD and not res.mask.any():
                break  # adding never clears
            if mode is EditMode.ADD:  # a neighbour grows by a bounded factor (a small object's answer can balloon)
                new = grow_capped(old, res.mask, corrections.neighbour_growth * old.sum()) if old.any() else res.mask
            else:
                new = old & res.mask if mode is EditMode.REMOVE and old.any() else res.mask
            if mode is EditMode.ADD and np.array_equal(new, old):
                break
            masks[res.index] = new
            written.add(res.index)
            if on_written is not None:
                on_written(res.index)
            prev_area = int(new.sum())
            if not new.any():
                if step == away:
                    clear_beyond(res.index, step)
                break
    return written

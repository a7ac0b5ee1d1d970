"""The walk: one prompted frame -> the object on the frames before and after it (slice engines).

Two strategies (:class:`~volsam.propagation.settings.Strategy`):

* ``baseline`` -- the CVPR 2024 challenge baseline: each next frame is prompted with the tight bounding box
  of the previous frame's mask; stop when the mask is empty (or at the range limit).
* ``volsam`` (default) -- the same walk with the rules that keep it on the object at its ends: boxes get a
  small margin and each frame is predicted from a few box sizes, the one whose mask best fits the prompted
  frame's grey-level appearance winning; the new mask may only grow a bounded distance beyond the previous
  one (no leaks into neighbours); the walk stops by the rules of :mod:`volsam.propagation.stops`.

:func:`propagate` is a generator that yields one :class:`SliceResult` per frame as it is segmented, so
callers get progress and cancellation for free.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from volsam.core.errors import PromptError
from volsam.engines.base import FrameSource, SliceEmbedding, SliceEngine, SlicePrediction
from volsam.propagation.appearance import AppearanceModel, appearance_model
from volsam.propagation.cache import EmbeddingCache
from volsam.propagation.frames import BoxXY, centroid, expand_box, intensity, mask_box, shift_mask
from volsam.propagation.seed import predict_seed
from volsam.propagation.settings import PropagationSettings, StopReason
from volsam.propagation.stops import AreaTrend, Stop, frame_stop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SliceResult:
    """One segmented frame: its bool mask ``(H, W)``, the model's score, the box it was prompted with and,
    on the last frame of a direction that a rule ended, the rule (``stop_reason``; the mask is then empty)
    and the numbers that decided it (``stop_detail``). ``origin``: (row, col) of the mask's first pixel on the
    whole frame -- the corner of the window the walk ran in (set by
    :func:`~volsam.propagation.slices.segment_slices`; (0, 0) for whole frames)."""

    index: int
    mask: np.ndarray
    score: float
    box: BoxXY | None
    stop_reason: StopReason | None = None
    stop_detail: str = ""
    origin: tuple[int, int] = (0, 0)


def _candidates(
    cache: EmbeddingCache,
    emb: SliceEmbedding,
    prev_box: BoxXY,
    allowed: np.ndarray | None,
    settings: PropagationSettings,
    model: AppearanceModel | None,
    frame: np.ndarray | None,
    shift: tuple[int, int],
) -> list[tuple[float, np.ndarray, SlicePrediction, BoxXY]]:
    """(fit, mask, prediction, box) for each box proposal of the frame encoded as ``emb``: the previous box
    grown by the margin plus each ratio of ``proposal_ratios`` (and, with ``motion``, the same moved by
    ``shift``); fit is the appearance model's score of the mask (the model's own score without one). All
    proposals go to the engine in one call (:meth:`~volsam.engines.base.SliceEngine.predict_boxes`: one
    decoder forward for LiteMedSAM)."""
    proposals: list[tuple[BoxXY, np.ndarray | None]] = []
    side = max(prev_box[2] - prev_box[0] + 1, prev_box[3] - prev_box[1] + 1)
    moves = [(0, 0)] + ([shift] if settings.volsam and settings.motion and shift != (0, 0) else [])
    for dx, dy in moves:
        base = (prev_box[0] + dx, prev_box[1] + dy, prev_box[2] + dx, prev_box[3] + dy)
        region = allowed if (dx, dy) == (0, 0) or allowed is None else shift_mask(allowed, dx, dy)
        for ratio in settings.proposal_ratios if settings.volsam else (0.0,):
            box = expand_box(base, settings.box_margin + ratio * side, emb.frame_shape) if settings.volsam else prev_box
            if box[0] > box[2] or box[1] > box[3]:
                continue  # moved out of the frame
            proposals.append((box, region))
    preds = cache.engine.predict_boxes(emb, [box for box, _ in proposals]) if proposals else []
    log_ratio = model.log_ratio(frame) if model is not None else None  # per pixel, the same for every proposal
    out = []
    for (box, region), pred in zip(proposals, preds, strict=True):
        mask = pred.mask & region if region is not None else pred.mask
        fit = float(log_ratio[mask].sum()) if log_ratio is not None else pred.score
        out.append((fit, mask, pred, box))
    return out


def _step(
    cache: EmbeddingCache,
    s: int,
    step: int,
    limit: tuple[int, int],
    prev: np.ndarray,
    settings: PropagationSettings,
    model: AppearanceModel | None = None,
    shift: tuple[int, int] = (0, 0),
) -> tuple[SliceResult, bool]:
    """Segment frame ``s`` from the previous frame's mask; returns the result and whether to go on.

    ``model`` is the prompted frame's appearance (volsam), None when it cannot tell object from surroundings;
    ``shift`` = (dx, dy) pixels, the object's last motion (``settings.motion``).
    """
    prev_box = mask_box(prev)
    if prev_box is None:  # the caller never passes an empty mask
        raise PromptError("cannot propagate from an empty mask")
    emb = cache.get(s, step, limit)  # encodes ahead in the walking direction
    frame = intensity(cache.stack.frames([s])[0]) if model is not None else None
    grows = settings.volsam and settings.growth_limit
    allowed = ndimage.binary_dilation(prev, iterations=settings.growth_limit) if grows else None
    candidates = _candidates(cache, emb, prev_box, allowed, settings, model, frame, shift)
    _, mask, pred, box = max(candidates, key=lambda c: c[0])  # the first of equals
    object_fraction = (lambda: model.object_fraction(frame, mask)) if model is not None else None
    stop = frame_stop(pred.score, int(mask.sum()), int(prev.sum()), settings, object_fraction)
    if stop is not None:
        return _stopped(SliceResult(s, mask, pred.score, box), stop), False
    return SliceResult(s, mask, pred.score, box), True


def _stopped(result: SliceResult, stop: Stop) -> SliceResult:
    return replace(result, mask=np.zeros_like(result.mask), stop_reason=stop.reason, stop_detail=stop.detail)


def propagate(
    engine: SliceEngine,
    stack: FrameSource,
    start: int,
    *,
    box: BoxXY | None = None,
    points: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    seed_mask: np.ndarray | None = None,
    limit: tuple[int, int] | None = None,
    settings: PropagationSettings | None = None,
    cache: EmbeddingCache | None = None,
    directions: tuple[int, ...] = (1, -1),
) -> Iterator[SliceResult]:
    """Segment frame ``start`` from its prompt, then walk forward and backward through the stack.

    Give a ``box`` and/or ``points`` (frame pixels) to have the engine segment ``start``, or ``seed_mask``
    (bool (H, W)) to use that mask as the start frame's result. ``limit`` = (first, last) frame, inclusive,
    bounds the walk (a 3D box's range). Yields the start frame first, then frames start+1, start+2, ...
    until a stop rule or the limit, then start-1, start-2, ... (``directions`` picks which of +1 / -1 run).
    A start frame below ``settings.min_area`` is yielded with ``stop_reason`` EMPTY and ends the walk.
    """
    settings = settings or PropagationSettings()
    n = len(stack)
    lo, hi = limit if limit is not None else (0, n - 1)
    if not (0 <= lo <= start <= hi < n):
        raise PromptError(f"start frame {start} is outside the range {lo}..{hi} of {n} frames")
    cache = cache or EmbeddingCache(engine, stack, settings.batch_size, settings.cache_size)

    if seed_mask is not None:
        first = SliceResult(start, np.asarray(seed_mask, dtype=bool), 1.0, mask_box(seed_mask))
    else:
        mask, score = predict_seed(
            cache, start, box=box, points=points, point_labels=point_labels, settings=settings, limit=(lo, hi)
        )
        first = SliceResult(start, mask, score, box)
    if first.mask.sum() < settings.min_area:
        log.warning("the prompted frame %d gave an empty mask; nothing to propagate", start)
        yield replace(first, stop_reason=StopReason.EMPTY, stop_detail="the prompted frame gave an empty mask")
        return
    yield first

    model = appearance_model(intensity(stack.frames([start])[0]), first.mask, settings)
    for step in directions:
        end = hi if step > 0 else lo
        prev, before = first.mask, None
        trend = AreaTrend.start(int(prev.sum()), settings)
        s = start + step
        while (s <= end) if step > 0 else (s >= end):
            shift = (0, 0)
            if settings.motion and before is not None:
                dx, dy = np.rint(centroid(prev) - centroid(before)).astype(int)
                shift = (int(dx), int(dy))
            result, go_on = _step(cache, s, step, (lo, hi), prev, settings, model, shift)
            if go_on and settings.volsam and trend.regrew(int(result.mask.sum())):
                regrew = Stop(StopReason.REGREW, f"area grew again to {int(result.mask.sum())}px")
                result, go_on = _stopped(result, regrew), False
            yield result
            if not go_on:
                log.debug("direction %+d stopped at frame %d: %s", step, s, result.stop_detail)
                break
            prev, before = result.mask, prev
            s += step

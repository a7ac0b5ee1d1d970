"""One object through a volume with a slice engine: the prompted frames, the walk, the window around the
object (:func:`segment_slices`, what :func:`volsam.segment` runs for LiteMedSAM).

With the volsam strategy the frames are cut to a square window around the prompts
(:func:`~volsam.propagation.frames.focus_window`) so that a small object fills enough of the model's input;
when the object reaches the window's edge, the walk runs again in a window twice as wide (a context that
gives the same window again, at the window's floor, is skipped: its frames, and so its walk, would not
change).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from volsam.core.errors import PromptError
from volsam.engines.base import SliceEngine
from volsam.propagation.cache import EmbeddingCache
from volsam.propagation.frames import FrameStack, Window, focus_window, mask_box, touches_window_edge
from volsam.propagation.prompts import ObjectPrompts
from volsam.propagation.seed import predict_seed
from volsam.propagation.settings import PropagationSettings
from volsam.propagation.stack import StackResult, segment_stack
from volsam.propagation.walk import SliceResult

log = logging.getLogger(__name__)


@dataclass
class SlicesResult:
    """The object's masks ``(n_frames, h, w)`` in ``stack``'s window, what the last walk did, the prompted
    frames' scores, the frames encoded by every walk (windows included) and the window (None: whole frames)."""

    masks: np.ndarray
    stack: FrameStack
    walk: StackResult
    scores: dict[int, float]
    frames_encoded: int
    window: Window | None


def segment_slices(
    engine: SliceEngine,
    frames: FrameStack,
    prompts: ObjectPrompts,
    settings: PropagationSettings,
    on_frame: Callable[[SliceResult], None] | None = None,
) -> SlicesResult:
    """Segment one object through ``frames`` (whole frames) from its ``prompts``; with the volsam strategy in
    a window around them, widened (x2) and run again while the object reaches its edge."""
    extent = prompts.extent()
    if extent is None:  # every prompt kind has an in-plane extent; kept for a clear error if one ever has not
        raise PromptError("the prompts mark no pixel on any slice")
    context = settings.roi_context
    encoded = 0
    walked: Window | None = None
    while True:
        roi = None
        if settings.volsam:
            roi = focus_window(extent, frames.full_shape, context, settings.roi_min, settings.roi_max_fraction)
        if walked is not None and roi == walked:  # the wider context gave the same window (its floor): the
            context *= 2  # same frames would give the same walk, encoded again for nothing
            continue
        walked = roi
        stack = frames.windowed(roi)
        masks, walk, scores = _walk(engine, stack, prompts, settings, _placed(on_frame, roi))
        encoded += walk.frames_encoded
        if roi is None or not touches_window_edge(masks, roi, frames.full_shape):
            return SlicesResult(masks, stack, walk, scores, encoded, roi)
        context *= 2
        log.info("the object reaches the edge of the %dx%d window: again with a wider one", *stack.frame_shape)


def _placed(on_frame: Callable[[SliceResult], None] | None, roi: Window | None) -> Callable[[SliceResult], None] | None:
    """``on_frame`` handed each result with its ``origin`` = the corner (row, col) of window ``roi``."""
    if on_frame is None or roi is None:
        return on_frame
    corner = (int(roi[0]), int(roi[2]))
    return lambda r: on_frame(replace(r, origin=corner))


def _walk(
    engine: SliceEngine,
    stack: FrameStack,
    prompts: ObjectPrompts,
    settings: PropagationSettings,
    on_frame: Callable[[SliceResult], None] | None,
) -> tuple[np.ndarray, StackResult, dict[int, float]]:
    """Segment the prompted frames of ``stack`` (its window), propagate, apply background clicks elsewhere.

    Returns the window masks ``(n_frames, h, w)``, the walk's result and the prompted frames' scores.
    """
    local = prompts.in_window(stack.roi)
    limit = local.limit()
    cache = EmbeddingCache(engine, stack, settings.batch_size, settings.cache_size)
    seeds = dict(local.masks)
    clicked = local.clicked
    scores: dict[int, float] = {}
    refinements = {s: p for s, p in clicked.items() if not p.can_start}
    if refinements and not seeds and len(refinements) == len(clicked):
        raise PromptError("only negative points given: add a box or a positive point on the object")
    for s, p in sorted(clicked.items()):
        if s in refinements:
            continue
        mask, score = predict_seed(
            cache, s, box=p.box, points=p.points, point_labels=p.point_labels, settings=settings, limit=limit
        )
        if not mask.any():
            log.warning("slice %d: the prompt gave an empty mask", s)
        seeds[s] = seeds.get(s, np.zeros_like(mask)) | mask
        scores[s] = score
        if on_frame is not None:
            on_frame(SliceResult(s, mask, score, p.box))

    result = segment_stack(engine, stack, seeds, limit=limit, settings=settings, cache=cache, on_frame=on_frame)
    masks = result.masks
    for s, p in sorted(refinements.items()):  # background clicks on other slices correct those slices
        box = mask_box(masks[s])
        if box is None:
            continue
        mask, _ = predict_seed(cache, s, box=box, points=p.points, point_labels=p.point_labels, settings=settings)
        masks[s] = mask & masks[s]
        result.frames_segmented += 1
    return masks, result, scores

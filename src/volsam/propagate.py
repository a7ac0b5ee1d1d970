"""Slice-to-slice propagation for slice engines (LiteMedSAM): one prompted frame -> the whole 3D object.

Frames are the slices of the volume along the propagation axis (see :class:`FrameStack`); inside this module
everything is in frame coordinates: frame index ``s``, rows ``y``, columns ``x``; boxes ``(x0, y0, x1, y1)``
inclusive, in pixels.

Two strategies:

* ``baseline`` -- the CVPR 2024 challenge baseline: each next frame is prompted with the tight bounding box
  of the previous frame's mask; stop when the mask is empty (or at the range limit).
* ``volsam`` (default) -- the same walk with the rules that keep it on the object at its ends: boxes get a
  small margin and each frame is predicted from a few box sizes, the one whose mask best fits the prompted
  frame's grey-level appearance winning; the new mask may only grow a bounded distance beyond the previous
  one (no leaks into neighbours); the walk stops when the mask stops looking like the object, when the
  model's own IoU estimate drops, when the area jumps, or when a shrinking cross-section grows again; and
  the 3D result keeps only what is connected to the prompted slice, with holes filled.

:func:`propagate` is a generator that yields one :class:`SliceResult` per frame as it is segmented, so
callers get progress and cancellation for free.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from volsam.appearance import AppearanceModel
from volsam.core.errors import PromptError
from volsam.engines.base import SliceEmbedding, SliceEngine, SlicePrediction

log = logging.getLogger(__name__)

BoxXY = tuple[float, float, float, float]


@dataclass(frozen=True)
class PropagationSettings:
    """Knobs of the walk. Distances are in frame pixels, areas in pixels.

    Attributes:
        strategy: ``volsam`` or ``baseline``.
        box_margin: pixels added on each side of the previous mask's box, and of the user's box on the
            prompted frame (volsam; LiteMedSAM was trained on boxes a little larger than the object and
            under-segments from a tight one).
        proposal_ratios: each frame is predicted once per ratio, from the previous box grown by ``box_margin``
            plus ratio x its longer side on each side; the mask that best fits the appearance model wins
            (the highest model score while the appearance model cannot separate object and surroundings).
        growth_limit: the new mask is cut to the previous mask dilated by this many pixels (volsam; 0 = off).
        min_score: stop when the model's IoU estimate falls below this (volsam).
        min_area_ratio: stop when the area falls below this fraction of the previous frame's (volsam; 0 = off).
        max_area_ratio: stop when the area grows beyond this multiple of the previous frame's (volsam).
        min_area: masks smaller than this are empty (both strategies).
        appearance_stop: stop when less than ``min_object_fraction`` of the new mask's pixels look like the
            prompted frame's object rather than its surroundings (grey-level histograms, see
            :mod:`volsam.appearance`): the object has ended and the model is outlining other tissue.
        ring_width: width (px) of the surroundings ring of the appearance model.
        min_object_fraction: see ``appearance_stop``.
        min_separability: the appearance rules apply only when the prompted frame's object and surroundings
            histograms separate their own pixels at least this well (Youden's J, 0..1).
        regrowth_after: once the area has fallen below this fraction of its largest value in the walk's
            direction, a rise of more than ``max_regrowth`` over the smallest area since stops the walk (a
            cross-section that shrinks towards the object's end and then grows is another structure;
            volsam; 0 = off).
        max_regrowth: see ``regrowth_after``.
        cleanup_3d: keep the 3D component connected to the prompted frame and fill 2D holes (volsam).
        roi_context: the frames are cut to a square window this many times the prompts' extent (at least
            ``roi_min`` px, centred on them) before encoding, so that a small object fills enough of the
            model's input; the window is widened and the walk rerun when the object reaches its edge
            (0 = whole frames; :func:`volsam.segmentation.segment` applies it).
        roi_min: smallest window side (px).
        batch_size: frames encoded together ahead of the walk.
        cache_size: encoded frames kept in memory.
        motion: also propose each box moved by the mask centroid's shift between the two previous frames
            (its growth limit moved with it): objects in a video move, cross-sections of a volume mostly grow
            and shrink in place (volsam; off by default).
    """

    strategy: str = "volsam"
    box_margin: float = 1.0
    proposal_ratios: tuple[float, ...] = (0.0, 0.05, 0.1)
    growth_limit: int = 4
    min_score: float = 0.5
    min_area_ratio: float = 0.0
    max_area_ratio: float = 2.5
    min_area: int = 1
    appearance_stop: bool = True
    ring_width: int = 3
    min_object_fraction: float = 0.5
    min_separability: float = 0.3
    regrowth_after: float = 0.7
    max_regrowth: float = 0.2
    cleanup_3d: bool = True
    roi_context: float = 3.0
    roi_min: int = 48
    batch_size: int = 1
    cache_size: int = 16
    motion: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in ("volsam", "baseline"):
            raise ValueError(f"unknown propagation strategy {self.strategy!r} (volsam, baseline)")
        if not self.proposal_ratios or min(self.proposal_ratios) < 0:
            raise ValueError(f"proposal_ratios must be one or more ratios >= 0, got {self.proposal_ratios!r}")
        if self.box_margin < 0 or self.growth_limit < 0 or self.ring_width < 1:
            raise ValueError("box_margin and growth_limit must be >= 0 and ring_width >= 1")
        if self.roi_context < 0 or self.roi_min < 16:
            raise ValueError("roi_context must be >= 0 (0 = whole frames) and roi_min >= 16")

    @classmethod
    def baseline(cls) -> PropagationSettings:
        """The CVPR 2024 baseline: whole frames, tight box of the previous mask, stop when empty, no clean-up."""
        return cls(strategy="baseline", cleanup_3d=False, appearance_stop=False, regrowth_after=0.0, roi_context=0.0)


@dataclass(frozen=True)
class SliceResult:
    """One segmented frame."""

    index: int
    mask: np.ndarray  # bool (H, W)
    score: float
    box: BoxXY | None
    stop_reason: str | None = None  # set on the last frame of a direction when a rule stopped the walk


class FrameStack:
    """The volume seen as frames along one index axis, normalised lazily frame by frame.

    ``array`` is the image ``[k, j, i]``; ``axis`` is the index axis (0=i, 1=j, 2=k) frames are taken along.
    Frame ``s`` has rows = the higher remaining index axis and columns = the lower one (for axis k: rows j,
    columns i), so a :class:`~volsam.core.prompts.Box2D` ``(u0, v0, u1, v1)`` is ``(x0, y0, x1, y1)`` here.

    ``roi = (y0, y1, x0, x1)`` (half-open, frame pixels) restricts every frame to that window: frames, frame
    shapes and masks are then in window coordinates (subtract ``(x0, y0)`` from prompts) and
    :meth:`to_volume` puts them back in place. ``normalize`` must work pixel by pixel (a fitted
    :class:`~volsam.preprocess.Normalizer` does).
    """

    def __init__(
        self,
        array: np.ndarray,
        axis: int,
        normalize: Callable[[np.ndarray], np.ndarray],
        roi: tuple[int, int, int, int] | None = None,
    ):
        if axis not in (0, 1, 2):
            raise PromptError(f"axis must be 0, 1 or 2, got {axis!r}")
        self.axis = axis
        self._view = np.moveaxis(array, 2 - axis, 0)
        self._normalize = normalize
        h, w = self._view.shape[1:]
        if roi is not None:
            y0, y1, x0, x1 = roi
            if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
                raise PromptError(f"window {roi} does not lie inside the {h}x{w} frames")
        self.roi = roi if roi is not None else (0, h, 0, w)

    def __len__(self) -> int:
        return self._view.shape[0]

    @property
    def full_shape(self) -> tuple[int, int]:
        """(H, W) of the whole frames."""
        return (self._view.shape[1], self._view.shape[2])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of the frames as delivered (the window)."""
        y0, y1, x0, x1 = self.roi
        return (y1 - y0, x1 - x0)

    def frames(self, indices: list[int]) -> np.ndarray:
        """Normalised uint8 frames ``(n, H, W)`` (the window of each)."""
        y0, y1, x0, x1 = self.roi
        return np.stack([self._normalize(self._view[s, y0:y1, x0:x1]) for s in indices])

    def to_volume(self, masks: np.ndarray) -> np.ndarray:
        """Inverse of the frame view: ``(n_frames, H, W)`` window masks -> array ``[k, j, i]``."""
        y0, y1, x0, x1 = self.roi
        full = np.zeros((len(self), *self.full_shape), dtype=masks.dtype)
        full[:, y0:y1, x0:x1] = masks
        return np.moveaxis(full, 0, 2 - self.axis)


class EmbeddingCache:
    """Encodes frames on demand, ``batch_size`` at a time ahead in the walking direction; LRU-bounded."""

    def __init__(self, engine: SliceEngine, stack: FrameStack, batch_size: int = 1, capacity: int = 16):
        self.engine = engine
        self.stack = stack
        self.batch_size = max(1, batch_size)
        self.capacity = max(capacity, self.batch_size + 1)
        self._items: OrderedDict[int, SliceEmbedding] = OrderedDict()
        self.encoded = 0

    def get(self, s: int, step: int = 1, limit: tuple[int, int] | None = None) -> SliceEmbedding:
        if s not in self._items:
            lo, hi = limit if limit is not None else (0, len(self.stack) - 1)
            batch = [
                t for t in (s + step * n for n in range(self.batch_size)) if lo <= t <= hi and t not in self._items
            ]
            for t, emb in zip(batch, self.engine.encode(self.stack.frames(batch))):
                self._items[t] = emb
            self.encoded += len(batch)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        self._items.move_to_end(s)
        return self._items[s]


def focus_window(
    extent: BoxXY, shape: tuple[int, int], context: float, min_side: int
) -> tuple[int, int, int, int] | None:
    """A square window ``(y0, y1, x0, x1)`` (half-open) of side ``max(min_side, context x longer side of
    extent)`` centred on ``extent`` = ``(x0, y0, x1, y1)`` (inclusive) and shifted to lie inside frames of
    ``shape`` = (H, W); None when it would cover (nearly) the whole frame or ``context`` is 0."""
    if context <= 0:
        return None
    h, w = shape
    x0, y0, x1, y1 = extent
    side = int(np.ceil(max(min_side, context * max(x1 - x0 + 1, y1 - y0 + 1))))
    if side >= 0.8 * max(h, w):
        return None

    def span(lo: float, hi: float, n: int) -> tuple[int, int]:
        size = min(side, n)
        start = int(round((lo + hi + 1) / 2 - size / 2))
        start = min(max(start, 0), n - size)
        return start, start + size

    (wy0, wy1), (wx0, wx1) = span(y0, y1, h), span(x0, x1, w)
    return (wy0, wy1, wx0, wx1)


def mask_box(mask: np.ndarray) -> BoxXY | None:
    """Tight box ``(x0, y0, x1, y1)`` of a 2D mask, None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1]))


def _expand(box: BoxXY, margin: float, shape: tuple[int, int]) -> BoxXY:
    h, w = shape
    x0, y0, x1, y1 = box
    return (
        max(0.0, x0 - margin),
        max(0.0, y0 - margin),
        min(w - 1.0, x1 + margin),
        min(h - 1.0, y1 + margin),
    )


@dataclass
class _AreaTrend:
    """Cross-section areas along one walking direction (see ``PropagationSettings.regrowth_after``)."""

    after: float
    rise: float
    peak: int
    low: int

    def regrew(self, area: int) -> bool:
        """Record ``area``; True when it rose again after the cross-section had started to shrink away."""
        if self.after <= 0:
            return False
        falling = self.low < self.after * self.peak
        if falling and area > (1 + self.rise) * self.low:
            return True
        self.low = min(self.low, area) if falling else area
        self.peak = max(self.peak, area)
        return False


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
    emb = cache.get(s, step, limit)
    volsam = settings.strategy == "volsam"
    frame = cache.stack.frames([s])[0] if model is not None else None
    allowed = (
        ndimage.binary_dilation(prev, iterations=settings.growth_limit) if volsam and settings.growth_limit else None
    )
    candidates: list[tuple[float, np.ndarray, SlicePrediction, BoxXY]] = []
    side = max(prev_box[2] - prev_box[0] + 1, prev_box[3] - prev_box[1] + 1)
    moves = [(0, 0)] + ([shift] if volsam and settings.motion and shift != (0, 0) else [])
    for dx, dy in moves:
        base = (prev_box[0] + dx, prev_box[1] + dy, prev_box[2] + dx, prev_box[3] + dy)
        region = allowed if (dx, dy) == (0, 0) or allowed is None else _moved(allowed, dx, dy)
        for ratio in settings.proposal_ratios if volsam else (0.0,):
            box = _expand(base, settings.box_margin + ratio * side, emb.frame_shape) if volsam else prev_box
            if box[0] > box[2] or box[1] > box[3]:
                continue  # moved out of the frame
            pred = cache.engine.predict(emb, box=box)
            mask = pred.mask & region if region is not None else pred.mask
            fit = float(model.log_ratio(frame)[mask].sum()) if model is not None else pred.score
            candidates.append((fit, mask, pred, box))
    _, mask, pred, box = max(candidates, key=lambda c: c[0])  # the first of equals
    area, prev_area = int(mask.sum()), int(prev.sum())

    def stop(reason: str) -> tuple[SliceResult, bool]:
        return SliceResult(s, np.zeros_like(mask), pred.score, box, reason), False

    if area < settings.min_area:
        return stop("empty")
    if volsam:
        if pred.score < settings.min_score:
            return stop(f"score {pred.score:.2f}")
        if area < settings.min_area_ratio * prev_area:
            return stop(f"area fell to {area}px")
        if area > settings.max_area_ratio * prev_area:
            return stop(f"area jumped to {area}px")
        if model is not None and settings.appearance_stop:
            fraction = model.object_fraction(frame, mask)
            if fraction < settings.min_object_fraction:
                return stop(f"only {fraction:.0%} of the mask looks like the object")
    return SliceResult(s, mask, pred.score, box), True


def _moved(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``mask`` shifted by (dx, dy) pixels, nothing wrapping around."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.array(ndimage.center_of_mass(mask))[::-1]  # (x, y)


def predict_seed(
    cache: EmbeddingCache,
    s: int,
    *,
    box: BoxXY | None = None,
    points: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    settings: PropagationSettings | None = None,
    limit: tuple[int, int] | None = None,
) -> tuple[np.ndarray, float]:
    """Segment the prompted frame ``s`` from a box and/or points; returns (bool mask (H, W), score).

    With the volsam strategy the model is prompted with the box plus the margin of the settings, and the mask
    is cut to the box itself: the user said the object is inside it.
    """
    settings = settings or PropagationSettings()
    if box is None and points is None:
        raise PromptError("a prompted slice needs a box or points")
    emb = cache.get(s, 1, limit)
    if box is None:  # LiteMedSAM was trained on boxes: grow a box from the clicks (see _box_from_points)
        return _predict_from_points(cache.engine, emb, points, point_labels)
    volsam = settings.strategy == "volsam"
    prompt_box = _expand(box, settings.box_margin, emb.frame_shape) if volsam else box
    pred = cache.engine.predict(emb, box=prompt_box, points=points, point_labels=point_labels)
    mask = pred.mask
    if volsam:
        x0, y0, x1, y1 = (int(round(c)) for c in box)
        inside = np.zeros_like(mask)
        inside[y0 : y1 + 1, x0 : x1 + 1] = True
        mask = mask & inside
    return mask, pred.score


def _predict_from_points(
    engine: SliceEngine, emb: SliceEmbedding, points: np.ndarray, labels: np.ndarray | None, rounds: int = 3
) -> tuple[np.ndarray, float]:
    """Clicks only: start from a box around the positive clicks (a tenth of the frame's shorter side on each
    side, at least 8 px), then re-prompt with the result's box plus a margin until the box settles."""
    points = np.asarray(points, dtype=np.float32)
    labels = np.ones(len(points), np.int64) if labels is None else np.asarray(labels)
    pos = points[labels == 1]
    if pos.size == 0:
        raise PromptError("only negative points given: add a box or a positive point on the object")
    h, w = emb.frame_shape
    pad = max(8.0, 0.1 * min(h, w))
    box = _expand((*pos.min(axis=0), *pos.max(axis=0)), pad, (h, w))
    best = (np.zeros((h, w), bool), 0.0)
    for _ in range(rounds):
        pred = engine.predict(emb, box=box, points=points, point_labels=labels)
        inside = [pred.mask[int(round(y)), int(round(x))] for x, y in pos]
        if not all(inside):
            break
        best = (pred.mask, pred.score)
        tight = mask_box(pred.mask)
        if tight is None:
            break
        new_box = _expand(tight, max(2.0, 0.1 * max(tight[2] - tight[0], tight[3] - tight[1])), (h, w))
        if np.allclose(new_box, box, atol=1.0):
            break
        box = new_box
    return best


def propagate(
    engine: SliceEngine,
    stack: FrameStack,
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
    yield first
    if first.mask.sum() < settings.min_area:
        log.warning("the prompted frame %d gave an empty mask; nothing to propagate", start)
        return

    model = _appearance(stack.frames([start])[0], first.mask, settings)
    for step in directions:
        end = hi if step > 0 else lo
        prev, before = first.mask, None
        trend = _AreaTrend(settings.regrowth_after, settings.max_regrowth, int(prev.sum()), int(prev.sum()))
        s = start + step
        while (s <= end) if step > 0 else (s >= end):
            shift = (0, 0)
            if settings.motion and before is not None:
                dx, dy = np.rint(_centroid(prev) - _centroid(before)).astype(int)
                shift = (int(dx), int(dy))
            result, go_on = _step(cache, s, step, (lo, hi), prev, settings, model, shift)
            if go_on and settings.strategy == "volsam" and trend.regrew(int(result.mask.sum())):
                result, go_on = replace(result, mask=np.zeros_like(result.mask), stop_reason="area grew again"), False
            yield result
            if not go_on:
                log.debug("direction %+d stopped at frame %d: %s", step, s, result.stop_reason)
                break
            prev, before = result.mask, prev
            s += step


def _appearance(frame: np.ndarray, mask: np.ndarray, settings: PropagationSettings) -> AppearanceModel | None:
    """The prompted frame's appearance model, None when unused or when it cannot separate the object."""
    if settings.strategy != "volsam" or not (settings.appearance_stop or len(settings.proposal_ratios) > 1):
        return None
    model = AppearanceModel(settings.ring_width)
    model.update(frame, mask)
    separability = model.separability()
    if separability < settings.min_separability:
        log.info("object and surroundings look alike (separability %.2f): appearance rules off", separability)
        return None
    return model


@dataclass
class StackResult:
    """Masks of a whole stack ``(n_frames, H, W)`` plus what the walk did."""

    masks: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)
    frames_segmented: int = 0
    frames_encoded: int = 0


def cleanup_3d(masks: np.ndarray, seeds: list[int]) -> np.ndarray:
    """Keep the 3D (26-connected) components that touch the seed frames' masks; fill 2D holes per frame."""
    if not any(masks[s].any() for s in seeds):
        return masks
    labels, _ = ndimage.label(masks, structure=np.ones((3, 3, 3), dtype=bool))
    keep = np.unique(np.concatenate([labels[s][masks[s]] for s in seeds]))
    out = np.isin(labels, keep[keep > 0])
    for s in np.flatnonzero(out.any(axis=(1, 2))):
        out[s] = ndimage.binary_fill_holes(out[s])
    return out


def segment_stack(
    engine: SliceEngine,
    stack: FrameStack,
    seeds: dict[int, np.ndarray],
    *,
    limit: tuple[int, int] | None = None,
    settings: PropagationSettings | None = None,
    cache: EmbeddingCache | None = None,
    on_frame: Callable[[SliceResult], None] | None = None,
) -> StackResult:
    """Propagate from seed masks (frame index -> bool (H, W)) through the stack and assemble the result.

    Seeded frames keep their masks. The walk runs backward from the first seed, forward from the last, and
    forward from each seed to the frame before the next one. ``on_frame`` is called for every frame.
    """
    settings = settings or PropagationSettings()
    cache = cache or EmbeddingCache(engine, stack, settings.batch_size, settings.cache_size)
    n = len(stack)
    lo, hi = limit if limit is not None else (0, n - 1)
    order = sorted(s for s, m in seeds.items() if np.any(m))
    if not order:
        raise PromptError("every prompted slice gave an empty mask: nothing to propagate")
    h, w = stack.frame_shape
    masks = np.zeros((n, h, w), dtype=bool)
    result = StackResult(masks)
    walks = [(order[0], (-1,), (lo, order[0])), (order[-1], (1,), (order[-1], hi))]
    walks += [(a, (1,), (a, b - 1)) for a, b in zip(order, order[1:]) if b - a > 1]
    for s in order:
        masks[s] = seeds[s]
        result.scores[s] = 1.0
    for start, directions, walk_limit in walks:
        walker = propagate(
            engine,
            stack,
            start,
            seed_mask=seeds[start],
            limit=walk_limit,
            settings=settings,
            cache=cache,
            directions=directions,
        )
        next(walker)  # the seed itself
        for res in walker:
            masks[res.index] = res.mask
            result.scores[res.index] = res.score
            result.frames_segmented += 1
            if on_frame is not None:
                on_frame(res)
    if settings.strategy == "volsam" and settings.cleanup_3d:
        result.masks = cleanup_3d(masks, order)
    result.frames_encoded = cache.encoded
    return result

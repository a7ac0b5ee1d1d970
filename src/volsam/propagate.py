"""Slice-to-slice propagation for slice engines (LiteMedSAM): one prompted frame -> the whole 3D object.

Frames are the slices of the volume along the propagation axis (see :class:`FrameStack`); inside this module
everything is in frame coordinates: frame index ``s``, rows ``y``, columns ``x``; boxes ``(x0, y0, x1, y1)``
inclusive, in pixels.

Two strategies:

* ``baseline`` -- the CVPR 2024 challenge baseline: each next frame is prompted with the tight bounding box
  of the previous frame's mask; stop when the mask is empty (or at the range limit).
* ``volsam`` (default) -- the same walk with the rules that keep it on the object at its ends: the box gets a
  small margin, the new mask may only grow a bounded distance beyond the previous one (no leaks into
  neighbours), propagation stops when the model's own IoU estimate drops, when the area collapses or jumps,
  and the 3D result keeps only what is connected to the prompted slice, with holes filled.

:func:`propagate` is a generator that yields one :class:`SliceResult` per frame as it is segmented, so
callers get progress and cancellation for free.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from volsam.core.errors import PromptError
from volsam.engines.base import SliceEmbedding, SliceEngine

log = logging.getLogger(__name__)

BoxXY = tuple[float, float, float, float]


@dataclass(frozen=True)
class PropagationSettings:
    """Knobs of the walk. Distances are in frame pixels, areas in pixels.

    Attributes:
        strategy: ``volsam`` or ``baseline``.
        box_margin: pixels added on each side of the previous mask's box (volsam).
        growth_limit: the new mask is cut to the previous mask dilated by this many pixels (volsam; 0 = off).
        min_score: stop when the model's IoU estimate falls below this (volsam).
        min_area_ratio: stop when the area falls below this fraction of the previous frame's (volsam).
        max_area_ratio: stop when the area grows beyond this multiple of the previous frame's (volsam).
        min_area: masks smaller than this are empty (both strategies).
        contrast_stop: stop when the new mask's inside looks like the previous frame's surroundings rather
            than its inside (median intensities; the object has ended and the model is outlining tissue).
        ring_width: width (px) of the surroundings ring used by ``contrast_stop``.
        min_contrast: ``contrast_stop`` only applies when the previous frame's inside and surroundings
            differ by at least this many grey levels (of 0..255).
        cleanup_3d: keep the 3D component connected to the prompted frame and fill 2D holes (volsam).
        batch_size: frames encoded together ahead of the walk.
        cache_size: encoded frames kept in memory.
    """

    strategy: str = "volsam"
    box_margin: float = 1.0
    growth_limit: int = 4
    min_score: float = 0.5
    min_area_ratio: float = 0.0
    max_area_ratio: float = 2.5
    min_area: int = 1
    contrast_stop: bool = True
    ring_width: int = 3
    min_contrast: float = 8.0
    cleanup_3d: bool = True
    batch_size: int = 1
    cache_size: int = 16

    def __post_init__(self) -> None:
        if self.strategy not in ("volsam", "baseline"):
            raise ValueError(f"unknown propagation strategy {self.strategy!r} (volsam, baseline)")

    @classmethod
    def baseline(cls) -> PropagationSettings:
        return cls(strategy="baseline", cleanup_3d=False, contrast_stop=False)


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
    """

    def __init__(self, array: np.ndarray, axis: int, normalize: Callable[[np.ndarray], np.ndarray]):
        if axis not in (0, 1, 2):
            raise PromptError(f"axis must be 0, 1 or 2, got {axis!r}")
        self.axis = axis
        self._view = np.moveaxis(array, 2 - axis, 0)
        self._normalize = normalize

    def __len__(self) -> int:
        return self._view.shape[0]

    @property
    def frame_shape(self) -> tuple[int, int]:
        return (self._view.shape[1], self._view.shape[2])

    def frames(self, indices: list[int]) -> np.ndarray:
        """Normalised uint8 frames ``(n, H, W)``."""
        return np.stack([self._normalize(self._view[s]) for s in indices])

    def to_volume(self, masks: np.ndarray) -> np.ndarray:
        """Inverse of the frame view: ``(n_frames, H, W)`` -> array ``[k, j, i]``."""
        return np.moveaxis(masks, 0, 2 - self.axis)


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
                t
                for t in (s + step * n for n in range(self.batch_size))
                if lo <= t <= hi and t not in self._items
            ]
            for t, emb in zip(batch, self.engine.encode(self.stack.frames(batch))):
                self._items[t] = emb
            self.encoded += len(batch)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        self._items.move_to_end(s)
        return self._items[s]


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


def appearance(frame: np.ndarray, mask: np.ndarray, ring_width: int) -> tuple[float, float]:
    """Median intensity inside ``mask`` and in a ring of ``ring_width`` px around it."""
    ring = ndimage.binary_dilation(mask, iterations=ring_width) & ~mask
    inside = float(np.median(frame[mask])) if mask.any() else float("nan")
    around = float(np.median(frame[ring])) if ring.any() else float("nan")
    return inside, around


def _looks_like_surroundings(now: tuple[float, float], prev: tuple[float, float], min_contrast: float) -> bool:
    """True when the new inside is nearer the previous surroundings than the previous inside."""
    inside, _ = now
    prev_in, prev_around = prev
    if not np.isfinite([inside, prev_in, prev_around]).all() or abs(prev_in - prev_around) < min_contrast:
        return False
    return abs(inside - prev_around) < abs(inside - prev_in)


def _step(
    cache: EmbeddingCache,
    s: int,
    step: int,
    limit: tuple[int, int],
    prev: np.ndarray,
    settings: PropagationSettings,
    prev_look: tuple[float, float] | None = None,
) -> tuple[SliceResult, bool, tuple[float, float] | None]:
    """Segment frame ``s`` from the previous frame's mask; returns the result and whether to go on."""
    prev_box = mask_box(prev)
    if prev_box is None:  # the caller never passes an empty mask
        raise PromptError("cannot propagate from an empty mask")
    emb = cache.get(s, step, limit)
    volsam = settings.strategy == "volsam"
    box = _expand(prev_box, settings.box_margin, emb.frame_shape) if volsam else prev_box
    pred = cache.engine.predict(emb, box=box)
    mask = pred.mask
    if volsam and settings.growth_limit > 0:
        allowed = ndimage.binary_dilation(prev, iterations=settings.growth_limit)
        mask = mask & allowed
    area, prev_area = int(mask.sum()), int(prev.sum())
    empty = np.zeros_like(mask)
    if area < settings.min_area:
        return SliceResult(s, empty, pred.score, box, "empty"), False, None
    look = None
    if volsam:
        if pred.score < settings.min_score:
            return SliceResult(s, empty, pred.score, box, f"score {pred.score:.2f}"), False, None
        if area < settings.min_area_ratio * prev_area:
            return SliceResult(s, empty, pred.score, box, f"area fell to {area}px"), False, None
        if area > settings.max_area_ratio * prev_area:
            return SliceResult(s, empty, pred.score, box, f"area jumped to {area}px"), False, None
        if settings.contrast_stop:
            look = appearance(cache.stack.frames([s])[0], mask, settings.ring_width)
            if prev_look is not None and _looks_like_surroundings(look, prev_look, settings.min_contrast):
                return SliceResult(s, empty, pred.score, box, "inside looks like surroundings"), False, None
    return SliceResult(s, mask, pred.score, box), True, look


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

    With the volsam strategy the mask is cut to the box: the user said the object is inside it.
    """
    settings = settings or PropagationSettings()
    if box is None and points is None:
        raise PromptError("a prompted slice needs a box or points")
    emb = cache.get(s, 1, limit)
    if box is None:  # LiteMedSAM was trained on boxes: grow a box from the clicks (see _box_from_points)
        return _predict_from_points(cache.engine, emb, points, point_labels)
    pred = cache.engine.predict(emb, box=box, points=points, point_labels=point_labels)
    mask = pred.mask
    if settings.strategy == "volsam":
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

    first_look = None
    if settings.strategy == "volsam" and settings.contrast_stop:
        first_look = appearance(stack.frames([start])[0], first.mask, settings.ring_width)
    for step in directions:
        end = hi if step > 0 else lo
        prev, look = first.mask, first_look
        s = start + step
        while (s <= end) if step > 0 else (s >= end):
            result, go_on, look = _step(cache, s, step, (lo, hi), prev, settings, look)
            yield result
            if not go_on:
                log.debug("direction %+d stopped at frame %d: %s", step, s, result.stop_reason)
                break
            prev = result.mask
            s += step


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

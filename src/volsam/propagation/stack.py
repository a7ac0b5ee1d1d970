"""From seed masks on one or more frames to the object on every frame: :func:`segment_stack` runs the walks
between and beyond the seeds and assembles their masks; :func:`cleanup_3d` keeps what is connected to the
seeds. Masks are bool ``(n_frames, H, W)`` in the frames' (window) coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from volsam.core.errors import PromptError
from volsam.engines.base import FrameSource, SliceEngine
from volsam.propagation.cache import EmbeddingCache
from volsam.propagation.settings import PropagationSettings, StopReason
from volsam.propagation.walk import SliceResult, propagate


@dataclass(frozen=True)
class WalkStop:
    """Where one direction of a walk ended: it started at frame ``start``, went ``direction`` (+1 / -1) and
    ended at frame ``frame`` (the last frame it segmented, or the one a rule refused) for ``reason``."""

    start: int
    direction: int
    frame: int
    reason: StopReason

    def to_dict(self) -> dict:
        return {"start": self.start, "direction": self.direction, "frame": self.frame, "reason": str(self.reason)}


@dataclass
class StackResult:
    """Masks of a whole stack ``(n_frames, H, W)`` plus what the walk did."""

    masks: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)
    frames_segmented: int = 0
    frames_encoded: int = 0
    stops: list[WalkStop] = field(default_factory=list)


def cleanup_3d(masks: np.ndarray, seeds: list[int], *, in_place: bool = False) -> np.ndarray:
    """Keep the 3D (26-connected) components of ``masks`` ``(n, h, w)`` that touch the seed frames' masks; fill
    2D holes per frame. ``in_place``: write into ``masks`` (returned) instead of a copy -- the walk's own
    stack, where a second full-size array would be 157 MB more on a 512 x 512 x 600 CT. Components are
    labelled in the masks' bounding box only (the same components: no voxel lies outside it), so a small
    object in a 512 x 512 x 600 stack labels a few MB, not a 629 MB int32 volume and its comparisons."""
    if not any(masks[s].any() for s in seeds):
        return masks
    box = tuple(
        slice(int(idx[0]), int(idx[-1]) + 1)
        for idx in (np.flatnonzero(masks.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1)))
    )
    sub = masks[box]
    k0 = box[0].start
    labels, _ = ndimage.label(sub, structure=np.ones((3, 3, 3), dtype=bool))
    inside = [s - k0 for s in seeds if box[0].start <= s < box[0].stop]
    keep = np.unique(np.concatenate([labels[s][sub[s]] for s in inside]))
    out = masks if in_place else masks.copy()
    out[box] = np.isin(labels, keep[keep > 0])  # outside the box every voxel is already False
    for s in range(box[0].start, box[0].stop):
        if out[s].any():
            out[s] = ndimage.binary_fill_holes(out[s])
    return out


def segment_stack(
    engine: SliceEngine,
    stack: FrameSource,
    seeds: dict[int, np.ndarray],
    *,
    limit: tuple[int, int] | None = None,
    settings: PropagationSettings | None = None,
    cache: EmbeddingCache | None = None,
    on_frame: Callable[[SliceResult], None] | None = None,
) -> StackResult:
    """Propagate from seed masks (frame index -> bool (H, W)) through the stack and assemble the result.

    Seeded frames keep their masks. The walk runs backward from the first seed, forward from the last, and
    forward from each seed to the frame before the next one; where each ends, and why, is in
    ``StackResult.stops``. ``on_frame`` is called for every frame walked.
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
    walks = [(order[0], -1, (lo, order[0])), (order[-1], 1, (order[-1], hi))]
    walks += [(a, 1, (a, b - 1)) for a, b in zip(order, order[1:]) if b - a > 1]
    for s in order:
        masks[s] = seeds[s]
        result.scores[s] = 1.0
    for start, direction, walk_limit in walks:
        walker = propagate(
            engine,
            stack,
            start,
            seed_mask=seeds[start],
            limit=walk_limit,
            settings=settings,
            cache=cache,
            directions=(direction,),
        )
        last = next(walker)  # the seed itself
        for res in walker:
            masks[res.index] = res.mask
            result.scores[res.index] = res.score
            result.frames_segmented += 1
            if on_frame is not None:
                on_frame(res)
            last = res
        reason = last.stop_reason if last.stop_reason is not None else StopReason.RANGE_END
        result.stops.append(WalkStop(start, direction, last.index, reason))
    if settings.volsam and settings.cleanup_3d:
        result.masks = cleanup_3d(masks, order, in_place=True)
    result.frames_encoded = cache.encoded
    return result

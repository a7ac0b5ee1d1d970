"""The tracker loop (SAM 2 family): one implementation for volumes, sessions and videos.

:func:`track_labels` runs a :class:`~volsam.engines.base.TrackerEngine` over a frame source and yields each
frame's objects as one label image; :func:`tracker_stops` tells where each direction ended, and why.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from volsam.core.errors import PromptError
from volsam.engines.base import FramePrompt, FrameSource, TrackedFrame, TrackerEngine
from volsam.propagation.settings import StopReason
from volsam.propagation.stack import WalkStop


@dataclass(frozen=True)
class TrackedLabels:
    """One tracked frame: ``labels`` int32 ``(H, W)`` (0 = background; where objects overlap the higher id
    wins) and the engine's own result (per-object masks and presence scores)."""

    index: int
    labels: np.ndarray
    frame: TrackedFrame


def check_first_frame(prompts: Mapping[int, Mapping[int, FramePrompt]]) -> list[int]:
    """The object ids of ``prompts`` (frame -> object -> prompt), ascending; PromptError when an object is not
    prompted on the first prompted frame (transformers' Sam2VideoModel needs every object's conditioning on
    the first frame it runs)."""
    if not prompts:
        raise PromptError("no prompted frame")
    ids = sorted({o for per in prompts.values() for o in per})
    first = min(prompts)
    late = [o for o in ids if o not in prompts[first]]
    if late:
        raise PromptError(
            f"objects {late} are not prompted on frame {first}, the first prompted frame: with several objects, "
            "prompt each one on that frame (more prompts on later frames are fine)"
        )
    return ids


def track_labels(
    engine: TrackerEngine,
    source: FrameSource,
    prompts: dict[int, dict[int, FramePrompt]],
    *,
    limit: tuple[int, int] | None = None,
    absent_patience: int | None = 3,
    start: int | None = None,
) -> Iterator[TrackedLabels]:
    """Track every prompted object through ``source`` (see :meth:`TrackerEngine.track` for ``limit``,
    ``absent_patience`` and ``start``) and yield each frame's objects as one label image, in the order the
    engine segments them (the prompted frames, then forward, then backward)."""
    ids = check_first_frame(prompts)
    for res in engine.track(source, prompts, limit=limit, absent_patience=absent_patience, start=start):
        labels = np.zeros(source.frame_shape, np.int32)
        for obj, mask in zip(ids, res.masks):  # engines return objects in ascending id order
            labels[mask] = obj
        yield TrackedLabels(res.index, labels, res)


def tracker_stops(origin: int, segmented: list[int], limit: tuple[int, int]) -> list[WalkStop]:
    """Where tracking from frame ``origin`` ended in each direction, from the frames it segmented: at the end of
    ``limit`` = (first, last) (:attr:`StopReason.RANGE_END`), or before it (the engine stops a direction only
    when the object was absent for ``absent_patience`` frames: :attr:`StopReason.ABSENT`)."""
    stops = []
    for direction, end in ((1, limit[1]), (-1, limit[0])):
        reached = [s for s in segmented if (s - origin) * direction >= 0]
        last = max(reached, key=lambda s: (s - origin) * direction, default=origin)
        reason = StopReason.RANGE_END if last == end else StopReason.ABSENT
        stops.append(WalkStop(origin, direction, last, reason))
    return stops

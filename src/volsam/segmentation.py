"""One call from prompts on a volume to a label map on the same grid: :func:`segment`.

The voxel-index prompts become frame prompts here (:func:`volsam.propagation.prompts.frame_prompts`), go to a
slice engine's walk (:func:`volsam.propagation.slices.segment_slices`) or a tracker
(:func:`volsam.propagation.tracking.track_labels`), and the frame masks come back as a label map on exactly
the input grid (size, spacing, origin, direction).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from volsam.core.errors import PromptError
from volsam.core.prompts import Box2D, Box3D, MaskPrompt, Point, Prompt
from volsam.core.volume import Volume
from volsam.engines import resolve as resolve_engine
from volsam.engines.base import SliceEngine, TrackerEngine
from volsam.io.labels import present_labels
from volsam.preprocess import Normalizer, fit_normalizer
from volsam.propagation.frames import FrameStack, Window, frames_view, mask_box
from volsam.propagation.prompts import (
    ObjectPrompts,
    clip_to_box3d,
    frame_prompts,
    split_label_images,
    tracker_prompts,
    volume_label_objects,
)
from volsam.propagation.settings import PropagationSettings
from volsam.propagation.slices import segment_slices
from volsam.propagation.stack import WalkStop
from volsam.propagation.tracking import track_labels, tracker_stops
from volsam.propagation.walk import SliceResult

log = logging.getLogger(__name__)

_AXIS_LETTERS = {"i": 0, "j": 1, "k": 2}
_PLANES = ("sagittal", "coronal", "axial")


def resolve_axis(volume: Volume, axis: str | int = "k") -> int:
    """Index axis (0=i, 1=j, 2=k) from ``i``/``j``/``k``, 0/1/2 or ``axial``/``coronal``/``sagittal``
    (the index axis whose direction is closest to S, P or L respectively)."""
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and int(axis) in (0, 1, 2):
        return int(axis)
    key = str(axis).strip().lower()
    if key in _AXIS_LETTERS:
        return _AXIS_LETTERS[key]
    if key in _PLANES:
        world = _PLANES.index(key)  # sagittal slices are stacked along L (x), coronal along P, axial along S
        return int(np.argmax(np.abs(volume.direction[world, :])))
    raise PromptError(f"axis {axis!r} is not one of i, j, k, axial, coronal, sagittal")


def check_label(label: object) -> int:
    """``int(label)`` when it is in 1..65535 (a label map's object value), PromptError otherwise."""
    try:
        value = int(label)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        value = 0
    if isinstance(label, bool) or not 1 <= value <= 65535:
        raise PromptError(f"label must be an integer in 1..65535, got {label!r}")
    return value


@dataclass
class SegmentationReport:
    """What a :func:`segment` run did (also stored in the label map's ``meta['report']``).

    ``stops``: where each direction of each walk ended and why (:class:`~volsam.propagation.stack.WalkStop`);
    ``window``: the frame pixels ``(y0, y1, x0, x1)`` the slice engine saw (None: whole frames)."""

    engine: str
    strategy: str
    axis: int
    frames_segmented: int = 0
    frames_encoded: int = 0
    seconds: float = 0.0
    frame_range: tuple[int, int] | None = None
    scores: dict[int, float] = field(default_factory=dict)
    window: Window | None = None
    stops: list[WalkStop] = field(default_factory=list)


def segment(
    volume: Volume,
    prompts: Prompt | Sequence[Prompt],
    *,
    engine: str | SliceEngine | TrackerEngine = "medsam-lite",
    model: str | None = None,
    device: str = "auto",
    axis: str | int = "k",
    modality: str = "auto",
    window: str | None = None,
    label: int = 1,
    settings: PropagationSettings | None = None,
    absent_patience: int | None = 3,
    on_frame: Callable[[SliceResult], None] | None = None,
    normalizer: Normalizer | None = None,
) -> Volume:
    """Segment one object in ``volume`` from prompts on one or more slices; returns a label map.

    Args:
        volume: the image, array ``[k, j, i]``.
        prompts: :class:`Box2D` (on a slice along ``axis``), :class:`Box3D`, :class:`Point` (several, ±),
            :class:`MaskPrompt`, or a list of them (all for the same object).
        engine: an engine name for :func:`volsam.engines.get` or an engine instance.
        axis: propagation axis: ``i``, ``j``, ``k`` or ``axial``/``coronal``/``sagittal``.
        modality, window: intensity normalisation (see :func:`volsam.preprocess.fit_normalizer`).
        label: the value written for the object (1..65535). With a tracker engine, a :class:`MaskPrompt`
            label image (no ``label`` of its own, several values) makes one object per value, each written
            with its own value (where they overlap the higher value wins); slice engines take its union.
        settings: the slice-engine walk (LiteMedSAM); tracker engines (SAM 2) propagate by memory attention.
        absent_patience: tracker engines stop a direction after this many frames without the object
            (None = the whole volume, or the 3D box's range).
        on_frame: called after every propagated frame (progress; raise to cancel).
        normalizer: an already fitted normalisation (then ``modality`` and ``window`` are not used).

    Returns:
        A :class:`Volume` on exactly ``volume``'s grid, uint8 (uint16 for labels > 255), with
        ``meta["report"]`` a :class:`SegmentationReport`.
    """
    t0 = time.perf_counter()
    prompt_list = [prompts] if isinstance(prompts, (Box2D, Box3D, Point, MaskPrompt)) else list(prompts)
    if not prompt_list:
        raise PromptError("no prompt given: a box, a 3D box, points or a mask")
    label = check_label(label)
    ax = resolve_axis(volume, axis)
    object_prompts = frame_prompts(prompt_list, volume.size, ax)
    eng = resolve_engine(engine, model=model, device=device)
    norm = normalizer if normalizer is not None else fit_normalizer(volume, modality, window)
    frames = FrameStack(volume.array, ax, norm.apply, colour=volume.colour)
    if isinstance(eng, TrackerEngine):
        return _tracked(volume, eng, frames, prompt_list, object_prompts, label, absent_patience, on_frame, t0)
    settings = settings or PropagationSettings()
    result = segment_slices(eng, frames, object_prompts, settings, on_frame)
    # 0 / label made directly in the label map's own type: an int32 volume and its product would add
    # 2 x 629 MB on a 512 x 512 x 600 CT, a bool volume cast afterwards 157 MB (benchmarks/bench_memory.py)
    labels = result.stack.to_volume(result.masks, np.uint8 if label <= 255 else np.uint16, value=label)
    report = SegmentationReport(
        engine=eng.name,
        strategy=str(settings.strategy),
        axis=ax,
        frames_segmented=result.walk.frames_segmented + len(object_prompts.clicked),
        frames_encoded=result.frames_encoded,
        scores={**result.walk.scores, **result.scores},
        window=result.window,
        stops=list(result.walk.stops),
    )
    return _finish(volume, labels, report, object_prompts, t0)


def _tracked(
    volume: Volume,
    eng: TrackerEngine,
    frames: FrameStack,
    prompt_list: list[Prompt],
    object_prompts: ObjectPrompts,
    label: int,
    absent_patience: int | None,
    on_frame: Callable[[SliceResult], None] | None,
    t0: float,
) -> Volume:
    """Track the object (and each object of a label image) through every frame with a tracker engine.

    Every prompted frame conditions the memory: box and clicks (negative ones included) go to object
    ``label``, a mask on a frame replaces that frame's box and clicks, and label images add one object per
    label. Where objects overlap the higher label wins.
    """
    others, images = split_label_images(prompt_list)
    main = frame_prompts(others, volume.size, frames.axis) if images else object_prompts
    prompts = tracker_prompts(main, label, volume_label_objects(images, frames.axis))
    limit = object_prompts.limit()
    out = np.zeros((len(frames), *frames.frame_shape), dtype=np.uint16)  # labels are 1..65535 (check_label)
    scores: dict[int, float] = {}
    for res in track_labels(eng, frames, prompts, limit=limit, absent_patience=absent_patience):
        out[res.index] = res.labels
        scores[res.index] = float(res.frame.presence[0])
        if on_frame is not None:
            union = res.labels > 0
            on_frame(SliceResult(res.index, union, scores[res.index], mask_box(union)))
    count = len(scores)
    origin = min(prompts)
    report = SegmentationReport(
        engine=eng.name,
        strategy="memory",
        axis=frames.axis,
        frames_segmented=count,
        frames_encoded=count,
        scores=scores,
        stops=tracker_stops(origin, list(scores), limit or (0, len(frames) - 1)),
    )
    return _finish(volume, frames.to_volume(out), report, object_prompts, t0)


def _finish(
    volume: Volume, labels: np.ndarray, report: SegmentationReport, prompts: ObjectPrompts, t0: float
) -> Volume:
    """Clip the label array ``[k, j, i]`` (0 = background) to the 3D box, build the label map on the input
    grid (uint8, or uint16 above 255) and complete its report."""
    labels = clip_to_box3d(labels, prompts.box3d, prompts.axis)
    dtype = np.uint8 if int(labels.max(initial=0)) <= 255 else np.uint16
    labelmap = labels.astype(dtype, copy=False)
    report.seconds = time.perf_counter() - t0
    nonempty = np.flatnonzero(frames_view(labels, report.axis).any(axis=(1, 2)))
    if nonempty.size:
        report.frame_range = (int(nonempty[0]), int(nonempty[-1]))
    log.info(
        "segmented %d frames (%d encoded) in %.1f s; object on frames %s",
        report.frames_segmented,
        report.frames_encoded,
        report.seconds,
        report.frame_range,
    )
    for stop in report.stops:
        log.debug(
            "walk from frame %d, direction %+d: ended at %d (%s)", stop.start, stop.direction, stop.frame, stop.reason
        )
    return Volume(
        np.ascontiguousarray(labelmap),
        volume.spacing,
        volume.origin,
        volume.direction,
        meta={
            "report": report,
            "labels": present_labels(labelmap),
            "source": volume.meta.get("source"),
        },
    )

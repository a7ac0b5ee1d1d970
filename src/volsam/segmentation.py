"""One call from prompts on a volume to a label map on the same grid: :func:`segment`.

This is where voxel-index prompts become frame prompts for the engine and where frame masks become a label
map on exactly the input grid (size, spacing, origin, direction).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from volsam.core.errors import PromptError
from volsam.core.prompts import Box2D, Box3D, MaskPrompt, Point, Prompt, in_plane_axes
from volsam.core.volume import Volume
from volsam.engines import get as get_engine
from volsam.engines.base import FramePrompt, SliceEngine, TrackerEngine
from volsam.preprocess import Normalizer, fit_normalizer
from volsam.propagate import (
    EmbeddingCache,
    FrameStack,
    PropagationSettings,
    SliceResult,
    StackResult,
    focus_window,
    mask_box,
    predict_seed,
    segment_stack,
)

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


@dataclass
class SegmentationReport:
    """What a :func:`segment` run did (also stored in the label map's ``meta['report']``)."""

    engine: str
    strategy: str
    axis: int
    frames_segmented: int = 0
    frames_encoded: int = 0
    seconds: float = 0.0
    frame_range: tuple[int, int] | None = None
    scores: dict[int, float] = field(default_factory=dict)
    window: tuple[int, int, int, int] | None = None  # (y0, y1, x0, x1) frame pixels the slice engine saw


def frame_prompts(
    prompts: Sequence[Prompt], size: tuple[int, int, int], axis: int
) -> tuple[dict[int, dict], dict[int, np.ndarray], Box3D | None]:
    """Split prompts into per-frame box/point prompts (``{frame: {"box": (x0, y0, x1, y1), "points": [(x, y)],
    "labels": [1|0]}}``, frame pixels), per-frame seed masks (bool (H, W)) and an optional 3D box; validates
    each prompt against the image ``size`` (i, j, k)."""
    u, v = in_plane_axes(axis)
    per_frame: dict[int, dict] = {}
    masks: dict[int, np.ndarray] = {}
    box3d: Box3D | None = None
    for p in prompts:
        if isinstance(p, Box2D):
            p.validate(size, axis)
            entry = per_frame.setdefault(p.slice, {})
            if "box" in entry:
                raise PromptError(f"two boxes on slice {p.slice}: give one box per slice")
            entry["box"] = (p.u0, p.v0, p.u1, p.v1)
        elif isinstance(p, Box3D):
            p.validate(size)
            if box3d is not None:
                raise PromptError("give at most one 3D box per object")
            box3d = p
        elif isinstance(p, Point):
            p.validate(size)
            ijk = p.ijk()
            entry = per_frame.setdefault(ijk[axis], {})
            entry.setdefault("points", []).append((ijk[u], ijk[v]))
            entry.setdefault("labels", []).append(1 if p.positive else 0)
        elif isinstance(p, MaskPrompt):
            p.validate(size)
            stack = np.moveaxis(p.binary(), 2 - axis, 0)
            for s in np.flatnonzero(stack.any(axis=(1, 2))):
                masks[int(s)] = masks.get(int(s), np.zeros(stack.shape[1:], bool)) | stack[s]
        else:
            raise PromptError(f"unsupported prompt {p!r}")
    if box3d is not None:
        mid = box3d.middle_box(axis)
        per_frame.setdefault(mid.slice, {}).setdefault("box", (mid.u0, mid.v0, mid.u1, mid.v1))
    return per_frame, masks, box3d


def _is_seed(entry: dict) -> bool:
    """A frame prompt can start an object when it has a box or a positive point."""
    return "box" in entry or 1 in entry.get("labels", [])


def prompt_extent(
    per_frame: dict[int, dict], masks: dict[int, np.ndarray], box3d: Box3D | None, axis: int
) -> tuple[float, float, float, float] | None:
    """Union ``(x0, y0, x1, y1)`` (frame pixels, inclusive) of every in-plane prompt: boxes, points, masks
    (and the 3D box); None when there is none."""
    xs: list[float] = []
    ys: list[float] = []
    for entry in per_frame.values():
        if "box" in entry:
            xs += [entry["box"][0], entry["box"][2]]
            ys += [entry["box"][1], entry["box"][3]]
        for x, y in entry.get("points", []):
            xs.append(x)
            ys.append(y)
    for m in masks.values():
        box = mask_box(m)
        if box is not None:
            xs += [box[0], box[2]]
            ys += [box[1], box[3]]
    if box3d is not None:
        u, v = in_plane_axes(axis)
        lo, hi = box3d.lower(), box3d.upper()
        xs += [lo[u], hi[u]]
        ys += [lo[v], hi[v]]
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


def _in_window(per_frame: dict[int, dict], masks: dict[int, np.ndarray], roi: tuple[int, int, int, int]):
    """Frame prompts moved into window coordinates (prompts lie inside the window by construction)."""
    y0, y1, x0, x1 = roi
    shifted: dict[int, dict] = {}
    for s, entry in per_frame.items():
        e = dict(entry)
        if "box" in e:
            bx0, by0, bx1, by1 = e["box"]
            e["box"] = (bx0 - x0, by0 - y0, bx1 - x0, by1 - y0)
        if "points" in e:
            e["points"] = [(x - x0, y - y0) for x, y in e["points"]]
        shifted[s] = e
    return shifted, {s: m[y0:y1, x0:x1] for s, m in masks.items()}


def _touches_window_edge(masks: np.ndarray, roi: tuple[int, int, int, int], shape: tuple[int, int]) -> bool:
    """True when window masks ``(n, h, w)`` reach a window edge that is not also the frame's edge."""
    y0, y1, x0, x1 = roi
    h, w = shape
    edges = [(y0 > 0, masks[:, 0, :]), (y1 < h, masks[:, -1, :]), (x0 > 0, masks[:, :, 0]), (x1 < w, masks[:, :, -1])]
    return any(inner and bool(edge.any()) for inner, edge in edges)


def _walk(
    eng: SliceEngine,
    stack: FrameStack,
    per_frame: dict[int, dict],
    seed_masks: dict[int, np.ndarray],
    box3d: Box3D | None,
    settings: PropagationSettings,
    on_frame: Callable[[SliceResult], None] | None,
) -> tuple[np.ndarray, StackResult, dict[int, float]]:
    """Segment the prompted frames of ``stack`` (its window), propagate, apply negative clicks elsewhere.

    Returns the window masks ``(n_frames, h, w)``, the walk's result and the prompted frames' scores.
    """
    per_frame, seed_masks = _in_window(per_frame, seed_masks, stack.roi)
    limit = (box3d.lower()[stack.axis], box3d.upper()[stack.axis]) if box3d is not None else None
    cache = EmbeddingCache(eng, stack, settings.batch_size, settings.cache_size)
    seeds = dict(seed_masks)
    scores: dict[int, float] = {}
    refinements = {s: e for s, e in per_frame.items() if not _is_seed(e)}
    if refinements and not seeds and len(refinements) == len(per_frame):
        raise PromptError("only negative points given: add a box or a positive point on the object")
    for s, entry in sorted(per_frame.items()):
        if s in refinements:
            continue
        pts = np.asarray(entry["points"], dtype=np.float32) if "points" in entry else None
        lbl = np.asarray(entry["labels"], dtype=np.int64) if "labels" in entry else None
        mask, score = predict_seed(
            cache, s, box=entry.get("box"), points=pts, point_labels=lbl, settings=settings, limit=limit
        )
        if not mask.any():
            log.warning("slice %d: the prompt gave an empty mask", s)
        seeds[s] = seeds.get(s, np.zeros_like(mask)) | mask
        scores[s] = score
        if on_frame is not None:
            on_frame(SliceResult(s, mask, score, entry.get("box")))

    result = segment_stack(eng, stack, seeds, limit=limit, settings=settings, cache=cache, on_frame=on_frame)
    masks = result.masks
    for s, entry in sorted(refinements.items()):  # background clicks on other slices correct those slices
        box = mask_box(masks[s])
        if box is None:
            continue
        pts = np.asarray(entry["points"], dtype=np.float32)
        mask, _ = predict_seed(
            cache, s, box=box, points=pts, point_labels=np.asarray(entry["labels"]), settings=settings
        )
        masks[s] = mask & masks[s]
        result.frames_segmented += 1
    return masks, result, scores


def segment(
    volume: Volume,
    prompts: Prompt | Sequence[Prompt],
    *,
    engine: str | SliceEngine = "medsam-lite",
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
    if isinstance(label, bool) or not 1 <= int(label) <= 65535:
        raise PromptError(f"label must be an integer in 1..65535, got {label!r}")
    ax = resolve_axis(volume, axis)
    per_frame, seed_masks, box3d = frame_prompts(prompt_list, volume.size, ax)

    eng = engine if isinstance(engine, (SliceEngine, TrackerEngine)) else get_engine(engine, model=model, device=device)
    norm = normalizer if normalizer is not None else fit_normalizer(volume, modality, window)
    if isinstance(eng, TrackerEngine):
        stack = FrameStack(volume.array, ax, norm.apply)
        objects = _object_masks(prompt_list, ax)
        if objects:  # label images are objects of their own, not part of object `label`'s masks
            _, seed_masks, _ = frame_prompts([p for p in prompt_list if not _is_label_image(p)], volume.size, ax)
        labels, count, scores = _track(
            eng, stack, per_frame, seed_masks, objects, label, box3d, absent_patience, on_frame
        )
        return _finish(volume, ax, labels, eng.name, "memory", t0, box3d, count, count, scores)
    settings = settings or PropagationSettings()
    full = FrameStack(volume.array, ax, norm.apply)
    extent = prompt_extent(per_frame, seed_masks, box3d, ax)
    if extent is None:  # every prompt kind has an in-plane extent; kept for a clear error if one ever has not
        raise PromptError("the prompts mark no pixel on any slice")
    context = settings.roi_context
    encoded = 0
    while True:
        roi = (
            focus_window(extent, full.full_shape, context, settings.roi_min) if settings.strategy == "volsam" else None
        )
        stack = FrameStack(volume.array, ax, norm.apply, roi)
        masks, result, scores = _walk(eng, stack, per_frame, seed_masks, box3d, settings, on_frame)
        encoded += result.frames_encoded
        if roi is None or not _touches_window_edge(masks, roi, full.full_shape):
            break
        context *= 2
        log.info("the object reaches the edge of the %dx%d window: again with a wider one", *stack.frame_shape)
    labels = stack.to_volume(masks).astype(np.int32) * int(label)
    report_counts = (result.frames_segmented + len(per_frame), encoded, {**result.scores, **scores})
    return _finish(volume, ax, labels, eng.name, settings.strategy, t0, box3d, *report_counts, window=roi)


def _is_label_image(p: Prompt) -> bool:
    """A :class:`MaskPrompt` without a ``label`` of its own whose array holds several non-zero values."""
    return isinstance(p, MaskPrompt) and p.label is None and np.count_nonzero(np.unique(np.asarray(p.array))) > 1


def _object_masks(prompts: Sequence[Prompt], axis: int) -> dict[int, dict[int, np.ndarray]]:
    """The label images among ``prompts`` as object id (the label value) -> frame index -> bool mask (H, W);
    empty when there is none."""
    objects: dict[int, dict[int, np.ndarray]] = {}
    for p in prompts:
        if not _is_label_image(p):
            continue
        values = [int(v) for v in np.unique(np.asarray(p.array)) if v != 0]
        frames = np.moveaxis(np.asarray(p.array), 2 - axis, 0)
        for value in values:
            if not 1 <= value <= 65535:
                raise PromptError(f"mask labels must be integers in 1..65535, found {value}")
            for s in np.flatnonzero((frames == value).any(axis=(1, 2))):
                objects.setdefault(value, {})[int(s)] = frames[s] == value
    return objects


def tracker_prompts(
    per_frame: dict[int, dict], seed_masks: dict[int, np.ndarray], label: int
) -> dict[int, dict[int, FramePrompt]]:
    """Frame prompts for a tracker engine (frame -> object -> prompt) from :func:`frame_prompts`' output:
    box and clicks (negative ones included) per frame; a mask on a frame replaces that frame's box and clicks."""
    prompts: dict[int, dict[int, FramePrompt]] = {}
    for s, entry in per_frame.items():
        pts = np.asarray(entry["points"], dtype=np.float32) if "points" in entry else None
        lbl = np.asarray(entry["labels"], dtype=np.int64) if "labels" in entry else None
        prompts.setdefault(s, {})[label] = FramePrompt(box=entry.get("box"), points=pts, point_labels=lbl)
    for s, m in seed_masks.items():
        prompts.setdefault(s, {})[label] = FramePrompt(mask=m)
    return prompts


def _track(
    eng: TrackerEngine,
    stack: FrameStack,
    per_frame: dict[int, dict],
    seed_masks: dict[int, np.ndarray],
    objects: dict[int, dict[int, np.ndarray]],
    label: int,
    box3d: Box3D | None,
    absent_patience: int | None,
    on_frame: Callable[[SliceResult], None] | None,
) -> tuple[np.ndarray, int, dict[int, float]]:
    """Run a tracker engine over the whole frames.

    Every prompted frame conditions the memory: box and clicks (negative ones included) go to object
    ``label``, a mask on a frame replaces that frame's box and clicks, and ``objects`` (from a label image)
    add one object per label. Returns the label array ``[k, j, i]`` (int32; where objects overlap the higher
    label wins), the number of frames segmented and the first object's presence scores per frame.
    """
    prompts = tracker_prompts(per_frame, seed_masks, label)
    for obj, frames in objects.items():
        for s, m in frames.items():
            prompts.setdefault(s, {})[obj] = FramePrompt(mask=m)
    ids = sorted({o for per in prompts.values() for o in per})
    limit = (box3d.lower()[stack.axis], box3d.upper()[stack.axis]) if box3d is not None else None
    out = np.zeros((len(stack), *stack.frame_shape), dtype=np.int32)
    scores: dict[int, float] = {}
    for res in eng.track(stack, prompts, limit=limit, absent_patience=absent_patience):
        for obj, mask in zip(ids, res.masks):  # engines return objects in ascending id order
            out[res.index][mask] = obj
        scores[res.index] = float(res.presence[0])
        if on_frame is not None:
            union = res.masks.any(axis=0)
            on_frame(SliceResult(res.index, union, scores[res.index], mask_box(union)))
    return stack.to_volume(out), len(scores), scores


def _finish(
    volume: Volume,
    ax: int,
    labels: np.ndarray,
    engine_name: str,
    strategy: str,
    t0: float,
    box3d: Box3D | None,
    frames_segmented: int,
    frames_encoded: int,
    scores: dict[int, float],
    window: tuple[int, int, int, int] | None = None,
) -> Volume:
    """Clip the label array ``[k, j, i]`` (0 = background) to the 3D box, build the label map on the input
    grid (uint8, or uint16 above 255) and its report."""
    if box3d is not None:
        lo, hi = box3d.lower(), box3d.upper()
        clip = np.zeros(labels.shape, dtype=bool)
        clip[lo[2] : hi[2] + 1, lo[1] : hi[1] + 1, lo[0] : hi[0] + 1] = True
        labels = np.where(clip, labels, 0)
    dtype = np.uint8 if int(labels.max(initial=0)) <= 255 else np.uint16
    labelmap = labels.astype(dtype)
    report = SegmentationReport(
        engine=engine_name,
        strategy=strategy,
        axis=ax,
        frames_segmented=frames_segmented,
        frames_encoded=frames_encoded,
        seconds=time.perf_counter() - t0,
        scores=scores,
        window=window,
    )
    nonempty = np.flatnonzero(np.moveaxis(labels, 2 - ax, 0).any(axis=(1, 2)))
    if nonempty.size:
        report.frame_range = (int(nonempty[0]), int(nonempty[-1]))
    log.info(
        "segmented %d frames (%d encoded) in %.1f s; object on frames %s",
        report.frames_segmented,
        report.frames_encoded,
        report.seconds,
        report.frame_range,
    )
    return Volume(
        np.ascontiguousarray(labelmap),
        volume.spacing,
        volume.origin,
        volume.direction,
        meta={
            "report": report,
            "labels": [int(v) for v in np.unique(labels) if v],
            "source": volume.meta.get("source"),
        },
    )

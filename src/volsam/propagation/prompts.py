"""Voxel prompts -> frame prompts: the one place where prompts are validated against the image, grouped by
frame and turned into what engines take (:class:`~volsam.engines.base.FramePrompt`).

* :func:`frame_prompts` -- one object's :class:`~volsam.core.prompts.Prompt` list as :class:`ObjectPrompts`
  (frame index -> :class:`FramePrompt`, plus the 3D box that bounds it).
* :func:`label_image_objects` / :func:`split_label_images` -- a label image (several values) is several
  objects, one per value.
* :func:`tracker_prompts` -- frame -> object -> prompt, what a tracker engine takes.
* :func:`box3d_footprint` -- the in-plane part of a 3D box on a frame (results are clipped to it).

Frame pixels: ``x`` = the lower in-plane index axis (column), ``y`` = the higher one (row); for axis k,
``(x, y) = (i, j)``. A video is a volume of frames along k: ``Box2D(x0, y0, x1, y1, slice=frame)`` and
``Point(x, y, frame)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from volsam.core.errors import PromptError
from volsam.core.prompts import Box2D, Box3D, MaskPrompt, Point, Prompt, in_plane_axes
from volsam.engines.base import FramePrompt
from volsam.propagation.frames import BoxXY, Window, frames_view, mask_box


@dataclass(frozen=True)
class ObjectPrompts:
    """One object's prompts as frames see them: ``frames`` frame index -> :class:`FramePrompt` (box and
    clicks in frame pixels, a mask bool ``(H, W)`` -- the union of the mask prompts on that frame) and the
    object's 3D box (None without one), along index ``axis``."""

    axis: int
    frames: dict[int, FramePrompt] = field(default_factory=dict)
    box3d: Box3D | None = None

    @property
    def clicked(self) -> dict[int, FramePrompt]:
        """The frames with a box or clicks (what an engine predicts), in the order they were first prompted."""
        return {s: p for s, p in self.frames.items() if p.clicked}

    @property
    def masks(self) -> dict[int, np.ndarray]:
        """The frames' mask prompts, frame index -> bool ``(H, W)``."""
        return {s: p.mask for s, p in self.frames.items() if p.mask is not None}

    def limit(self) -> tuple[int, int] | None:
        """(first, last) frame of the 3D box along the axis, inclusive; None without a 3D box."""
        if self.box3d is None:
            return None
        return (self.box3d.lower()[self.axis], self.box3d.upper()[self.axis])

    def in_window(self, roi: Window) -> ObjectPrompts:
        """Every frame prompt in the window's coordinates (see :meth:`FramePrompt.in_window`)."""
        return replace(self, frames={s: p.in_window(roi) for s, p in self.frames.items()})

    def extent(self) -> BoxXY | None:
        """Union ``(x0, y0, x1, y1)`` (frame pixels, inclusive) of every in-plane prompt: boxes, points, masks
        and the 3D box; None when there is none."""
        return prompt_extent(self.frames.values(), self.box3d, self.axis)

    def for_tracker(self, label: int) -> dict[int, dict[int, FramePrompt]]:
        """frame -> {label: prompt} for a tracker engine: box and clicks (negative ones included); a mask on a
        frame replaces that frame's box and clicks."""
        return {s: {label: FramePrompt(mask=p.mask) if p.mask is not None else p} for s, p in self._tracker_order()}

    def _tracker_order(self) -> list[tuple[int, FramePrompt]]:
        # frames with a box or clicks first (in prompt order), then frames with a mask only
        return list(self.clicked.items()) + [(s, p) for s, p in self.frames.items() if not p.clicked]


def prompt_extent(prompts: Iterable[FramePrompt], box3d: Box3D | None, axis: int) -> BoxXY | None:
    """Union ``(x0, y0, x1, y1)`` (frame pixels, inclusive) of the boxes, clicks and mask boxes of ``prompts``
    and of ``box3d``'s in-plane extent; None when there is nothing."""
    xs: list[float] = []
    ys: list[float] = []
    for p in prompts:
        if p.box is not None:
            xs += [p.box[0], p.box[2]]
            ys += [p.box[1], p.box[3]]
        if p.points is not None:
            xs += [float(x) for x in p.points[:, 0]]
            ys += [float(y) for y in p.points[:, 1]]
        box = mask_box(p.mask) if p.mask is not None else None
        if box is not None:
            xs += [box[0], box[2]]
            ys += [box[1], box[3]]
    if box3d is not None:
        u, v = in_plane_axes(axis)
        lo, hi = box3d.lower(), box3d.upper()
        xs += [lo[u], hi[u]]
        ys += [lo[v], hi[v]]
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


def validate_prompt(prompt: Prompt, size: tuple[int, int, int], axis: int) -> None:
    """Raise :class:`PromptError` unless ``prompt`` lies inside an image of ``size`` (i, j, k)."""
    if isinstance(prompt, Box2D):
        prompt.validate(size, axis)
    elif isinstance(prompt, (Box3D, Point, MaskPrompt)):
        prompt.validate(size)
    else:
        raise PromptError(f"unsupported prompt {prompt!r}")


def frame_prompts(prompts: Sequence[Prompt], size: tuple[int, int, int], axis: int) -> ObjectPrompts:
    """Group one object's prompts by frame along index ``axis`` (validating each against ``size`` (i, j, k)).

    A box per frame (two on one frame are refused); clicks collect per frame in order; mask prompts become
    their union per frame; a 3D box also puts its middle box (:meth:`Box3D.middle_box`) on its middle frame
    unless that frame has a box already. At most one 3D box.
    """
    u, v = in_plane_axes(axis)
    boxes: dict[int, tuple[int, int, int, int]] = {}
    clicks: dict[int, list[tuple[int, int, int]]] = {}
    masks: dict[int, np.ndarray] = {}
    order: dict[int, None] = {}  # frames with a box or clicks, in the order they were first prompted
    box3d: Box3D | None = None
    for p in prompts:
        validate_prompt(p, size, axis)
        if isinstance(p, Box2D):
            if p.slice in boxes:
                raise PromptError(f"two boxes on slice {p.slice}: give one box per slice")
            boxes[p.slice] = (p.u0, p.v0, p.u1, p.v1)
            order.setdefault(p.slice)
        elif isinstance(p, Box3D):
            if box3d is not None:
                raise PromptError("give at most one 3D box per object")
            box3d = p
        elif isinstance(p, Point):
            ijk = p.ijk()
            clicks.setdefault(ijk[axis], []).append((ijk[u], ijk[v], 1 if p.positive else 0))
            order.setdefault(ijk[axis])
        else:
            stack = frames_view(p.binary(), axis)
            for s in np.flatnonzero(stack.any(axis=(1, 2))):
                masks[int(s)] = masks.get(int(s), np.zeros(stack.shape[1:], bool)) | stack[s]
    if box3d is not None:
        mid = box3d.middle_box(axis)
        if mid.slice not in boxes:
            boxes[mid.slice] = (mid.u0, mid.v0, mid.u1, mid.v1)
        order.setdefault(mid.slice)
    frames: dict[int, FramePrompt] = {}
    for s in order:
        pts = np.asarray([(x, y) for x, y, _ in clicks[s]], dtype=np.float32) if s in clicks else None
        lbl = np.asarray([c for _, _, c in clicks[s]], dtype=np.int64) if s in clicks else None
        frames[s] = FramePrompt(box=boxes.get(s), points=pts, point_labels=lbl, mask=masks.get(s))
    for s, m in masks.items():
        if s not in frames:
            frames[s] = FramePrompt(mask=m)
    return ObjectPrompts(axis, frames, box3d)


def is_label_image(p: Prompt) -> bool:
    """A :class:`MaskPrompt` without a ``label`` of its own whose array holds several non-zero values."""
    return isinstance(p, MaskPrompt) and p.label is None and np.count_nonzero(np.unique(np.asarray(p.array))) > 1


def split_label_images(prompts: Sequence[Prompt]) -> tuple[list[Prompt], list[MaskPrompt]]:
    """(the other prompts, the label images) of ``prompts`` (see :func:`is_label_image`)."""
    images = [p for p in prompts if isinstance(p, MaskPrompt) and is_label_image(p)]
    return [p for p in prompts if not is_label_image(p)], images


def label_image_objects(frames: Mapping[int, np.ndarray], label: int | None = None) -> dict[int, dict[int, np.ndarray]]:
    """Objects of label images given per frame (frame index -> integer array ``(H, W)``): object id -> frame
    index -> bool mask. Each non-zero value is an object of its own; with ``label`` given and a single value in
    all of them, that value's pixels are object ``label`` instead. Values must be 1..65535."""
    values = sorted({int(v) for a in frames.values() for v in np.unique(a) if v != 0})
    bad = [v for v in values if not 1 <= v <= 65535]
    if bad:
        raise PromptError(f"mask labels must be integers in 1..65535, found {bad[0]}")
    if label is not None and len(values) == 1:
        return {label: {s: np.asarray(a) != 0 for s, a in frames.items() if np.any(a)}}
    objects: dict[int, dict[int, np.ndarray]] = {}
    for value in values:
        for s, a in frames.items():
            m = np.asarray(a) == value
            if m.any():
                objects.setdefault(value, {})[s] = m
    return objects


def volume_label_objects(images: Sequence[MaskPrompt], axis: int) -> dict[int, dict[int, np.ndarray]]:
    """The objects of label images ``[k, j, i]`` (see :func:`label_image_objects`), frames along ``axis``."""
    objects: dict[int, dict[int, np.ndarray]] = {}
    for p in images:
        stack = frames_view(np.asarray(p.array), axis)
        present = {int(s): stack[s] for s in np.flatnonzero(stack.any(axis=(1, 2)))}
        for obj, frames in label_image_objects(present).items():
            objects.setdefault(obj, {}).update(frames)
    return objects


def tracker_prompts(
    main: ObjectPrompts, label: int, objects: Mapping[int, Mapping[int, np.ndarray]] | None = None
) -> dict[int, dict[int, FramePrompt]]:
    """frame -> object -> prompt for a tracker engine: object ``label`` from ``main`` (see
    :meth:`ObjectPrompts.for_tracker`) and mask-only ``objects`` (object -> frame -> bool mask) after it."""
    prompts = main.for_tracker(label)
    for obj, frames in (objects or {}).items():
        for s, m in frames.items():
            prompts.setdefault(s, {})[obj] = FramePrompt(mask=m)
    return prompts


def box3d_footprint(box3d: Box3D, axis: int, frame_shape: tuple[int, int]) -> np.ndarray:
    """The in-plane footprint ``(H, W)`` of a 3D box on a frame along ``axis`` (bool): results stay inside it."""
    u, v = in_plane_axes(axis)
    lo, hi = box3d.lower(), box3d.upper()
    clip = np.zeros(frame_shape, dtype=bool)
    clip[lo[v] : hi[v] + 1, lo[u] : hi[u] + 1] = True
    return clip


def clip_to_box3d(labels: np.ndarray, box3d: Box3D | None, axis: int) -> np.ndarray:
    """``labels`` ``[k, j, i]`` with everything outside ``box3d`` set to 0 (in place; returned)."""
    if box3d is None:
        return labels
    frames = frames_view(labels, axis)
    lo, hi = box3d.lower()[axis], box3d.upper()[axis]
    frames[:lo] = 0
    frames[hi + 1 :] = 0
    frames[:, ~box3d_footprint(box3d, axis, frames.shape[1:])] = 0
    return labels

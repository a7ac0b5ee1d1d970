"""How a :class:`~volsam.session.Session` computes an edit, one corrector per engine kind behind one interface.

* :class:`SliceCorrector` (slice engines, LiteMedSAM): each slice the new prompts touch is segmented again
  from the object's box there (or its current mask's box) together with the clicks on it, and the walk
  re-propagates from that slice only until the result agrees with the old one, the next slice the user
  prompted, or the object's end (:mod:`volsam.session.corrections`). A mask prompt replaces the object on its
  slices. Slice embeddings stay cached per session (:class:`~volsam.engines.cache.CachedEngine`).
* :class:`TrackerCorrector` (tracker engines, SAM 2): the new prompts go on their slice, every prompted slice
  conditions the memory, and tracking resumes from the corrected slice in both directions until the result
  stops changing (``CorrectionSettings.retrack_settled`` slices) or reaches the next prompted slice.

Both segment an object from all its prompts (its first prompts, a 3D box) with :func:`volsam.segment`.
Masks are bool ``[k, j, i]``; the correctors write the object's new mask into ``SessionObject.mask``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np

from volsam.core.errors import PromptError
from volsam.core.prompts import Box2D, MaskPrompt, Point, Prompt
from volsam.core.volume import Volume
from volsam.engines.base import FramePrompt, SliceEngine, TrackerEngine
from volsam.engines.cache import CachedEngine
from volsam.preprocess import Normalizer
from volsam.propagation import EmbeddingCache, FrameStack, PropagationSettings, focus_window, mask_box
from volsam.propagation.frames import frames_view
from volsam.propagation.prompts import ObjectPrompts, box3d_footprint, frame_prompts, prompt_extent
from volsam.propagation.settings import CorrectionSettings
from volsam.propagation.tracking import track_labels
from volsam.propagation.walk import SliceResult
from volsam.segmentation import segment
from volsam.session.candidates import ChosenCandidate, carry_candidate
from volsam.session.corrections import EditMode, FrameEdit, agreement, repropagate, resegment_frame
from volsam.session.state import SessionObject

log = logging.getLogger(__name__)


class CorrectionHost(Protocol):
    """What a corrector reads of its session (a :class:`~volsam.session.Session` is one)."""

    volume: Volume
    axis: int
    normalizer: Normalizer
    settings: PropagationSettings
    corrections: CorrectionSettings
    absent_patience: int | None

    def mark_first_frame(self) -> None:
        """The corrected slice's new mask is ready (what a viewer can show first)."""

    def report_range(self, lo: int, hi: int, later: Sequence[tuple[int, int]] = ()) -> None:
        """A walk within slices ``lo..hi`` (inclusive, along the axis) starts (progress); ``later``: the ranges
        of the walks that follow it in this step."""

    def report_mask(self, index: int, mask: np.ndarray, origin: tuple[int, int] = (0, 0)) -> None:
        """Slice ``index``'s new mask (bool ``(h, w)``, its first pixel at ``origin`` = (row, col) of the slice
        as :func:`~volsam.propagation.frames.frames_view` lays it out), as it is made (a live preview)."""

    def report_frame(self, index: int) -> None:
        """Slice ``index`` was segmented (progress; may raise :class:`~volsam.core.errors.Cancelled` to stop)."""


class Corrector(ABC):
    """Computes an object's mask from its prompts (:meth:`segment`) or corrects it (:meth:`correct`).

    A corrector keeps no reference to its session (``host`` comes with every call): a closed session's
    arrays and embedding cache are freed with its last reference, not later by the cycle collector."""

    engine: SliceEngine | TrackerEngine

    @property
    def frames_encoded(self) -> int:
        """Frames the engine has encoded so far (0 when the engine does not count them)."""
        return 0

    def segment(self, h: CorrectionHost, o: SessionObject) -> None:
        """Segment the object from all its prompts (its first prompts, a 3D box, or a re-track)."""
        if not any(not (isinstance(p, Point) and not p.positive) for p in o.prompts):
            raise PromptError(
                f"object {o.label}: give a box, a positive point or a mask first (only background clicks)"
            )
        prompts = frame_prompts(o.prompts, h.volume.size, h.axis)
        h.report_range(*(prompts.limit() or (0, h.volume.size[h.axis] - 1)))

        def on_frame(r: SliceResult) -> None:
            h.report_mask(r.index, r.mask, r.origin)  # the mask in its walk window, placed by the window's corner
            h.report_frame(r.index)

        seg = segment(
            h.volume,
            list(o.prompts),
            engine=self.engine,
            axis=h.axis,
            label=1,
            settings=h.settings,
            absent_patience=h.absent_patience,
            normalizer=h.normalizer,
            on_frame=on_frame,
        )
        o.mask = seg.array > 0
        o.window = seg.meta["report"].window

    @abstractmethod
    def correct(self, h: CorrectionHost, o: SessionObject, new: list[Prompt]) -> None:
        """Correct an object that has voxels with its ``new`` prompts (``o.prompts`` already holds them)."""


def corrector_for(engine: SliceEngine | TrackerEngine, cache_mb: float) -> Corrector:
    """The corrector of ``engine``'s kind; a slice engine gets a session-wide embedding cache of ``cache_mb``."""
    if isinstance(engine, TrackerEngine):
        return TrackerCorrector(engine)
    cached = engine if isinstance(engine, CachedEngine) else CachedEngine(engine, cache_mb)
    return SliceCorrector(cached)


class SliceCorrector(Corrector):
    """Corrections with a slice engine: re-segment the touched slices, re-propagate locally."""

    def __init__(self, engine: CachedEngine):
        self.engine: CachedEngine = engine

    @property
    def frames_encoded(self) -> int:
        return self.engine.frames_encoded

    def correct(self, h: CorrectionHost, o: SessionObject, new: list[Prompt]) -> None:
        settings, corrections = h.settings, h.corrections
        if o.mask is None:  # the session segments fresh objects; here the object has voxels
            raise PromptError(f"object {o.label} has nothing to correct yet")
        prompts = frame_prompts(o.prompts, h.volume.size, h.axis)
        clicked, seed_masks = prompts.clicked, prompts.masks
        touched = sorted(set(frames_of(new, h.axis)))
        stack = self._stack_for(h, o, touched, prompts)
        y0, y1, x0, x1 = stack.roi
        frames = frames_view(o.mask, h.axis)[:, y0:y1, x0:x1]  # a view: writes land in o.mask
        cache = EmbeddingCache(self.engine, stack, settings.batch_size, settings.cache_size)
        prompted = sorted(prompts.frames)
        lo_limit, hi_limit = prompts.limit() or (0, len(stack) - 1)
        anchors = sorted({t for t, p in prompts.frames.items() if p.box is not None} | set(seed_masks))
        chosen = new[0] if len(new) == 1 and isinstance(new[0], ChosenCandidate) and new[0].rule != "local" else None
        for s in touched:
            before = [t for t in prompted if t < s]
            after = [t for t in prompted if t > s]
            bounds = (max([lo_limit, *(t + 1 for t in before)]), min([hi_limit, *(t - 1 for t in after)]))
            h.report_range(*bounds)
            was_empty = not frames[s].any()
            clicks = [p for p in new if isinstance(p, Point) and p.ijk()[h.axis] == s]
            mode = (
                EditMode.REPLACE
                if not clicks or was_empty
                else EditMode.ADD
                if clicks[-1].positive
                else EditMode.REMOVE
            )
            if s in seed_masks and any(isinstance(p, MaskPrompt) for p in new):
                frames[s] = seed_masks[s][y0:y1, x0:x1]
            else:
                local = clicked.get(s, FramePrompt()).in_window(stack.roi)
                points = local.points if local.points is not None else np.zeros((0, 2), np.float32)
                labels = local.point_labels if local.point_labels is not None else np.zeros(0, np.int64)
                edit = FrameEdit(local.box, points, labels, _nearest_box(frames, s), corrections.click_prompts)
                cap = _area_cap(frames, s, corrections.area_growth) if mode is EditMode.ADD else None
                frames[s] = resegment_frame(cache, s, frames[s], edit, settings, mode, cap, corrections)
            h.mark_first_frame()
            h.report_mask(s, frames[s], (y0, x0))

            def written(t: int) -> None:
                h.report_mask(t, frames[t], (y0, x0))

            h.report_frame(s)  # progress; a stop raises here and the session rolls the step back
            if chosen is not None:  # a candidate chosen on the slice: carried both ways by its rule
                carry_candidate(
                    stack,
                    frames,
                    s,
                    cache=cache,
                    bounds=bounds,
                    rank=chosen.rank,
                    rule=chosen.rule,
                    reach=chosen.reach,
                    settings=settings,
                    on_frame=h.report_frame,
                    on_written=written,
                )
                continue
            toward = _toward(s, [t for t in anchors if t < s], [t for t in anchors if t > s], frames)
            # the object may reach new frames only from a frame where the user showed it anew (a click on a
            # frame without it, or a drawn mask)
            grow = bool(frames[s].any()) and (was_empty or s in seed_masks)
            repropagate(
                stack,
                frames,
                s,
                cache=cache,
                bounds=bounds,
                settings=settings,
                toward=toward,
                grow=grow,
                mode=mode,
                corrections=corrections,
                on_frame=h.report_frame,
                on_written=written,
            )

    @staticmethod
    def _stack_for(h: CorrectionHost, o: SessionObject, touched: list[int], prompts: ObjectPrompts) -> FrameStack:
        """The frames in the object's window, widened first when a new prompt lies outside it."""
        if o.window is not None and h.settings.volsam:
            y0, y1, x0, x1 = o.window
            new = [replace(prompts.clicked[s], mask=None) for s in touched if s in prompts.clicked]
            extent = prompt_extent(new + [FramePrompt(mask=m) for m in prompts.masks.values()], None, h.axis)
            if extent is not None and not (x0 <= extent[0] and extent[2] < x1 and y0 <= extent[1] and extent[3] < y1):
                px0, py0, px1, py1 = extent
                current = mask_box(frames_view(o.mask, h.axis).any(axis=0)) if o.mask is not None else None
                if current is not None:
                    px0, py0 = min(px0, current[0]), min(py0, current[1])
                    px1, py1 = max(px1, current[2]), max(py1, current[3])
                shape = frames_view(h.volume.array, h.axis).shape[1:]
                s = h.settings
                o.window = focus_window((px0, py0, px1, py1), shape, s.roi_context, s.roi_min, s.roi_max_fraction)
                log.info("object %d: a prompt lies outside its window; widened to %s", o.label, o.window)
        return FrameStack(h.volume.array, h.axis, h.normalizer.apply, o.window, colour=h.volume.colour)


class TrackerCorrector(Corrector):
    """Corrections with a tracker engine: the corrected slice conditions the memory; tracking resumes there."""

    def __init__(self, engine: TrackerEngine):
        self.engine: TrackerEngine = engine

    def correct(self, h: CorrectionHost, o: SessionObject, new: list[Prompt]) -> None:
        """The new prompts go on their slice, which becomes a conditioning frame like every slice the user
        prompted, and tracking resumes from it in both directions until the result agrees with the old one
        again (``retrack_settled`` slices in a row) or the next prompted slice. Prompts on several slices at
        once re-track the whole object."""
        touched = sorted(set(frames_of(new, h.axis)))
        if len(touched) != 1:
            self.segment(h, o)
            return
        k = touched[0]
        prompts = frame_prompts(o.prompts, h.volume.size, h.axis)
        prompted = sorted(prompts.frames)
        stack = FrameStack(h.volume.array, h.axis, h.normalizer.apply, colour=h.volume.colour)
        lo, hi = prompts.limit() or (0, len(stack) - 1)
        lo = max([lo, *(t + 1 for t in prompted if t < k)])
        hi = min([hi, *(t - 1 for t in prompted if t > k)])
        frames = frames_view(o.mask, h.axis)  # a view: writes land in o.mask
        clip = box3d_footprint(prompts.box3d, h.axis, frames.shape[1:]) if prompts.box3d is not None else None
        track = prompts.for_tracker(1)
        limits = ((k, hi), (lo, k))  # forward, then backward (the corrected slice is run by both)
        for n, limit in enumerate(limits):
            h.report_range(*limit, later=limits[1:] if n == 0 else ())
            settled = 0
            for res in track_labels(self.engine, stack, track, limit=limit, start=k, absent_patience=h.absent_patience):
                mask = res.labels == 1
                if clip is not None:
                    mask &= clip
                h.report_mask(res.index, mask)
                h.report_frame(res.index)
                if res.index == k:
                    h.mark_first_frame()
                agree = res.index != k and agreement(frames[res.index], mask) >= h.corrections.unchanged_dice
                frames[res.index] = mask
                settled = settled + 1 if agree else 0
                if settled >= h.corrections.retrack_settled:
                    break


def frames_of(prompts: list[Prompt], axis: int) -> list[int]:
    """The slices (along ``axis``) that ``prompts`` touch."""
    frames: list[int] = []
    for p in prompts:
        if isinstance(p, Box2D):
            frames.append(p.slice)
        elif isinstance(p, Point):
            frames.append(p.ijk()[axis])
        elif isinstance(p, MaskPrompt):
            stack = frames_view(p.binary(), axis)
            frames += [int(s) for s in np.flatnonzero(stack.any(axis=(1, 2)))]
    return frames


def _nearest_box(frames: np.ndarray, s: int) -> tuple[float, float, float, float] | None:
    """The mask box on the frame nearest to ``s`` (other than ``s``) that has the object; None if none does."""
    present = [t for t in np.flatnonzero(frames.any(axis=(1, 2))) if t != s]
    if not present:
        return None
    return mask_box(frames[min(present, key=lambda t: (abs(t - s), t))])


def _toward(s: int, before: list[int], after: list[int], frames: np.ndarray) -> int:
    """-1 / +1: the side of frame ``s`` where the object's nearest other prompted frame lies (else its bulk)."""
    near_before = s - before[-1] if before else None
    near_after = after[0] - s if after else None
    if near_before is not None and (near_after is None or near_before <= near_after):
        return -1
    if near_after is not None:
        return 1
    present = np.flatnonzero(frames.any(axis=(1, 2)))
    return -1 if present.size and present.mean() < s else 1


def _area_cap(frames: np.ndarray, s: int, growth: float) -> float | None:
    """The most pixels a positive click may give slice ``s``: ``growth`` times the largest of its own and its
    two neighbours' areas (None when all are empty)."""
    areas = [int(frames[t].sum()) for t in (s - 1, s, s + 1) if 0 <= t < len(frames)]
    top = max(areas, default=0)
    return growth * top if top > 0 else None

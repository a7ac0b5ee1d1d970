"""An interactive segmentation session: several objects, prompts on any slice, local corrections,
undo / redo, resume from a label map.

Prompts are in voxel indices of the image as read (see :mod:`volsam.core.prompts`); masks are bool arrays
``[k, j, i]`` on the image grid. Every editing call returns a :class:`~volsam.session.state.Change` (the
changed slice range and voxel box) so that a viewer redraws only that.

How an edit is computed:

* the first prompts of an object, and any 3D box, segment it from all its prompts (as
  :func:`volsam.segment` does);
* later prompts are corrections, computed by the corrector of the engine's kind
  (:mod:`volsam.session.correctors`): with a slice engine (LiteMedSAM) each corrected slice is segmented
  again and the walk re-propagates from it only until the result agrees with the old one; with a tracker
  engine (SAM 2) tracking resumes from the corrected slice.

Slice embeddings are kept per session within ``cache_mb`` (LRU): a correction on a slice seen before
does not run the image encoder again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from volsam.core.errors import PromptError
from volsam.core.prompts import Box2D, Box3D, MaskPrompt, Point, Prompt
from volsam.core.volume import Volume
from volsam.engines import resolve as resolve_engine
from volsam.engines.base import SliceEngine, TrackerEngine
from volsam.preprocess import fit_normalizer
from volsam.propagation import PropagationSettings
from volsam.propagation.prompts import frame_prompts, validate_prompt
from volsam.propagation.settings import CorrectionSettings
from volsam.segmentation import resolve_axis
from volsam.session.candidates import ChosenCandidate, carry_rule, object_reach, single_slice, slice_candidates
from volsam.session.correctors import corrector_for
from volsam.session.progress import StepProgress
from volsam.session.prompts_file import ObjectSpec
from volsam.session.state import Change, Edit, History, ObjectRecord, SessionObject, bounding_region

log = logging.getLogger(__name__)

# on_preview(label, index, mask, origin): a slice mask of the running step (see Session.report_mask)
PreviewHook = Callable[[int, int, np.ndarray, tuple[int, int]], None]

OVERLAP_POLICIES = ("later", "keep")


class Session:
    """Interactive segmentation of one volume.

    Args:
        volume: the image (array ``[k, j, i]``).
        engine: an engine name (``medsam-lite``, ``sam2``) or instance; ``model``, ``device`` choose its weights
            and device (see :func:`volsam.engines.get`).
        axis: the slice axis (``i``, ``j``, ``k`` or ``axial`` / ``coronal`` / ``sagittal``).
        modality, window: intensity normalisation (see :func:`volsam.preprocess.fit_normalizer`), fitted once.
        settings: the slice-engine walk (:class:`~volsam.propagation.PropagationSettings`).
        overlap: ``later`` (default: where objects overlap, the one added later wins) or ``keep`` (an object
            never overwrites voxels of one added before it).
        history: how many steps :meth:`undo` can go back.
        cache_mb: memory for kept slice embeddings (MB).
        absent_patience: tracker engines stop a direction after this many slices without the object.
        click_prompts: slice engines: also give the clicks to the model's prompt encoder with the box when a
            slice is corrected (``CorrectionSettings.click_prompts``; off by default, see there why).
        corrections: the thresholds of corrections (:class:`~volsam.propagation.settings.CorrectionSettings`).
        candidate_carry: how a candidate chosen on a slice (:meth:`next_candidate`, :meth:`choose_candidate`)
            reaches the other slices (:data:`volsam.session.candidates.CARRY_RULES`; ``walk``: volsam's walk
            from the chosen mask, both ways, measured best of the four).
    """

    def __init__(
        self,
        volume: Volume,
        *,
        engine: str | SliceEngine | TrackerEngine = "medsam-lite",
        model: str | None = None,
        device: str = "auto",
        axis: str | int = "k",
        modality: str = "auto",
        window: str | None = None,
        settings: PropagationSettings | None = None,
        overlap: str = "later",
        history: int = 32,
        cache_mb: float = 1024.0,
        absent_patience: int | None = 3,
        click_prompts: bool = False,
        corrections: CorrectionSettings | None = None,
        candidate_carry: str = "walk",
    ):
        if overlap not in OVERLAP_POLICIES:
            raise PromptError(f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, got {overlap!r}")
        self.volume = volume
        self.axis = resolve_axis(volume, axis)
        self.normalizer = fit_normalizer(volume, modality, window)
        self.settings = settings or PropagationSettings()
        self.corrections = corrections or CorrectionSettings()
        if click_prompts:
            self.corrections = replace(self.corrections, click_prompts=True)
        self.overlap = overlap
        self.absent_patience = absent_patience
        self.candidate_carry = carry_rule(candidate_carry)
        self._corrector = corrector_for(resolve_engine(engine, model, device), cache_mb)
        self.engine = self._corrector.engine
        self._objects: dict[int, SessionObject] = {}
        self._pending: list[tuple[int, Prompt]] = []
        self._history = History(history)
        self._added = 0
        self._first_frame_at: float | None = None
        self.last_candidate: tuple[int, int] | None = None  # (rank, count) of the last next_candidate
        self.on_frame: Callable[[int], None] | None = None  # called with each slice index segmented (progress)
        # called with the most slices the running step may segment, whenever that changes (progress)
        self.on_total: Callable[[int], None] | None = None
        # called with each slice mask a step makes, as it is made (a live preview; see report_mask)
        self.on_preview: PreviewHook | None = None
        self._progress = StepProgress()
        self._running: int | None = None  # the label of the object the running step computes

    # -- objects ------------------------------------------------------------------------------------------------
    @property
    def objects(self) -> list[tuple[int, str]]:
        """``(label, name)`` of every object, in the order they were added."""
        return [(o.label, o.name) for o in self._objects.values()]

    def add_object(self, label: int | None = None, name: str | None = None) -> int:
        """Add an empty object; returns its label (the next free one when ``label`` is None)."""
        if label is None:
            label = max(self._objects, default=0) + 1
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 1 <= int(label) <= 65535:
            raise PromptError(f"object labels are integers 1..65535, got {label!r}")
        label = int(label)
        if label in self._objects:
            raise PromptError(f"object {label} exists already")
        self._added += 1
        obj = SessionObject(label, name or f"object {label}", order=self._added)
        self._objects[label] = obj
        self._history.push([Edit(label, None, _record(obj), None, None, None)])
        return label

    def _object(self, obj: int) -> SessionObject:
        if obj not in self._objects:
            known = ", ".join(str(k) for k in self._objects) or "none yet"
            raise PromptError(f"no object {obj!r} in this session (objects: {known})")
        return self._objects[obj]

    def mask(self, obj: int) -> np.ndarray:
        """The object's bool mask ``[k, j, i]`` (a copy; all False before its first prompt ran)."""
        o = self._object(obj)
        return o.mask.copy() if o.mask is not None else np.zeros(self.volume.array.shape, bool)

    def prompts(self, obj: int) -> list[Prompt]:
        """The prompts given to object ``obj`` so far, in order."""
        return list(self._object(obj).prompts)

    def remove_object(self, obj: int) -> Change:
        """Remove an object and its voxels (undoable)."""
        o = self._object(obj)
        region = bounding_region(o.mask) if o.mask is not None else None
        before = o.mask[region].copy() if region is not None else None
        del self._objects[obj]
        self._history.push([Edit(obj, _record(o), None, region, before, None)])
        self._pending = [(label, p) for label, p in self._pending if label != obj]
        return Change.of(o.mask, (obj,), self.axis) if o.mask is not None else Change((obj,))

    def reset_object(self, obj: int) -> Change:
        """Forget an object's prompts and voxels, keeping the object (undoable)."""
        o = self._object(obj)
        old = self.mask(obj)
        record, region = _record(o), bounding_region(old)
        o.prompts, o.mask, o.window = [], None, None
        self._history.push(
            [Edit(obj, record, _record(o), region, old[region] if region else None, _zeros(old, region))]
        )
        return Change.of(old, (obj,), self.axis)

    # -- prompts --------------------------------------------------------------------------------------------------
    def add_box(self, obj: int, slice: int, box: Sequence[int], run: bool = True) -> Change:
        """A box ``(u0, v0, u1, v1)`` (inclusive, the two in-plane index axes) on ``slice`` along the axis."""
        if len(box) != 4:
            raise PromptError(f"a box has 4 numbers (u0, v0, u1, v1), got {len(box)}")
        return self.add(obj, Box2D(*box, slice=slice), run)

    def add_box3d(self, obj: int, box: Sequence[int], run: bool = True) -> Change:
        """A 3D box ``(i0, j0, k0, i1, j1, k1)`` inclusive; the object is kept inside it."""
        if len(box) != 6:
            raise PromptError(f"a 3D box has 6 numbers (i0, j0, k0, i1, j1, k1), got {len(box)}")
        return self.add(obj, Box3D(*box), run)

    def add_point(self, obj: int, ijk: Sequence[int], positive: bool = True, run: bool = True) -> Change:
        """A click at voxel ``(i, j, k)``: on the object (``positive``) or on background."""
        if len(ijk) != 3:
            raise PromptError(f"a point has 3 numbers (i, j, k), got {len(ijk)}")
        return self.add(obj, Point(*ijk, positive=bool(positive)), run)

    def add_mask(self, obj: int, mask: np.ndarray, run: bool = True) -> Change:
        """A mask ``[k, j, i]`` on the image grid (non-zero = object): the object on its non-empty slices."""
        return self.add(obj, MaskPrompt(np.asarray(mask) != 0), run)

    def add(self, obj: int, prompt: Prompt, run: bool = True) -> Change:
        """Add any prompt to an object; with ``run`` False it waits for :meth:`run`."""
        self._object(obj)
        validate_prompt(prompt, self.volume.size, self.axis)
        self._pending.append((obj, prompt))
        return self.run() if run else Change()

    def run(self) -> Change:
        """Predict from every prompt queued with ``run=False`` (one undo step)."""
        pending, self._pending = self._pending, []
        t0, self._first_frame_at = time.perf_counter(), None
        self._progress = StepProgress(self.on_total)
        by_object: dict[int, list[Prompt]] = {}
        for label, prompt in pending:
            by_object.setdefault(label, []).append(prompt)
        change, step = Change(), []
        try:
            for label, prompts in by_object.items():
                o = self._object(label)
                record, mask = _record(o), o.mask
                try:
                    edit, ch = self._apply(o, prompts)
                except BaseException:
                    o.prompts, o.window, o.mask = list(record.prompts), record.window, mask
                    raise
                step.append(edit)
                change = change.merged(ch)
        except BaseException:
            self._replay(step, backwards=True)  # objects done before the failing one go back too
            raise
        self._history.push(step)
        first = self._first_frame_at - t0 if self._first_frame_at is not None else None
        return replace(change, seconds=time.perf_counter() - t0, first_frame_seconds=first)

    # -- candidate masks ----------------------------------------------------------------------------------------
    def next_candidate(self, obj: int, slice: int) -> Change:
        """Show the model's next candidate mask for the object's box / clicks on ``slice`` and re-propagate the
        object from it (one undoable step; the choice is kept as a mask prompt on that slice, replacing an
        earlier choice there). Repeated calls cycle through the candidates and back to the model's first
        answer; a new prompt on the slice starts the cycle again. Slice engines only
        (:meth:`~volsam.engines.base.SliceEngine.predict_candidates`; see :mod:`volsam.session.candidates`).
        ``last_candidate`` is then ``(rank shown, number of candidates)``; rank 0 is the model's first answer."""
        return self.choose_candidate(obj, slice, None)

    def candidates(self, obj: int, slice: int) -> list[np.ndarray]:
        """The model's candidate masks for the object's box / clicks on ``slice``, each a bool ``[k, j, i]``
        array empty outside that slice, the model's first answer first (what :meth:`choose_candidate` shows)."""
        return self._slice_candidates(obj, slice)[0]

    def choose_candidate(self, obj: int, slice: int, rank: int | None) -> Change:
        """Show candidate ``rank`` (0 = the model's first answer; None: the one after the candidate shown last)
        of the object's prompt on ``slice`` and carry it to the other slices by ``candidate_carry`` (one
        undoable step, as :meth:`next_candidate`)."""
        masks, _ = self._slice_candidates(obj, slice)
        if rank is None:
            rank = (self._shown_candidate(obj, int(slice)) + 1) % len(masks)
        elif not 0 <= rank < len(masks):
            raise PromptError(f"candidate {rank} does not exist: the model gives {len(masks)} on slice {slice}")
        earlier = self._chosen_on(obj, int(slice))  # cycling: every choice keeps the reach before the first
        o = self._object(obj)
        reach = earlier.reach if earlier is not None else object_reach(o.mask, self.axis, int(slice))
        chosen = ChosenCandidate(masks[rank], rank=rank, rule=self.candidate_carry, reach=reach)
        change = self.add(obj, chosen)
        self.last_candidate = (rank, len(masks))
        return change

    def _shown_candidate(self, obj: int, slice: int) -> int:
        """The rank of the candidate the object shows on ``slice``, read from its prompts (so an undo or a redo
        moves it too): the latest choice there, 0 when a box or click on that slice came after it or none was
        made."""
        chosen = self._chosen_on(obj, slice)
        return chosen.rank if chosen is not None else 0

    def _chosen_on(self, obj: int, slice: int) -> ChosenCandidate | None:
        """The latest candidate chosen on ``slice``, None when a box or click on that slice came after it or
        none was chosen there."""
        size = tuple(self.volume.array.shape[::-1])
        for p in reversed(self._object(obj).prompts):
            if isinstance(p, ChosenCandidate) and single_slice(p, self.axis) == slice:
                return p
            if not isinstance(p, MaskPrompt) and slice in frame_prompts([p], size, self.axis).frames:
                return None  # a new box / click on the slice starts the cycle again
        return None

    def _slice_candidates(self, obj: int, slice: int) -> tuple[list[np.ndarray], tuple]:
        o = self._object(obj)
        if isinstance(self.engine, TrackerEngine):
            raise PromptError(f"candidate masks need a slice engine; {self.engine.name} is a tracker")
        if o.mask is None or not o.mask.any():
            raise PromptError(f"object {obj} has no voxels yet: give it a box first")
        return slice_candidates(
            self.engine,
            self.volume.array,
            self.axis,
            self.normalizer.apply,
            [p for p in o.prompts if not isinstance(p, MaskPrompt)],
            int(slice),
            o.window,
            getattr(self.volume, "colour", None),
        )

    # -- undo -----------------------------------------------------------------------------------------------------
    def undo(self) -> Change:
        """Take back the last step (adding an object, prompts, a reset or a removal); no-op at the start."""
        step = self._history.pop_undo()
        return self._replay(step, backwards=True) if step else Change()

    def redo(self) -> Change:
        """Do again the last step that :meth:`undo` took back."""
        step = self._history.pop_redo()
        return self._replay(step, backwards=False) if step else Change()

    def _replay(self, step: list[Edit], backwards: bool) -> Change:
        change = Change()
        for e in reversed(step) if backwards else step:
            record, crop = (e.before, e.mask_before) if backwards else (e.after, e.mask_after)
            diff = np.zeros(self.volume.array.shape, bool)
            if e.region is not None:
                diff[e.region] = True
            if record is None:
                self._objects.pop(e.label, None)
            else:
                o = self._objects.get(e.label)
                if o is None:
                    o = self._objects[e.label] = SessionObject(e.label, record.name, order=record.order)
                    self._objects = dict(sorted(self._objects.items(), key=lambda kv: kv[1].order))
                o.name, o.prompts, o.window = record.name, list(record.prompts), record.window
                if e.region is not None:
                    if o.mask is None:
                        o.mask = np.zeros(self.volume.array.shape, bool)
                    o.mask[e.region] = crop if crop is not None else False
            change = change.merged(Change.of(diff, (e.label,), self.axis))
        return change

    # -- output ---------------------------------------------------------------------------------------------------
    def labelmap(self) -> Volume:
        """Every object on the image grid (uint8, uint16 above 255), overlaps resolved by the policy."""
        top = max(self._objects, default=0)
        out = np.zeros(self.volume.array.shape, np.uint8 if top <= 255 else np.uint16)
        for o in self._objects.values():
            if o.mask is None:
                continue
            where = o.mask if self.overlap == "later" else o.mask & (out == 0)
            out[where] = o.label
        names = {o.label: o.name for o in self._objects.values()}
        return self.volume.with_array(out, labels=names)

    # -- computing ------------------------------------------------------------------------------------------------
    def mark_first_frame(self) -> None:
        """Correctors call this when the corrected slice's new mask is ready (``Change.first_frame_seconds``)."""
        if self._first_frame_at is None:
            self._first_frame_at = time.perf_counter()

    def report_range(self, lo: int, hi: int, later: Sequence[tuple[int, int]] = ()) -> None:
        """Correctors call this when a walk within slices ``lo..hi`` starts, with the ranges of the walks that
        follow it in the step (``on_total``)."""
        self._progress.begin(lo, hi, later)

    def report_mask(self, index: int, mask: np.ndarray, origin: tuple[int, int] = (0, 0)) -> None:
        """Correctors call this with each slice mask the running step makes (before :meth:`report_frame` of that
        slice): ``on_preview(label, index, mask, origin)``. ``mask`` is bool ``(h, w)``: the part of slice
        ``index`` (along the session's axis) whose first row / column is ``origin`` = (row, col) of the slice
        as :func:`~volsam.propagation.frames.frames_view` lays it out (rows, columns: the array's other two axes
        in ``[k, j, i]`` order); the object's voxels of the slice inside that rectangle are the mask's. It may
        be a view of the walk's own arrays: a hook that keeps it copies what it keeps. The masks are the
        walk's as made; the step's result (after 3D clean-up, a 3D box's clipping) may still differ."""
        if self.on_preview is not None and self._running is not None:
            self.on_preview(self._running, int(index), mask, (int(origin[0]), int(origin[1])))

    def report_frame(self, index: int) -> None:
        """Correctors call this for each slice segmented: ``on_total`` when the step's total changes, then
        ``on_frame`` (which may raise :class:`~volsam.core.errors.Cancelled`; the step is then rolled back)."""
        self._progress.frame(index)
        if self.on_frame is not None:
            self.on_frame(index)

    def _apply(self, o: SessionObject, new: list[Prompt]) -> tuple[Edit, Change]:
        self._running = o.label
        try:
            return self._compute(o, new)
        finally:
            self._running = None

    def _compute(self, o: SessionObject, new: list[Prompt]) -> tuple[Edit, Change]:
        record_before = _record(o)
        old = o.mask.copy() if o.mask is not None else np.zeros(self.volume.array.shape, bool)
        o.mask = o.mask.copy() if o.mask is not None else None  # edits write into a new array (rollback keeps the old)
        o.prompts = _merged(o.prompts, new, self.axis)
        encoded_before = self._corrector.frames_encoded
        fresh = o.mask is None or not o.mask.any() or any(isinstance(p, Box3D) for p in new)
        if fresh:
            self._corrector.segment(self, o)
        else:
            self._corrector.correct(self, o, new)
        diff = old ^ o.mask
        region = bounding_region(diff)
        edit = Edit(
            o.label,
            record_before,
            _record(o),
            region,
            old[region] if region is not None else None,
            o.mask[region].copy() if region is not None else None,
        )
        return edit, Change.of(diff, (o.label,), self.axis, self._corrector.frames_encoded - encoded_before)

    # -- prompts files --------------------------------------------------------------------------------------------
    def save_prompts(self, path: str | Path) -> Path:
        """Write the prompts that produced the current objects as a prompts JSON (see
        :mod:`volsam.session.prompts_file`; mask prompts go to NIfTI files beside it)."""
        from volsam.session.prompts_file import save_prompts

        objects = [(o.label, o.name, list(o.prompts)) for o in self._objects.values()]
        return save_prompts(path, objects, self.axis, self.volume)

    def apply(self, specs: Sequence[ObjectSpec], on_prompt: Callable[[int, Prompt], None] | None = None) -> Change:
        """Add the objects of a prompts file (new labels only) and run their prompts in order;
        ``on_prompt(label, prompt)`` is called after each (progress)."""
        change = Change()
        for spec in specs:
            label = self.add_object(spec.label, spec.name)
            for prompt, run in spec.prompts:
                change = change.merged(self.add(label, prompt, run=run))
                if on_prompt is not None:
                    on_prompt(label, prompt)
            if self._pending:
                change = change.merged(self.run())
        return change

    # -- resume ---------------------------------------------------------------------------------------------------
    @classmethod
    def from_labelmap(
        cls, volume: Volume, labelmap: Volume | str | Path, names: dict[int, str] | None = None, **options: Any
    ) -> Session:
        """A session whose objects are the labels of ``labelmap`` (a Volume or a file on ``volume``'s grid);
        each object starts with its voxels as a mask prompt, so corrections can follow."""
        from volsam.io import read_volume

        lab = read_volume(labelmap) if isinstance(labelmap, (str, Path)) else labelmap
        if not lab.same_grid(volume):
            raise PromptError(
                f"the label map (size {lab.size}) is not on the image grid (size {volume.size}); nothing is resampled"
            )
        session = cls(volume, **options)
        values = np.asarray(lab.array)
        for value in (int(v) for v in np.unique(values) if v != 0):
            label = session.add_object(value, (names or {}).get(value))
            o = session._objects[label]
            o.mask = values == value
            o.prompts = [MaskPrompt(o.mask.copy())]
        session._history = History(session._history.limit)  # the loaded state is where undo stops
        return session


def _record(o: SessionObject) -> ObjectRecord:
    return ObjectRecord(o.name, tuple(o.prompts), o.window, o.order)


def _zeros(like: np.ndarray, region: tuple[slice, slice, slice] | None) -> np.ndarray | None:
    return np.zeros_like(like[region]) if region is not None else None


def _merged(old: list[Prompt], new: list[Prompt], axis: int) -> list[Prompt]:
    """The prompt list after ``new``: a box on a slice replaces that slice's box, a 3D box the 3D box, a mask on
    one slice an earlier mask on that one slice only (a candidate chosen again)."""
    out = list(old)
    for p in new:
        if isinstance(p, Box2D):
            out = [q for q in out if not (isinstance(q, Box2D) and q.slice == p.slice)]
        elif isinstance(p, Box3D):
            out = [q for q in out if not isinstance(q, Box3D)]
        elif (s := single_slice(p, axis)) is not None:
            out = [q for q in out if single_slice(q, axis) != s]
        out.append(p)
    return out


__all__ = ["OVERLAP_POLICIES", "Session"]

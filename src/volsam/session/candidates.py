"""Candidate masks: a SAM-family decoder proposes several masks for an ambiguous prompt and volsam keeps the
first; :meth:`volsam.Session.next_candidate` lets a person step through the others on a prompted slice
(:meth:`~volsam.Session.choose_candidate` shows a given one).

The chosen candidate becomes a mask prompt on that slice (:class:`ChosenCandidate`; one undoable step, saved in
the prompts file) and reaches the other slices by the session's ``candidate_carry`` rule (:data:`CARRY_RULES`).
The default, ``walk``, runs volsam's walk from the chosen mask both ways to the neighbouring prompted slices,
within the slices the object reached before the first choice on that slice (``ChosenCandidate.reach``): a
choice changes the object's shape, not how far it reaches (a box or a click on another slice does that).
``local`` re-propagates it as any correction does (:mod:`volsam.session.correctors`: one way, until the result
agrees with the old one), so the 3D result barely moves.

Measured with ``benchmarks/bench_interactive.py --clicks 0 --candidate-rules local,walk`` (the simulated user
picks by Dice on the key slice; all 24 cropped lesion cases, 2026-12-07): mean 3D Dice after the box 0.852,
after the pick ``local`` 0.849, ``walk`` 0.848 (0.839 before the reach: the walk ran past the lesion's end on
dark-00-aniso, 0.866 -> 0.729, and dark-01-flip-ik, 0.928 -> 0.667, because the chosen mask holds a ring of
surrounding tissue and so the tissue beyond the lesion "looked like" the object; with the reach 0.867 and
0.881). Per kind, walk before -> with the reach: dark 0.854 -> 0.913, small 0.809 -> 0.815, ring 0.786 ->
0.761 (ring-00 0.890 -> 0.861, ring-01 0.573 -> 0.513: the box's walk had stopped short of those rings' ends
and the chosen rim would have gone on), flat 0.930, bright 0.834. Letting the carry go 1 or 2 slices beyond the
reach gives the same mean (0.848), trading dark (0.902, 0.891) for ring (0.776, 0.784). ``same`` / ``similar``
were far worse on the 4 dark cases (0.43-0.83 where the others give 0.90-0.96: they leak past the object's
ends).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from volsam.core.errors import PromptError, SettingsError
from volsam.core.prompts import MaskPrompt, Prompt
from volsam.engines.base import FrameSource, SliceEngine
from volsam.propagation import EmbeddingCache, FrameStack, PropagationSettings, mask_box, propagate
from volsam.propagation.frames import frames_view
from volsam.propagation.prompts import frame_prompts
from volsam.propagation.stops import frame_stop

log = logging.getLogger(__name__)

# how a chosen candidate reaches the neighbours of its slice (Session(candidate_carry=)):
#   local:   as any correction, re-propagated one way until it agrees with the old result
#   walk:    volsam's walk from the chosen mask, both ways, to the neighbouring prompted slices
#   same:    both ways, each neighbour takes the candidate of the chosen rank for the previous mask's box
#   similar: both ways, each neighbour takes the candidate most like (IoU) the previous slice's mask
CARRY_RULES = ("local", "walk", "same", "similar")
# how many slices beyond the object's reach before the choice a carried candidate may go (each way)
BEYOND_REACH = 0


def carry_rule(rule: str) -> str:
    """``rule`` checked against :data:`CARRY_RULES`; SettingsError otherwise."""
    if rule not in CARRY_RULES:
        raise SettingsError(f"candidate carry rule {rule!r} is not one of {', '.join(CARRY_RULES)}")
    return rule


@dataclass(frozen=True, eq=False)
class ChosenCandidate(MaskPrompt):
    """A candidate mask chosen on one slice: a mask prompt (``array`` ``[k, j, i]``, that slice only) that
    remembers its ``rank`` among the model's candidates there and the ``rule`` that carries it to the
    neighbouring slices (:data:`CARRY_RULES`)."""

    rank: int = 0
    rule: str = "local"
    reach: tuple[int, int] | None = None  # (first, last) slice the object reached before (see object_reach)


def object_reach(mask: np.ndarray, axis: int, s: int) -> tuple[int, int] | None:
    """The run of slices along ``axis`` around slice ``s`` where the bool ``[k, j, i]`` ``mask`` has voxels,
    as (first, last), inclusive; None when slice ``s`` itself has none."""
    along = frames_view(mask, axis).any(axis=(1, 2))
    if not along[s]:
        return None
    first, last = s, s
    while first > 0 and along[first - 1]:
        first -= 1
    while last < len(along) - 1 and along[last + 1]:
        last += 1
    return first, last


def slice_candidates(
    engine: SliceEngine,
    volume_array: np.ndarray,
    axis: int,
    normalize,
    prompts: list[Prompt],
    s: int,
    window: tuple[int, int, int, int] | None,
    colour: np.ndarray | None = None,
) -> tuple[list[np.ndarray], tuple]:
    """The model's candidate masks for the object's prompt (box and clicks) on slice ``s``, each a bool
    ``[k, j, i]`` array empty outside that slice, and a key naming that prompt (a new prompt there starts the
    cycle again). ``window``: the object's focus window, as its masks were computed in."""
    size = tuple(volume_array.shape[::-1])
    if not 0 <= s < size[axis]:
        raise PromptError(f"slice {s} is outside the volume (0..{size[axis] - 1} along {'ijk'[axis]})")
    frame = frame_prompts(prompts, size, axis).frames.get(s)
    if frame is None or not frame.can_start:
        raise PromptError(f"there is no box or object click of this object on slice {s} to choose a candidate for")
    stack = FrameStack(volume_array, axis, normalize, window, colour=colour)
    local = frame.in_window(stack.roi)
    embedding = engine.encode(stack.frames([s]))[0]
    predictions = engine.predict_candidates(
        embedding, box=local.box, points=local.points, point_labels=local.point_labels
    )
    y0, y1, x0, x1 = stack.roi
    masks = []
    for p in predictions:
        full = np.zeros(volume_array.shape, bool)
        frames_view(full, axis)[s, y0:y1, x0:x1] = p.mask
        masks.append(full)
    key = (s, frame.box, None if frame.points is None else frame.points.tobytes())
    return masks, key


def single_slice(prompt: Prompt, axis: int) -> int | None:
    """The slice a mask prompt covers when it covers exactly one (along ``axis``), else None."""
    if not isinstance(prompt, MaskPrompt):
        return None
    along = np.flatnonzero(frames_view(prompt.binary(), axis).any(axis=(1, 2)))
    return int(along[0]) if len(along) == 1 else None


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return 0.0 if union == 0 else int((a & b).sum()) / union


def carry_candidate(
    stack: FrameSource,
    masks: np.ndarray,
    start: int,
    *,
    cache: EmbeddingCache,
    bounds: tuple[int, int],
    rank: int,
    rule: str,
    settings: PropagationSettings,
    reach: tuple[int, int] | None = None,
    on_frame: Callable[[int], None] | None = None,
    on_written: Callable[[int], None] | None = None,
) -> set[int]:
    """Carry the chosen candidate on frame ``start`` (already in ``masks``, a frame stack ``(n, H, W)`` in the
    stack's window) both ways to ``bounds`` = (first, last) frame, inclusive, by ``rule`` (``walk``, ``same``
    or ``similar``, see :data:`CARRY_RULES`); returns the frames written.

    Each direction runs until a stop rule of the walk (:func:`~volsam.propagation.stops.frame_stop`: empty,
    low score of the model's first answer, the chosen mask's area fell / jumped), a frame where the model's
    first answer is empty (another candidate, e.g. the whole box, may still be like the previous mask where
    the object has ended) or the bound; the frames beyond its end, up to the bound, are cleared (they
    continued the old answer). ``same`` / ``similar`` prompt each frame with the previous mask's box and cut
    the answer to the previous mask dilated by ``settings.growth_limit`` px, as the walk does.
    ``on_frame(index)`` is called for each frame segmented (progress; it may raise to stop, the caller then
    rolls back); ``on_written(index)`` after each frame of ``masks`` written (a live preview reads it there).
    """
    carry_rule(rule)
    if rule == "local":
        raise SettingsError("the local rule is a correction's re-propagation (corrections.repropagate)")
    lo, hi = bounds
    if not lo <= start <= hi:
        raise PromptError(f"frame {start} is outside the range {lo}..{hi}")
    if reach is not None:
        lo, hi = max(lo, min(start, reach[0]) - BEYOND_REACH), min(hi, max(start, reach[1]) + BEYOND_REACH)
        bounds = (lo, hi)
    written = {start}
    ends = {1: start, -1: start}
    if not masks[start].any():
        return written
    if rule == "walk":
        walker = propagate(
            cache.engine, stack, start, seed_mask=masks[start], limit=bounds, settings=settings, cache=cache
        )
        next(walker)  # the start frame itself
        for res in walker:
            if on_frame is not None:
                on_frame(res.index)
            masks[res.index] = res.mask
            written.add(res.index)
            ends[1 if res.index > start else -1] = res.index
            if on_written is not None:
                on_written(res.index)
    else:
        for step in (1, -1):
            end = hi if step > 0 else lo
            prev, k = masks[start], start + step
            while (k <= end) if step > 0 else (k >= end):
                answers = cache.engine.predict_candidates(cache.get(k, step, bounds), box=mask_box(prev))
                choice = (
                    answers[min(rank, len(answers) - 1)]
                    if rule == "same"
                    else max(answers, key=lambda a: _iou(a.mask, prev))
                )
                mask = choice.mask
                if settings.growth_limit > 0:
                    mask = mask & ndimage.binary_dilation(prev, iterations=settings.growth_limit)
                if on_frame is not None:
                    on_frame(k)
                # the score rule reads the model's own answer (the other candidates' predicted IoU is lower by
                # design); the area rules the chosen mask
                stop = frame_stop(answers[0].score, int(mask.sum()), int(prev.sum()), settings)
                if stop is None and int(answers[0].mask.sum()) < settings.min_area:  # the model sees no object
                    stop = frame_stop(answers[0].score, int(answers[0].mask.sum()), int(prev.sum()), settings)
                masks[k] = False if stop is not None else mask
                written.add(k)
                ends[step] = k
                if on_written is not None:
                    on_written(k)
                if stop is not None:
                    log.debug("candidate carry %+d stopped at frame %d: %s", step, k, stop.detail)
                    break
                prev, k = mask, k + step
    for step, last in ends.items():  # beyond each direction's end the object is gone
        end = hi if step > 0 else lo
        for u in range(last + step, end + step, step):
            if masks[u].any():
                masks[u] = False
                written.add(u)
                if on_written is not None:
                    on_written(u)
    return written

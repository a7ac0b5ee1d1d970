"""Candidate masks: a SAM-family decoder proposes several masks for an ambiguous prompt and volsam keeps the
first; :meth:`volsam.Session.next_candidate` lets a person step through the others on a prompted slice.

The chosen candidate becomes a mask prompt on that slice (one undoable step, saved in the prompts file) and
the object is re-propagated from it as any correction is (:mod:`volsam.session.correctors`): the neighbours are
prompted with the chosen mask's box and take the model's first answer there. ``benchmarks/bench_candidates.py``
compares this rule with following the chosen rank or the most similar candidate on every slice: on six lesion
cases the pick lifts the key slice (mean Dice 0.835 -> 0.915) but not the 3D result (0.815 either way), and
following the rank through volsam's walk was much worse (0.11-0.56), so the neighbours keep the first answer.
"""

from __future__ import annotations

import numpy as np

from volsam.core.errors import PromptError
from volsam.core.prompts import MaskPrompt, Prompt
from volsam.engines.base import SliceEngine
from volsam.propagation import FrameStack
from volsam.propagation.frames import frames_view
from volsam.propagation.prompts import frame_prompts


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

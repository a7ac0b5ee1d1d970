"""The small typed pieces of an interactive session: objects, changes, and the undo history.

Masks are bool arrays ``[k, j, i]`` on the session's image grid. History entries keep only the region
that an edit changed (its bounding box, before and after), so that undo costs memory in proportion to
the edit, not to the volume.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from volsam.core.prompts import Prompt

Region = tuple[slice, slice, slice]  # [k, j, i] slices of the image array


@dataclass
class SessionObject:
    """One object of a session: its label value, name, the prompts given so far (in order), its mask
    (bool ``[k, j, i]``) and the window (frame pixels ``(y0, y1, x0, x1)``) a slice engine looks at."""

    label: int
    name: str
    prompts: list[Prompt] = field(default_factory=list)
    mask: np.ndarray | None = None
    window: tuple[int, int, int, int] | None = None
    order: int = 0  # when it was added (overlap policy: later objects are drawn over earlier ones)


@dataclass(frozen=True)
class Change:
    """What an edit changed, so that a viewer redraws only that.

    Attributes:
        labels: the objects (label values) whose voxels changed or that were added / removed.
        frames: first and last changed slice along the session's axis (inclusive), None when no voxel changed.
        box: ``(i0, j0, k0, i1, j1, k1)`` inclusive voxel box around every changed voxel, None when none did.
        frames_encoded: frames the engine had to encode for this edit (0 when every one was cached).
        seconds: how long the edit took (s).
        first_frame_seconds: for a correction, how long until the corrected slice's new mask was ready (s;
            what a viewer could show first), None otherwise.
    """

    labels: tuple[int, ...] = ()
    frames: tuple[int, int] | None = None
    box: tuple[int, int, int, int, int, int] | None = None
    frames_encoded: int = 0
    seconds: float = 0.0
    first_frame_seconds: float | None = None

    @property
    def empty(self) -> bool:
        return self.box is None

    @staticmethod
    def of(diff: np.ndarray, labels: tuple[int, ...], axis: int, frames_encoded: int = 0) -> Change:
        """The change whose voxels are ``diff`` (bool ``[k, j, i]``); ``axis`` is the session's (0=i, 1=j, 2=k)."""
        region = bounding_region(diff)
        if region is None:
            return Change(labels, None, None, frames_encoded)
        k, j, i = region
        box = (i.start, j.start, k.start, i.stop - 1, j.stop - 1, k.stop - 1)
        lo, hi = box[axis], box[axis + 3]
        return Change(labels, (lo, hi), box, frames_encoded)

    def merged(self, other: Change) -> Change:
        """The union of two changes."""
        labels = tuple(dict.fromkeys(self.labels + other.labels))
        encoded = self.frames_encoded + other.frames_encoded
        if self.box is None or other.box is None:
            pick = self if other.box is None else other
            return Change(labels, pick.frames, pick.box, encoded)
        box = tuple(min(a, b) for a, b in zip(self.box[:3], other.box[:3])) + tuple(
            max(a, b) for a, b in zip(self.box[3:], other.box[3:])
        )
        frames = (min(self.frames[0], other.frames[0]), max(self.frames[1], other.frames[1]))  # type: ignore[index]
        return Change(labels, frames, box, encoded)  # type: ignore[arg-type]


def bounding_region(mask: np.ndarray) -> Region | None:
    """The smallest ``[k, j, i]`` slices holding every True voxel of ``mask``; None when there is none."""
    if not mask.any():
        return None
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return (out[0], out[1], out[2])


@dataclass(frozen=True)
class ObjectRecord:
    """An object's name, prompts and window at one moment (its mask lives in the edit's region crops)."""

    name: str
    prompts: tuple[Prompt, ...]
    window: tuple[int, int, int, int] | None
    order: int


@dataclass(frozen=True)
class Edit:
    """One undoable step for one object: its record before and after (None = the object did not exist)
    and the mask inside ``region`` before and after."""

    label: int
    before: ObjectRecord | None
    after: ObjectRecord | None
    region: Region | None
    mask_before: np.ndarray | None
    mask_after: np.ndarray | None


class History:
    """Bounded undo / redo stacks of steps (a step is the list of edits one call made)."""

    def __init__(self, limit: int = 32):
        self.limit = max(1, int(limit))
        self._undo: deque[list[Edit]] = deque(maxlen=self.limit)
        self._redo: list[list[Edit]] = []

    def push(self, step: list[Edit]) -> None:
        if step:
            self._undo.append(step)
            self._redo.clear()

    def pop_undo(self) -> list[Edit] | None:
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        return step

    def pop_redo(self) -> list[Edit] | None:
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        return step

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

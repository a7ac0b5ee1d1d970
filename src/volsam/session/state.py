"""The small typed pieces of an interactive session: objects and the undo history (and, re-exported from
:mod:`volsam.core.changes`, the :class:`Change` an edit reports).

Masks are bool arrays ``[k, j, i]`` on the session's image grid. History entries keep only the region
that an edit changed (its bounding box, before and after), so that undo costs memory in proportion to
the edit, not to the volume.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from volsam.core.changes import Change, Region, bounding_region
from volsam.core.prompts import Prompt

__all__ = ["Change", "Edit", "History", "ObjectRecord", "Region", "SessionObject", "bounding_region"]


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

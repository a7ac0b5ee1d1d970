"""What an edit changed (:class:`Change`), as the session reports it and as the server and client send it.

Boxes are voxel indices ``(i0, j0, k0, i1, j1, k1)``, inclusive; regions are ``[k, j, i]`` slices of the
image array. numpy only, so the torch-free client shares it with the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Region = tuple[slice, slice, slice]  # [k, j, i] slices of the image array


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the server returns: ``labels``, ``frames``, ``box`` (lists or null), ``frames_encoded``,
        ``seconds``, ``first_frame_seconds`` (null when not a correction)."""
        return {
            "labels": [int(v) for v in self.labels],
            "frames": _ints(self.frames),
            "box": _ints(self.box),
            "frames_encoded": int(self.frames_encoded),
            "seconds": float(self.seconds),
            "first_frame_seconds": None if self.first_frame_seconds is None else float(self.first_frame_seconds),
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Change:
        """The change of :meth:`to_dict`'s JSON form."""
        return Change(
            labels=tuple(int(v) for v in data["labels"]),
            frames=_tuple(data["frames"]),  # type: ignore[arg-type]
            box=_tuple(data["box"]),  # type: ignore[arg-type]
            frames_encoded=int(data["frames_encoded"]),
            seconds=float(data["seconds"]),
            first_frame_seconds=None if data["first_frame_seconds"] is None else float(data["first_frame_seconds"]),
        )


def _ints(values: tuple[int, ...] | None) -> list[int] | None:
    return None if values is None else [int(v) for v in values]


def _tuple(values: list[int] | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(int(v) for v in values)


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

"""Prompt types, in voxel indices of the image as read (ITK "IJK", as 3D Slicer and ITK-SNAP show them).

* :class:`Box2D` -- a box on one slice: in-plane corners ``(u0, v0, u1, v1)`` inclusive plus the slice index
  along the propagation axis. For the default axis k, ``(u, v) = (i, j)``; for axis j it is ``(i, k)`` and for
  axis i it is ``(j, k)`` (the two other index axes, in i, j, k order).
* :class:`Box3D` -- ``(i0, j0, k0, i1, j1, k1)`` inclusive (the CVPR-challenge box convention).
* :class:`Point` -- ``(i, j, k)``, positive (object) or negative (background).
* :class:`MaskPrompt` -- a label array ``[k, j, i]`` on the image grid; non-zero voxels are the object.

Prompts are validated against the image size (``validate``), raising :class:`PromptError` that echoes the
bad value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from volsam.core.errors import PromptError

AXIS_NAMES = ("i", "j", "k")


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise PromptError(f"{name} must be an integer voxel index, got {value!r}")
    return int(value)


def in_plane_axes(axis: int) -> tuple[int, int]:
    """Index axes (u, v) of a slice taken along index axis ``axis`` (0=i, 1=j, 2=k); u < v."""
    if axis not in (0, 1, 2):
        raise PromptError(f"axis must be 0 (i), 1 (j) or 2 (k), got {axis!r}")
    u, v = (a for a in (0, 1, 2) if a != axis)
    return u, v


@dataclass(frozen=True)
class Box2D:
    """A box on slice ``slice`` along the propagation axis; corners inclusive, in-plane voxel indices."""

    u0: int
    v0: int
    u1: int
    v1: int
    slice: int

    def __post_init__(self) -> None:
        for name in ("u0", "v0", "u1", "v1", "slice"):
            object.__setattr__(self, name, _check_int(name, getattr(self, name)))
        if self.u1 < self.u0 or self.v1 < self.v0:
            raise PromptError(
                f"empty box {self.u0},{self.v0},{self.u1},{self.v1}: the second corner must not be before the first"
            )

    def validate(self, size_ijk: tuple[int, int, int], axis: int = 2) -> None:
        """Raise :class:`PromptError` unless the box and slice lie inside an image of ``size_ijk``."""
        u, v = in_plane_axes(axis)
        nu, nv, ns = size_ijk[u], size_ijk[v], size_ijk[axis]
        if not 0 <= self.slice < ns:
            raise PromptError(f"slice {self.slice} is outside the image (axis {AXIS_NAMES[axis]}: 0..{ns - 1})")
        if not (0 <= self.u0 <= self.u1 < nu and 0 <= self.v0 <= self.v1 < nv):
            raise PromptError(
                f"box {self.u0},{self.v0},{self.u1},{self.v1} is outside the slice "
                f"({AXIS_NAMES[u]}: 0..{nu - 1}, {AXIS_NAMES[v]}: 0..{nv - 1})"
            )


@dataclass(frozen=True)
class Box3D:
    """A 3D box ``(i0, j0, k0, i1, j1, k1)``, corners inclusive."""

    i0: int
    j0: int
    k0: int
    i1: int
    j1: int
    k1: int

    def __post_init__(self) -> None:
        for name in ("i0", "j0", "k0", "i1", "j1", "k1"):
            object.__setattr__(self, name, _check_int(name, getattr(self, name)))
        if self.i1 < self.i0 or self.j1 < self.j0 or self.k1 < self.k0:
            raise PromptError(f"empty 3D box {self.as_tuple()}: the second corner must not be before the first")

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (self.i0, self.j0, self.k0, self.i1, self.j1, self.k1)

    def lower(self) -> tuple[int, int, int]:
        return (self.i0, self.j0, self.k0)

    def upper(self) -> tuple[int, int, int]:
        return (self.i1, self.j1, self.k1)

    def validate(self, size_ijk: tuple[int, int, int]) -> None:
        if not all(0 <= lo <= hi < n for lo, hi, n in zip(self.lower(), self.upper(), size_ijk)):
            raise PromptError(
                f"3D box {','.join(map(str, self.as_tuple()))} is outside the image (size i,j,k = "
                f"{size_ijk[0]},{size_ijk[1]},{size_ijk[2]})"
            )

    def middle_box(self, axis: int = 2) -> Box2D:
        """The 2D box on the middle slice of the range along ``axis`` (the challenge baseline's start)."""
        lo, hi = self.lower(), self.upper()
        u, v = in_plane_axes(axis)
        return Box2D(lo[u], lo[v], hi[u], hi[v], slice=(lo[axis] + hi[axis]) // 2)


@dataclass(frozen=True)
class Point:
    """A click at voxel ``(i, j, k)``; ``positive`` False marks background."""

    i: int
    j: int
    k: int
    positive: bool = True

    def __post_init__(self) -> None:
        for name in ("i", "j", "k"):
            object.__setattr__(self, name, _check_int(name, getattr(self, name)))

    def ijk(self) -> tuple[int, int, int]:
        return (self.i, self.j, self.k)

    def validate(self, size_ijk: tuple[int, int, int]) -> None:
        if not all(0 <= c < n for c, n in zip(self.ijk(), size_ijk)):
            raise PromptError(
                f"point {self.i},{self.j},{self.k} is outside the image (size i,j,k = "
                f"{size_ijk[0]},{size_ijk[1]},{size_ijk[2]})"
            )


@dataclass(frozen=True, eq=False)
class MaskPrompt:
    """A mask on the image grid, array ``[k, j, i]``; voxels equal to ``label`` (or any non-zero voxel when
    ``label`` is None) are the object."""

    array: np.ndarray
    label: int | None = None

    def binary(self) -> np.ndarray:
        a = np.asarray(self.array)
        return a != 0 if self.label is None else a == self.label

    def validate(self, size_ijk: tuple[int, int, int]) -> None:
        expected = (size_ijk[2], size_ijk[1], size_ijk[0])
        if tuple(np.shape(self.array)) != expected:
            raise PromptError(f"mask shape {np.shape(self.array)} [k,j,i] does not match the image {expected}")
        if not self.binary().any():
            raise PromptError("mask prompt is empty" + ("" if self.label is None else f" for label {self.label}"))


Prompt = Box2D | Box3D | Point | MaskPrompt

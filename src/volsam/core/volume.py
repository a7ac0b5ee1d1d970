"""The image object: voxels plus the geometry that places them in the patient (ITK/LPS conventions).

Axis order: ``Volume.array`` is indexed ``[k, j, i]`` (SimpleITK's ``GetArrayFromImage`` order), so
``array[k]`` is one slice with rows = j and columns = i. Geometry follows ITK: ``spacing`` is (i, j, k) in mm,
``origin`` is the LPS position (mm) of voxel (0, 0, 0), and ``direction`` is the 3x3 matrix whose columns are
the LPS directions of the i, j and k axes. World position of index (i, j, k):
``origin + direction @ (spacing * (i, j, k))``.

A 2D image (PNG, JPEG, TIFF, BMP, a single DICOM frame, a CVPR 2024 2D ``.npz``) is a Volume with one slice
(``nk == 1``): the same geometry, prompts, segmentation and writers. Colour is carried beside the intensities:
``array`` holds the grey every intensity rule works on (normalisation, appearance, overlays, metrics) and
``colour``, when the image has colour, the RGB picture ``(nk, nj, ni, 3)`` uint8 as read; engines that take
RGB (all of volsam's) are given ``colour`` frames (:class:`volsam.propagation.FrameStack`). The grey of a
colour image is its ITU-R BT.601 luma (``0.299 R + 0.587 G + 0.114 B``, rounded), the rule videos use.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from volsam.core.errors import InputError

_LPS_NAMES = (("R", "L"), ("A", "P"), ("I", "S"))  # negative, positive end of the L, P, S world axes
LUMA_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 weights of R, G, B


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 ``(..., 3)`` RGB -> uint8 ``(...)`` BT.601 luma (rounded): the grey of a colour image or video."""
    return np.rint(np.asarray(rgb).astype(np.float32) @ LUMA_BT601).clip(0, 255).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image (or label map) with its geometry.

    Attributes:
        array: voxels, shape (nk, nj, ni), any numeric dtype.
        spacing: voxel size along i, j, k in mm.
        origin: LPS position of voxel (0, 0, 0) in mm.
        direction: 3x3 direction cosines; column c is the LPS direction of index axis c (i, j, k).
        meta: free-form facts read with the image (modality, series UID, source path...).
        colour: the RGB picture of a colour image, ``(nk, nj, ni, 3)`` uint8 (None: grey); ``array`` is then
            its BT.601 luma. Label maps never carry one (:meth:`with_array` drops it).
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    meta: dict[str, Any] = field(default_factory=dict)
    colour: np.ndarray | None = None

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise InputError(f"a Volume needs a 3D array [k, j, i], got shape {array.shape}")
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise InputError(f"spacing must be three positive numbers (mm), got {self.spacing}")
        origin = tuple(float(o) for o in self.origin)
        if len(origin) != 3 or not all(np.isfinite(o) for o in origin):
            raise InputError(f"origin must be three finite numbers (mm), got {self.origin}")
        direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if not np.all(np.isfinite(direction)) or abs(abs(np.linalg.det(direction)) - 1.0) > 1e-3:
            raise InputError(f"direction must be a 3x3 rotation/reflection matrix, got {direction.tolist()}")
        if self.colour is not None:
            colour = np.asarray(self.colour)
            if colour.shape != (*array.shape, 3) or colour.dtype != np.uint8:
                raise InputError(
                    f"colour must be uint8 RGB of shape {(*array.shape, 3)}, got {colour.dtype} {colour.shape}"
                )
            object.__setattr__(self, "colour", colour)
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    # -- shape -------------------------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int, int]:
        """Number of voxels along (i, j, k)."""
        nk, nj, ni = self.array.shape
        return (ni, nj, nk)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (nk, nj, ni)."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    # -- geometry ----------------------------------------------------------------------------------------
    def index_to_world(self, ijk: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """LPS position (mm) of continuous index (i, j, k); accepts (..., 3) arrays."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return np.asarray(self.origin) + (ijk * np.asarray(self.spacing)) @ self.direction.T

    def world_to_index(self, lps: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous index (i, j, k) of an LPS position (mm); accepts (..., 3) arrays."""
        lps = np.asarray(lps, dtype=np.float64)
        return ((lps - np.asarray(self.origin)) @ np.linalg.inv(self.direction).T) / np.asarray(self.spacing)

    def axis_names(self) -> tuple[str, str, str]:
        """Anatomical direction each index axis (i, j, k) points to, e.g. ``("L", "P", "S")``."""
        names = []
        for c in range(3):
            col = self.direction[:, c]
            w = int(np.argmax(np.abs(col)))
            names.append(_LPS_NAMES[w][1] if col[w] > 0 else _LPS_NAMES[w][0])
        return (names[0], names[1], names[2])

    def slice_plane(self, axis: int = 2) -> str:
        """Name of the plane that slices along index axis ``axis`` (0=i, 1=j, 2=k) show."""
        w = int(np.argmax(np.abs(self.direction[:, axis])))
        return ("sagittal", "coronal", "axial")[w]

    def same_grid(self, other: Volume, tol: float = 1e-4) -> bool:
        """True when ``other`` has the same size, spacing, origin and direction (within ``tol``)."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def with_array(self, array: np.ndarray, **meta: Any) -> Volume:
        """A volume on the same grid holding ``array`` (same shape required; no ``colour``)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise InputError(f"array shape {array.shape} does not match the grid {self.array.shape}")
        return replace(self, array=array, colour=None, meta={**self.meta, **meta})

    @property
    def is_2d(self) -> bool:
        """True for a 2D image: one slice along k."""
        return self.array.shape[0] == 1

    def __repr__(self) -> str:
        return (
            f"Volume(size(i,j,k)={self.size}, spacing={tuple(round(s, 4) for s in self.spacing)}, "
            f"axes={''.join(self.axis_names())}, dtype={self.array.dtype}{', RGB' if self.colour is not None else ''})"
        )

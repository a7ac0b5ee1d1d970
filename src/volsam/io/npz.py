"""CVPR-challenge ``.npz`` files ("MedSAM on a Laptop" 2024, "Foundation Models for Interactive 3D
Biomedical Image Segmentation" 2025).

Layout: ``imgs`` (D, H, W) -- the array ``[k, j, i]`` as is --, ``spacing`` (3 numbers, mm), optionally
``gts``, ``boxes``, ``clicks``...; predictions are saved under ``segs`` (D, H, W).

2D files (CVPR 2024 ``2DBox_<Modality>_...``): ``imgs`` (H, W, 3) uint8 RGB (or (H, W) grey), ``boxes``
(N, 4) ``[x_min, y_min, x_max, y_max]`` inclusive pixels, optional ``gts`` (H, W); predictions ``segs`` (H, W).
They read as a Volume with one slice (colour in ``Volume.colour``, its BT.601 luma in ``array``,
``meta["display_values"]``); :func:`npz_boxes` gives the boxes; volsam writes ``segs`` of a 2D image as
(H, W). The modality named by the file's prefix is ``meta["cvpr_modality"]`` (never used to normalise).

volsam's own ``.npz`` label maps (``volsam segment ... -o seg.npz``) hold ``segs`` and ``spacing`` as the
challenges expect, plus what puts them back on the input's grid: ``origin`` (3 numbers, mm, LPS, the world
position of voxel (0, 0, 0)), ``direction`` (3x3, ITK: columns are the i, j, k axes in LPS) and
``spacing_order`` (the order ``spacing`` is written in). A file without ``imgs`` is read from ``segs``.

Spacing order. The challenge files are documented and scored as (z, y, x), the order of the array axes:
the official scoring (``CVPR25_iter_eval.py``) passes ``spacing`` unchanged as ``spacing_mm`` of
``compute_surface_distances`` on the (D, H, W) arrays. Beware that MedSAM's own ``pre_CT_MR.py`` stores
``img_sitk.GetSpacing()``, which is (x, y, z), without reordering (bowang-lab/MedSAM issue #401): files
made with that script have their spacing reversed. volsam reads (z, y, x) by default; pass
``spacing_order="xyz"`` for such files. The order used is recorded in ``meta["spacing_order"]``.
The challenges' files hold no origin or direction: origin 0, identity direction; modality unknown.

Before an array is inflated, the shape and dtype its ``.npy`` header declares are checked (``max_bytes``:
ImageTooLarge; ``spacing`` must be a handful of numbers), so a small ``.npz`` cannot make volsam allocate
gigabytes.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from volsam.core.errors import InputError
from volsam.core.volume import Volume, luma
from volsam.io.archive import check_decoded

SPACING_ORDERS = ("zyx", "xyz")


def _spacing_ijk(raw: np.ndarray | None, order: str, path: Path) -> tuple[float, float, float]:
    if raw is None:
        return (1.0, 1.0, 1.0)
    values = np.asarray(raw, dtype=np.float64).ravel()
    if values.size not in (2, 3) or not np.all(np.isfinite(values)) or not np.all(values > 0):
        raise InputError(f"{path}: 'spacing' must hold 2 or 3 positive numbers (mm), got {values.tolist()}")
    if values.size == 2:  # a 2D image: (y, x) or (x, y)
        sx, sy = (values[1], values[0]) if order == "zyx" else (values[0], values[1])
        return (float(sx), float(sy), 1.0)
    if order == "zyx":
        values = values[::-1]
    return (float(values[0]), float(values[1]), float(values[2]))


_MAX_SPACING_BYTES = 1024
_MAX_BOXES_BYTES = 1 << 20


def declared_nbytes(zf: zipfile.ZipFile, key: str) -> int | None:
    """Bytes of the array ``key`` of an open ``.npz`` as its ``.npy`` header declares them (None: no such key).
    Reads the member's header only; ValueError for a header numpy cannot parse."""
    name = f"{key}.npy"
    if name not in zf.namelist():
        return None
    with zf.open(name) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    count = 1
    for n in shape:
        count *= int(n)
    return count * dtype.itemsize


def _check_sizes(path: Path, max_bytes: int | None) -> None:
    with zipfile.ZipFile(path) as zf:
        for key in ("imgs", "segs"):
            declared = declared_nbytes(zf, key)
            if declared is not None:
                check_decoded(declared, max_bytes, path)
        spacing = declared_nbytes(zf, "spacing")
        if spacing is not None and spacing > _MAX_SPACING_BYTES:
            raise InputError(f"{path}: 'spacing' declares {spacing} bytes; it must hold 2 or 3 numbers")


def read_npz(path: Path, *, spacing_order: str = "zyx", max_bytes: int | None = None) -> Volume:
    """Read ``imgs`` of a CVPR-challenge ``.npz`` as a Volume (see the module notes on spacing order and on
    ``max_bytes``, the largest ``imgs`` accepted, as declared; None: no limit)."""
    if spacing_order not in SPACING_ORDERS:
        raise InputError(f"spacing_order must be one of {SPACING_ORDERS}, got {spacing_order!r}")
    try:
        _check_sizes(path, max_bytes)
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            key = "imgs" if "imgs" in keys else "segs" if "segs" in keys else None
            if key is None:
                raise InputError(
                    f"{path}: no 'imgs' (or 'segs') array in this .npz (keys: {', '.join(keys) or 'none'})"
                )
            imgs = np.asarray(data[key])
            spacing = np.asarray(data["spacing"]) if "spacing" in keys else None
            grid = {k: np.asarray(data[k]) for k in ("origin", "direction", "spacing_order") if k in keys}
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError, NotImplementedError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from exc
    colour = None
    if imgs.ndim == 3 and imgs.shape[-1] in (3, 4) and min(imgs.shape[:2]) > 16:  # a 2D colour image
        if imgs.dtype != np.uint8:
            raise InputError(f"{path}: a 2D colour 'imgs' {imgs.shape} must be uint8, got {imgs.dtype}")
        rgb = imgs[..., :3]
        same = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
        colour = None if same else np.ascontiguousarray(rgb[None])
        imgs = np.ascontiguousarray(rgb[None, ..., 0]) if same else luma(colour)
    elif imgs.ndim == 2:
        imgs = imgs[None]
    if imgs.ndim != 3 or imgs.size == 0:
        raise InputError(f"{path}: 'imgs' must be a (D, H, W) array, got shape {imgs.shape}")
    if imgs.dtype.kind not in "biuf":
        raise InputError(f"{path}: 'imgs' has non-numeric dtype {imgs.dtype}")
    if "spacing_order" in grid:
        spacing_order = str(grid["spacing_order"])
        if spacing_order not in SPACING_ORDERS:
            raise InputError(f"{path}: 'spacing_order' must be one of {SPACING_ORDERS}, got {spacing_order!r}")
    origin, direction = _grid(grid, path)
    meta = {
        "modality": None,
        "source": str(path),
        "format": "npz",
        "series_uid": None,
        "series_description": None,
        "pixel_type": imgs.dtype.name,
        "spacing_order": spacing_order,
        "spacing_in_file": spacing is not None,
        "npz_key": key,
        "cvpr_modality": cvpr_modality(path.name),
    }
    if imgs.shape[0] == 1 and key == "imgs":
        meta["display_values"] = imgs.dtype == np.uint8
        meta["rgb"] = colour is not None
    spacing_ijk = _spacing_ijk(spacing, spacing_order, path)
    return Volume(imgs, spacing=spacing_ijk, origin=origin, direction=direction, meta=meta, colour=colour)


def cvpr_modality(name: str) -> str | None:
    """The modality a CVPR challenge file name starts with (``2DBox_Dermoscopy_0001.npz`` -> ``Dermoscopy``,
    ``3DBox_CT_0001.npz`` -> ``CT``, ``CT_Abd_...`` -> ``CT``), None when the name has no such prefix."""
    parts = Path(name).name.split("_")
    if len(parts) >= 3 and parts[0] in ("2DBox", "3DBox", "2D", "3D"):
        return parts[1] or None
    return parts[0] if len(parts) >= 2 and parts[0] in ("CT", "MR", "PET", "US", "Microscopy") else None


def npz_boxes(path: str | Path, volume: Volume | None = None) -> list[tuple[int, ...]]:
    """The ``boxes`` of a CVPR ``.npz``, one row per object as int tuples: (N, 4) ``[x_min, y_min, x_max,
    y_max]`` for 2D files, (N, 6) ``[x_min, y_min, z_min, x_max, y_max, z_max]`` for 3D ones (inclusive
    voxels). ``[]`` when the file has none; InputError for pickled (CVPR 2025) or malformed boxes, and, with
    ``volume`` (the image read from the file), for a row outside it."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            declared = declared_nbytes(zf, "boxes")
        if declared is None:
            return []
        if declared > _MAX_BOXES_BYTES:
            raise InputError(f"{path}: 'boxes' declares {declared} bytes; too many boxes")
        with np.load(path, allow_pickle=False) as data:
            raw = np.asarray(data["boxes"])
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(f"{path}: 'boxes' is not a plain numeric array (pickled boxes are never loaded)") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from exc
    if raw.dtype.kind not in "iuf" or raw.ndim != 2 or raw.shape[1] not in (4, 6) or not np.all(np.isfinite(raw)):
        raise InputError(f"{path}: 'boxes' must be an (N, 4) or (N, 6) array of numbers, got {raw.dtype} {raw.shape}")
    rows = [tuple(int(round(float(v))) for v in row) for row in raw]
    if volume is not None:
        width, height, depth = volume.size
        for row in rows:
            half = len(row) // 2
            low, high, size = row[:half], row[half:], (width, height, depth)[:half]
            if not all(0 <= lo <= hi < n for lo, hi, n in zip(low, high, size)):
                raise InputError(f"{path}: box {list(row)} lies outside the image (size {list(size)})")
    return rows


def _grid(grid: dict[str, np.ndarray], path: Path) -> tuple[tuple[float, float, float], np.ndarray]:
    """``origin`` and ``direction`` from a volsam ``.npz`` (defaults: 0 and identity)."""
    origin = np.asarray(grid.get("origin", np.zeros(3)), dtype=np.float64).ravel()
    direction = np.asarray(grid.get("direction", np.eye(3)), dtype=np.float64)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise InputError(f"{path}: 'origin' must hold 3 finite numbers (mm), got shape {origin.shape}")
    if direction.shape != (3, 3) or not np.all(np.isfinite(direction)):
        raise InputError(f"{path}: 'direction' must be a finite 3x3 matrix, got shape {direction.shape}")
    return (float(origin[0]), float(origin[1]), float(origin[2])), direction


def save_npz(volume: Volume, array: np.ndarray, fh: BinaryIO, *, key: str = "segs") -> None:
    """Write ``array`` (on ``volume``'s grid) under ``key`` with ``spacing`` in the order ``volume`` was
    read with (``meta["spacing_order"]``, default (z, y, x)), and the grid's ``origin``, ``direction`` and
    ``spacing_order`` (so that :func:`read_npz` puts it back on that grid), compressed, to the open file ``fh``.
    A one-slice grid (a 2D image) is written as (H, W), the CVPR 2024 2D convention."""
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    order = volume.meta.get("spacing_order", "zyx")
    spacing = np.asarray(volume.spacing[::-1] if order == "zyx" else volume.spacing, dtype=np.float64)
    grid = {
        "origin": np.asarray(volume.origin, dtype=np.float64),
        "direction": np.asarray(volume.direction, dtype=np.float64),
        "spacing_order": np.asarray(order),
    }
    np.savez_compressed(fh, **{key: array, "spacing": spacing, **grid})

"""``write_volume``: NIfTI / NRRD / MetaImage / CVPR ``.npz``, exactly on the volume's grid, atomically.

* Grid: size, spacing, origin and direction are written as they are (NIfTI keeps them as float32 in its
  qform/sform, so they come back within ~1e-5 mm; NRRD and MetaImage keep full precision).
* Label maps (``label=True``, or a bool array when ``label`` is None): integer-valued, >= 0, stored as
  uint8 when the largest id is <= 255, else uint16; ids above 65535, negative ids or non-integer values
  raise :class:`OutputError`. Label maps are compressed (NRRD, MetaImage) -- NIfTI follows its name.
* Atomic: the data go to a hidden temporary file in the target folder (``.NAME.tmp-XXXXXXXX.EXT``, with
  the real extension so the right writer is picked), then ``os.replace`` puts it in place; on failure
  the temporary file is removed and an existing file at the target is left untouched.
* A missing parent folder is created; anything that cannot be written raises :class:`OutputError`.

``write_labels`` is the entry point for label maps: the image formats above, or a DICOM-SEG (``.dcm`` or
``fmt="dicom-seg"``), which needs the source image read from DICOM (:mod:`volsam.io.dicom_seg`). Output
formats and label arrays are resolved by :mod:`volsam.io.labels` (re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from volsam.core.errors import OutputError
from volsam.core.volume import Volume
from volsam.io.atomic import atomic_target
from volsam.io.destinations import Destination, check_destinations, make_parent
from volsam.io.itk import WRITABLE_DTYPES, itk_reason, volume_to_image
from volsam.io.labels import DICOM_SEG, LABEL_FORMATS, label_array, label_output_format, output_format
from volsam.io.npz import save_npz

log = logging.getLogger(__name__)

__all__ = [  # label_array and the format names live in volsam.io.labels; kept importable from here
    "DICOM_SEG",
    "LABEL_FORMATS",
    "label_array",
    "label_output_format",
    "output_format",
    "write_labels",
    "write_volume",
]


def write_labels(
    labelmap: Volume,
    path: str | Path,
    *,
    source: Volume | None = None,
    fmt: str | None = None,
    names: Mapping[int, str] | None = None,
    **seg_options: Any,
) -> Path:
    """Write a label map: image formats through :func:`write_volume` (``label=True``), DICOM-SEG through
    :func:`volsam.io.dicom_seg.write_dicom_seg` with ``source`` (the DICOM image it was made from), the
    object ``names`` and ``seg_options`` (engine, model, codes). Returns the path written."""
    if label_output_format(path, fmt) != DICOM_SEG:
        return write_volume(labelmap, path, label=True)
    from volsam.io.dicom_seg import write_dicom_seg  # highdicom loads only when a SEG is written

    if source is None:
        raise OutputError(f"{path}: a DICOM-SEG needs the DICOM image the label map was made from")
    return write_dicom_seg(labelmap, source, path, names=names, **seg_options)


def _image_array(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype.name not in WRITABLE_DTYPES:
        raise OutputError(f"{path}: cannot write voxels of dtype {array.dtype}")
    return array


def _write(volume: Volume, array: np.ndarray, fmt: str, target: Path, compress: bool) -> None:
    """Write ``array`` on ``volume``'s grid to ``target`` (no atomicity here)."""
    if fmt == "npz":
        with open(target, "wb") as fh:
            save_npz(volume, array, fh)
        return
    try:
        sitk.WriteImage(volume_to_image(volume, array), str(target), useCompression=compress)
    except RuntimeError as exc:
        raise OutputError(f"{target}: cannot write ({itk_reason(exc)})") from exc


def write_volume(volume: Volume, path: str | Path, *, label: bool | None = None) -> Path:
    """Write ``volume`` to ``path`` (format from the extension: .nii.gz, .nii, .nrrd, .mha, .npz).

    Args:
        volume: the image or label map; written exactly on its grid.
        path: output file; its folder is created when missing.
        label: store as a label map (uint8/uint16); None means "when the array is bool".
            A ``.npz`` output holds the array under ``segs`` (D, H, W) plus ``spacing``, as the CVPR
            challenges expect.

    Returns:
        The path written.

    Raises:
        OutputError: unknown extension, bad label values, unwritable location, or ``path`` is the file (or
            inside the folder) the volume was read from (``meta["source"]``): an input is never overwritten.
    """
    path = Path(path)
    fmt, suffix = output_format(path)
    is_label = (volume.array.dtype == bool) if label is None else bool(label)
    array = label_array(volume.array, path) if is_label else _image_array(volume.array, path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder")
    what = "label map" if is_label else "image"
    check_destinations([Destination(path, what)], [volume.meta.get("source")])
    make_parent(path)
    with atomic_target(path, suffix) as temp:
        _write(volume, array, fmt, temp, compress=is_label and fmt in ("nrrd", "metaimage"))
    log.debug("wrote %s (%s, %s)", path, fmt, array.dtype)
    return path

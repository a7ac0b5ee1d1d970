"""What every label-map output shares: the label array type, the label colours, and the output formats.

A leaf of :mod:`volsam.io` (numpy and core only): :mod:`volsam.io.writers`, :mod:`volsam.io.dicom_seg`,
:mod:`volsam.io.overlay` and :mod:`volsam.io.video_out` import it, it imports none of them.

* :func:`label_array` -- a label map as the smallest unsigned type (uint8 / uint16), or OutputError.
* :data:`PALETTE` / :func:`colour_of` -- the one label palette (sRGB, label 1 first, cycled): the web page's
  (``server/static/app.js``), the overlay PNGs' and videos', and the DICOM-SEG's recommended display colours.
* :func:`output_format` / :func:`label_output_format` -- the format an output path (and ``--format``) asks for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from volsam.core.errors import OutputError

PALETTE: tuple[tuple[int, int, int], ...] = (  # sRGB, the web page's label colours (label 1 first)
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)

# output suffix -> format; longest first
SUFFIXES = {".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd", ".mha": "metaimage", ".npz": "npz"}
DICOM_SEG = "dicom-seg"
LABEL_FORMATS = ("auto", DICOM_SEG)


def colour_of(label: int) -> tuple[int, int, int]:
    """The sRGB colour (0..255) of label id ``label`` (>= 1; the palette repeats after its last colour)."""
    return PALETTE[(int(label) - 1) % len(PALETTE)]


def label_array(array: np.ndarray, path: Path) -> np.ndarray:
    """``array`` as the smallest unsigned label type (uint8 / uint16), or OutputError (``path`` names the output)."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.kind not in "iuf":
        raise OutputError(f"{path}: a label map needs integer values, got dtype {array.dtype}")
    if array.size == 0:
        return array.astype(np.uint8)
    if array.dtype.kind == "f" and (not np.all(np.isfinite(array)) or np.any(array != np.round(array))):
        raise OutputError(f"{path}: a label map needs integer values; this float array has fractions or NaN")
    low, high = array.min(), array.max()
    if low < 0:
        raise OutputError(f"{path}: label ids must be >= 0, found {low}")
    if high > 65535:
        raise OutputError(f"{path}: label ids must be <= 65535 (uint16), found {high}")
    return array.astype(np.uint8 if high <= 255 else np.uint16)


def output_format(path: Path) -> tuple[str, str]:
    """(format, suffix) of an image output path; OutputError for anything else."""
    name = path.name.lower()
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt, path.name[-len(suffix) :]
    if name.endswith(".dcm"):
        raise OutputError(
            f"{path}: images go to .nii.gz, .nii, .nrrd, .mha or .npz; .dcm is a DICOM-SEG of a label map, "
            "written by write_labels with the DICOM source image"
        )
    raise OutputError(f"{path}: cannot write this file type; use .nii.gz, .nii, .nrrd, .mha or .npz")


def label_output_format(path: str | Path, fmt: str | None = None) -> str:
    """The format a label map goes to: ``dicom-seg`` (a ``.dcm`` name, or ``fmt="dicom-seg"``) or the
    image format of the extension (:func:`output_format`); ``fmt`` may also name that image format (as this
    function returns it). OutputError for unknown or conflicting ones."""
    path = Path(path)
    fmt = fmt or "auto"
    if fmt not in LABEL_FORMATS and fmt not in SUFFIXES.values():
        raise OutputError(f"unknown output format {fmt!r}; use one of {', '.join(LABEL_FORMATS)}")
    if path.name.lower().endswith(".dcm"):
        return DICOM_SEG
    if fmt == DICOM_SEG:
        if any(path.name.lower().endswith(s) for s in SUFFIXES):
            raise OutputError(
                f"{path}: --format {DICOM_SEG} writes a DICOM file; name it .dcm (or leave the suffix out)"
            )
        return DICOM_SEG
    found = output_format(path)[0]
    if fmt not in ("auto", found):
        raise OutputError(f"{path}: the name says {found}, the format asked is {fmt}")
    return found

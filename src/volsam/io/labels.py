"""What every label-map output shares: the label array type, the label colours, and the output formats.

A leaf of :mod:`volsam.io` (numpy and core only): :mod:`volsam.io.writers`, :mod:`volsam.io.dicom_seg`,
:mod:`volsam.io.overlay` and :mod:`volsam.io.video_out` import it, it imports none of them.

* :func:`label_array` -- a label map as the smallest unsigned type (uint8 / uint16), or OutputError.
* :data:`PALETTE` / :func:`colour_of` -- the one label palette (sRGB, label 1 first, cycled): the web page's
  (``server/static/app.js``), the overlay PNGs' and videos', and the DICOM-SEG's recommended display colours.
* :func:`output_format` / :func:`label_output_format` -- the format an output path (and ``--format``) asks for.
* :func:`slicer_segment_fields` -- the header fields of 3D Slicer's segmentation file (``.seg.nrrd``): one
  segment per object with its name, palette colour, label value and extent.
"""

from __future__ import annotations

from collections.abc import Mapping
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

SLICER_SEG = "slicer-seg"  # 3D Slicer's segmentation file: a label map NRRD whose header names the segments
# output suffix -> format; a suffix is matched before any shorter one it ends with (.seg.nrrd before .nrrd)
SUFFIXES = {
    ".seg.nrrd": SLICER_SEG,
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".nrrd": "nrrd",
    ".mha": "metaimage",
    ".npz": "npz",
    ".png": "png",  # a 2D label map only (one slice): grey uint8, or uint16 above 255
}
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
    return array.astype(np.uint8 if high <= 255 else np.uint16, copy=False)  # no copy of a ready label map


def count_value(array: np.ndarray, value: int, block: int = 16) -> int:
    """How many voxels of ``array`` (any shape; counted ``block`` entries of its first axis at a time, so that
    no full-size boolean array is made: a 512 x 512 x 600 label map would need 157 MB for it) equal
    ``value``."""
    if array.ndim == 0:
        return int(array == value)
    return sum(int(np.count_nonzero(array[n : n + block] == value)) for n in range(0, array.shape[0], block))


def present_labels(labelmap: np.ndarray, block: int = 16) -> list[int]:
    """The non-zero values of an integer label map, ascending, found ``block`` entries of its first axis at a
    time (``np.unique`` on the whole map sorts a full-size copy: 157 MB more for a 512 x 512 x 600 uint8 map)."""
    values: set[int] = set()
    for n in range(0, labelmap.shape[0] if labelmap.ndim else 1, block):
        values.update(int(v) for v in np.unique(labelmap[n : n + block] if labelmap.ndim else labelmap))
    return sorted(v for v in values if v)


def output_format(path: Path) -> tuple[str, str]:
    """(format, suffix) of an output path; OutputError for anything else. ``slicer-seg`` (``.seg.nrrd``) and
    ``png`` (the label map of a 2D image, the input's size) hold label maps only
    (:func:`volsam.io.writers.write_volume` refuses an image there)."""
    name = path.name.lower()
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt, path.name[-len(suffix) :]
    if name.endswith(".dcm"):
        raise OutputError(
            f"{path}: images go to .nii.gz, .nii, .nrrd, .mha or .npz; .dcm is a DICOM-SEG of a label map, "
            "written by write_labels with the DICOM source image"
        )
    raise OutputError(
        f"{path}: cannot write this file type; use .nii.gz, .nii, .nrrd, .mha or .npz (label maps also .seg.nrrd; "
        "a 2D image's label map also .png)"
    )


def label_output_format(path: str | Path, fmt: str | None = None) -> str:
    """The format a label map goes to: ``dicom-seg`` (a ``.dcm`` name, or ``fmt="dicom-seg"``), ``slicer-seg``
    (a ``.seg.nrrd`` name: 3D Slicer's segmentation file) or the image format of the extension
    (:func:`output_format`); ``fmt`` may also name that format (as this function returns it). OutputError for
    unknown or conflicting ones."""
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


def _slicer_text(text: str) -> str:
    """``text`` as one NRRD header value: control characters (line breaks end a header line) become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split()) or "object"


def slicer_segment_fields(array: np.ndarray, names: Mapping[int, str] | None = None) -> dict[str, str]:
    """The header fields (``key:=value`` in the NRRD) that make a label map 3D Slicer's segmentation file.

    One segment per label present in ``array`` (``[k, j, i]``) or named in ``names``, in increasing label order:
    ``SegmentN_ID`` ``Segment_<label>``, ``_Name`` (``names``, else ``object <label>`` as sessions name them),
    ``_Color`` (the palette's colour, 0..1), ``_LabelValue`` the label, ``_Layer`` 0 (a label map has no
    overlaps), ``_Extent`` the label's voxel bounding box ``i0 i1 j0 j1 k0 k1`` (``0 -1 0 -1 0 -1`` when it has
    no voxel), ``_Tags`` ``|``. Slicer reads the file as a segmentation node with those segments; ``slicerio``
    reads it too. Labels outside 1..65535 are an OutputError."""
    named = {int(k): str(v) for k, v in (names or {}).items()}
    for label in named:
        if not 1 <= label <= 65535:
            raise OutputError(f"object labels are 1..65535, got {label}")
    top = int(array.max(initial=0))
    present = (
        [v for v in range(1, top + 1) if (array == v).any()] if top <= 32 else [int(v) for v in np.unique(array) if v]
    )
    fields = {
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    for n, label in enumerate(sorted(set(present) | set(named))):
        where = array == label
        if where.any():
            extent = []
            for axis in (2, 1, 0):  # i, j, k
                hits = np.flatnonzero(where.any(axis=tuple(a for a in range(3) if a != axis)))
                extent += [int(hits[0]), int(hits[-1])]
        else:
            extent = [0, -1, 0, -1, 0, -1]
        fields.update(
            {
                f"Segment{n}_ID": f"Segment_{label}",
                f"Segment{n}_Name": _slicer_text(named.get(label) or f"object {label}"),
                f"Segment{n}_NameAutoGenerated": "0",
                f"Segment{n}_Color": " ".join(f"{c / 255:.6g}" for c in colour_of(label)),
                f"Segment{n}_ColorAutoGenerated": "0",
                f"Segment{n}_LabelValue": str(label),
                f"Segment{n}_Layer": "0",
                f"Segment{n}_Extent": " ".join(str(v) for v in extent),
                f"Segment{n}_Tags": "|",
            }
        )
    return fields

"""Reading and writing images (SimpleITK, pydicom, numpy). Never imports torch or an engine.

* :func:`read_volume` -- NIfTI, NRRD, MetaImage, DICOM series (folder or .zip), DICOM file, CVPR .npz, and
  2D PNG / JPEG / BMP / TIFF; :func:`read_image` -- a 2D image only (a Volume of one slice).
* :func:`write_volume` -- NIfTI, NRRD, MetaImage, .npz; exactly on the grid, atomically; label maps as
  uint8/uint16.
* :func:`write_labels` -- a label map to those formats or, with its DICOM source image, a DICOM-SEG (``.dcm``).
* :func:`describe` / :func:`format_description` -- the facts ``volsam info`` prints.
* :func:`list_series` -- the DICOM series under a folder.
"""

from __future__ import annotations

from pathlib import Path

from volsam.io.describe import describe, format_description
from volsam.io.dicom import DicomSeries, scan_folder
from volsam.io.npz import read_npz
from volsam.io.readers import detect_format, read_image, read_volume
from volsam.io.writers import write_labels, write_volume


def list_series(folder: str | Path) -> list[DicomSeries]:
    """DICOM series found under ``folder`` (recursively), each with its uid, description and files."""
    return scan_folder(Path(folder))


__all__ = [
    "DicomSeries",
    "describe",
    "detect_format",
    "format_description",
    "list_series",
    "read_image",
    "read_npz",
    "read_volume",
    "write_labels",
    "write_volume",
]

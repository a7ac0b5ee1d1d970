"""``read_volume``: one entry point for every image volsam accepts.

Formats (chosen by the name, then checked by reading): NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``,
``.nhdr``), MetaImage (``.mha``, ``.mhd``), a DICOM series folder, a ``.zip`` holding a DICOM series, a
single DICOM file (``.dcm``, ``.dicom``, ``.ima``), a CVPR-challenge ``.npz`` (3D, or the 2024 2D files) and
2D pictures: PNG, JPEG, BMP, TIFF (:mod:`volsam.io.pictures`). Everything that cannot be used raises
:class:`InputError` with one line naming the file.

A 2D image (a picture, a single-frame DICOM, a 2D ``.npz``) is a Volume with one slice; a colour one carries
its RGB picture in ``Volume.colour`` and its BT.601 luma in ``array`` (:mod:`volsam.core.volume`).

The result is a :class:`~volsam.core.volume.Volume` (array ``[k, j, i]``, ITK/LPS geometry) with
``meta``: ``modality`` (the DICOM Modality tag, else None), ``source`` (the path as given), ``format``
(nifti, nrrd, metaimage, dicom, dicom-zip, npz, png, jpeg, bmp, tiff), ``series_uid``,
``series_description``, ``pixel_type`` (the stored component type, e.g. "uint16" before a DICOM rescale)
and, for 4D files, ``channel``.
Voxel types are kept (integers stay integers, floats stay floats), NaN voxels are kept.

Limits (for files from someone else, e.g. a server's uploads): ``max_bytes`` refuses, with
:class:`~volsam.core.errors.ImageTooLarge`, an image whose *declared* voxels (header sizes x voxel type; DICOM
rows x columns x frames x files; ``.npy`` shapes) exceed it, before any voxel is decompressed; ``untrusted``
also refuses NRRD / MetaImage files whose header points at another file for its data (``data file:``,
``ElementDataFile``), which would read a file of the machine instead of the upload.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from volsam.core.errors import InputError
from volsam.core.volume import Volume
from volsam.io.archive import check_decoded, unpacked_zip
from volsam.io.dicom import read_dicom_file, read_dicom_folder
from volsam.io.itk import image_to_volume, itk_reason, pixel_type_name
from volsam.io.nifti import check_nifti, restore_non_finite
from volsam.io.npz import read_npz
from volsam.io.pictures import PICTURE_SUFFIXES, picture_format, read_picture

# suffix -> (format, ImageIO); longest suffixes first
_ITK_SUFFIXES = {
    ".nii.gz": ("nifti", "NiftiImageIO"),
    ".nii": ("nifti", "NiftiImageIO"),
    ".nrrd": ("nrrd", "NrrdImageIO"),
    ".nhdr": ("nrrd", "NrrdImageIO"),
    ".mha": ("metaimage", "MetaImageIO"),
    ".mhd": ("metaimage", "MetaImageIO"),
}
_DICOM_FILE_SUFFIXES = (".dcm", ".dicom", ".ima")
SUPPORTED = (
    "NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd), a DICOM folder or .zip, .dcm, .npz, "
    "2D .png, .jpg, .tif, .bmp"
)


def detect_format(path: Path) -> str:
    """Format name of ``path`` from its name (a folder is a DICOM series); InputError when unsupported."""
    if path.is_dir():
        return "dicom"
    name = path.name.lower()
    for suffix, (fmt, _) in _ITK_SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zip"):
        return "dicom-zip"
    if name.endswith(_DICOM_FILE_SUFFIXES):
        return "dicom-file"
    picture = picture_format(path)
    if picture is not None:
        return picture
    suffix = "".join(path.suffixes[-2:]) or "(none)"
    raise InputError(f"{path}: unsupported file type {suffix}; volsam reads {SUPPORTED}")


def _image_io(path: Path) -> str:
    name = path.name.lower()
    return next(io for suffix, (_, io) in _ITK_SUFFIXES.items() if name.endswith(suffix))


_HEADER_BYTES = 1 << 16  # NRRD / MetaImage headers are text at the start of the file; this is plenty


def _check_inline(path: Path, fmt: str) -> None:
    """Refuse a NRRD / MetaImage whose header sends the reader to another file for the voxels."""
    if fmt not in ("nrrd", "metaimage"):
        return
    with open(path, "rb") as fh:
        head = fh.read(_HEADER_BYTES)
    text = head.split(b"\n\n", 1)[0] if fmt == "nrrd" else head
    for raw in text.splitlines():
        line = raw.decode("latin-1").strip()
        key, _, value = line.partition("=" if fmt == "metaimage" else ":")
        key = key.strip().lower().replace(" ", "")
        if fmt == "nrrd" and key == "datafile":
            raise InputError(f"{path}: a NRRD whose voxels are in another file ('{line[:60]}') is not accepted here")
        if fmt == "metaimage" and key == "elementdatafile":
            if value.strip().upper() != "LOCAL":
                raise InputError(f"{path}: a MetaImage whose voxels are in another file is not accepted here")
            return


def _declared_bytes(reader: sitk.ImageFileReader) -> int:
    """Bytes of the voxels the header declares (all of a 4D file's volumes; complex types count 16 bytes)."""
    try:
        item = np.dtype(pixel_type_name(reader.GetPixelID())).itemsize
    except TypeError:
        item = 16
    return math.prod(reader.GetSize()) * max(reader.GetNumberOfComponents(), 1) * item


def _read_itk(path: Path, fmt: str, channel: int | None, max_bytes: int | None, untrusted: bool) -> Volume:
    nifti = check_nifti(path, max_bytes) if fmt == "nifti" else None
    if untrusted:
        _check_inline(path, fmt)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(_image_io(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable {fmt} image ({itk_reason(exc)})") from exc
    dim, size, components = reader.GetDimension(), reader.GetSize(), reader.GetNumberOfComponents()
    check_decoded(_declared_bytes(reader), max_bytes, path)
    meta: dict[str, Any] = {
        "modality": None,
        "source": str(path),
        "format": fmt,
        "series_uid": None,
        "series_description": None,
        "pixel_type": pixel_type_name(reader.GetPixelID()),
    }
    if nifti is not None:
        meta["pixel_type"] = nifti.type_name
    if dim > 4 or dim < 2:
        raise InputError(f"{path}: a {dim}D image (size {tuple(size)}) is not a volume")
    if dim == 4 and components > 1:
        raise InputError(f"{path}: a 4D image with {components} values per voxel is not supported")
    count = size[3] if dim == 4 else components
    if count > 1 or dim == 4:
        what = "volumes" if dim == 4 else "values per voxel (vector/colour pixels)"
        if channel is None and count > 1:
            raise InputError(
                f"{path} is {'4D' if dim == 4 else 'a vector image'} with {count} {what}; "
                f"pick one with channel=0..{count - 1} (--channel)"
            )
        channel = 0 if channel is None else channel
        if not 0 <= channel < count:
            raise InputError(f"{path}: channel={channel} is out of range; it has {count} {what} (0..{count - 1})")
        meta.update(channel=channel, n_channels=count)
        if dim == 4:
            reader.SetExtractSize([*size[:3], 0])
            reader.SetExtractIndex([0, 0, 0, channel])
    elif channel is not None:
        raise InputError(f"{path} is a {dim}D image; channel={channel} applies to 4D or vector images only")
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{path}: truncated or corrupt {fmt} image ({itk_reason(exc)})") from exc
    if image.GetNumberOfComponentsPerPixel() > 1:
        image = sitk.VectorIndexSelectionCast(image, int(channel or 0))
    volume = image_to_volume(image, meta)
    if nifti is not None:
        restore_non_finite(path, nifti, volume.array, block=int(channel or 0))
    return volume


def read_volume(
    path: str | Path,
    *,
    series: str | None = None,
    channel: int | None = None,
    max_bytes: int | None = None,
    untrusted: bool = False,
) -> Volume:
    """Read an image volume (see the module notes for formats and ``meta``).

    Args:
        path: a NIfTI / NRRD / MetaImage / DICOM file, a DICOM series folder or ``.zip``, a ``.npz``, or a
            2D PNG / JPEG / BMP / TIFF.
        series: SeriesInstanceUID to read when a DICOM folder or zip holds several series.
        channel: which 3D volume of a 4D file (or which component of a vector image) to read.
        max_bytes: the largest image accepted, in decoded bytes as declared (None: no limit).
        untrusted: the file comes from someone else: its voxels must be inside it (see the module notes).

    Raises:
        InputError: missing path, unsupported type, no images, corrupt or truncated data, several DICOM
            series without ``series``, a 4D file without ``channel``.
        ImageTooLarge: the image would decode to more than ``max_bytes``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    fmt = detect_format(path)
    if series is not None and fmt not in ("dicom", "dicom-zip"):
        raise InputError(f"{path}: series={series!r} applies to DICOM folders and zips only")
    if channel is not None and fmt in ("dicom", "dicom-zip", "dicom-file", "npz", *PICTURE_SUFFIXES.values()):
        raise InputError(f"{path}: channel={channel} applies to 4D or vector NIfTI/NRRD/MetaImage files only")
    if fmt == "dicom":
        return read_dicom_folder(path, series=series, max_bytes=max_bytes)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    if fmt == "dicom-zip":
        with unpacked_zip(path) as folder:
            return read_dicom_folder(folder, series=series, source=str(path), fmt="dicom-zip", max_bytes=max_bytes)
    if fmt == "dicom-file":
        return read_dicom_file(path, max_bytes=max_bytes)
    if fmt == "npz":
        return read_npz(path, max_bytes=max_bytes)
    if fmt in PICTURE_SUFFIXES.values():
        return read_picture(path, max_bytes=max_bytes)
    return _read_itk(path, fmt, channel, max_bytes, untrusted)


def read_image(path: str | Path, *, max_bytes: int | None = None) -> Volume:
    """Read a 2D image (PNG, JPEG, BMP, TIFF, a single-frame DICOM, a CVPR 2024 2D ``.npz``) as a Volume with
    one slice -- the type every segmentation takes; prompts go on slice 0 (``Box2D(x0, y0, x1, y1, slice=0)``,
    ``Point(x, y, 0)``; x = column, y = row). A colour image keeps its RGB in ``Volume.colour``.

    Raises:
        InputError: as :func:`read_volume`, and for an image of more than one slice (use read_volume).
    """
    volume = read_volume(path, max_bytes=max_bytes)
    if not volume.is_2d:
        raise InputError(f"{path}: {volume.shape[0]} slices, not a 2D image; read it with read_volume")
    return volume

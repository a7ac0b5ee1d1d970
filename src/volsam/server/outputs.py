"""What the server sends back besides a :class:`~volsam.core.changes.Change`: an image's geometry, and
downloads (NIfTI, DICOM-SEG, 3D Slicer's .seg.nrrd, a 2D image's mask PNG, the prompts document), each written
by the same io function as the CLI's."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse, Response

from volsam.core.errors import InputError, NoDicomSource
from volsam.core.volume import Volume

SEG_NAME = "labelmap.dcm"  # the DICOM-SEG download's file name (also what its refusals name)
SLICER_SEG_NAME = "labelmap.seg.nrrd"  # the 3D Slicer segmentation download's file name
MASK_PNG_NAME = "mask.png"  # a 2D image's label map as a PNG the input's size


def geometry(volume: Volume, axis: int, session: Any = None) -> dict:
    """The image's grid as the web page and the client see it: ``modality`` is the one the session normalises
    with (CT, MR, PET or other, after ``auto`` was resolved), ``dicom_modality`` the DICOM tag (None for other
    formats), ``dicom_seg`` whether a DICOM-SEG download is possible, ``channel`` the volume read of a 4D file,
    ``is_2d`` a one-slice image (a picture, a single DICOM frame: the mask PNG download applies), ``colour``
    whether it has an RGB picture (``GET .../image?colour=true``)."""
    normalizer = getattr(session, "normalizer", None)
    return {
        "size": list(volume.size),
        "spacing": list(volume.spacing),
        "origin": list(volume.origin),
        "direction": np.asarray(volume.direction).tolist(),
        "axis": axis,
        "axis_names": list(volume.axis_names()),
        "modality": getattr(normalizer, "modality", None),
        "dicom_modality": volume.meta.get("modality"),
        "channel": volume.meta.get("channel"),
        "dicom_seg": volume.meta.get("dicom_headers") is not None,
        "is_2d": volume.is_2d,
        "colour": volume.colour is not None,
    }


def nifti_bytes(volume: Volume, label: bool) -> bytes:
    """``volume`` as a ``.nii.gz`` file's bytes (a label map when ``label``)."""
    from volsam.io.writers import write_volume

    with tempfile.TemporaryDirectory(prefix="volsam-out-") as tmp:
        path = write_volume(volume, Path(tmp) / "out.nii.gz", label=label)
        return path.read_bytes()


def mask_png_bytes(labelmap: Volume) -> bytes:
    """A 2D image's label map as the grey PNG ``volsam segment photo.png -o mask.png`` writes (the input's size,
    uint8; uint16 above 255). InputError (400) for an image of more than one slice."""
    from volsam.io.writers import write_labels

    if not labelmap.is_2d:
        raise InputError(f"a PNG mask is for 2D images; this image has {labelmap.shape[0]} slices (ask for nifti)")
    with tempfile.TemporaryDirectory(prefix="volsam-out-") as tmp:
        return write_labels(labelmap, Path(tmp) / MASK_PNG_NAME).read_bytes()


def colour_nifti_bytes(volume: Volume) -> bytes:
    """A colour 2D image's RGB picture as a gzipped NIfTI-1 of datatype RGB24 (what Niivue shows in colour), on
    the same grid as :func:`nifti_bytes` writes the grey image. InputError when the image has no colour."""
    import gzip

    if volume.colour is None:
        raise InputError("this image has no colour picture; ask for the image without colour=true")
    nk, nj, ni = volume.shape
    header = np.zeros(1, NIFTI1_HEADER)
    h = header[0]
    h["sizeof_hdr"], h["vox_offset"], h["magic"] = 348, 352.0, b"n+1"
    h["dim"][:4] = (3, ni, nj, nk)
    h["dim"][4:] = 1
    h["datatype"], h["bitpix"] = 128, 24  # DT_RGB24
    h["pixdim"][0] = 1.0  # qfac
    h["pixdim"][1:4] = volume.spacing
    h["scl_slope"], h["xyzt_units"] = 0.0, 2  # no scaling; millimetres
    h["sform_code"], h["qform_code"] = 1, 0
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    rotation = lps_to_ras @ np.asarray(volume.direction, float).reshape(3, 3) @ np.diag(volume.spacing)
    affine = np.hstack([rotation, (lps_to_ras @ np.asarray(volume.origin, float))[:, None]])
    h["srow_x"], h["srow_y"], h["srow_z"] = affine
    pixels = np.ascontiguousarray(volume.colour, dtype=np.uint8)  # [k, j, i, 3]: i fastest, RGB interleaved
    return gzip.compress(header.tobytes() + b"\0" * 4 + pixels.tobytes(), compresslevel=1)


NIFTI1_HEADER = np.dtype(
    [
        ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"),
        ("session_error", "<i2"), ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", 8),
        ("intent_p1", "<f4"), ("intent_p2", "<f4"), ("intent_p3", "<f4"), ("intent_code", "<i2"),
        ("datatype", "<i2"), ("bitpix", "<i2"), ("slice_start", "<i2"), ("pixdim", "<f4", 8),
        ("vox_offset", "<f4"), ("scl_slope", "<f4"), ("scl_inter", "<f4"), ("slice_end", "<i2"),
        ("slice_code", "u1"), ("xyzt_units", "u1"), ("cal_max", "<f4"), ("cal_min", "<f4"),
        ("slice_duration", "<f4"), ("toffset", "<f4"), ("glmax", "<i4"), ("glmin", "<i4"),
        ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "<i2"), ("sform_code", "<i2"),
        ("quatern_b", "<f4"), ("quatern_c", "<f4"), ("quatern_d", "<f4"), ("qoffset_x", "<f4"),
        ("qoffset_y", "<f4"), ("qoffset_z", "<f4"), ("srow_x", "<f4", 4), ("srow_y", "<f4", 4),
        ("srow_z", "<f4", 4), ("intent_name", "S16"), ("magic", "S4"),
    ]
)  # fmt: skip
if NIFTI1_HEADER.itemsize != 348:  # pragma: no cover -- a typo above
    raise RuntimeError("the NIfTI-1 header layout is not 348 bytes")


def dicom_seg_bytes(labelmap: Volume, image: Volume, engine: str, model: str | None) -> bytes:
    """``labelmap`` as a DICOM-SEG file's bytes, written as ``volsam segment -o seg.dcm`` writes it.

    Raises :class:`NoDicomSource` (409) when ``image`` was not uploaded as a DICOM series or the session has
    no object yet; the other refusals of :func:`volsam.io.dicom_seg.check_source` as OutputError."""
    from volsam.io.dicom_seg import check_source
    from volsam.io.writers import DICOM_SEG, write_labels

    check_source(image, SEG_NAME)
    names = labelmap.meta.get("labels") or {}
    if not names and not labelmap.array.any():
        raise NoDicomSource("the session has no object yet: a DICOM-SEG needs at least one segment")
    with tempfile.TemporaryDirectory(prefix="volsam-out-") as tmp:
        path = write_labels(
            labelmap, Path(tmp) / SEG_NAME, fmt=DICOM_SEG, source=image, names=names, engine=engine, model=model
        )
        return path.read_bytes()


def slicer_seg_bytes(labelmap: Volume) -> bytes:
    """``labelmap`` as 3D Slicer's ``.seg.nrrd`` file's bytes (named, coloured segments), written as
    ``volsam segment -o x.seg.nrrd`` writes it."""
    from volsam.io.writers import write_slicer_seg

    with tempfile.TemporaryDirectory(prefix="volsam-out-") as tmp:
        return write_slicer_seg(labelmap, Path(tmp) / SLICER_SEG_NAME).read_bytes()


def prompts_response(session: Any, document_only: bool = False) -> Response:
    """The session's prompts document: JSON, or a zip of it and its mask files when it has mask prompts
    (``document_only``: the JSON in any case, naming mask files it does not carry: the web page's markers)."""
    with tempfile.TemporaryDirectory(prefix="volsam-prompts-") as tmp:
        path = session.save_prompts(Path(tmp) / "prompts.json")
        files = sorted(p for p in Path(tmp).iterdir() if p.is_file())
        if files == [path] or document_only:
            return JSONResponse(json.loads(path.read_text()))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                zf.write(f, f.name)
        return Response(buf.getvalue(), media_type="application/zip")

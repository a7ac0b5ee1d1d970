"""What the server sends back besides a :class:`~volsam.core.changes.Change`: an image's geometry, and
downloads (NIfTI, DICOM-SEG, 3D Slicer's .seg.nrrd, the prompts document), each written by the same io function
as the CLI's."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse, Response

from volsam.core.errors import NoDicomSource
from volsam.core.volume import Volume

SEG_NAME = "labelmap.dcm"  # the DICOM-SEG download's file name (also what its refusals name)
SLICER_SEG_NAME = "labelmap.seg.nrrd"  # the 3D Slicer segmentation download's file name


def geometry(volume: Volume, axis: int, session: Any = None) -> dict:
    """The image's grid as the web page and the client see it: ``modality`` is the one the session normalises
    with (CT, MR, PET or other, after ``auto`` was resolved), ``dicom_modality`` the DICOM tag (None for other
    formats), ``dicom_seg`` whether a DICOM-SEG download is possible, ``channel`` the volume read of a 4D file."""
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
    }


def nifti_bytes(volume: Volume, label: bool) -> bytes:
    """``volume`` as a ``.nii.gz`` file's bytes (a label map when ``label``)."""
    from volsam.io.writers import write_volume

    with tempfile.TemporaryDirectory(prefix="volsam-out-") as tmp:
        path = write_volume(volume, Path(tmp) / "out.nii.gz", label=label)
        return path.read_bytes()


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

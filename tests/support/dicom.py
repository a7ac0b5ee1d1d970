"""Write a :class:`~volsam.core.volume.Volume` as a single-frame DICOM series (pydicom), for tests.

The geometry tags follow PS3.3 C.7.6.2: ``ImageOrientationPatient`` holds the LPS directions of a row
(index i, ``direction[:, 0]``) and of a column (index j, ``direction[:, 1]``); ``ImagePositionPatient`` of
slice k is ``origin + k * spacing_k * direction[:, 2]``; ``PixelSpacing`` is (row spacing = j, column
spacing = i). A reader that sorts slices along the normal ``row x column`` gets the volume back unchanged
when ``det(direction) > 0``; for a left-handed direction (e.g. diag(-1, 1, 1)) DICOM has no way to say
"k runs against the normal", so a reader returns the same voxels with k reversed, ``direction[:, 2]``
negated and the origin at the last slice (the same physical image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from volsam.core.volume import Volume

_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters) for ``value``."""
    for digits in range(10, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot encode {value} as a DICOM DS")


def write_series(
    volume: Volume,
    folder: Path,
    *,
    shuffle_names: bool = True,
    modality: str = "MR",
    series_uid: str | None = None,
    study_uid: str | None = None,
    rescale: tuple[float, float] | None = None,
    series_description: str = "volsam test series",
    seed: int = 0,
) -> list[Path]:
    """Write ``volume`` as one file per k-slice into ``folder`` and return the paths (in k order).

    Stored pixel values are ``round((value - intercept) / slope)`` as uint16 (or int16 when negative);
    without ``rescale`` the values must be integers already and no rescale tags are written (except for CT,
    which always gets slope 1 / intercept 0). ``shuffle_names`` names files so that sorting by name does
    not give the slice order (a reader must use the positions). Returns the file paths in slice order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    array = np.asarray(volume.array, dtype=np.float64)
    slope, intercept = rescale if rescale is not None else (1.0, 0.0)
    stored = np.round((array - intercept) / slope)
    if rescale is None and not np.array_equal(stored, array):
        raise ValueError("non-integer voxels need rescale=(slope, intercept)")
    dtype = np.uint16 if stored.min() >= 0 else np.int16
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError(f"stored values {stored.min()}..{stored.max()} do not fit {np.dtype(dtype).name}")
    stored = stored.astype(dtype)

    nk, nj, ni = volume.shape
    si, sj, sk = volume.spacing
    direction = volume.direction
    origin = np.asarray(volume.origin)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = generate_uid()
    sop_class = _SOP_CLASS.get(modality, _SECONDARY_CAPTURE)

    order = np.arange(nk)
    if shuffle_names and nk > 1:
        order = np.random.default_rng(seed).permutation(nk)
        if np.all(np.argsort(order) == np.arange(nk)):
            order = order[::-1].copy()
    paths = []
    for k in range(nk):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        sop_uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PatientName = "Volsam^Test"
        ds.PatientID = "VOLSAM0001"
        ds.StudyDate = "20240101"
        ds.Modality = modality
        ds.SeriesDescription = series_description
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
        ds.ImagePositionPatient = [_ds(v) for v in origin + k * sk * direction[:, 2]]
        ds.PixelSpacing = [_ds(sj), _ds(si)]
        ds.SliceThickness = _ds(sk)
        ds.SpacingBetweenSlices = _ds(sk)
        ds.Rows, ds.Columns = nj, ni
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if dtype == np.int16 else 0
        if rescale is not None or modality == "CT":
            ds.RescaleSlope = _ds(slope)
            ds.RescaleIntercept = _ds(intercept)
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        name = f"IM{int(order[k]):04d}.dcm" if shuffle_names else f"slice{k:04d}.dcm"
        path = folder / name
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths

"""DICOM series: find the series in a folder (pydicom headers), order the slices, read the pixels (GDCM).

* Every file under the folder (recursively) that has the ``DICM`` marker, or a DICOM-like name (no suffix,
  ``.dcm``, ``.dicom``, ``.ima``) and parses as DICOM, is grouped by ``SeriesInstanceUID``.
* Slices are ordered by their ``ImagePositionPatient`` projected on the slice normal
  ``row x column`` (from ``ImageOrientationPatient``), never by file name; ``InstanceNumber`` only when
  positions are missing. So k runs along the normal and the direction is right-handed: a volume whose
  k axis ran against the normal when it was written comes back with k reversed (the same physical image).
* DICOM Segmentation objects (Modality SEG) are not images: a folder scan skips them.
* A series with several images at one position (time points, echoes), mixed orientations or sizes, or
  uneven gaps (a missing slice) is refused with :class:`InputError` rather than read onto a wrong grid.
* Before any pixel is decoded, the size the headers declare (rows x columns x frames x bytes per sample x
  samples per pixel, summed over the files) is checked against ``max_bytes`` (ImageTooLarge): a compressed
  transfer syntax cannot make the reader allocate more than that.
* Pixels are read by SimpleITK's GDCM reader in that order: it decodes compressed transfer syntaxes and
  applies RescaleSlope / RescaleIntercept (output type float64 when they differ between slices).
* ``meta["dicom_headers"]`` keeps each file's header (pydicom, no pixel data, no private tags) in k order:
  what a DICOM-SEG written later must reference (:mod:`volsam.io.dicom_seg`), even after a zip's files are gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk

from volsam.core.errors import InputError
from volsam.core.volume import Volume, luma
from volsam.io.archive import check_decoded
from volsam.io.itk import image_to_volume, itk_reason

DICOM_SUFFIXES = ("", ".dcm", ".dicom", ".ima")
_TAGS = [
    "SeriesInstanceUID",
    "SeriesDescription",
    "Modality",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "InstanceNumber",
    "Rows",
    "Columns",
    "RescaleSlope",
    "RescaleIntercept",
    "NumberOfFrames",
    "BitsAllocated",
    "PixelRepresentation",
    "SamplesPerPixel",
]
_SAME_POSITION_MM = 1e-3
_GAP_TOLERANCE = 0.1  # relative deviation of a slice gap from the median gap


@dataclass(frozen=True)
class DicomImage:
    """Header facts of one DICOM file (positions in LPS mm)."""

    path: Path
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    instance: int | None
    rows: int
    columns: int
    slope: float
    intercept: float
    frames: int
    stored_type: str
    samples: int = 1  # SamplesPerPixel (3 for colour)

    @property
    def declared_bytes(self) -> int:
        """Bytes of the decoded pixels as the header declares them."""
        bits = int("".join(c for c in self.stored_type if c.isdigit()) or 16)
        return self.rows * self.columns * self.frames * self.samples * max(bits // 8, 1)


@dataclass
class DicomSeries:
    """The images of one SeriesInstanceUID found under a folder."""

    uid: str
    description: str
    modality: str | None
    images: list[DicomImage] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.uid} '{self.description}' ({len(self.images)} files)"


def _has_dicm_marker(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def _number(ds: pydicom.Dataset, keyword: str, default: float) -> float:
    try:
        value = ds.get(keyword)
        return default if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return default


def read_header(path: Path) -> tuple[str, str, str | None, DicomImage] | None:
    """(series uid, description, modality, image facts) of a DICOM image file, None for anything else
    (a file whose header does not parse -- pydicom raises many types for corrupt ones -- is no image)."""
    marker = _has_dicm_marker(path)
    if not marker and path.suffix.lower() not in DICOM_SUFFIXES:
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=not marker, specific_tags=_TAGS)
        return _header_facts(path, ds)
    except Exception:  # noqa: BLE001 -- any parse failure means "not a DICOM image"
        return None


def _header_facts(path: Path, ds: pydicom.Dataset) -> tuple[str, str, str | None, DicomImage] | None:
    uid = str(ds.get("SeriesInstanceUID", "") or "")
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if not uid or rows <= 0 or columns <= 0:
        return None  # DICOMDIR, structured reports, presentation states...
    if str(ds.get("Modality", "") or "").strip().upper() == "SEG":
        return None  # a segmentation (e.g. volsam's seg.dcm beside its series) is no image of the series
    bits = int(ds.get("BitsAllocated", 16) or 16)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = _number(ds, "NumberOfFrames", 1.0)
    frames = int(frames) if np.isfinite(frames) and frames >= 1 else 1
    if bits not in (1, 8, 16, 32, 64) or samples not in (1, 3, 4):
        return None  # not pixels volsam (or GDCM) can read
    instance = ds.get("InstanceNumber")
    try:
        instance = None if instance in (None, "") else int(instance)
    except (TypeError, ValueError):
        instance = None
    image = DicomImage(
        path=path,
        position=_floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        instance=instance,
        rows=rows,
        columns=columns,
        slope=_number(ds, "RescaleSlope", 1.0),
        intercept=_number(ds, "RescaleIntercept", 0.0),
        frames=frames,
        stored_type=f"{'int' if signed else 'uint'}{bits}",
        samples=samples,
    )
    description = " ".join(str(ds.get("SeriesDescription", "") or "").split())
    modality = str(ds.get("Modality", "") or "").strip() or None
    return uid, description, modality, image


def scan_folder(folder: Path) -> list[DicomSeries]:
    """All DICOM image series under ``folder`` (recursively), in the order first met (sorted walk)."""
    found: dict[str, DicomSeries] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__MACOSX" and not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            header = read_header(Path(root) / name)
            if header is None:
                continue
            uid, description, modality, image = header
            series = found.setdefault(uid, DicomSeries(uid, description, modality))
            series.images.append(image)
    return list(found.values())


def _series_list(series: list[DicomSeries]) -> str:
    return "; ".join(s.summary() for s in series)


def select_series(folder: Path, series: list[DicomSeries], uid: str | None, source: str) -> DicomSeries:
    """The series to read: the only one, or the one named ``uid``; InputError listing them otherwise."""
    if not series:
        raise InputError(f"{source}: no DICOM images found")
    if uid is not None:
        for s in series:
            if s.uid == uid:
                return s
        raise InputError(f"{source}: no DICOM series {uid}; found: {_series_list(series)}")
    if len(series) > 1:
        raise InputError(
            f"{source} holds {len(series)} DICOM series; pick one with series=UID (--series UID): "
            f"{_series_list(series)}"
        )
    return series[0]


def order_slices(series: DicomSeries, source: str) -> list[DicomImage]:
    """The series' images in slice order (position along the normal), after consistency checks."""
    images = series.images
    where = f"{source}: series {series.uid}"
    if len(images) == 1:
        return images
    if any(im.frames > 1 for im in images):
        raise InputError(f"{where} has {len(images)} multi-frame files; volsam reads one multi-frame file")
    if len({(im.rows, im.columns) for im in images}) > 1:
        raise InputError(f"{where} mixes images of different sizes (a localizer?); cannot stack them")
    if all(im.position is not None and im.orientation is not None for im in images):
        first = np.asarray(images[0].orientation)
        if any(np.abs(np.asarray(im.orientation) - first).max() > 1e-3 for im in images):
            raise InputError(f"{where} mixes slice orientations (a localizer?); cannot stack them")
        normal = np.cross(first[:3], first[3:])
        keys = [float(np.dot(im.position, normal)) for im in images]  # type: ignore[arg-type]
        order = sorted(range(len(images)), key=lambda t: (keys[t], images[t].instance or 0))
        gaps = np.diff([keys[t] for t in order])
        positions = 1 + int(np.sum(gaps > _SAME_POSITION_MM))
        if positions < len(images):
            raise InputError(
                f"{where} has {len(images)} images at {positions} positions (time points or echoes?); "
                "volsam reads one 3D volume per series"
            )
        median = float(np.median(gaps))
        if np.max(np.abs(gaps - median)) > _GAP_TOLERANCE * median:
            raise InputError(
                f"{where} has uneven slice gaps ({gaps.min():.4g} to {gaps.max():.4g} mm): missing slices?"
            )
        return [images[t] for t in order]
    instances = [im.instance for im in images]
    if any(i is None for i in instances) or len(set(instances)) < len(instances):
        raise InputError(f"{where}: cannot order slices (no ImagePositionPatient, no unique InstanceNumber)")
    return sorted(images, key=lambda im: im.instance or 0)


def _meta(series: DicomSeries, source: str, fmt: str, images: list[DicomImage]) -> dict[str, Any]:
    return {
        "modality": series.modality,
        "source": source,
        "format": fmt,
        "series_uid": series.uid,
        "series_description": series.description or None,
        "pixel_type": images[0].stored_type,
        "n_files": len(images),
        "dicom_headers": tuple(_full_header(im.path) for im in images),
    }


def _full_header(path: Path) -> pydicom.Dataset:
    """Every public attribute of ``path`` except the pixels (what a derived object references)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        ds.remove_private_tags()  # walks every element: a corrupt one raises here
    except Exception as exc:  # noqa: BLE001 -- pydicom raises many types for corrupt headers
        raise InputError(f"{path}: corrupt DICOM header ({type(exc).__name__}: {exc})".splitlines()[0]) from exc
    return ds


def read_series(series: DicomSeries, source: str, fmt: str = "dicom", max_bytes: int | None = None) -> Volume:
    """Read one series (see :func:`order_slices`) into a Volume (``max_bytes``: see the module notes)."""
    images = order_slices(series, source)
    declared = sum(im.declared_bytes for im in images)
    if len({(im.slope, im.intercept) for im in images}) > 1:
        declared = sum(im.rows * im.columns * im.frames * 8 for im in images)  # read as float64
    check_decoded(declared, max_bytes, source)
    try:
        if len(images) == 1:
            image = sitk.ReadImage(str(images[0].path), imageIO="GDCMImageIO")
        else:
            reader = sitk.ImageSeriesReader()
            reader.SetImageIO("GDCMImageIO")
            reader.SetFileNames([str(im.path) for im in images])
            if len({(im.slope, im.intercept) for im in images}) > 1:
                reader.SetOutputPixelType(sitk.sitkFloat64)  # per-slice rescale (PET) must not truncate
            image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{source}: cannot read DICOM series {series.uid}: {itk_reason(exc)}") from exc
    if image.GetNumberOfComponentsPerPixel() != 1:
        if len(images) == 1 and images[0].frames == 1:
            return _colour_image(image, _meta(series, source, fmt, images), source)
        raise InputError(f"{source}: DICOM series {series.uid} has colour pixels; volsam reads grey volumes")
    return image_to_volume(image, _meta(series, source, fmt, images))


def _colour_image(image: sitk.Image, meta: dict[str, Any], source: str) -> Volume:
    """A single-frame colour DICOM (RGB, YBR or palette, as GDCM decodes it to RGB) -> a 2D Volume with
    ``colour`` and its BT.601 luma; 8-bit samples only."""
    if image.GetNumberOfComponentsPerPixel() not in (3, 4) or image.GetPixelIDValue() != sitk.sitkVectorUInt8:
        raise InputError(
            f"{source}: a colour DICOM image with {image.GetPixelIDTypeAsString()} pixels is not supported"
        )
    rgb = sitk.GetArrayFromImage(image)[..., :3].reshape(1, image.GetHeight(), image.GetWidth(), 3)
    grey = image_to_volume(sitk.VectorIndexSelectionCast(image, 0), meta)
    return Volume(luma(rgb), grey.spacing, grey.origin, grey.direction, {**meta, "rgb": True}, colour=rgb)


def plane_spacing(ds: pydicom.Dataset) -> tuple[tuple[float, float] | None, str | None]:
    """(column spacing, row spacing) in mm of a 2D DICOM image and the attribute it came from: PixelSpacing,
    else ImagerPixelSpacing (projection X-ray, mammography: the detector's pitch), else (None, None).
    Both attributes are (row spacing, column spacing) in the file."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _floats(ds.get(keyword), 2)
        if values is not None and all(v > 0 for v in values):
            return (values[1], values[0]), keyword
    return None, None


def read_dicom_folder(
    folder: Path,
    *,
    series: str | None = None,
    source: str | None = None,
    fmt: str = "dicom",
    max_bytes: int | None = None,
) -> Volume:
    """Read the DICOM series under ``folder`` (``series`` = SeriesInstanceUID when there are several)."""
    source = source or str(folder)
    chosen = select_series(folder, scan_folder(folder), series, source)
    return read_series(chosen, source, fmt, max_bytes)


def _seg_hint(path: Path) -> str:
    try:
        modality = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality")
    except Exception:  # unreadable: no hint
        return ""
    return "; it is a DICOM-SEG: give it as --mask together with its source series" if modality == "SEG" else ""


def _plane_geometry(path: Path, volume: Volume) -> Volume:
    """A single-frame DICOM's in-plane spacing from PixelSpacing or ImagerPixelSpacing (``plane_spacing``;
    recorded in ``meta["pixel_spacing_from"]``), whatever GDCM made of them."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PixelSpacing", "ImagerPixelSpacing"])
    except Exception:  # noqa: BLE001 -- the header already parsed once; keep GDCM's geometry
        return volume
    spacing, source = plane_spacing(ds)
    volume.meta["pixel_spacing_from"] = source
    if spacing is None:
        return volume
    return replace(volume, spacing=(spacing[0], spacing[1], volume.spacing[2]))


def read_dicom_file(path: Path, max_bytes: int | None = None) -> Volume:
    """Read one DICOM file (a single slice, or a multi-frame image) into a Volume.

    A single frame is a 2D image (X-ray, mammography, an ultrasound still, a secondary capture): in-plane
    spacing from PixelSpacing, else ImagerPixelSpacing (:func:`plane_spacing`); colour (RGB, YBR, palette)
    is kept in ``Volume.colour`` with its BT.601 luma as ``array``.

    A cine loop (several frames with FrameTime, RecommendedDisplayFrameRate or CineRate: ultrasound, XA)
    reads as its frames along k with ``meta["fps"]`` (time, not space: k spacing means nothing); segment it
    through time as a video instead (``volsam segment FILE --frame N``, :mod:`volsam.io.video`).
    """
    from volsam.io.video import cine_fps, is_cine_file

    header = read_header(path)
    if header is None:
        raise InputError(f"{path}: not a DICOM image file{_seg_hint(path)}")
    uid, description, modality, image = header
    try:
        cine = image.frames > 1 and is_cine_file(path)
    except Exception as exc:  # noqa: BLE001 -- a corrupt header is an input problem, whatever pydicom raises
        raise InputError(f"{path}: corrupt DICOM header ({type(exc).__name__})") from exc
    try:
        volume = read_series(DicomSeries(uid, description, modality, [image]), str(path), max_bytes=max_bytes)
    except InputError as exc:
        if cine and "colour pixels" in str(exc):
            raise InputError(f"{path}: a colour cine loop; segment it as a video: --box ... --frame N") from None
        raise
    if not cine and image.frames == 1:
        volume = _plane_geometry(path, volume)
    if cine:
        try:
            volume.meta["fps"] = float(cine_fps(pydicom.dcmread(path, stop_before_pixels=True)) or 0.0)
        except Exception:  # noqa: BLE001 -- no usable frame rate: the frames still read
            volume.meta["fps"] = 0.0
    return volume

"""DICOM Segmentation objects (SEG): a label map written onto, and read back from, its DICOM source series.

Writing (:func:`write_dicom_seg`, highdicom):

* The source is the image the label map was made from, read from a DICOM series (folder or zip): its
  ``meta["dicom_headers"]`` (one single-frame header per k slice, in k order; see :mod:`volsam.io.dicom`) are
  the referenced images, so the SEG carries their study, series and frame-of-reference UIDs, and each frame
  names its source slice and its ImagePositionPatient. The label map must lie on exactly the source grid
  (size, spacing, origin, direction). Refused with :class:`OutputError`: an image not read from DICOM (its
  subclass :class:`~volsam.core.errors.NoDicomSource`, HTTP 409 on the server), a multi-frame (enhanced)
  source, headers that do not lie on the grid (a quarter voxel of tolerance: the SEG's frames take the
  headers' own positions, the grid only has to pair each slice with its file).
* One segment per object, type BINARY: segment numbers 1..n follow the label ids in increasing order;
  SegmentLabel is the object's name, SegmentDescription ``volsam label N`` keeps the label id (so labels
  such as 1, 5 come back as 1, 5), a recommended display colour (CIELab) from the web page's palette
  (:data:`volsam.io.labels.PALETTE`), the segmented property category / type codes (default SCT "Tissue" /
  "Lesion", overridable per label) and the algorithm identification (family "Artificial Intelligence", name
  volsam, version, parameters engine and model). SegmentAlgorithmType is SEMIAUTOMATIC (a user's prompts
  started it).
* Frames: empty frames are left out (highdicom's default; readers fill them with zeros). When every frame
  is empty but objects are named, highdicom stores all frames: a legal SEG whose segments are empty. A
  label map with no voxels and no named object is refused: a SEG needs at least one segment.
* Missing type-2 patient / study attributes of the source (birth date, sex, accession number...) are
  written empty, as the standard allows. The file is written atomically (temporary file + ``os.replace``).

Reading (:func:`read_dicom_seg`) puts a SEG back onto its source image's grid, by source SOP instance.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from volsam.core.errors import InputError, NoDicomSource, OutputError
from volsam.core.volume import Volume
from volsam.io.atomic import atomic_target
from volsam.io.labels import PALETTE, colour_of, label_array, present_labels

__all__ = [  # PALETTE lives in volsam.io.labels (one palette for the web page, overlays and SEGs)
    "LESION",
    "PALETTE",
    "SEG_SOP_CLASSES",
    "TISSUE",
    "build_dicom_seg",
    "check_source",
    "dicom_headers",
    "display_colour",
    "is_dicom_seg",
    "read_dicom_seg",
    "write_dicom_seg",
]

log = logging.getLogger(__name__)

SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")  # Segmentation, Label Map SEG
Code = tuple[str, str, str]  # (code value, coding scheme designator, code meaning)
TISSUE: Code = ("85756007", "SCT", "Tissue")
LESION: Code = ("52988006", "SCT", "Lesion")
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
_LABEL_PREFIX = "volsam label "
_POSITION_VOXELS = 0.25  # a header may lie this many voxels (of the smallest spacing) off the read grid
_ORIENTATION = 5e-3  # the reader accepts 1e-3 between slices; scanners round ImageOrientationPatient


def _version() -> str:
    try:
        return metadata.version("volsam")
    except metadata.PackageNotFoundError:
        return "unknown"


def dicom_headers(image: Volume) -> tuple[pydicom.Dataset, ...] | None:
    """The per-slice DICOM headers an image was read with (k order), or None for other sources."""
    headers = image.meta.get("dicom_headers")
    return tuple(headers) if headers else None


def check_source(image: Volume, path: str | Path) -> tuple[pydicom.Dataset, ...]:
    """The source headers of ``image`` if a DICOM-SEG can reference them; :class:`NoDicomSource` (an
    OutputError) when the image was not read from a DICOM series, OutputError for the other refusals.

    Call it before a long run: it needs no label map."""
    headers = dicom_headers(image)
    fmt = image.meta.get("format") or "an array"
    if headers is None:
        raise NoDicomSource(
            f"{path}: a DICOM-SEG output needs a DICOM series as input (a folder or .zip); this image is {fmt}. "
            "Write .nii.gz, .nrrd or .mha instead"
        )
    nk, nj, ni = image.shape
    frames = int(headers[0].get("NumberOfFrames", 1) or 1)
    if len(headers) == 1 and frames > 1:
        raise OutputError(
            f"{path}: the source is a multi-frame (enhanced) DICOM image; volsam writes DICOM-SEG "
            "for series of single-frame images only"
        )
    if len(headers) != nk:
        raise OutputError(f"{path}: the source has {len(headers)} DICOM files for {nk} slices")
    normal_i, normal_j = image.direction[:, 0], image.direction[:, 1]
    tolerance = _POSITION_VOXELS * min(image.spacing)  # the SEG's frames take the headers' own positions
    for k, ds in enumerate(headers):
        where = f"{path}: source slice {k} ({ds.get('SOPInstanceUID', '?')})"
        if (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)) != (nj, ni):
            raise OutputError(f"{where} is {ds.get('Rows')}x{ds.get('Columns')}, not {nj}x{ni} (rows x columns)")
        if len(headers) == 1 and "ImagePositionPatient" not in ds and "ImageOrientationPatient" not in ds:
            break  # a 2D image without patient geometry (X-ray, ultrasound still, secondary capture): pixels only
        try:
            position = np.array([float(v) for v in ds.ImagePositionPatient])
            orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
        except (AttributeError, TypeError, ValueError):
            raise OutputError(f"{where} has no usable ImagePositionPatient / ImageOrientationPatient") from None
        expected = image.index_to_world((0.0, 0.0, float(k)))
        if np.abs(position - expected).max() > tolerance:
            raise OutputError(
                f"{where} lies at {position.round(3).tolist()} mm, not on the grid ({expected.round(3).tolist()} mm)"
            )
        if np.abs(orientation - np.concatenate([normal_i, normal_j])).max() > _ORIENTATION:
            raise OutputError(f"{where} has orientation {orientation.round(4).tolist()}, not the grid's")
    return headers


def _rgb_to_lab(rgb: Sequence[int]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour (0..255)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return (float(116 * f[1] - 16), float(500 * (f[0] - f[1])), float(200 * (f[1] - f[2])))


def display_colour(label: int) -> tuple[float, float, float]:
    """The recommended display colour of ``label`` as CIE L*a*b* (the web page shows it in sRGB)."""
    return _rgb_to_lab(colour_of(label))


def _objects(array: np.ndarray, names: Mapping[int, str] | None, path: Path) -> dict[int, str]:
    """label -> name for every label present or named, in increasing label order."""
    named = {int(k): str(v) for k, v in (names or {}).items()}
    for label in named:
        if not 1 <= label <= 65535:
            raise OutputError(f"{path}: object labels are 1..65535, got {label}")
    labels = sorted(set(present_labels(array)) | set(named))
    if not labels:
        raise OutputError(f"{path}: the label map is empty and names no object; a DICOM-SEG needs a segment")
    return {label: _long_string(named.get(label) or f"object {label}") for label in labels}


def _long_string(text: str) -> str:
    """``text`` as one DICOM LO value: no backslash (the value separator), no control characters, 64 long."""
    clean = "".join(" " if ord(c) < 32 or c == "\x7f" else c for c in text.replace("\\", "/")).strip()
    return clean[:64] or "object"


def _type2_filled(ds: pydicom.Dataset) -> pydicom.Dataset:
    out = copy.deepcopy(ds)
    for keyword in _TYPE2:
        if keyword not in out:
            setattr(out, keyword, "")
    return out


def build_dicom_seg(
    labelmap: Volume,
    source: Volume,
    path: str | Path = "seg.dcm",
    *,
    names: Mapping[int, str] | None = None,
    engine: str | None = None,
    model: str | None = None,
    codes: Mapping[int, tuple[Code, Code]] | None = None,
    default_codes: tuple[Code, Code] = (TISSUE, LESION),
    series_number: int = 999,
) -> Any:
    """The highdicom ``Segmentation`` of ``labelmap`` on ``source`` (see the module notes).

    Args:
        labelmap: integer label map ``[k, j, i]`` on exactly ``source``'s grid; 0 is background.
        source: the image read from a DICOM series (its ``meta["dicom_headers"]``).
        path: only named in error messages.
        names: label -> object name (SegmentLabel); labels present but unnamed become ``object N``.
        engine, model: the algorithm parameters recorded in the SEG.
        codes: label -> (segmented property category, type), each ``(value, scheme, meaning)``.
        default_codes: the codes of labels not in ``codes``.
        series_number: the SEG series' number.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes as dcm_codes
    from pydicom.sr.coding import Code as DicomCode

    path = Path(path)
    headers = check_source(source, path)
    if not labelmap.same_grid(source):
        raise OutputError(
            f"{path}: the label map (size {labelmap.size}, spacing {tuple(round(s, 4) for s in labelmap.spacing)}) "
            f"is not on the source grid (size {source.size}, spacing {tuple(round(s, 4) for s in source.spacing)})"
        )
    array = label_array(np.asarray(labelmap.array), path)
    objects = _objects(array, names, path)
    lut = np.zeros(int(max(objects)) + 1, np.uint16)
    for number, label in enumerate(objects, start=1):
        lut[label] = number
    pixels = lut[array].astype(np.uint8 if len(objects) <= 255 else np.uint16)
    version = _version()
    parameters = {"engine": str(engine or "unknown"), "model": str(model or "default")}
    algorithm = hd.AlgorithmIdentificationSequence(
        name="volsam", family=dcm_codes.cid7162.ArtificialIntelligence, version=version, parameters=parameters
    )
    descriptions = []
    for number, (label, name) in enumerate(objects.items(), start=1):
        category, kind = (codes or {}).get(label, default_codes)
        try:
            category_code, kind_code = DicomCode(*category), DicomCode(*kind)
        except (TypeError, ValueError) as exc:
            raise OutputError(
                f"{path}: object {label}: codes are (value, scheme, meaning), got {category}, {kind}"
            ) from exc
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name,
            segmented_property_category=category_code,
            segmented_property_type=kind_code,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor(*display_colour(label)),
        )
        description.SegmentDescription = f"{_LABEL_PREFIX}{label}"
        descriptions.append(description)
    sources = [_type2_filled(headers[0]), *headers[1:]]
    try:
        return hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="volsam",
            manufacturer_model_name="volsam",
            software_versions=version,
            device_serial_number="volsam",
            content_label="VOLSAM",
            content_description=f"volsam {parameters['engine']} segmentation"[:64],
            series_description="volsam segmentation",
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise OutputError(f"{path}: cannot build a DICOM-SEG from this source ({exc})") from exc


def write_dicom_seg(labelmap: Volume, source: Volume, path: str | Path, **options: Any) -> Path:
    """Write ``labelmap`` as a DICOM-SEG referencing ``source``'s series to ``path``, atomically.

    ``options`` are those of :func:`build_dicom_seg` (names, engine, model, codes, ...). Returns the path.

    Raises:
        OutputError: non-DICOM source, label map off the source grid, nothing to write, unwritable path.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder")
    seg = build_dicom_seg(labelmap, source, path, **options)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the folder {path.parent} ({exc.strerror or exc})") from exc
    with atomic_target(path) as temp:
        seg.save_as(temp, enforce_file_format=True)
    log.debug("wrote DICOM-SEG %s (%d segments, %d frames)", path, len(seg.SegmentSequence), seg.NumberOfFrames)
    return path


def is_dicom_seg(path: str | Path) -> bool:
    """True when ``path`` is a DICOM file of a Segmentation SOP class."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # anything unreadable is not a SEG
        return False
    return str(ds.get("SOPClassUID", "")) in SEG_SOP_CLASSES


def read_dicom_seg(path: str | Path, reference: Volume) -> Volume:
    """A DICOM-SEG as a label map on ``reference``'s grid (the DICOM image it was made from).

    Voxels get the label stored by volsam (``volsam label N``) or else the segment number; where segments
    overlap, the higher segment number wins. ``meta["labels"]`` maps label -> SegmentLabel.

    Raises:
        InputError: not a SEG, a reference not read from DICOM, a SEG of another series or frame of reference.
    """
    import highdicom as hd

    path = Path(path)
    headers = dicom_headers(reference)
    if headers is None:
        raise InputError(f"{path}: reading a DICOM-SEG needs its source DICOM series as the image")
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many kinds
        raise InputError(f"{path}: not a readable DICOM file ({exc})") from exc
    if str(ds.get("SOPClassUID", "")) not in SEG_SOP_CLASSES:
        raise InputError(f"{path}: not a DICOM Segmentation (SOPClassUID {ds.get('SOPClassUID', 'missing')})")
    frame_uid = str(headers[0].get("FrameOfReferenceUID", ""))
    if str(ds.get("FrameOfReferenceUID", "")) != frame_uid:
        raise InputError(f"{path}: frame of reference {ds.get('FrameOfReferenceUID')} is not the image's {frame_uid}")
    uids = [str(h.SOPInstanceUID) for h in headers]
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
        referenced = {str(uid) for _, _, uid in seg.get_source_image_uids()}
        if not referenced & set(uids):
            raise InputError(f"{path}: references none of the image's {len(uids)} slices (another series?)")
        pixels = seg.get_pixels_by_source_instance(
            uids,
            combine_segments=True,
            skip_overlap_checks=True,
            assert_missing_frames_are_empty=True,
            dtype=np.uint16,
        )
    except (ValueError, KeyError, RuntimeError, AttributeError) as exc:
        raise InputError(f"{path}: cannot put this DICOM-SEG on the image's slices ({exc})") from exc
    labels: dict[int, str] = {}
    lut = np.zeros(max(int(item.SegmentNumber) for item in ds.SegmentSequence) + 1, np.uint16)
    for item in ds.SegmentSequence:
        text = str(item.get("SegmentDescription", ""))
        number = int(item.SegmentNumber)
        label = (
            int(text[len(_LABEL_PREFIX) :])
            if text.startswith(_LABEL_PREFIX) and text[len(_LABEL_PREFIX) :].isdigit()
            else number
        )
        lut[number] = label
        labels[label] = str(item.get("SegmentLabel", f"segment {number}"))
    lut = lut.astype(np.uint8) if lut.max() <= 255 else lut
    out = lut[pixels]  # segment number -> label
    return reference.with_array(out, labels=labels, format="dicom-seg", source=str(path))

"""DICOM-SEG output: round trips on MNI152 series (shuffled names, anisotropic, oblique, left-handed, zipped),
checked with highdicom and independently with plain pydicom; required attributes; refusals."""

from __future__ import annotations

import zipfile

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom import config as dicom_config
from pydicom.uid import SegmentationStorage

from tests.io.conftest import DIRECTIONS, SPACING
from tests.support.dicom import write_series
from volsam.core.errors import InputError, NoDicomSource, OutputError
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume
from volsam.io.dicom_seg import display_colour, is_dicom_seg, read_dicom_seg, write_dicom_seg
from volsam.io.writers import label_output_format, write_labels

NAMES = {1: "left lesion", 4: "ventricle"}


def _labels(shape: tuple[int, int, int], image: np.ndarray) -> np.ndarray:
    """Two objects with real-anatomy borders: bright tissue in one block (1), dark voxels in another (4)."""
    lab = np.zeros(shape, np.uint8)
    bright, dark = image[2:6, 5:25, 4:20], image[6:10, 20:40, 18:36]
    lab[2:6, 5:25, 4:20] = np.where(bright > np.median(bright), 1, 0)
    lab[6:10, 20:40, 18:36] = np.where(dark < np.percentile(dark, 40), 4, 0)
    assert 0 < (lab == 1).sum() < bright.size and 0 < (lab == 4).sum() < dark.size
    return lab


@pytest.fixture()
def series(tmp_path, mni_crop, request):
    """(image read from a shuffled-name DICOM series, its label map, the file paths in writing order)."""
    direction = getattr(request, "param", "oblique")
    src = Volume(mni_crop.copy(), spacing=SPACING, origin=(10.5, -20.25, 30.125), direction=DIRECTIONS[direction])
    paths = write_series(src, tmp_path / "series", modality="MR", seed=3)
    image = read_volume(tmp_path / "series")
    return image, image.with_array(_labels(image.shape, image.array)), paths


@pytest.mark.parametrize("series", ["oblique", "oblique_left"], indirect=True)
def test_round_trip_onto_the_source_grid(tmp_path, series):
    image, labelmap, _ = series
    out = write_labels(labelmap, tmp_path / "out" / "seg.dcm", source=image, names=NAMES, engine="medsam-lite")
    assert is_dicom_seg(out)
    back = read_dicom_seg(out, image)
    assert back.same_grid(image, tol=0)
    assert np.array_equal(back.array, labelmap.array)
    assert back.meta["labels"] == NAMES

    # highdicom's own reader: one segment per object, the label map again by source instance
    seg = hd.seg.segread(out)
    assert seg.number_of_segments == 2
    assert [seg.get_segment_description(n).segment_label for n in (1, 2)] == ["left lesion", "ventricle"]
    uids = [h.SOPInstanceUID for h in image.meta["dicom_headers"]]
    stacked = seg.get_pixels_by_source_instance(uids, assert_missing_frames_are_empty=True)
    assert np.array_equal(stacked[..., 0], labelmap.array == 1)
    assert np.array_equal(stacked[..., 1], labelmap.array == 4)


def test_plain_pydicom_sees_the_references_and_positions(tmp_path, series):
    image, labelmap, paths = series
    out = write_dicom_seg(labelmap, image, tmp_path / "seg.dcm", names=NAMES, engine="sam2", model="tiny")
    ds = pydicom.dcmread(out)
    sources = {str(s.SOPInstanceUID): s for s in (pydicom.dcmread(p, stop_before_pixels=True) for p in paths)}
    first = next(iter(sources.values()))
    assert ds.SOPClassUID == SegmentationStorage and ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.StudyInstanceUID == first.StudyInstanceUID
    assert ds.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != first.SeriesInstanceUID
    (ref,) = ds.ReferencedSeriesSequence
    assert ref.SeriesInstanceUID == first.SeriesInstanceUID
    assert {str(r.ReferencedSOPInstanceUID) for r in ref.ReferencedInstanceSequence} == set(sources)

    shared = ds.SharedFunctionalGroupsSequence[0]
    assert np.allclose([float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing], [SPACING[1], SPACING[0]])
    orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    assert np.allclose(orientation, [float(v) for v in first.ImageOrientationPatient])

    # every frame: its source slice, the same ImagePositionPatient, and the right pixels of that object
    k_of = {str(h.SOPInstanceUID): k for k, h in enumerate(image.meta["dicom_headers"])}
    label_of = {1: 1, 2: 4}
    pixels = ds.pixel_array
    assert pixels.shape[0] == ds.NumberOfFrames
    seen = set()
    for f, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        uid = str(frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        position = [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        assert np.allclose(position, [float(v) for v in sources[uid].ImagePositionPatient], atol=1e-4)
        number = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        k = k_of[uid]
        assert np.array_equal(pixels[f] == 1, labelmap.array[k] == label_of[number])
        seen.add((k, number))
    expected = {(k, n) for n, v in label_of.items() for k in range(image.shape[0]) if (labelmap.array[k] == v).any()}
    assert seen == expected  # empty frames are left out, none is missing

    one, two = ds.SegmentSequence
    assert (one.SegmentLabel, two.SegmentLabel) == ("left lesion", "ventricle")
    assert one.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Tissue"
    assert one.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Lesion"
    assert np.allclose(hd.color.CIELabColor(*display_colour(4)).value, two.RecommendedDisplayCIELabValue)
    algorithm = one.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "volsam" and algorithm.AlgorithmVersion == "0.1.0"
    assert "sam2" in algorithm.AlgorithmParameters and "tiny" in algorithm.AlgorithmParameters


REQUIRED = {  # Segmentation IOD (PS3.3 A.51), type 1 and 2 attributes by module
    "Patient": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex"],
    "General Study": ["StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID"],
    "General Series": ["Modality", "SeriesInstanceUID", "SeriesNumber"],
    "Frame of Reference": ["FrameOfReferenceUID", "PositionReferenceIndicator"],
    "Enhanced General Equipment": ["Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions"],
    "Image Pixel": ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"],
    "Segmentation Image": ["ImageType", "ContentLabel", "SegmentationType", "SegmentSequence", "ContentDate"],
    "Multi-frame": ["NumberOfFrames", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"],
    "Common Instance Reference": ["ReferencedSeriesSequence"],
    "SOP Common": ["SOPClassUID", "SOPInstanceUID"],
}
SEGMENT_REQUIRED = [
    "SegmentNumber",
    "SegmentLabel",
    "SegmentAlgorithmType",
    "SegmentAlgorithmName",
    "SegmentedPropertyCategoryCodeSequence",
    "SegmentedPropertyTypeCodeSequence",
]


def test_required_attributes_and_valid_values(tmp_path, series, monkeypatch):
    image, labelmap, _ = series
    out = write_dicom_seg(labelmap, image, tmp_path / "seg.dcm", names=NAMES)
    monkeypatch.setattr(dicom_config.settings, "reading_validation_mode", dicom_config.RAISE)
    ds = pydicom.dcmread(out)
    for element in ds.iterall():  # RAISE mode: a bad VR value (too long, bad UID, bad date) raises here
        _ = element.value
    missing = [(module, kw) for module, kws in REQUIRED.items() for kw in kws if kw not in ds]
    assert missing == []
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.BitsAllocated, ds.SamplesPerPixel, ds.PhotometricInterpretation) == (1, 1, "MONOCHROME2")
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY"]
    for item in ds.SegmentSequence:
        assert [kw for kw in SEGMENT_REQUIRED if kw not in item] == []
        assert item.SegmentAlgorithmType == "SEMIAUTOMATIC"
    # highdicom's parser accepts it as a Segmentation (it checks the functional groups and references)
    assert hd.seg.Segmentation.from_dataset(ds).SegmentationType == "BINARY"


def test_codes_can_be_overridden_per_object(tmp_path, series):
    image, labelmap, _ = series
    organ = (("123037004", "SCT", "Anatomical Structure"), ("35039007", "SCT", "Lateral ventricle"))
    out = write_dicom_seg(labelmap, image, tmp_path / "seg.dcm", codes={4: organ})
    one, two = pydicom.dcmread(out).SegmentSequence
    assert one.SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"  # default: Lesion
    assert two.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Anatomical Structure"
    assert two.SegmentedPropertyTypeCodeSequence[0].CodeValue == "35039007"
    assert two.SegmentLabel == "object 4"


def test_a_zipped_series_can_be_referenced_after_its_files_are_gone(tmp_path, series):
    image, labelmap, paths = series
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in paths:
            zf.write(p, f"export/{p.name}")
    zipped = read_volume(archive)  # unpacked to a temporary folder that is deleted again
    out = write_dicom_seg(zipped.with_array(labelmap.array), zipped, tmp_path / "seg.dcm")
    assert np.array_equal(read_dicom_seg(out, image).array, labelmap.array)


def test_empty_objects_are_legal_but_nothing_at_all_is_refused(tmp_path, series):
    image, _, _ = series
    empty = image.with_array(np.zeros(image.shape, np.uint8))
    out = write_dicom_seg(empty, image, tmp_path / "seg.dcm", names={2: "not found"})
    ds = pydicom.dcmread(out)
    assert ds.NumberOfFrames == image.shape[0]  # highdicom keeps every frame when all are empty
    back = read_dicom_seg(out, image)
    assert back.meta["labels"] == {2: "not found"} and not back.array.any()
    with pytest.raises(OutputError, match="empty and names no object"):
        write_dicom_seg(empty, image, tmp_path / "none.dcm")
    assert not (tmp_path / "none.dcm").exists()


def test_refusals_name_the_problem(tmp_path, series, mni_volume):
    image, labelmap, _ = series
    target = tmp_path / "seg.dcm"
    with pytest.raises(NoDicomSource, match="needs a DICOM series as input"):  # an OutputError (HTTP 409)
        write_dicom_seg(mni_volume.with_array(labelmap.array), mni_volume, target)
    shifted = Volume(labelmap.array, labelmap.spacing, (0.0, 0.0, 0.0), labelmap.direction)
    with pytest.raises(OutputError, match="not on the source grid"):
        write_dicom_seg(shifted, image, target)
    headers = image.meta["dicom_headers"]
    moved = image.with_array(image.array, dicom_headers=headers[::-1])  # slices referenced in the wrong order
    with pytest.raises(OutputError, match="not on the grid"):
        write_dicom_seg(labelmap, moved, target)
    multi = headers[0].copy()
    multi.NumberOfFrames = image.shape[0]
    with pytest.raises(OutputError, match="multi-frame") as caught:
        write_dicom_seg(labelmap, image.with_array(image.array, dicom_headers=(multi,)), target)
    assert type(caught.value) is OutputError  # a DICOM source that cannot be used is not NoDicomSource
    with pytest.raises(OutputError, match="label ids must be >= 0"):
        write_dicom_seg(labelmap.with_array(labelmap.array.astype(np.int16) - 1), image, target)
    assert not target.exists()
    assert list(tmp_path.glob(".seg.dcm.tmp-*")) == []


def test_reading_needs_the_matching_series(tmp_path, series, mni_volume):
    image, labelmap, _ = series
    out = write_dicom_seg(labelmap, image, tmp_path / "seg.dcm")
    with pytest.raises(InputError, match="needs its source DICOM series"):
        read_dicom_seg(out, mni_volume)
    other = read_volume(write_series(image, tmp_path / "other")[0].parent)  # same voxels, new UIDs
    with pytest.raises(InputError, match="frame of reference"):
        read_dicom_seg(out, other)
    with pytest.raises(InputError, match="not a DICOM Segmentation"):
        read_dicom_seg(next((tmp_path / "other").iterdir()), other)


def test_label_output_formats(tmp_path):
    assert label_output_format(tmp_path / "seg.dcm") == "dicom-seg"
    assert label_output_format(tmp_path / "seg", "dicom-seg") == "dicom-seg"
    assert label_output_format(tmp_path / "seg.nii.gz") == "nifti"
    assert label_output_format(tmp_path / "seg.nii.gz", "nifti") == "nifti"  # a resolved format passes again
    with pytest.raises(OutputError, match="the format asked is nrrd"):
        label_output_format(tmp_path / "seg.nii.gz", "nrrd")
    with pytest.raises(OutputError, match="name it .dcm"):
        label_output_format(tmp_path / "seg.nii.gz", "dicom-seg")
    with pytest.raises(OutputError, match="unknown output format"):
        label_output_format(tmp_path / "seg.nii.gz", "rtstruct")
    with pytest.raises(OutputError, match="DICOM-SEG"):
        write_volume(Volume(np.zeros((2, 3, 4), np.uint8)), tmp_path / "seg.dcm", label=True)
    with pytest.raises(OutputError, match="needs the DICOM image"):
        write_labels(Volume(np.ones((2, 3, 4), np.uint8)), tmp_path / "seg.dcm")


def test_headers_are_kept_in_slice_order_without_pixels(series):
    image, _, paths = series
    headers = image.meta["dicom_headers"]
    by_uid = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in paths}
    assert [by_uid[str(h.SOPInstanceUID)] for h in headers] == paths  # k order, whatever the file names
    assert all("PixelData" not in h for h in headers)
    assert [p.name for p in paths] != sorted(p.name for p in paths)


def test_a_seg_beside_its_series_is_not_read_as_an_image(tmp_path, series):
    image, labelmap, paths = series
    folder = paths[0].parent
    out = write_dicom_seg(labelmap, image, folder / "seg.dcm", names=NAMES)
    again = read_volume(folder)  # the SEG in the series folder is skipped, not a second series
    assert again.same_grid(image) and np.array_equal(again.array, image.array)
    with pytest.raises(InputError, match="it is a DICOM-SEG: give it as --mask"):
        read_volume(out)


def test_many_objects_keep_their_labels(tmp_path, series):
    image, _, _ = series
    many = np.zeros(image.shape, np.uint16)
    for n in range(40):  # labels 7, 13, ... 241: 40 one-voxel-row objects spread over the slices
        many[n % image.shape[0], n, 2 : 2 + n % 9 + 1] = 7 + 6 * n
    out = write_dicom_seg(image.with_array(many), image, tmp_path / "seg.dcm")
    assert len(pydicom.dcmread(out).SegmentSequence) == 40
    back = read_dicom_seg(out, image)
    assert np.array_equal(back.array, many) and back.array.dtype == np.uint8


def test_headers_rounded_by_a_scanner_still_pair_with_their_slices(tmp_path, series):
    image, labelmap, _ = series
    headers = []
    for k, h in enumerate(image.meta["dicom_headers"]):
        h = h.copy()  # positions written with 2 decimals and a 0.05 mm wobble, as some scanners do
        h.ImagePositionPatient = [f"{float(v) + 0.05 * (-1) ** k:.2f}" for v in h.ImagePositionPatient]
        headers.append(h)
    rounded = image.with_array(image.array, dicom_headers=tuple(headers))
    out = write_dicom_seg(labelmap, rounded, tmp_path / "seg.dcm")
    frames = pydicom.dcmread(out).PerFrameFunctionalGroupsSequence
    by_uid = {str(h.SOPInstanceUID): h for h in headers}
    for frame in frames:  # each frame keeps its own file's position
        uid = str(frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        assert list(frame.PlanePositionSequence[0].ImagePositionPatient) == list(by_uid[uid].ImagePositionPatient)
    assert np.array_equal(read_dicom_seg(out, rounded).array, labelmap.array)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_real_scanner_files_from_pydicom(tmp_path, name):
    from pydicom.data import get_testdata_file

    image = read_volume(get_testdata_file(name))
    lab = np.zeros(image.shape, np.uint8)
    lab[0, 20:40, 10:30] = 1
    out = write_dicom_seg(image.with_array(lab), image, tmp_path / "seg.dcm", names={1: "blob"})
    ds = pydicom.dcmread(out)
    source = pydicom.dcmread(get_testdata_file(name), stop_before_pixels=True)
    assert (ds.PatientID, ds.StudyInstanceUID) == (source.PatientID, source.StudyInstanceUID)
    assert np.array_equal(read_dicom_seg(out, image).array, lab)


def test_user_names_become_valid_segment_labels_and_bad_codes_are_refused(tmp_path, series, monkeypatch):
    image, labelmap, _ = series
    names = {1: "left\\right lesion\nsecond line", 4: "v" * 100}
    out = write_dicom_seg(labelmap, image, tmp_path / "seg.dcm", names=names)
    monkeypatch.setattr(dicom_config.settings, "reading_validation_mode", dicom_config.RAISE)
    one, two = pydicom.dcmread(out).SegmentSequence
    assert (one.SegmentLabel, two.SegmentLabel) == ("left/right lesion second line", "v" * 64)
    with pytest.raises(OutputError, match=r"object 4: codes are \(value, scheme, meaning\)"):
        write_dicom_seg(labelmap, image, tmp_path / "bad.dcm", codes={4: (("1",), ("2", "SCT", "x"))})

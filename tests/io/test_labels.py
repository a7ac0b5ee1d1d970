"""io/labels.py: the one label palette (the web page's, the overlays', the videos' and the DICOM-SEG's),
label arrays, output formats -- and io's modules import one another without a cycle."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

import volsam.io
from volsam.core.errors import NoDicomSource, OutputError
from volsam.core.volume import Volume
from volsam.io import dicom_seg, labels, overlay, video_out, writers
from volsam.io.labels import PALETTE, colour_of, label_array

SRC = Path(volsam.io.__file__).parent
APP_JS = SRC.parent / "server" / "static" / "app.js"


def test_the_palette_is_the_web_pages():
    match = re.search(r"const PALETTE = (\[.*?\]);", APP_JS.read_text(), re.S)
    assert match, "app.js has no PALETTE"
    assert tuple(tuple(c) for c in json.loads(match.group(1))) == PALETTE
    assert len(PALETTE) == 10 and len(set(PALETTE)) == 10


def test_colours_cycle_through_the_palette():
    assert colour_of(1) == (230, 25, 75) and colour_of(4) == (0, 130, 200)
    assert colour_of(9) == (210, 245, 60) and colour_of(10) == (250, 190, 212)  # overlays had 8 colours before
    assert colour_of(11) == colour_of(1) and colour_of(np.uint16(23)) == colour_of(3)


def test_overlays_videos_and_dicom_seg_share_it():
    assert overlay.colour_of is colour_of and video_out.colour_of is colour_of and dicom_seg.PALETTE is PALETTE
    grey = np.full((8, 8), 100, np.uint8)
    lab = np.zeros((8, 8), np.uint16)
    lab[1:7, 1:7] = 9
    rgb = overlay.render_overlay(grey, lab)
    assert tuple(rgb[1, 1]) == colour_of(9)  # the outline is opaque
    fill = np.round(0.7 * 100 + 0.3 * np.array(colour_of(9), np.float32)).astype(int)
    assert np.all(np.abs(rgb[3, 3].astype(int) - fill) <= 1)  # the inside is a light fill
    assert tuple(video_out.render_contours(grey, lab)[1, 1]) == colour_of(9)


def test_dicom_seg_display_colours_are_the_palette_in_cielab():
    assert dicom_seg.display_colour(1) == pytest.approx(dicom_seg._rgb_to_lab(PALETTE[0]))
    assert dicom_seg.display_colour(12) == dicom_seg.display_colour(2)
    white = dicom_seg._rgb_to_lab((255, 255, 255))
    assert white == pytest.approx((100.0, 0.0, 0.0), abs=0.05)


@pytest.mark.parametrize(
    ("array", "dtype"),
    [
        (np.array([[[True, False]]]), np.uint8),
        (np.array([[[0, 255]]], np.int64), np.uint8),
        (np.array([[[0, 256]]], np.int32), np.uint16),
        (np.array([[[0.0, 3.0]]], np.float32), np.uint8),
        (np.zeros((0, 2, 2), np.float64), np.uint8),
    ],
)
def test_label_array_takes_the_smallest_type(array, dtype):
    out = label_array(array, Path("x.nii.gz"))
    assert out.dtype == dtype and np.array_equal(out, array.astype(dtype))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([[[-1, 2]]]), "must be >= 0, found -1"),
        (np.array([[[0, 70000]]]), "<= 65535"),
        (np.array([[[0.5]]]), "fractions or NaN"),
        (np.array([[[np.nan]]]), "fractions or NaN"),
        (np.array([[["a"]]]), "integer values"),
    ],
)
def test_label_array_refusals_name_the_output(array, message):
    with pytest.raises(OutputError, match=re.escape(message)) as caught:
        label_array(array, Path("out/x.nii.gz"))
    assert str(caught.value).startswith("out/x.nii.gz: ")


def test_writers_keeps_the_old_names():
    for name in ("DICOM_SEG", "LABEL_FORMATS", "label_array", "label_output_format", "output_format"):
        assert getattr(writers, name) is getattr(labels, name)
    assert labels.output_format(Path("a/b.NII.GZ")) == ("nifti", ".NII.GZ")


def test_check_source_refuses_a_non_dicom_image_with_no_dicom_source(tmp_path):
    image = Volume(np.zeros((2, 3, 4), np.int16), meta={"format": "nifti"})
    with pytest.raises(NoDicomSource, match=r"seg\.dcm: a DICOM-SEG output needs a DICOM series as input.*nifti"):
        dicom_seg.check_source(image, "seg.dcm")
    assert issubclass(NoDicomSource, OutputError) and NoDicomSource.exit_code == 6
    with pytest.raises(NoDicomSource):
        writers.write_labels(image.with_array(np.ones((2, 3, 4), np.uint8)), tmp_path / "no" / "seg.dcm", source=image)
    assert not (tmp_path / "no").exists()


def _io_imports() -> dict[str, set[str]]:
    """io module -> the io modules it imports (anywhere in it, function bodies too)."""
    graph: dict[str, set[str]] = {}
    for path in SRC.glob("*.py"):
        if path.stem == "__init__":
            continue
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("volsam.io."):
                found.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("volsam.io.")}
        graph[path.stem] = found
    return graph


def test_io_modules_import_one_another_without_a_cycle():
    graph = _io_imports()
    assert graph["labels"] == set()  # a leaf: numpy and core only
    assert {"labels"} <= graph["writers"] and {"labels"} <= graph["dicom_seg"] and "writers" not in graph["dicom_seg"]

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    cycles = sorted(module for module in graph if reaches(module, module, {module}))
    assert cycles == []


# -- 3D Slicer's segmentation file (.seg.nrrd) --------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("seg.seg.nrrd", None, "slicer-seg"),
        ("a/SEG.SEG.NRRD", "auto", "slicer-seg"),
        ("seg.seg.nrrd", "slicer-seg", "slicer-seg"),  # what label_output_format returned, passed back in
        ("seg.nrrd", None, "nrrd"),
        ("seg.nii.gz", None, "nifti"),
    ],
)
def test_seg_nrrd_is_its_own_label_format(name, fmt, expected):
    assert labels.label_output_format(name, fmt) == expected


def test_seg_nrrd_refusals():
    assert labels.output_format(Path("x.seg.nrrd")) == ("slicer-seg", ".seg.nrrd")
    with pytest.raises(OutputError, match="the name says nifti, the format asked is slicer-seg"):
        labels.label_output_format("x.nii.gz", "slicer-seg")
    with pytest.raises(OutputError, match="name it .dcm"):
        labels.label_output_format("x.seg.nrrd", "dicom-seg")
    assert "slicer-seg" not in labels.LABEL_FORMATS  # --format stays auto | dicom-seg: the name says .seg.nrrd


def test_slicer_segment_fields_name_colour_and_bound_each_label():
    array = np.zeros((4, 5, 6), np.uint8)  # [k, j, i]
    array[1:3, 2:4, 1:5] = 1
    array[3, 4, 5] = 12
    fields = labels.slicer_segment_fields(array, {1: "liver", 7: "tumour\nnew line"})
    assert fields["Segmentation_MasterRepresentation"] == "Binary labelmap"
    assert fields["Segmentation_ReferenceImageExtentOffset"] == "0 0 0"
    segments = {fields[f"Segment{n}_LabelValue"]: n for n in range(3)}
    assert list(segments) == ["1", "7", "12"]  # present or named, in label order
    one, seven, twelve = (f"Segment{segments[v]}_" for v in ("1", "7", "12"))
    assert fields[one + "Name"] == "liver" and fields[one + "ID"] == "Segment_1"
    assert fields[one + "Extent"] == "1 4 2 3 1 2"  # i0 i1 j0 j1 k0 k1
    assert fields[one + "Color"] == "0.901961 0.0980392 0.294118"  # PALETTE[0] / 255
    assert fields[seven + "Name"] == "tumour new line"  # one header line
    assert fields[seven + "Extent"] == "0 -1 0 -1 0 -1"  # named, no voxel: an empty segment
    assert fields[twelve + "Name"] == "object 12" and fields[twelve + "Extent"] == "5 5 4 4 3 3"
    assert fields[twelve + "Color"] == " ".join(f"{c / 255:.6g}" for c in colour_of(2))  # the palette cycles
    assert all(fields[f"Segment{n}_Layer"] == "0" for n in range(3))
    with pytest.raises(OutputError, match="1..65535"):
        labels.slicer_segment_fields(array, {0: "background"})

"""The Slicer module's logic without a server: uploads carry the node's exact grid, RAS prompts become the
voxels they cover (oblique, flipped, transformed volumes), region writes change only their box, volsam's
``.seg.nrrd`` opens in Slicer as named segments, the module needs no Qt, and its widget calls only the logic."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import numpy as np
import pytest

from tests.slicer.conftest import SKIP_REASON, have_slicer_core  # noqa: E402

if not have_slicer_core():
    pytest.skip(SKIP_REASON, allow_module_level=True)

import vtk  # noqa: E402
from VolSAMLib.logic import (  # noqa: E402
    PALETTE,
    WINDOW_PRESETS,
    VolSAMError,
    VolSAMLogic,
    VolumeHandle,
    node_ijk_to_ras,
    volume_array,
    write_segment_box,
)
from VolSAMLib.nrrd import write_nrrd  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from tests.slicer.conftest import MODULE, ROOT, exported, load_segmentation, load_volume, ras_of  # noqa: E402


def _rotation(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


GRIDS = {
    "oblique": np.block(
        [
            [_rotation(30) @ np.diag([0.9, 0.8, 1.3]), np.array([[12.5], [-40.0], [7.0]])],
            [np.zeros((1, 3)), np.ones((1, 1))],
        ]
    ),
    "flipped": np.array([[-1.0, 0, 0, 5.0], [0, 1.0, 0, -3.0], [0, 0, -2.5, 40.0], [0, 0, 0, 1]]),
    "aniso": np.diag([0.6, 0.7, 3.0, 1.0]),
}


def _volume(scene, array: np.ndarray, ijk_to_ras: np.ndarray, name: str = "volume"):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    image = vtk.vtkImageData()
    nk, nj, ni = array.shape
    image.SetDimensions(ni, nj, nk)
    image.AllocateScalars(numpy_support.get_vtk_array_type(array.dtype), 1)
    volume_array_of(image)[:] = array.reshape(nk, nj, ni)
    node.SetAndObserveImageData(image)
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(ijk_to_ras[r, c]))
    node.SetIJKToRASMatrix(m)
    return node


def volume_array_of(image):
    ni, nj, nk = image.GetDimensions()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(nk, nj, ni)


def _handle(node, axis: int = 2) -> VolumeHandle:
    ni, nj, nk = node.GetImageData().GetDimensions()
    return VolumeHandle("s", "l", node, "key", node_ijk_to_ras(node), (ni, nj, nk), axis, {}, ())


@pytest.fixture()
def logic():
    return VolSAMLogic("http://127.0.0.1:9")  # nothing listens: these tests must not need a server


# -- uploads ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int16", "uint8", "float32", "int32", "uint16"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_the_uploaded_nrrd_is_the_node_voxel_for_voxel_on_its_grid(scene, tmp_path, dtype, gzipped):
    rng = np.random.default_rng(3)
    array = (rng.random((5, 6, 7)) * 200).astype(dtype)
    node = _volume(scene, array, GRIDS["oblique"])
    path = write_nrrd(str(tmp_path / "v.nrrd"), volume_array(node), node_ijk_to_ras(node), gzipped=gzipped)
    back = load_volume(scene, path)
    assert np.array_equal(volume_array(back), array)
    assert np.allclose(node_ijk_to_ras(back), GRIDS["oblique"], atol=1e-9)
    header = Path(path).read_bytes()[:600].decode("latin-1")
    assert "space: left-posterior-superior" in header and f"encoding: {'gzip' if gzipped else 'raw'}" in header


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_geometry_survives_slicers_reader_and_writer_for_every_grid(scene, tmp_path, grid):
    node = _volume(scene, np.arange(60, dtype=np.int16).reshape(3, 4, 5), GRIDS[grid])
    back = load_volume(scene, write_nrrd(str(tmp_path / "v.nrrd"), volume_array(node), GRIDS[grid]))
    assert np.allclose(node_ijk_to_ras(back), GRIDS[grid], atol=1e-9)


def test_the_content_key_follows_voxels_geometry_and_options(scene):
    array = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    key = VolSAMLogic.content_key
    base = key(array, GRIDS["aniso"], ("medsam-lite", None, "auto", None, "k"))
    assert base == key(array.copy(), GRIDS["aniso"].copy(), ("medsam-lite", None, "auto", None, "k"))
    changed = array.copy()
    changed[1, 2, 3] += 1
    assert key(changed, GRIDS["aniso"], ("medsam-lite", None, "auto", None, "k")) != base
    assert key(array, GRIDS["flipped"], ("medsam-lite", None, "auto", None, "k")) != base
    assert key(array, GRIDS["aniso"], ("medsam-lite", None, "CT", None, "k")) != base
    assert key(array.astype(np.int32), GRIDS["aniso"], ("medsam-lite", None, "auto", None, "k")) != base


def test_vector_volumes_are_refused_in_one_line(scene):
    node = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "rgb")
    image = vtk.vtkImageData()
    image.SetDimensions(4, 4, 2)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 3)
    node.SetAndObserveImageData(image)
    with pytest.raises(VolSAMError, match="3 values per voxel"):
        volume_array(node)


# -- prompts: RAS -> voxels ------------------------------------------------------------------------------------
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_a_box_between_two_ras_corners_is_the_voxel_box_on_that_slice(scene, logic, grid):
    node = _volume(scene, np.zeros((20, 30, 40), np.int16), GRIDS[grid])
    handle = _handle(node)
    rng = np.random.default_rng(7)
    for _ in range(20):
        i0, i1 = sorted(rng.choice(40, 2, replace=False))
        j0, j1 = sorted(rng.choice(30, 2, replace=False))
        k = int(rng.integers(0, 20))
        jitter = rng.uniform(-0.45, 0.45, size=(2, 3)) * [1, 1, 0.5]
        a = ras_of(node, np.array([i1, j0, k]) + jitter[0])  # any two opposite corners, in any order
        b = ras_of(node, np.array([i0, j1, k]) + jitter[1])
        assert logic.box_prompt(handle, a, b) == (k, (i0, j0, i1, j1))
        assert logic.voxel(handle, ras_of(node, np.array([i0, j1, k]) + jitter[0])) == (i0, j1, k)


def test_boxes_along_other_axes_use_the_two_other_indices(scene, logic):
    node = _volume(scene, np.zeros((20, 30, 40), np.int16), GRIDS["oblique"])
    a, b = ras_of(node, (3, 7, 2)), ras_of(node, (12, 7, 15))
    assert logic.box_prompt(_handle(node, axis=1), a, b) == (7, (3, 2, 12, 15))  # (i, k) on slice j = 7
    a, b = ras_of(node, (5, 1, 2)), ras_of(node, (5, 20, 11))
    assert logic.box_prompt(_handle(node, axis=0), a, b) == (5, (1, 2, 20, 11))  # (j, k) on slice i = 5


def test_refusals_say_what_to_do(scene, logic):
    node = _volume(scene, np.zeros((20, 30, 40), np.int16), GRIDS["oblique"])
    handle = _handle(node)
    with pytest.raises(VolSAMError, match=r"6\.0 slices apart along k: draw it on a slice across k \(an axial view"):
        logic.box_prompt(handle, ras_of(node, (3, 4, 2)), ras_of(node, (3, 20, 8)))  # drawn on a sagittal-ish view
    with pytest.raises(VolSAMError, match="two different corners"):
        logic.box_prompt(handle, ras_of(node, (3, 4, 2)), ras_of(node, (3.2, 4.1, 2)))
    with pytest.raises(VolSAMError, match="outside volume"):
        logic.box_prompt(handle, ras_of(node, (50, 4, 2)), ras_of(node, (60, 9, 2)))
    with pytest.raises(VolSAMError, match="outside volume"):
        logic.voxel(handle, ras_of(node, (3, 4, -1)))
    # a box drawn past the image's edge is clipped to it
    assert logic.box_prompt(handle, ras_of(node, (-5, 4, 2)), ras_of(node, (10, 45, 2))) == (2, (0, 4, 10, 29))


def test_prompts_go_through_a_linear_transform_of_the_volume(scene, logic):
    node = _volume(scene, np.zeros((20, 30, 40), np.int16), GRIDS["flipped"])
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    to_parent = np.eye(4)
    to_parent[:3, :3] = _rotation(40)
    to_parent[:3, 3] = (15.0, -7.0, 3.0)
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, to_parent[r, c])
    transform.SetMatrixTransformToParent(m)
    node.SetAndObserveTransformNodeID(transform.GetID())
    handle = _handle(node)
    world = [list((to_parent @ np.array([*ras_of(node, ijk), 1.0]))[:3]) for ijk in ((4, 5, 6), (9, 12, 6))]
    assert logic.box_prompt(handle, *world) == (6, (4, 5, 9, 12))


# -- results: region writes ---------------------------------------------------------------------------------------
def test_a_region_write_changes_its_box_only_and_keeps_segments_apart(scene):
    node = _volume(scene, np.zeros((8, 9, 10), np.int16), GRIDS["oblique"])
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(node)
    segments = segmentation.GetSegmentation()
    m = node_ijk_to_ras(node)
    expected = np.zeros((8, 9, 10), np.uint8)
    expected[1:6, 2:7, 3:9] = 1
    a = segments.AddEmptySegment("", "a", [1, 0, 0])
    write_segment_box(segmentation, a, (0, 0, 0, 9, 8, 7), expected == 1, m)
    b = segments.AddEmptySegment("", "b", [0, 1, 0])  # added later: Slicer puts it in a's layer
    box = (4, 3, 2, 6, 5, 4)  # i0, j0, k0, i1, j1, k1: b takes part of a's voxels, a gives them up
    inside = np.zeros((3, 3, 3), bool)
    inside[:, 1:, :] = True
    write_segment_box(segmentation, b, box, inside, m)
    write_segment_box(segmentation, a, box, (expected[2:5, 3:6, 4:7] == 1) & ~inside, m)
    expected[2:5, 3:6, 4:7][inside] = 2
    labels, matrix = exported(segmentation, node, [a, b])
    assert np.array_equal(labels, expected) and np.allclose(matrix, m)
    write_segment_box(segmentation, b, (9, 8, 7, 9, 8, 7), np.ones((1, 1, 1), bool), m)  # grows past its extent
    expected[7, 8, 9] = 2
    assert np.array_equal(exported(segmentation, node, [a, b])[0], expected)
    segments.CollapseBinaryLabelmaps(False)  # one shared layer, label values 1 and 2 (as Slicer may save them)
    assert segments.GetNumberOfLayers() == 1
    write_segment_box(segmentation, b, (0, 0, 0, 2, 1, 0), np.ones((1, 2, 3), bool), m)  # b: value 2 there
    expected[0, 0:2, 0:3] = 2
    write_segment_box(segmentation, a, (0, 0, 0, 9, 8, 7), np.zeros((8, 9, 10), bool), m)  # a emptied
    expected[expected == 1] = 0
    assert np.array_equal(exported(segmentation, node, [a, b])[0], expected)
    write_segment_box(segmentation, a, (8, 7, 6, 9, 8, 7), np.ones((2, 2, 2), bool), m)  # over b's corner
    over = np.zeros(expected.shape, bool)
    over[6:8, 7:9, 8:10] = True
    expected[over & (expected != 2)] = 1  # b keeps its voxel (the later segment wins in an export)
    assert np.array_equal(exported(segmentation, node, [a, b])[0], expected)
    assert np.array_equal(exported(segmentation, node, [b, a])[0] == 2, over)  # a has all of its box


def test_a_correction_on_a_512x512x600_ct_rewrites_only_its_region_quickly(scene):
    node = _volume(scene, np.zeros((600, 512, 512), np.int16), np.diag([-0.7, -0.7, 1.0, 1.0]))
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(node)
    liver = segmentation.GetSegmentation().AddEmptySegment("", "liver", [1, 0, 0])
    m = node_ijk_to_ras(node)
    big = np.zeros((120, 200, 220), bool)
    big[10:110, 20:180, 20:200] = True
    write_segment_box(segmentation, liver, (150, 150, 250, 369, 349, 369), big, m)  # the first propagation
    fix = np.zeros((15, 60, 60), bool)
    fix[:, 10:50, 5:55] = True
    t0 = time.perf_counter()
    write_segment_box(segmentation, liver, (300, 300, 300, 359, 359, 314), fix, m)  # a correction's region
    seconds = time.perf_counter() - t0
    assert seconds < 2.0, f"a 60x60x15 region took {seconds:.2f} s"
    labels = exported(segmentation, node, [liver])[0]
    assert labels[300:315, 300:360, 300:360].sum() == fix.sum()
    assert labels[260:300, 170:330, 170:350].all()  # the rest of the segment is untouched


# -- volsam's .seg.nrrd in Slicer ----------------------------------------------------------------------------------
def test_volsams_seg_nrrd_opens_in_slicer_as_named_coloured_segments(scene, cases):
    folder = Path(cases["folder"])
    segmentation = load_segmentation(scene, folder / "two.seg.nrrd")
    s = segmentation.GetSegmentation()
    segments = [s.GetSegment(s.GetNthSegmentID(n)) for n in range(s.GetNumberOfSegments())]
    assert [(g.GetName(), g.GetLabelValue()) for g in segments] == [("liver", 1), ("tumour \u00e9", 2)]
    for label, g in enumerate(segments, start=1):
        assert np.allclose(g.GetColor(), np.array(PALETTE[label - 1]) / 255, atol=1e-5)
    reference = load_volume(scene, str(folder / "two.seg.nrrd"), "vtkMRMLLabelMapVolumeNode")  # as a plain image
    labels, matrix = exported(segmentation, reference)
    assert np.array_equal(labels, np.load(folder / "two.npy"))
    assert np.allclose(matrix, node_ijk_to_ras(reference))


def test_volsams_seg_nrrd_reads_in_slicerio_with_names_colours_extents_and_grid(scene, cases, tmp_path):
    """slicerio (PyPI; reads Slicer's .seg.nrrd without Slicer) on volsam's file: every segment's name, label
    value, layer, colour and extent (the label's voxel bounding box), the voxels and the IJK -> LPS grid.
    slicerio reads the header through pynrrd, which drops non-ASCII bytes ("tumour \u00e9" -> "tumour"); it
    does the same to the file Slicer itself writes for these segments, and Slicer's reader keeps the name."""
    import slicerio

    folder = Path(cases["folder"])
    labels = np.load(folder / "two.npy")  # [k, j, i]
    seg = slicerio.read_segmentation(str(folder / "two.seg.nrrd"))
    segments = seg["segments"]
    assert [(s["labelValue"], s["layer"]) for s in segments] == [(1, 0), (2, 0)]
    assert segments[0]["name"] == "liver"
    for label, s in enumerate(segments, start=1):
        assert np.allclose(s["color"], np.array(PALETTE[label - 1]) / 255, atol=1e-5)
        k, j, i = (np.flatnonzero((labels == label).any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3))
        assert s["extent"] == [i[0], i[-1], j[0], j[-1], k[0], k[-1]]
    assert np.array_equal(np.transpose(seg["voxels"], (2, 1, 0)), labels)
    reference = load_volume(scene, str(folder / "two.seg.nrrd"), "vtkMRMLLabelMapVolumeNode")
    assert np.allclose(seg["ijkToLPS"], np.diag([-1.0, -1.0, 1.0, 1.0]) @ node_ijk_to_ras(reference), atol=1e-9)
    liver = slicerio.extract_segments(seg, [("liver", 7)])  # what a slicerio user does with it
    assert np.array_equal(np.transpose(liver["voxels"], (2, 1, 0)), np.where(labels == 1, 7, 0))

    # the same segments written by Slicer's own writer: slicerio gives the same names
    segmentation = load_segmentation(scene, folder / "two.seg.nrrd")
    assert segmentation.GetSegmentation().GetNthSegment(1).GetName() == "tumour \u00e9"
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(tmp_path / "by-slicer.seg.nrrd"))
    assert storage.WriteData(segmentation)
    by_slicer = slicerio.read_segmentation(str(tmp_path / "by-slicer.seg.nrrd"))
    assert [s["name"] for s in by_slicer["segments"]] == [s["name"] for s in segments] == ["liver", "tumour"]
    assert "Segment1_Name:=tumour \u00e9\n".encode() in (folder / "two.seg.nrrd").read_bytes()  # UTF-8, as Slicer's


# -- the module's shape -----------------------------------------------------------------------------------------
def test_the_widget_is_a_thin_layer_over_existing_logic_calls():
    tree = ast.parse((MODULE / "VolSAM.py").read_text())
    compile(tree, "VolSAM.py", "exec")
    called = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "logic"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
    }
    assert {"open_volume", "add_box", "add_point", "undo", "redo"} <= called
    missing = {name for name in called if not hasattr(VolSAMLogic, name) and name not in _instance_attributes()}
    assert not missing, f"the widget calls logic attributes that do not exist: {sorted(missing)}"
    widget_lines = len((MODULE / "VolSAM.py").read_text().splitlines())
    logic_lines = len((MODULE / "VolSAMLib" / "logic.py").read_text().splitlines())
    assert widget_lines < 700 and logic_lines > 400


def _instance_attributes() -> set[str]:
    return set(vars(VolSAMLogic("http://127.0.0.1:9")))


def test_palette_and_windows_are_volsams():
    labels_py = ast.parse((ROOT / "src" / "volsam" / "io" / "labels.py").read_text())
    palette = next(
        ast.literal_eval(n.value) for n in labels_py.body if isinstance(n, ast.AnnAssign) and n.target.id == "PALETTE"
    )
    assert tuple(palette) == PALETTE
    preprocess = ast.parse((ROOT / "src" / "volsam" / "preprocess.py").read_text())
    windows = next(
        ast.literal_eval(n.value) for n in preprocess.body if isinstance(n, ast.AnnAssign) and n.target.id == "WINDOWS"
    )
    assert {name: (w, lvl) for name, (lvl, w) in windows.items()} == WINDOW_PRESETS


def test_window_presets_set_the_display(scene):
    node = _volume(scene, np.zeros((2, 3, 4), np.int16), np.eye(4))
    VolSAMLogic.apply_window(node, "lung")
    assert (node.GetDisplayNode().GetWindow(), node.GetDisplayNode().GetLevel()) == (1500.0, -600.0)
    with pytest.raises(VolSAMError, match="unknown window"):
        VolSAMLogic.apply_window(node, "liver")

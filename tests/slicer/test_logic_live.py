"""The Slicer module's logic against a real ``volsam serve`` (LiteMedSAM on the CPU), with Slicer's own MRML
nodes (slicer-core): volumes read by Slicer's reader, segments exported on the volume's grid with Slicer's
segmentation logic.

* oblique, anisotropic and flipped volumes: a box drawn between two RAS corners gives, on the volume's grid,
  exactly what ``volsam segment`` writes for the same voxel box (its ``.seg.nrrd``, read by Slicer: Dice 1.0);
* clicks, undo / redo, two segments (names, colours), a painted slice as a mask prompt: every segment equals
  the server's label map, and only the changed regions travel back;
* the image is uploaded once per content; a wrong token and a server that dies mid-propagation give one
  clear message and leave the segmentation as it was.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.slicer.conftest import SKIP_REASON, have_slicer_core  # noqa: E402

if not have_slicer_core():
    pytest.skip(SKIP_REASON, allow_module_level=True)

from VolSAMLib.logic import (  # noqa: E402
    PALETTE,
    ServerUnreachable,
    VolSAMError,
    VolSAMLogic,
    node_ijk_to_ras,
    volume_array,
    write_segment_box,
)

from tests.slicer.conftest import (  # noqa: E402
    VOLSAM,
    child_env,
    exported,
    free_port,
    load_segmentation,
    load_volume,
    ras_of,
)

pytestmark = pytest.mark.slow


def _logic(server, **options) -> VolSAMLogic:
    url, token = server
    return VolSAMLogic(url, token=token, **options)


def _corners(volume, case, jitter=0.0, seed=0):
    """World RAS of two opposite corners of the case's box (as a drag on a slice view gives them)."""
    u0, v0, u1, v1 = case["box"]
    k = case["slice"]
    shake = np.random.default_rng(seed).uniform(-jitter, jitter, size=(2, 3))
    return ras_of(volume, np.array([u1, v0, k]) + shake[0]), ras_of(volume, np.array([u0, v1, k]) + shake[1])


def _segment(segmentation, volume, segment_id) -> np.ndarray:
    return exported(segmentation, volume, [segment_id])[0] != 0


def _server_object(logic, handle, segmentation, segment_id) -> np.ndarray:
    return logic.labelmap(handle) == handle.ref(segmentation, segment_id).label


@pytest.mark.parametrize("variant", ["oblique", "aniso", "flipped"])
def test_a_box_from_ras_corners_is_what_volsam_segment_writes(server, cases, scene, tmp_path, variant):
    case = cases[variant]
    volume = load_volume(scene, case["file"])
    logic = _logic(server)
    handle = logic.open_volume(volume)
    assert handle.size == tuple(volume.GetImageData().GetDimensions())
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segment_id = logic.add_box(handle, segmentation, *_corners(volume, case, jitter=0.4), name="lesion")

    out = tmp_path / "cli.seg.nrrd"
    u0, v0, u1, v1 = case["box"]
    done = subprocess.run(
        [str(VOLSAM), "segment", case["file"], "--box", f"{u0},{v0},{u1},{v1}", "--slice", str(case["slice"]),
         "--device", "cpu", "-o", str(out)],
        capture_output=True, text=True, env=child_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    written = load_segmentation(scene, out)  # Slicer's own segmentation reader
    cli_segment = written.GetSegmentation().GetNthSegment(0)
    assert cli_segment.GetName() == "object 1"
    assert np.allclose(cli_segment.GetColor(), np.array(PALETTE[0]) / 255, atol=1e-5)
    expected = exported(written, volume)[0] != 0
    got, matrix = exported(segmentation, volume, [segment_id])
    assert expected.sum() > 20
    assert np.array_equal(got != 0, expected)  # Dice 1.0, voxel for voxel on the volume's grid
    assert np.allclose(matrix, node_ijk_to_ras(volume))
    segment = segmentation.GetSegmentation().GetSegment(segment_id)
    assert segment.GetName() == "lesion" and np.allclose(segment.GetColor(), np.array(PALETTE[0]) / 255)
    logic.close(handle)


def test_clicks_undo_redo_two_objects_and_only_changed_regions(server, cases, scene):
    case = cases["flat"]
    volume = load_volume(scene, case["file"])
    logic = _logic(server)
    handle = logic.open_volume(volume)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segment_id = logic.add_box(handle, segmentation, *_corners(volume, case))
    boxed = _segment(segmentation, volume, segment_id)
    assert boxed.any()
    start = len(logic.remote.log)

    k = case["slice"]
    centre = np.argwhere(boxed[k])[len(np.argwhere(boxed[k])) // 2]  # (j, i) of an object voxel
    click = (int(centre[1]), int(centre[0]), k)
    change = logic.add_point(handle, segmentation, segment_id, ras_of(volume, np.array(click) + 0.3), positive=False)
    assert change["segment_id"] == segment_id and change["box"] is not None
    clicked = _segment(segmentation, volume, segment_id)
    assert not np.array_equal(clicked, boxed)
    assert np.array_equal(clicked, _server_object(logic, handle, segmentation, segment_id))
    document = logic._session(handle, "GET", "/prompts").json()
    assert document["objects"][0]["prompts"][-1] == {"point": list(click), "positive": False}

    undone = logic.undo(handle, segmentation)
    assert np.array_equal(_segment(segmentation, volume, segment_id), boxed)
    redone = logic.redo(handle, segmentation)
    assert np.array_equal(_segment(segmentation, volume, segment_id), clicked)

    edits = [e for e in list(logic.remote.log)[start:] if e.path.endswith(("/prompts", "/undo", "/redo"))]
    regions = [e for e in list(logic.remote.log)[start:] if e.path.endswith("/labelmap/region")]
    assert [e.path.rsplit("/", 1)[-1] for e in edits if e.method == "POST"] == ["prompts", "undo", "redo"]
    asked = [e.params["box"] for e in regions]
    for answer in (change, undone, redone):  # each edit's own box came back, and nothing else but the checks
        assert ",".join(str(v) for v in answer["box"]) in asked
    assert not any(e.path.endswith("/labelmap") for e in logic.remote.log)  # never the whole NIfTI
    whole, everything = int(np.prod(handle.size)) * 2, "0,0,0," + ",".join(str(s - 1) for s in handle.size)
    assert all(e.received < whole for e in regions if e.params["box"] != everything)  # the checks read it all

    # a second object: a second segment with its name and the palette's next colour
    other = logic.add_box(handle, segmentation, ras_of(volume, (3, 3, k)), ras_of(volume, (11, 10, k)), name="corner")
    segments = segmentation.GetSegmentation()
    assert segments.GetNumberOfSegments() == 2
    for sid, name, colour in ((segment_id, "object 1", PALETTE[0]), (other, "corner", PALETTE[1])):
        assert segments.GetSegment(sid).GetName() == name
        assert np.allclose(segments.GetSegment(sid).GetColor(), np.array(colour) / 255)
    labels = exported(segmentation, volume, [segment_id, other])[0]
    assert np.array_equal(labels, logic.labelmap(handle)) and set(np.unique(labels)) == {0, 1, 2}
    assert np.array_equal(labels == 1, clicked)  # the second object did not touch the first one's voxels

    logic.reset(handle, segmentation, segment_id)  # R: the first object emptied (undo brings it back)
    assert not _segment(segmentation, volume, segment_id).any() and not (logic.labelmap(handle) == 1).any()
    logic.undo(handle, segmentation)
    assert np.array_equal(_segment(segmentation, volume, segment_id), clicked)
    logic.remove(handle, segmentation, other)  # the second object and its segment go
    assert segments.GetNumberOfSegments() == 1 and set(np.unique(logic.labelmap(handle))) == {0, 1}
    assert np.array_equal(exported(segmentation, volume)[0] != 0, clicked)
    logic.close(handle)


def test_a_painted_slice_is_a_mask_prompt(server, cases, scene):
    case = cases["flat"]
    volume = load_volume(scene, case["file"])
    logic = _logic(server)
    handle = logic.open_volume(volume)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    painted = segmentation.GetSegmentation().AddEmptySegment("", "painted", [0.2, 0.4, 1.0])
    k = case["slice"]
    truth = np.load(Path(cases["folder"]) / "flat-truth.npy")
    nj, ni = truth.shape[1:]
    write_segment_box(
        segmentation, painted, (0, 0, k, ni - 1, nj - 1, k), truth[k : k + 1] != 0, node_ijk_to_ras(volume)
    )
    change = logic.add_mask(handle, segmentation, painted, ras_of(volume, (ni / 2, nj / 2, k + 0.2)))
    assert change["segment_id"] == painted and change["frames"] is not None
    got = _segment(segmentation, volume, painted)
    assert np.array_equal(got, _server_object(logic, handle, segmentation, painted))
    assert got.any(axis=(1, 2)).sum() >= 2  # propagated beyond the painted slice
    reply = logic._session(handle, "GET", "/prompts")
    assert reply.headers["content-type"].startswith("application/zip")  # the prompts hold a mask file
    logic.close(handle)


def test_the_image_is_uploaded_once_per_content(server, cases, scene):
    case = cases["flat"]
    volume = load_volume(scene, case["file"])
    logic = _logic(server)
    handle = logic.open_volume(volume)
    assert logic.open_volume(volume) is handle
    twin = load_volume(scene, case["file"])  # another node, the same voxels and grid
    assert logic.open_volume(twin) is handle
    assert logic.uploads == 1
    assert sum(e.path == "/api/sessions" for e in logic.remote.log) == 1

    sent = len(logic.remote.log)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    with pytest.raises(VolSAMError, match="slices apart along k"):
        logic.add_box(handle, segmentation, ras_of(volume, (30, 30, 1)), ras_of(volume, (50, 50, 8)))
    with pytest.raises(VolSAMError, match="outside"):
        logic.add_point(handle, segmentation, None, ras_of(volume, (30, 30, 40)))
    assert len(logic.remote.log) == sent and segmentation.GetSegmentation().GetNumberOfSegments() == 0

    volume_array(twin)[3, 10, 10] += 1  # the user edits the voxels
    twin.GetImageData().GetPointData().GetScalars().Modified()
    with pytest.raises(VolSAMError, match="changed since it was uploaded"):
        logic.add_box(handle, segmentation, *_corners(twin, case))
    fresh = logic.open_volume(twin)
    assert fresh is not handle and logic.uploads == 2
    assert logic.open_volume(volume) is handle  # the unchanged one is still open
    logic.close_all()
    with pytest.raises(VolSAMError, match="closed"):
        logic.add_box(handle, segmentation, *_corners(volume, case))


def test_a_wrong_token_is_refused_in_one_line(server, cases, scene):
    volume = load_volume(scene, cases["flat"]["file"])
    url, _ = server
    for token in ("wrong", None):
        logic = VolSAMLogic(url, token=token)
        with pytest.raises(VolSAMError) as caught:
            logic.open_volume(volume)
        assert caught.value.status == 401 and caught.value.error == "Unauthorized"
        assert f"the server at {url} refused the token" in str(caught.value) and "\n" not in str(caught.value)
        assert logic.uploads == 0


def test_a_server_that_goes_away_mid_run_leaves_the_segmentation_unchanged(cases, scene, tmp_path):
    frames_seen, armed = [], []

    def progress(stage, frames):
        frames_seen.append((stage, frames))
        if armed and stage == "segmenting" and frames >= 1:
            logic._server.kill()  # the server dies while the object propagates
            armed.clear()

    logic = VolSAMLogic(f"http://127.0.0.1:{free_port()}", progress=progress)
    logic.start_local_server(str(VOLSAM), args=("--device", "cpu"), env=child_env())  # the panel's button
    try:
        case = cases["flat"]
        volume = load_volume(scene, case["file"])
        handle = logic.open_volume(volume)
        segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        first = logic.add_box(handle, segmentation, *_corners(volume, case), name="kept")
        assert ("uploading", 0) in frames_seen and max(f for s, f in frames_seen if s == "segmenting") >= 1
        before = exported(segmentation, volume)[0]

        armed.append(True)
        with pytest.raises(ServerUnreachable) as caught:
            logic.add_box(handle, segmentation, *_corners(volume, case), name="lost")
        message = str(caught.value)
        assert message.startswith(f"the volsam server at {logic.url} did not answer (") and "\n" not in message
        assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
        assert segmentation.GetSegmentation().GetNthSegmentID(0) == first
        assert np.array_equal(exported(segmentation, volume)[0], before)
        with pytest.raises(ServerUnreachable, match="connection refused"):
            logic.undo(handle, segmentation)
        assert np.array_equal(exported(segmentation, volume)[0], before)
    finally:
        logic.stop_local_server()

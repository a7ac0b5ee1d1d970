"""Fixtures of the 3D Slicer module's tests: Slicer's MRML + logic libraries without Qt (PyPI ``slicer-core``,
in the venv ``make slicer-test`` builds), a real ``volsam serve`` from volsam's own venv, and lesion cases
written by volsam in several geometries.

These tests run under the slicer-core venv's Python, which has no volsam, no torch: volsam is reached only
as a program (``$VOLSAM_VENV/bin/volsam``, ``$VOLSAM_VENV/bin/python``), as a Slicer user reaches it. Under
volsam's own venv (plain ``pytest``) each module skips itself with one line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "slicer" / "VolSAM"
VOLSAM_VENV = Path(os.environ.get("VOLSAM_VENV", ROOT / ".venv"))
if not VOLSAM_VENV.is_absolute():
    VOLSAM_VENV = ROOT / VOLSAM_VENV
VOLSAM = VOLSAM_VENV / "bin" / "volsam"
VOLSAM_PYTHON = VOLSAM_VENV / "bin" / "python"
TOKEN = "slicer-test-token-0123456789abcdef"
SKIP_REASON = "needs slicer-core: run by `make slicer-test` in build/slicer-venv (make test runs it too)"

if str(MODULE) not in sys.path:
    sys.path.insert(0, str(MODULE))  # as Slicer does for a scripted module's folder: `import VolSAMLib`


def have_slicer_core() -> bool:
    """True under the slicer-core venv. (Elsewhere ``import slicer`` may find the repository's own ``slicer/``
    folder as an empty namespace package, so the import alone proves nothing.)"""
    try:
        import slicer
    except ImportError:
        return False
    return hasattr(slicer, "vtkMRMLScene")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    return os.environ | {"OMP_NUM_THREADS": "2"}


def wait_for(url: str, token: str | None, proc: subprocess.Popen, log: Path) -> None:
    request = urllib.request.Request(f"{url}/api/health", headers={"Authorization": f"Bearer {token}"} if token else {})
    for _ in range(600):
        if proc.poll() is not None:
            pytest.fail(f"volsam serve stopped: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(request, timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"volsam serve did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real ``volsam serve`` (LiteMedSAM on the CPU) with a bearer token: ``(url, token)``."""
    if not VOLSAM.exists():
        pytest.fail(f"{VOLSAM} not found: run `make install` (or set VOLSAM_VENV)")
    folder = tmp_path_factory.mktemp("server")
    token_file = folder / "token"
    token_file.write_text(TOKEN)
    port = free_port()
    log = folder / "server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [str(VOLSAM), "serve", "--port", str(port), "--device", "cpu", "--max-sessions", "32",
             "--token-file", str(token_file)],
            stdout=fh, stderr=subprocess.STDOUT, env=child_env(),
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for(url, TOKEN, proc, log)
    yield url, TOKEN
    stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """End a server this test run started (uvicorn finishes a running propagation first: not for long)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


CASES_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from pathlib import Path
    from volsam.core.volume import Volume
    from volsam.data.lesions import lesion_case
    from volsam.io import write_labels, write_volume

    out = Path(sys.argv[1])
    def rotation(axis, degrees):
        a = np.radians(degrees); c, s = np.cos(a), np.sin(a)
        m = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
             "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]
        return np.array(m)
    variants = {  # name -> (case, file, spacing (i, j, k), direction (LPS columns), origin)
        "oblique": ("small-02", "oblique.nrrd", (0.9, 0.8, 1.3), rotation("z", 25) @ rotation("x", 35), (12.5, -4, 7)),
        "aniso": ("small-02", "aniso.nii.gz", (0.7, 0.75, 3.0), np.diag([-1.0, -1.0, 1.0]), (90.0, 120.0, -60.0)),
        "flipped": ("small-02", "flipped.nii.gz", (1.0, 1.0, 1.5), np.diag([1.0, 1.0, -1.0]), (-30.0, -20.0, 44.0)),
        "flat": ("flat-01", "flat.nii.gz", (0.8, 0.8, 2.0), np.diag([-1.0, -1.0, 1.0]), (0.0, 0.0, 0.0)),
    }
    info = {}
    for name, (case, file, spacing, direction, origin) in variants.items():
        lesion = lesion_case(case, crop=True)
        image = Volume(lesion.image.array, spacing, origin, direction)
        write_volume(image, out / file)
        b = lesion.middle_box
        info[name] = {"file": str(out / file), "box": [b.u0, b.v0, b.u1, b.v1], "slice": b.slice}
        np.save(out / f"{name}-truth.npy", lesion.label.array.astype(np.uint8))
    two = np.zeros((6, 7, 8), np.uint8); two[1:3, 2:5, 1:4] = 1; two[4, 5, 6:8] = 2
    write_labels(Volume(two, (0.5, 0.6, 2.0), (1.0, 2.0, 3.0), rotation("y", 30)), out / "two.seg.nrrd",
                 names={1: "liver", 2: "tumour \\u00e9"})
    np.save(out / "two.npy", two)
    (out / "cases.json").write_text(json.dumps(info))
    """
)


@pytest.fixture(scope="session")
def cases(tmp_path_factory) -> dict:
    """Lesion cases written by volsam: ``{name: {"file", "box", "slice"}}`` (and ``NAME-truth.npy``):
    ``oblique`` (NRRD, rotated about two axes), ``aniso`` (0.7 x 0.75 x 3 mm), ``flipped`` (k points to the
    feet: a determinant of -1), ``flat`` (a lesion three slices thick, for the quick tests); ``two.seg.nrrd``."""
    folder = tmp_path_factory.mktemp("cases")
    done = subprocess.run(
        [str(VOLSAM_PYTHON), "-c", CASES_SCRIPT, str(folder)], capture_output=True, text=True, env=child_env()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((folder / "cases.json").read_text())
    info["folder"] = str(folder)
    return info


@pytest.fixture()
def scene():
    from VolSAMLib.logic import register_segmentation_converters

    import slicer

    register_segmentation_converters()
    scene = slicer.vtkMRMLScene()
    yield scene
    scene.Clear(1)


def load_volume(scene, path: str, cls: str = "vtkMRMLScalarVolumeNode"):
    """A volume node read by Slicer's own reader (its real IJK -> RAS), as *Add data* would load it."""
    node = scene.AddNewNodeByClass(cls)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    storage.SetSingleFile(1)
    assert storage.ReadData(node), f"Slicer could not read {path}"
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def load_segmentation(scene, path: str):
    """A segmentation node read by Slicer's segmentation reader (``.seg.nrrd``)."""
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node), f"Slicer could not read {path}"
    return node


def exported(segmentation_node, volume_node, segment_ids=None):
    """Segments as one label array ``[k, j, i]`` on ``volume_node``'s grid (value n = the n-th segment given),
    and the exported node's IJK -> RAS, with Slicer's ExportSegmentsToLabelmapNode."""
    import vtk
    from VolSAMLib.logic import node_ijk_to_ras, volume_array

    import slicer

    segmentation = segmentation_node.GetSegmentation()
    if segment_ids is None:
        segment_ids = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]
    ids = vtk.vtkStringArray()
    for segment_id in segment_ids:
        ids.InsertNextValue(segment_id)
    scene = segmentation_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    assert logic.ExportSegmentsToLabelmapNode(segmentation_node, ids, labelmap, volume_node)
    array = volume_array(labelmap).copy()
    matrix = node_ijk_to_ras(labelmap)
    scene.RemoveNode(labelmap)
    return array, matrix


def ras_of(volume_node, ijk) -> list[float]:
    """World RAS of a (continuous) voxel position, through the node's IJK -> RAS."""
    import numpy as np
    from VolSAMLib.logic import node_ijk_to_ras

    return list((node_ijk_to_ras(volume_node) @ np.array([*ijk, 1.0]))[:3])

"""Measure what a correction costs the Slicer module: a box, then one negative click, on a synthetic CT.

Run in the slicer-core venv (``make slicer-venv``) against a ``volsam serve`` it starts from volsam's venv::

    VOLSAM_VENV=.venv build/slicer-venv/bin/python tests/slicer/measure_correction.py --size 512,512,120

It prints JSON: the upload, the box (propagation), the click (the server's seconds, the region's box and
bytes, the whole call as the panel sees it), and for comparison what fetching and writing the whole label map
costs (what a client without region replies does after every edit). Not a test: the numbers depend on the
machine and its load; they are reported with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from tests.slicer.conftest import MODULE, TOKEN, VOLSAM, child_env, free_port, stop, wait_for  # noqa: E402

sys.path.insert(0, str(MODULE))
import vtk  # noqa: E402
from VolSAMLib.logic import VolSAMLogic, register_segmentation_converters, segment_array  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

import slicer  # noqa: E402


def volume_node(scene, size: tuple[int, int, int], spacing=(0.7, 0.7, 2.5)):
    """A CT-like volume (HU): soft tissue with noise and a bright ellipsoid ("lesion") in the middle."""
    ni, nj, nk = size
    k, j, i = np.ogrid[0:nk, 0:nj, 0:ni]
    blob = ((i - ni / 2) / (ni / 6)) ** 2 + ((j - nj / 2) / (nj / 8)) ** 2 + ((k - nk / 2) / 8.0) ** 2 <= 1
    rng = np.random.default_rng(0)
    array = (rng.normal(40, 12, (nk, nj, ni)) + 160 * blob).astype(np.int16)
    image = vtk.vtkImageData()
    image.SetDimensions(ni, nj, nk)
    image.AllocateScalars(vtk.VTK_SHORT, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = array.ravel()
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
    node.SetAndObserveImageData(image)
    m = vtk.vtkMatrix4x4()
    for axis, mm in enumerate(spacing):
        m.SetElement(axis, axis, -mm if axis < 2 else mm)
    node.SetIJKToRASMatrix(m)
    return node, blob


def ras(node, ijk) -> list[float]:
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return list(m.MultiplyPoint((*map(float, ijk), 1.0))[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512,512,120", help="i,j,k voxels")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split(","))

    folder = Path(tempfile.mkdtemp(prefix="volsam-measure-"))
    (folder / "token").write_text(TOKEN)
    port = free_port()
    log = folder / "server.log"
    with log.open("w") as fh:
        server = subprocess.Popen(
            [str(VOLSAM), "serve", "--port", str(port), "--device", "cpu", "--token-file", str(folder / "token")],
            stdout=fh, stderr=subprocess.STDOUT, env=child_env(),
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, TOKEN, server, log)
        register_segmentation_converters()
        scene = slicer.vtkMRMLScene()
        node, blob = volume_node(scene, size)
        logic = VolSAMLogic(url, token=TOKEN, modality="CT")
        segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        ni, nj, nk = size
        t0 = time.perf_counter()
        handle = logic.open_volume(node)
        upload_s = time.perf_counter() - t0

        k = nk // 2
        occupied = np.argwhere(blob[k])
        (j0, i0), (j1, i1) = occupied.min(axis=0), occupied.max(axis=0)
        t0 = time.perf_counter()
        segment_id = logic.add_box(handle, segmentation, ras(node, (i0 - 3, j0 - 3, k)), ras(node, (i1 + 3, j1 + 3, k)))
        box_s = time.perf_counter() - t0
        box_change = dict(logic.last_change)
        segment = segment_array(segmentation, segment_id, node)

        # one negative click near the object's edge on a slice away from the prompt: a local correction
        k2 = k + max(1, int(np.flatnonzero(segment.any(axis=(1, 2)))[-1] - k) // 2)
        inside = np.argwhere(segment[k2])
        edge = inside[np.argmax(inside[:, 1])]  # the right-most voxel of the object on that slice
        start = len(logic.remote.log)
        t0 = time.perf_counter()
        change = logic.add_point(handle, segmentation, segment_id, ras(node, (edge[1], edge[0], k2)), positive=False)
        click_s = time.perf_counter() - t0
        exchanges = list(logic.remote.log)[start:]
        region = [e for e in exchanges if e.path.endswith("/labelmap/region")]

        t0 = time.perf_counter()
        logic.refresh(handle)  # the whole label map fetched and every segment rewritten
        whole_s = time.perf_counter() - t0
        whole_bytes = list(logic.remote.log)[-1].received

        b = change["box"]
        report = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end",
            "volume": {"size_ijk": list(size), "voxels": int(np.prod(size)), "dtype": "int16"},
            "upload_s": round(upload_s, 2),
            "box": {"seconds_call": round(box_s, 2), "seconds_server": box_change.get("seconds"),
                    "frames": box_change.get("frames"), "box": box_change.get("box")},
            "click": {
                "seconds_call": round(click_s, 2), "seconds_server": change.get("seconds"),
                "frames": change.get("frames"), "box": b,
                "region_voxels": (b[3] - b[0] + 1) * (b[4] - b[1] + 1) * (b[5] - b[2] + 1) if b else 0,
                "region_bytes_received": sum(e.received for e in region),
                "requests": [f"{e.method} {e.path.rsplit('/', 2)[-2:]}" for e in exchanges],
            },
            "whole_labelmap_refresh": {"seconds": round(whole_s, 2), "bytes_received": whole_bytes},
        }  # fmt: skip
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
        logic.close(handle)
    finally:
        stop(server)


if __name__ == "__main__":
    main()

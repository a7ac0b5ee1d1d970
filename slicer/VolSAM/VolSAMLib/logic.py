"""VolSAMLogic: 3D Slicer volumes and segmentations on a ``volsam serve`` session. No Qt.

Everything the VolSAM module does lives here, so that it runs (and is tested) with Slicer's MRML and logic
libraries alone (``slicer-core``: no Qt, no ``slicer.app``, no ``slicer.modules``); the widget
(``VolSAM.py``) only turns clicks into these calls::

    from VolSAMLib.logic import VolSAMLogic
    logic = VolSAMLogic("http://127.0.0.1:8000", token=None)
    handle = logic.open_volume(volume_node)          # uploads the node's voxels with its geometry (once)
    segment_id = logic.add_box(handle, segmentation_node, ras_a, ras_b, name="lesion")
    logic.add_point(handle, segmentation_node, segment_id, ras, positive=True)
    logic.undo(handle, segmentation_node); logic.redo(handle, segmentation_node)
    logic.close(handle)

Geometry. Slicer gives positions in world RAS millimetres; volsam works in the voxel indices (i, j, k) of
the image as uploaded. The upload is the node's own voxels with its own IJK -> RAS matrix (written as NRRD in
LPS, :mod:`.nrrd`), so the server's (i, j, k) are the node's. A RAS point becomes a voxel through the node's
RAS -> IJK matrix (after the inverse of a linear parent transform, if any), rounded to the nearest voxel
centre; results are written on the volume's own grid (``vtkOrientedImageData`` with the node's IJK -> RAS).
Whatever the orientation (oblique, flipped, anisotropic), a prompt means the voxels it covers on screen.

A box is a 2D box on one slice along the session's axis (k unless ``axis`` says otherwise): its two RAS
corners must lie on (nearly) the same such slice -- draw it on a slice view across that axis (the widget
rotates the views to the volume's planes for that).

Traffic. The image is uploaded once per content (a hash of the voxels, the geometry and the session
options: :meth:`VolSAMLogic.open_volume` re-uses the session while they are unchanged). Each edit answers
with the box of what changed; only that box comes back (``/labelmap/region``), and only that box of each
segment is rewritten. Nothing in the segmentation changes until the server has answered and the region has
arrived: a refusal or a server that goes away leaves the segmentation as it was.

Objects are segments: each server object (label) is one segment of a segmentation node (named as the
object, coloured with volsam's palette); the segments together are the server's label map (where objects
overlap, the later one wins, as in ``volsam segment``'s output).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import vtk
from vtk.util import numpy_support

import slicer

from .nrrd import write_nrrd
from .remote import Remote, ServerUnreachable, VolSAMError

__all__ = [
    "PALETTE",
    "WINDOW_PRESETS",
    "SegmentRef",
    "ServerUnreachable",
    "VolSAMError",
    "VolSAMLogic",
    "VolumeHandle",
    "register_segmentation_converters",
    "volume_array",
    "write_segment_box",
]

# volsam's label colours (volsam.io.labels.PALETTE, the web page's), label 1 first, cycled
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)
# CT display windows (width, level) in HU, as volsam's --window presets
WINDOW_PRESETS = {
    "abdomen": (400.0, 40.0),
    "lung": (1500.0, -600.0),
    "brain": (80.0, 40.0),
    "bone": (1800.0, 400.0),
    "mediastinum": (350.0, 50.0),
}
AXES = "ijk"
PLANES = ("sagittal", "coronal", "axial")  # the plane across RAS axis x, y, z


@dataclass
class SegmentRef:
    """The segment that shows one server object (label) of a session."""

    node: Any  # vtkMRMLSegmentationNode
    segment_id: str
    label: int
    name: str


@dataclass
class VolumeHandle:
    """An open volume: its server session, its grid and the segments its objects fill."""

    session_id: str
    lease: str
    volume_node: Any
    key: str  # content key: voxels, geometry, session options
    ijk_to_ras: np.ndarray  # 4x4, the node's when it was uploaded
    size: tuple[int, int, int]  # (i, j, k) voxels
    axis: int  # the session's slice axis: 0 = i, 1 = j, 2 = k
    geometry: dict
    options: tuple
    stamp: tuple = ()
    objects: dict[int, SegmentRef] = field(default_factory=dict)
    events_seen: int = 0
    closed: bool = False

    @property
    def axis_name(self) -> str:
        return AXES[self.axis]

    @property
    def plane(self) -> str:
        """The anatomical plane of the session's slices (the RAS axis its slice normal is nearest)."""
        return PLANES[int(np.argmax(np.abs(self.ijk_to_ras[:3, self.axis])))]

    def ref(self, node: Any, segment_id: str) -> SegmentRef | None:
        """The object shown by ``segment_id`` of ``node`` (None when it shows none of this session's)."""
        for ref in self.objects.values():
            if ref.node is node and ref.segment_id == segment_id:
                return ref
        return None


# -- Slicer helpers (MRML and VTK only) -------------------------------------------------------------------
def register_segmentation_converters() -> None:
    """Register the segmentation converter rules when nobody has (Slicer's application does it at start-up;
    ``slicer-core`` alone does not, and segments cannot be made without them)."""
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    rules = factory.GetConverterRules()
    if rules is not None and len(rules) > 0:
        return
    for name in dir(slicer):
        if name.startswith("vtk") and name.endswith("ConversionRule"):
            factory.RegisterConverterRule(getattr(slicer, name)())


def volume_array(volume_node: Any) -> np.ndarray:
    """The voxels of a scalar volume node as ``[k, j, i]`` (a view, not a copy)."""
    image = volume_node.GetImageData() if volume_node is not None else None
    if image is None or image.GetPointData().GetScalars() is None:
        raise VolSAMError("the volume node has no voxels")
    if image.GetNumberOfScalarComponents() != 1:
        raise VolSAMError(
            f"{volume_node.GetName()}: {image.GetNumberOfScalarComponents()} values per voxel (RGB or vector); "
            "VolSAM segments scalar volumes (convert it: Vector to Scalar Volume)"
        )
    ni, nj, nk = image.GetDimensions()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(nk, nj, ni)


def _matrix(m: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def _vtk_matrix(a: np.ndarray) -> vtk.vtkMatrix4x4:
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(a[r, c]))
    return m


def node_ijk_to_ras(volume_node: Any) -> np.ndarray:
    m = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(m)
    return _matrix(m)


def write_segment_box(
    segmentation_node: Any, segment_id: str, box: tuple[int, ...], mask: np.ndarray, ijk_to_ras: np.ndarray
) -> None:
    """Make ``segment_id`` equal ``mask`` (bool ``[k, j, i]``) inside ``box`` ``(i0, j0, k0, i1, j1, k1)`` of
    the grid ``ijk_to_ras``, and leave it as it was outside the box (and every other segment as it was).

    Slicer's REPLACE mode replaces the whole segment whatever extent it is given, so the box is written as a
    union (MERGE_MAX: voxels the mask adds) then an intersection (MERGE_MIN: voxels it removes), both
    limited to the box: the cost follows the box, not the volume. The merge modes combine raw values with
    the segment's layer, so the segment first gets a layer of its own (segments share layers when Slicer
    collapses them) and the mask carries the segment's label value in that layer."""
    i0, j0, k0, i1, j1, k1 = (int(v) for v in box)
    if mask.shape != (k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1):
        raise ValueError(f"mask of shape {mask.shape} does not fill the box {box}")
    segmentation = segmentation_node.GetSegmentation()
    if len(segmentation.GetSegmentIDsForLayer(segmentation.GetLayerIndex(segment_id))) > 1:
        segmentation.SeparateSegmentLabelmap(segment_id)
    value = int(segmentation.GetSegment(segment_id).GetLabelValue())
    dtype, vtk_type = (np.uint8, vtk.VTK_UNSIGNED_CHAR) if value <= 255 else (np.uint16, vtk.VTK_UNSIGNED_SHORT)
    block = np.ascontiguousarray(mask, dtype=dtype) * dtype(value)
    image = slicer.vtkOrientedImageData()
    image.SetExtent(i0, i1, j0, j1, k0, k1)
    image.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras))
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(block.ravel(), deep=True, array_type=vtk_type))
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    extent = image.GetExtent()
    if mask.any():
        logic.SetBinaryLabelmapToSegment(image, segmentation_node, segment_id, logic.MODE_MERGE_MAX, extent)
    if not mask.all():
        logic.SetBinaryLabelmapToSegment(image, segmentation_node, segment_id, logic.MODE_MERGE_MIN, extent)


def segment_array(segmentation_node: Any, segment_id: str, volume_node: Any) -> np.ndarray:
    """``segment_id`` as a bool ``[k, j, i]`` array on ``volume_node``'s grid."""
    scene = segmentation_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        if not logic.ExportSegmentsToLabelmapNode(segmentation_node, ids, labelmap, volume_node):
            raise VolSAMError(f"could not read segment {segment_id} on the volume's grid")
        return volume_array(labelmap) != 0
    finally:
        scene.RemoveNode(labelmap)


def _round(x: float) -> int:
    """The nearest voxel index (halves go up: a click on a voxel border takes the voxel above)."""
    return int(math.floor(x + 0.5))


# -- the logic ---------------------------------------------------------------------------------------------
class VolSAMLogic:
    """Segments Slicer volumes through one volsam server.

    Args:
        url: the server (``volsam serve``), e.g. ``http://127.0.0.1:8000``.
        token: its bearer token (None for a loopback server started without one).
        engine, model: the session's engine (``medsam-lite``, ``sam2``) and model name (None: the default);
            the choices are in :meth:`capabilities`.
        modality: ``auto``, ``CT``, ``MR``, ``PET``: how intensities are normalised.
        window: a CT window for the model (``abdomen``... or ``L,W``), None for the modality's default.
        axis: the slice axis the object propagates along (``k``, ``j``, ``i``, or ``axial`` / ``coronal`` /
            ``sagittal``, resolved by the server from the direction matrix).
        timeout: seconds to wait for one answer.
        progress: called as ``progress(stage, frames)`` about every ``poll_s`` seconds while the server works
            (stage ``uploading``, ``segmenting``, ``updating``; ``frames`` the slices segmented so far), in the
            caller's thread; None: calls simply block.
        compress: gzip the upload (None: only for a server on another computer).
        cafile: CA bundle or the server's certificate, for https.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        token: str | None = None,
        *,
        engine: str = "medsam-lite",
        model: str | None = None,
        modality: str = "auto",
        window: str | None = None,
        axis: str = "k",
        timeout: float = 900.0,
        progress: Callable[[str, int], Any] | None = None,
        compress: bool | None = None,
        cafile: str | None = None,
        poll_s: float = 0.25,
    ):
        self.remote = Remote(url, token=token or None, timeout=timeout, cafile=cafile)
        self.engine, self.model, self.modality, self.window, self.axis = engine, model, modality, window, axis
        self.progress = progress
        self.compress = compress
        self.poll_s = poll_s
        self.box_tolerance = 1.0  # how many slices apart a box's two corners may be along the session's axis
        self.uploads = 0  # how many volumes were uploaded (tools and tests read it)
        self.last_change: dict = {}  # the server's answer to the last edit (labels, box, frames, seconds)
        self._handles: list[VolumeHandle] = []
        self._server: subprocess.Popen | None = None
        self._server_log: str | None = None
        register_segmentation_converters()

    @property
    def url(self) -> str:
        return self.remote.url

    # -- the server ---------------------------------------------------------------------------------------
    def health(self) -> dict:
        """``GET /api/health``: status, version, sessions."""
        return self.remote.request("GET", "/api/health", timeout=min(self.remote.timeout, 15.0)).json()

    def capabilities(self) -> dict:
        """``GET /api/capabilities``: engines, catalogue models (installed or not), local models, devices."""
        return self.remote.request("GET", "/api/capabilities", timeout=min(self.remote.timeout, 60.0)).json()

    def models(self, capabilities: dict, engine: str) -> list[str]:
        """The model names ``engine`` can run on this server (installed catalogue models, then local ones)."""
        names = [m["name"] for m in capabilities.get("models", []) if m.get("engine") == engine and m.get("installed")]
        names += [m["name"] for m in capabilities.get("local_models", []) if m.get("engine") == engine]
        return list(dict.fromkeys(names))

    def start_local_server(
        self,
        executable: str | None = None,
        *,
        wait_s: float = 180.0,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> subprocess.Popen:
        """Start ``volsam serve`` on this logic's loopback host and port and wait until it answers.

        ``executable``: the ``volsam`` program (None: ``$VOLSAM_EXECUTABLE``, else ``volsam`` on the PATH);
        ``env``: its environment (None: this process's, without Python variables that point into Slicer's
        own Python); ``args``: more ``volsam serve`` options. The server's output goes to a log file whose
        end is shown if it fails to start."""
        if not self.remote.loopback:
            raise VolSAMError(f"a local server listens on 127.0.0.1; the URL is {self.url}")
        if self._server is not None and self._server.poll() is None:
            return self._server
        program = executable or os.environ.get("VOLSAM_EXECUTABLE") or shutil.which("volsam")
        if not program or not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise VolSAMError(
                "volsam is not installed where Slicer can find it: install it in a Python of its own "
                "(pip install volsam) and give the path of its volsam program"
            )
        environment = dict(os.environ if env is None else env)
        if env is None:
            for name in ("PYTHONHOME", "PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONSTARTUP"):
                environment.pop(name, None)
        host = self.remote._host if self.remote._host != "localhost" else "127.0.0.1"
        command = [program, "serve", "--host", host, "--port", str(self.remote._port), *args]
        fd, self._server_log = tempfile.mkstemp(prefix="volsam-serve-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            self._server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise VolSAMError(f"volsam serve stopped at once: {self._log_tail()}")
            try:
                self.health()
                return self._server
            except ServerUnreachable:
                self._wait(0.3)
        self.stop_local_server()
        raise VolSAMError(f"volsam serve did not answer within {wait_s:.0f} s: {self._log_tail()}")

    def stop_local_server(self) -> None:
        """Stop the server :meth:`start_local_server` started (if it did)."""
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            try:
                self._server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        self._server = None

    def _log_tail(self) -> str:
        try:
            with open(self._server_log or "", encoding="utf-8", errors="replace") as fh:
                lines = [line.strip() for line in fh if line.strip()]
        except OSError:
            return "no output"
        return " | ".join(lines[-3:]) or "no output"

    # -- volumes --------------------------------------------------------------------------------------------
    def _options(self) -> tuple:
        return (self.engine, self.model, self.modality, self.window, self.axis)

    @staticmethod
    def _stamp(volume_node: Any) -> tuple:
        image = volume_node.GetImageData()
        scalars = image.GetPointData().GetScalars() if image is not None else None
        matrix = tuple(node_ijk_to_ras(volume_node).ravel())
        return (
            volume_node.GetID(),
            id(image),
            image.GetMTime() if image else 0,
            scalars.GetMTime() if scalars else 0,
            matrix,
        )

    @staticmethod
    def content_key(array: np.ndarray, ijk_to_ras: np.ndarray, options: tuple) -> str:
        """A hash of the voxels, their type and grid, and the session options."""
        digest = hashlib.blake2b(digest_size=20)
        digest.update(repr((array.dtype.str, array.shape, np.round(ijk_to_ras, 9).tolist(), options)).encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        return digest.hexdigest()

    def open_volume(self, volume_node: Any) -> VolumeHandle:
        """The server session of ``volume_node``: uploaded now, or the open one when the voxels, the geometry
        and the session options are unchanged (and the server still has it)."""
        stamp, options = self._stamp(volume_node), self._options()
        for h in self._handles:
            if not h.closed and h.volume_node is volume_node and h.stamp == stamp and h.options == options:
                if self._alive(h):
                    return h
        array, ijk_to_ras = volume_array(volume_node), node_ijk_to_ras(volume_node)
        key = self.content_key(array, ijk_to_ras, options)
        for h in self._handles:
            if not h.closed and h.key == key and self._alive(h):
                h.volume_node, h.stamp = volume_node, stamp
                return h
        handle = self._upload(volume_node, array, ijk_to_ras, key, stamp, options)
        self._handles.append(handle)
        return handle

    def _alive(self, handle: VolumeHandle) -> bool:
        try:
            self._session(handle, "GET", "", timeout=min(self.remote.timeout, 30.0))
            return True
        except VolSAMError as exc:
            if exc.status in (403, 404):  # expired (idle) or closed: upload again
                handle.closed = True
                return False
            raise

    def _upload(self, node: Any, array: np.ndarray, ijk_to_ras: np.ndarray, key: str, stamp: tuple, options: tuple):
        gzipped = (not self.remote.loopback) if self.compress is None else self.compress
        form = {"engine": self.engine, "model": self.model, "modality": self.modality, "window": self.window}
        form["axis"] = self.axis
        with tempfile.TemporaryDirectory(prefix="volsam-slicer-") as tmp:
            path = write_nrrd(os.path.join(tmp, "volume.nrrd"), array, ijk_to_ras, gzipped=gzipped)
            reply = self._busy(None, "uploading", lambda: self.remote.upload(path, "volume.nrrd", form))
        self.uploads += 1
        created = reply.json()
        geometry = created["geometry"]
        size = tuple(int(v) for v in geometry["size"])
        if size != (array.shape[2], array.shape[1], array.shape[0]):
            raise VolSAMError(f"the server read {size} voxels, the volume has {array.shape[::-1]}")
        return VolumeHandle(
            created["id"],
            created["lease"],
            node,
            key,
            ijk_to_ras,
            size,
            int(geometry["axis"]),
            geometry,
            options,
            stamp,
        )

    def close(self, handle: VolumeHandle) -> None:
        """Close the session on the server (its memory is freed); the segments stay as they are."""
        if handle.closed:
            return
        handle.closed = True
        try:
            self._session(handle, "DELETE", "", timeout=min(self.remote.timeout, 30.0))
        except VolSAMError:
            pass  # gone already (expired, server stopped): nothing to free
        finally:
            self._handles = [h for h in self._handles if h is not handle]

    def close_all(self) -> None:
        for handle in list(self._handles):
            self.close(handle)

    # -- geometry -------------------------------------------------------------------------------------------
    def _check_current(self, handle: VolumeHandle) -> None:
        if handle.closed:
            raise VolSAMError("this volume's session is closed: open the volume again")
        stamp = self._stamp(handle.volume_node)
        if stamp == handle.stamp:
            return
        array, matrix = volume_array(handle.volume_node), node_ijk_to_ras(handle.volume_node)
        if self.content_key(array, matrix, handle.options) != handle.key:
            raise VolSAMError(
                f"{handle.volume_node.GetName()} changed since it was uploaded (voxels or geometry): open it again"
            )
        handle.stamp = stamp

    def ras_to_ijk(self, handle: VolumeHandle, ras) -> np.ndarray:
        """World RAS (mm) -> continuous (i, j, k) of the volume (voxel centres at integers)."""
        point = np.array([float(ras[0]), float(ras[1]), float(ras[2]), 1.0])
        transform = handle.volume_node.GetParentTransformNode()
        if transform is not None:
            if not transform.IsTransformToWorldLinear():
                raise VolSAMError(f"{handle.volume_node.GetName()} is under a non-linear transform: harden it first")
            from_world = vtk.vtkMatrix4x4()
            transform.GetMatrixTransformFromWorld(from_world)
            point = _matrix(from_world) @ point
        return (np.linalg.inv(handle.ijk_to_ras) @ point)[:3]

    def voxel(self, handle: VolumeHandle, ras) -> tuple[int, int, int]:
        """The voxel (i, j, k) whose centre is nearest to world RAS ``ras``; VolSAMError outside the volume."""
        ijk = tuple(_round(v) for v in self.ras_to_ijk(handle, ras))
        if not all(0 <= ijk[a] < handle.size[a] for a in range(3)):
            raise VolSAMError(f"the point is outside {handle.volume_node.GetName()} (voxel {ijk}, size {handle.size})")
        return ijk  # type: ignore[return-value]

    def box_prompt(self, handle: VolumeHandle, ras_a, ras_b) -> tuple[int, tuple[int, int, int, int]]:
        """The slice and the box ``(u0, v0, u1, v1)`` (inclusive voxel indices of the two other axes, in
        i, j, k order) of a box drawn between world RAS corners ``ras_a`` and ``ras_b``."""
        a, b = self.ras_to_ijk(handle, ras_a), self.ras_to_ijk(handle, ras_b)
        n = handle.axis
        if abs(a[n] - b[n]) > self.box_tolerance:
            raise VolSAMError(
                f"the box's corners are {abs(a[n] - b[n]):.1f} slices apart along {AXES[n]}: draw it on a slice "
                f"across {AXES[n]} ({'an' if handle.plane == 'axial' else 'a'} {handle.plane} view, rotated to the "
                "volume's planes)"
            )
        s = _round((a[n] + b[n]) / 2)
        if not 0 <= s < handle.size[n]:
            raise VolSAMError(f"the box is outside {handle.volume_node.GetName()} (slice {s} of {handle.size[n]})")
        lo, hi = [], []
        for x in (x for x in range(3) if x != n):
            low, high = sorted((_round(a[x]), _round(b[x])))
            if high < 0 or low >= handle.size[x]:
                raise VolSAMError(f"the box is outside {handle.volume_node.GetName()}")
            lo.append(max(low, 0))
            hi.append(min(high, handle.size[x] - 1))
        if lo == hi:
            raise VolSAMError("a box needs two different corners (drag from one corner to the other)")
        return s, (lo[0], lo[1], hi[0], hi[1])

    # -- prompts --------------------------------------------------------------------------------------------
    def add_box(
        self,
        handle: VolumeHandle,
        segmentation_node: Any,
        ras_a,
        ras_b,
        name: str | None = None,
        segment_id: str | None = None,
    ) -> str:
        """A 2D box on the slice through world RAS corners ``ras_a`` and ``ras_b``: a new object (a new
        segment named ``name``), or, with ``segment_id``, one more box for that segment's object. The object
        propagates through the volume; returns the segment's ID."""
        self._check_current(handle)
        s, box = self.box_prompt(handle, ras_a, ras_b)
        return self._prompt(handle, segmentation_node, segment_id, name, {"type": "box", "slice": s, "box": list(box)})

    def add_point(
        self, handle: VolumeHandle, segmentation_node: Any, segment_id: str | None, ras, positive: bool = True
    ) -> dict:
        """A click at world RAS ``ras`` on ``segment_id``'s object (object there: ``positive``; not: negative);
        the touched slices are corrected and re-propagated. ``segment_id`` None starts a new object from the
        click. Returns the change (``labels``, ``box``, ``frames``, ``seconds``, ``segment_id``)."""
        self._check_current(handle)
        ijk = self.voxel(handle, ras)
        body = {"type": "point", "point": list(ijk), "positive": bool(positive)}
        segment_id = self._prompt(handle, segmentation_node, segment_id, None, body)
        return {**self.last_change, "segment_id": segment_id}

    def add_mask(
        self, handle: VolumeHandle, segmentation_node: Any, segment_id: str, ras, name: str | None = None
    ) -> dict:
        """``segment_id`` as it is on the slice (along the session's axis) through world RAS ``ras``, sent as a
        mask prompt for its object (a new object when the segment shows none yet): the object takes that
        slice as drawn and propagates from it. Returns the change, as :meth:`add_point`."""
        self._check_current(handle)
        n = handle.axis
        s = _round(self.ras_to_ijk(handle, ras)[n])
        if not 0 <= s < handle.size[n]:
            raise VolSAMError(f"the point is outside {handle.volume_node.GetName()}")
        if segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
            raise VolSAMError(f"{segmentation_node.GetName()} has no segment {segment_id}")
        full = segment_array(segmentation_node, segment_id, handle.volume_node)
        only = np.zeros_like(full)
        index = [slice(None)] * 3
        index[2 - n] = slice(s, s + 1)  # [k, j, i] order
        only[tuple(index)] = full[tuple(index)]
        if not only.any():
            raise VolSAMError(f"segment {segment_id} has no voxel on slice {s} along {AXES[n]}: paint it there first")
        ks, js, is_ = (np.flatnonzero(only.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3))
        k0, k1, j0, j1, i0, i1 = ks[0], ks[-1], js[0], js[-1], is_[0], is_[-1]
        block = np.ascontiguousarray(only[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1], dtype=np.uint8)
        data = base64.b64encode(gzip.compress(block.tobytes(), compresslevel=1)).decode("ascii")
        body = {"type": "mask", "box": [int(v) for v in (i0, j0, k0, i1, j1, k1)], "data": data}
        segment_id = self._prompt(handle, segmentation_node, segment_id, name, body)
        return {**self.last_change, "segment_id": segment_id}

    def _prompt(self, handle: VolumeHandle, node: Any, segment_id: str | None, name: str | None, body: dict) -> str:
        """Send one prompt for ``segment_id``'s object (creating the object, and after success the segment,
        when needed); write the changed region. Returns the segment ID."""
        self._check_segmentation(handle, node)
        ref = handle.ref(node, segment_id) if segment_id is not None else None
        new_object = False
        if ref is not None:
            self._ensure_object(handle, ref)
            label = ref.label
        else:
            if segment_id is not None:
                segment = node.GetSegmentation().GetSegment(segment_id)
                if segment is None:
                    raise VolSAMError(f"{node.GetName()} has no segment {segment_id}")
                name = segment.GetName()
            created = self._session(handle, "POST", "/objects", json_body={"name": name}).json()
            label, name, new_object = int(created["label"]), created["name"], True
        try:
            change = self._busy(
                handle,
                "segmenting",
                lambda: self._session(handle, "POST", "/prompts", json_body={"object": label, **body}),
            ).json()
            block = self._region(handle, change)
        except VolSAMError:
            if new_object:  # take back the empty object this prompt made (when the server still answers)
                try:
                    self._session(handle, "DELETE", f"/objects/{label}", timeout=10.0)
                except VolSAMError:
                    pass
            raise
        if ref is None:
            ref = self._segment_for(handle, node, segment_id, label, name)
        self._write(handle, change, block)
        self.last_change = change
        return ref.segment_id

    def undo(self, handle: VolumeHandle, segmentation_node: Any = None) -> dict:
        """Take back the last edit that changed voxels (object creations, which change none, are passed)."""
        return self._history(handle, "/undo")

    def redo(self, handle: VolumeHandle, segmentation_node: Any = None) -> dict:
        """Do again the last edit :meth:`undo` took back."""
        return self._history(handle, "/redo")

    def _history(self, handle: VolumeHandle, path: str) -> dict:
        if handle.closed:
            raise VolSAMError("this volume's session is closed: open the volume again")
        for _ in range(8):
            change = self._session(handle, "POST", path).json()
            if change["box"] is not None or not change["labels"]:
                break  # voxels changed, or nothing was left to take back / do again
        block = self._region(handle, change)
        self._write(handle, change, block)
        self.last_change = change
        return change

    def reset(self, handle: VolumeHandle, segmentation_node: Any, segment_id: str) -> dict:
        """Empty ``segment_id``'s object and forget its prompts (undo brings them back)."""
        ref = self._known(handle, segmentation_node, segment_id)
        self._ensure_object(handle, ref)
        change = self._session(handle, "POST", f"/objects/{ref.label}/reset").json()
        self._write(handle, change, self._region(handle, change))
        self.last_change = change
        return change

    def remove(self, handle: VolumeHandle, segmentation_node: Any, segment_id: str) -> None:
        """Remove ``segment_id``'s object from the session and the segment from the segmentation."""
        ref = self._known(handle, segmentation_node, segment_id)
        try:
            change = self._session(handle, "DELETE", f"/objects/{ref.label}").json()
            self._write(handle, change, self._region(handle, change))
        except VolSAMError as exc:
            if exc.status != 400:  # 400: the object was gone already (undone)
                raise
        del handle.objects[ref.label]
        segmentation_node.GetSegmentation().RemoveSegment(segment_id)

    def labelmap(self, handle: VolumeHandle) -> np.ndarray:
        """The session's whole label map, uint16 ``[k, j, i]`` on the volume's grid."""
        ni, nj, nk = handle.size
        return self._region(handle, {"box": [0, 0, 0, ni - 1, nj - 1, nk - 1]})

    def refresh(self, handle: VolumeHandle) -> None:
        """Rewrite every segment of this session from the server's whole label map."""
        ni, nj, nk = handle.size
        change = {"box": [0, 0, 0, ni - 1, nj - 1, nk - 1]}
        self._write(handle, change, self._region(handle, change))

    # -- plumbing --------------------------------------------------------------------------------------------
    def _session(self, handle: VolumeHandle, method: str, path: str, **kw: Any):
        return self.remote.request(method, f"/api/sessions/{handle.session_id}{path}", lease=handle.lease, **kw)

    def _known(self, handle: VolumeHandle, node: Any, segment_id: str) -> SegmentRef:
        ref = handle.ref(node, segment_id)
        if ref is None:
            raise VolSAMError(f"segment {segment_id} was not made by VolSAM in this session")
        return ref

    def _ensure_object(self, handle: VolumeHandle, ref: SegmentRef) -> None:
        """Bring back ``ref``'s object if an undo took its creation back."""
        objects = self._session(handle, "GET", "").json()["objects"]
        if all(int(o["label"]) != ref.label for o in objects):
            self._session(handle, "POST", "/objects", json_body={"label": ref.label, "name": ref.name})

    def _check_segmentation(self, handle: VolumeHandle, node: Any) -> None:
        if node is None or not node.IsA("vtkMRMLSegmentationNode"):
            raise VolSAMError("choose a segmentation node")
        volume_transform = handle.volume_node.GetTransformNodeID()
        if node.GetTransformNodeID() != volume_transform and node.GetSegmentation().GetNumberOfSegments() > 0:
            raise VolSAMError(f"{node.GetName()} is under another transform than {handle.volume_node.GetName()}")

    def _segment_for(
        self, handle: VolumeHandle, node: Any, segment_id: str | None, label: int, name: str
    ) -> SegmentRef:
        """The segment that shows object ``label``: ``segment_id``, or a new one (named, palette colour)."""
        segmentation = node.GetSegmentation()
        if segmentation.GetNumberOfSegments() == 0:
            node.SetReferenceImageGeometryParameterFromVolumeNode(handle.volume_node)
            node.SetAndObserveTransformNodeID(handle.volume_node.GetTransformNodeID())
        if segment_id is None:
            colour = [c / 255.0 for c in PALETTE[(label - 1) % len(PALETTE)]]
            segment_id = segmentation.AddEmptySegment("", name, colour)
        segment = segmentation.GetSegment(segment_id)
        segment.SetTag("VolSAM.label", str(label))
        ref = SegmentRef(node, segment_id, label, name)
        handle.objects[label] = ref
        return ref

    def _region(self, handle: VolumeHandle, change: dict) -> np.ndarray | None:
        """The label map inside ``change['box']`` (uint16 ``[k, j, i]``), None when nothing changed."""
        if change.get("box") is None:
            return None
        box = ",".join(str(int(v)) for v in change["box"])
        reply = self._busy(
            handle, "updating", lambda: self._session(handle, "GET", "/labelmap/region", params={"box": box})
        )
        shape = tuple(int(v) for v in reply.headers["x-volsam-shape"].split(","))
        return np.frombuffer(gzip.decompress(reply.body), dtype="<u2").reshape(shape)

    def _write(self, handle: VolumeHandle, change: dict, block: np.ndarray | None) -> None:
        """Every segment of this session, inside the changed box, as the server's label map says."""
        if block is None:
            return
        box = tuple(int(v) for v in change["box"])
        nodes = {id(ref.node): ref.node for ref in handle.objects.values()}
        modified = {key: node.StartModify() for key, node in nodes.items()}
        try:
            for label, ref in handle.objects.items():
                if ref.node.GetSegmentation().GetSegment(ref.segment_id) is None:
                    continue  # the user removed the segment
                write_segment_box(ref.node, ref.segment_id, box, block == label, handle.ijk_to_ras)
        finally:
            for key, node in nodes.items():
                node.EndModify(modified[key])

    def _busy(self, handle: VolumeHandle | None, stage: str, call: Callable[[], Any]) -> Any:
        """``call()``; while it runs, report ``progress(stage, frames)`` from this thread."""
        if self.progress is None:
            return call()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = call()
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=run, name="volsam-request", daemon=True)
        worker.start()
        frames = 0
        self.progress(stage, frames)
        while worker.is_alive():
            worker.join(self.poll_s)
            if handle is not None and worker.is_alive():
                frames += self._new_frames(handle)
            self.progress(stage, frames)
        if handle is not None:
            frames += self._new_frames(handle)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def _new_frames(self, handle: VolumeHandle) -> int:
        """How many ``frame`` events (slices segmented) the session reported since the last look."""
        try:
            reply = self._session(
                handle, "GET", "/events", params={"after": handle.events_seen, "follow": "false"}, timeout=10.0
            )
        except VolSAMError:
            return 0  # progress is a nicety: the request itself reports what went wrong
        frames = 0
        for line in reply.body.decode("utf-8", "replace").splitlines():
            if line.startswith("id: "):
                handle.events_seen = int(line[4:]) + 1
            elif line.startswith("data: ") and '"frame"' in line:
                frames += 1
        return frames

    @staticmethod
    def _wait(seconds: float) -> None:
        time.sleep(seconds)

    # -- display --------------------------------------------------------------------------------------------
    @staticmethod
    def apply_window(volume_node: Any, preset: str) -> None:
        """Show ``volume_node`` with a CT window preset (:data:`WINDOW_PRESETS`)."""
        if preset not in WINDOW_PRESETS:
            raise VolSAMError(f"unknown window {preset!r}; use one of {', '.join(WINDOW_PRESETS)}")
        display = volume_node.GetDisplayNode()
        if display is None:
            volume_node.CreateDefaultDisplayNodes()
            display = volume_node.GetDisplayNode()
        width, level = WINDOW_PRESETS[preset]
        display.AutoWindowLevelOff()
        display.SetWindowLevel(width, level)

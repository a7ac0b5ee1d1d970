"""``RemoteSession``: a :class:`volsam.Session` on a ``volsam serve`` server, from any Python (no torch).

    from volsam.client import RemoteSession
    with RemoteSession("http://gpu-box:8000", token="...", image="ct.nii.gz", engine="sam2", model="medsam2") as s:
        liver = s.add_object(name="liver")
        s.add_box(liver, slice=60, box=(120, 80, 260, 210))
        s.add_point(liver, (150, 150, 75), positive=False)
        volsam.write_volume(s.labelmap(), "seg.nii.gz")

Coordinates and return values are those of :class:`volsam.Session` (voxel indices of the image as read,
masks bool ``[k, j, i]``, :class:`~volsam.core.changes.Change` per edit). A refusal is raised as the very
volsam error type the server named (:func:`volsam.core.errors.error_class`: e.g. PromptError for a slice
outside the image, as a local Session raises; LeaseRefused, SessionNotFound, Unauthorized, ServerFull -- all
RemoteError -- for the server's own refusals), with the server's one-line message and `` (HTTP nnn)``.

Only numpy, httpx and volsam's numpy-only core (plus, for NIfTI, :mod:`volsam.io.readers` /
:mod:`volsam.io.writers`, imported when used) are imported: no torch, no session or engine code.
"""

from __future__ import annotations

import base64
import gzip
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from volsam.core.changes import Change
from volsam.core.errors import EngineError, InputError, PromptError, RemoteError, error_class
from volsam.core.volume import Volume

__all__ = ["RemoteError", "RemoteSession"]  # RemoteError lives in volsam.core.errors; kept importable here


def _raise_for(response: httpx.Response) -> None:
    """Raise the error the server named in its JSON body (``error``; RemoteError when it names none we know)."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail, name = body.get("detail"), body.get("error")
    else:
        detail, name = response.text[:200], None
    raise error_class(name if isinstance(name, str) else None)(f"{detail} (HTTP {response.status_code})")


def _volume_from_nifti(blob: bytes) -> Volume:
    from volsam.io.readers import read_volume

    with tempfile.TemporaryDirectory(prefix="volsam-client-") as tmp:
        path = Path(tmp) / "labelmap.nii.gz"
        path.write_bytes(blob)
        volume = read_volume(path)
    volume.meta["source"] = "server"
    return volume


def _png_array(blob: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(blob), formats=["PNG"]) as img:
        return np.asarray(img)


class RemoteSession:
    """An interactive session held by a volsam server.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8000``.
        token: the server's bearer token (None when it needs none).
        image: a file to upload (NIfTI, NRRD, MHA, .npz, DICOM .zip, a 2D picture, a video or DICOM cine: a video
            session, see :meth:`frame`) or a :class:`Volume` (sent as NIfTI).
        engine, model: as for :class:`volsam.Session` (``model`` a catalogue name the server knows).
        backend: what runs the engine's image encoder (``auto``, ``torch``, ``openvino``, as ``volsam segment
            --backend``); None: the server's default (``volsam serve --backend``). :attr:`backend` then says
            what the server runs it on.
        modality, window, axis: intensity normalisation and slice axis, as for :class:`volsam.Session`.
        channel: which volume of a 4D image to segment (as ``volsam segment --channel``).
        timeout: seconds to wait for one request (propagations can take minutes on a CPU).
    """

    def __init__(
        self,
        url: str,
        *,
        image: str | os.PathLike[str] | Volume,
        token: str | None = None,
        engine: str = "medsam-lite",
        model: str | None = None,
        backend: str | None = None,
        modality: str = "auto",
        window: str | None = None,
        axis: str = "k",
        channel: int | None = None,
        timeout: float = 600.0,
    ):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        form = {"engine": engine, "modality": modality, "axis": axis}
        if model is not None:
            form["model"] = model
        if backend is not None:
            form["backend"] = backend
        if window is not None:
            form["window"] = window
        if channel is not None:
            form["channel"] = str(int(channel))
        try:
            response = self._upload(image, form)
        except httpx.HTTPError as exc:
            self._http.close()
            raise EngineError(f"cannot reach the volsam server at {url}: {exc}") from exc
        if not response.is_success:
            self._http.close()
        _raise_for(response)
        created = response.json()
        self.id: str = created["id"]
        self.geometry: dict[str, Any] = created["geometry"]
        self.backend: str = created.get("backend", "torch")  # servers before the option ran torch only
        self.lease: str = created["lease"]  # the session's lease token (sent with every call)
        self._http.headers["X-Session-Lease"] = self.lease
        self.last_candidate: tuple[int, int] | None = None  # (rank, count) of the last next_candidate

    def _upload(self, image: str | os.PathLike[str] | Volume, form: dict) -> httpx.Response:
        if isinstance(image, Volume):
            from volsam.io.writers import write_volume

            with tempfile.TemporaryDirectory(prefix="volsam-client-") as tmp:
                path = write_volume(image, Path(tmp) / "image.nii.gz", label=False)
                with path.open("rb") as fh:
                    return self._http.post("/api/sessions", data=form, files={"file": ("image.nii.gz", fh)})
        path = Path(image)
        if not path.is_file():
            raise InputError(f"{path}: no such file to upload")
        with path.open("rb") as fh:
            return self._http.post("/api/sessions", data=form, files={"file": (path.name, fh)})

    # -- plumbing -------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, f"/api/sessions/{self.id}{path}", **kw)
        except httpx.HTTPError as exc:
            raise EngineError(f"the volsam server did not answer: {exc}") from exc
        _raise_for(response)
        return response

    def _prompt(self, body: dict) -> Change:
        return Change.from_dict(self._call("POST", "/prompts", json=body).json())

    # -- the Session interface ----------------------------------------------------------------------------
    @property
    def objects(self) -> list[tuple[int, str]]:
        return [(o["label"], o["name"]) for o in self._call("GET", "").json()["objects"]]

    def add_object(self, label: int | None = None, name: str | None = None) -> int:
        return int(self._call("POST", "/objects", json={"label": label, "name": name}).json()["label"])

    def remove_object(self, obj: int) -> Change:
        return Change.from_dict(self._call("DELETE", f"/objects/{int(obj)}").json())

    def reset_object(self, obj: int) -> Change:
        return Change.from_dict(self._call("POST", f"/objects/{int(obj)}/reset").json())

    def add_box(self, obj: int, slice: int, box: Sequence[int], run: bool = True) -> Change:
        return self._prompt(
            {"object": obj, "type": "box", "slice": int(slice), "box": [int(v) for v in box], "run": run}
        )

    def add_box3d(self, obj: int, box: Sequence[int], run: bool = True) -> Change:
        return self._prompt({"object": obj, "type": "box3d", "box": [int(v) for v in box], "run": run})

    def add_point(self, obj: int, ijk: Sequence[int], positive: bool = True, run: bool = True) -> Change:
        body = {"object": obj, "type": "point", "point": [int(v) for v in ijk], "positive": positive, "run": run}
        return self._prompt(body)

    def add_mask(self, obj: int, mask: np.ndarray, run: bool = True) -> Change:
        """``mask``: bool ``[k, j, i]`` on the image grid; only its bounding box travels."""
        m = np.asarray(mask) != 0
        if not m.any():
            raise PromptError("the mask is empty")
        ks, js, is_ = (np.flatnonzero(m.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3))
        k0, k1, j0, j1, i0, i1 = ks[0], ks[-1], js[0], js[-1], is_[0], is_[-1]
        block = np.ascontiguousarray(m[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1], dtype=np.uint8)
        data = base64.b64encode(gzip.compress(block.tobytes(), compresslevel=1)).decode()
        box = [int(v) for v in (i0, j0, k0, i1, j1, k1)]
        return self._prompt({"object": obj, "type": "mask", "box": box, "data": data, "run": run})

    def next_candidate(self, obj: int, slice: int) -> Change:
        """As :meth:`volsam.Session.next_candidate`; ``last_candidate`` is then ``(rank, count)``."""
        answer = self._call("POST", f"/objects/{int(obj)}/candidate", json={"slice": int(slice)}).json()
        self.last_candidate = (int(answer.pop("candidate")), int(answer.pop("candidates")))
        return Change.from_dict(answer)

    def run(self) -> Change:
        return Change.from_dict(self._call("POST", "/run").json())

    def undo(self) -> Change:
        return Change.from_dict(self._call("POST", "/undo").json())

    def redo(self) -> Change:
        return Change.from_dict(self._call("POST", "/redo").json())

    def cancel(self) -> bool:
        """Stop this session's running prompt or run at its next slice (call it from another thread): that call
        raises :class:`~volsam.errors.Cancelled` and the session stays as it was. False when nothing runs."""
        return bool(self._call("POST", "/cancel").json()["cancelling"])

    def labelmap(self) -> Volume:
        """Every object on the image grid, as :meth:`volsam.Session.labelmap`."""
        return _volume_from_nifti(self._call("GET", "/labelmap").content)

    def save_labelmap(self, path: str | os.PathLike[str], format: str = "nifti") -> Path:
        """Write the server's label map file to ``path`` as it sends it: ``nifti`` (.nii.gz), ``png`` (a 2D
        image's mask PNG, the input's size, as ``volsam segment photo.png -o mask.png`` writes it), ``seg-nrrd``
        (3D Slicer), ``dicom-seg`` (DICOM uploads), or a video session's ``npz`` / ``png-zip`` (as ``volsam
        segment VIDEO -o masks.npz`` / ``-o masks/``, the zip with the JSON sidecar). Streamed; returns ``path``."""
        return self._save("/labelmap", path, params={"format": format})

    def _save(self, route: str, path: str | os.PathLike[str], **kw: Any) -> Path:
        """Stream a download to ``path`` (a video's masks are never held whole in memory)."""
        target = Path(path)
        try:
            with self._http.stream("GET", f"/api/sessions/{self.id}{route}", **kw) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                with target.open("wb") as fh:
                    for block in response.iter_bytes():
                        fh.write(block)
        except httpx.HTTPError as exc:
            raise EngineError(f"the volsam server did not answer: {exc}") from exc
        return target

    # -- video sessions (a video or DICOM cine upload; prompts: Box2D with slice = frame, Point(x, y, frame)) --
    def frame(self, n: int) -> np.ndarray:
        """A video session's frame ``n``: uint8 ``(H, W, 3)`` RGB (``(H, W)`` grey for a grey cine)."""
        return _png_array(self._call("GET", f"/frames/{int(n)}").content)

    def frame_labels(self, n: int) -> np.ndarray:
        """A video session's label map of frame ``n``: ``(H, W)`` label values."""
        return _png_array(self._call("GET", f"/labelmap/frames/{int(n)}").content)

    def save_overlay(self, path: str | os.PathLike[str]) -> Path:
        """A video session's overlay video (each object's contour) written to ``path`` (MP4). Save the masks with
        :meth:`save_labelmap` ``format="npz"`` or ``"png-zip"`` (per-frame PNGs and the JSON sidecar)."""
        return self._save("/overlay", path)

    def labelmap_region(self, box: Sequence[int]) -> np.ndarray:
        """The label map inside ``box`` ``(i0, j0, k0, i1, j1, k1)`` (e.g. a :class:`Change`'s box), ``[k, j, i]``."""
        response = self._call("GET", "/labelmap/region", params={"box": ",".join(str(int(v)) for v in box)})
        shape = tuple(int(v) for v in response.headers["X-Volsam-Shape"].split(","))
        return np.frombuffer(gzip.decompress(response.content), dtype="<u2").reshape(shape)

    def prompts_document(self) -> dict:
        """The prompts JSON that reproduces the objects (mask prompts need the zip: see the server API)."""
        response = self._call("GET", "/prompts")
        if response.headers.get("content-type", "").startswith("application/zip"):
            raise InputError("these prompts include masks: download /prompts as a zip from the server")
        return response.json()

    def close(self) -> None:
        """Close the session on the server (its memory is freed) and this client."""
        try:
            self._call("DELETE", "")
        finally:
            self._http.close()

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

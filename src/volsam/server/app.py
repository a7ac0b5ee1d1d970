"""The HTTP API (FastAPI; schema at ``/docs`` and ``/openapi.json``) and the web page at ``/``.

Every call is a thin layer over one :class:`volsam.Session` method. Authentication: when the server has a
token, every ``/api`` request carries ``Authorization: Bearer <token>`` (or ``?access_token=`` for plain
browser GETs such as downloads and the event stream). Each session also has a lease token, returned when it
is created, that every request for that session must show (``X-Session-Lease`` or ``?lease=``).

Errors: volsam's own errors become 4xx with the same one-line message as the CLI (``{"detail": ...}``):
400 bad input or prompt, 401 missing/wrong token, 403 wrong lease, 404 unknown session/object, 409 a DICOM-SEG
asked of an image that was not uploaded as DICOM (or of a session without objects), 413 upload too large,
422 malformed request, 503 server full. Anything else is a 500 whose body never carries a
traceback (it is logged).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hmac
import io
import json
import logging
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from volsam import __version__
from volsam.core.errors import EngineError, InputError, ModelNotFound, OutputError, PromptError, VolsamError
from volsam.core.volume import Volume
from volsam.server.config import ServerConfig
from volsam.server.store import Entry, LeaseRefused, ServerFull, SessionNotFound, SessionStore
from volsam.server.uploads import UploadTooLarge, discard, read_upload, save_upload, scratch

log = logging.getLogger(__name__)


class NoDicomSource(VolsamError):
    """A DICOM-SEG download for an image that did not come from DICOM, or with no object yet -> HTTP 409."""


_STATUS = {
    UploadTooLarge: 413,
    NoDicomSource: 409,
    SessionNotFound: 404,
    LeaseRefused: 403,
    ServerFull: 503,
    ModelNotFound: 400,
    EngineError: 400,
    InputError: 400,
    PromptError: 400,
    OutputError: 500,
}
_CHUNK = 1 << 20


class Unauthorized(VolsamError):
    """Missing or wrong bearer token -> HTTP 401."""


# -- request bodies ---------------------------------------------------------------------------------------
class ObjectIn(BaseModel):
    label: int | None = Field(None, ge=1, le=65535, description="label value (default: the next free one)")
    name: str | None = Field(None, max_length=200)


class PromptIn(BaseModel):
    """One prompt for one object. Coordinates are voxel indices of the image as uploaded."""

    object: int = Field(..., ge=1, description="the object's label")
    type: Literal["box", "box3d", "point", "mask"]
    slice: int | None = Field(None, description="box: the slice index along the session's axis")
    box: list[int] | None = Field(None, description="box: [u0, v0, u1, v1]; box3d / mask: [i0, j0, k0, i1, j1, k1]")
    point: list[int] | None = Field(None, description="point: [i, j, k]")
    positive: bool = True
    data: str | None = Field(
        None, description="mask: base64 of the gzip of a uint8 array (0/1), shape of `box` as [k, j, i], C order"
    )
    run: bool = Field(True, description="false: queue the prompt until POST .../run")


# -- helpers ----------------------------------------------------------------------------------------------
def _change(change: Any) -> dict:
    return {
        "labels": list(change.labels),
        "frames": list(change.frames) if change.frames is not None else None,
        "box": list(change.box) if change.box is not None else None,
        "frames_encoded": change.frames_encoded,
        "seconds": change.seconds,
        "first_frame_seconds": change.first_frame_seconds,
    }


def _geometry(volume: Volume, axis: int) -> dict:
    return {
        "size": list(volume.size),
        "spacing": list(volume.spacing),
        "origin": list(volume.origin),
        "direction": np.asarray(volume.direction).tolist(),
        "axis": axis,
        "axis_names": list(volume.axis_names()),
        "modality": volume.meta.get("modality"),
        "dicom_seg": volume.meta.get("dicom_headers") is not None,  # a DICOM-SEG download is possible
    }


def _nifti_bytes(volume: Volume, label: bool) -> bytes:
    from volsam.io.writers import write_volume

    with tempfile.TemporaryDirectory(prefix="volsam-out-") as tmp:
        path = write_volume(volume, Path(tmp) / "out.nii.gz", label=label)
        return path.read_bytes()


def _dicom_seg_bytes(labelmap: Volume, image: Volume, engine: str, model: str | None) -> bytes:
    from volsam.io.dicom_seg import dicom_headers, write_dicom_seg

    if dicom_headers(image) is None:
        raise NoDicomSource(
            "this session's image was not uploaded as a DICOM series (.zip), so there is no series for a DICOM-SEG "
            "to reference; download the label map as NIfTI instead"
        )
    names = labelmap.meta.get("labels") or {}
    if not names and not labelmap.array.any():
        raise NoDicomSource("the session has no object yet: a DICOM-SEG needs at least one segment")
    with tempfile.TemporaryDirectory(prefix="volsam-out-") as tmp:
        path = write_dicom_seg(labelmap, image, Path(tmp) / "labelmap.dcm", names=names, engine=engine, model=model)
        return path.read_bytes()


def _mask_prompt(p: PromptIn, size: tuple[int, int, int]) -> np.ndarray:
    if p.box is None or len(p.box) != 6 or p.data is None:
        raise PromptError("a mask prompt needs `box` [i0, j0, k0, i1, j1, k1] and `data`")
    i0, j0, k0, i1, j1, k1 = p.box
    if not (0 <= i0 <= i1 < size[0] and 0 <= j0 <= j1 < size[1] and 0 <= k0 <= k1 < size[2]):
        raise PromptError(f"mask box {p.box} is not inside the image of {list(size)} voxels")
    shape = (k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1)
    try:
        raw = gzip.decompress(base64.b64decode(p.data, validate=True))
    except (ValueError, OSError, EOFError) as exc:
        raise PromptError(f"mask data is not base64 of gzip ({exc})") from exc
    if len(raw) != int(np.prod(shape)):
        raise PromptError(f"mask data holds {len(raw)} bytes; the box {shape} (k, j, i) needs {int(np.prod(shape))}")
    full = np.zeros((size[2], size[1], size[0]), dtype=bool)
    full[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1] = np.frombuffer(raw, np.uint8).reshape(shape) != 0
    return full


def _apply_prompt(session: Any, p: PromptIn) -> Any:
    if p.type == "box":
        if p.slice is None or p.box is None or len(p.box) != 4:
            raise PromptError("a box prompt needs `slice` and `box` [u0, v0, u1, v1]")
        return session.add_box(p.object, p.slice, p.box, run=p.run)
    if p.type == "box3d":
        if p.box is None or len(p.box) != 6:
            raise PromptError("a box3d prompt needs `box` [i0, j0, k0, i1, j1, k1]")
        return session.add_box3d(p.object, p.box, run=p.run)
    if p.type == "point":
        if p.point is None or len(p.point) != 3:
            raise PromptError("a point prompt needs `point` [i, j, k]")
        return session.add_point(p.object, p.point, positive=p.positive, run=p.run)
    return session.add_mask(p.object, _mask_prompt(p, session.volume.size), run=p.run)


def _parse_box(text: str, size: tuple[int, int, int]) -> tuple[int, ...]:
    try:
        box = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"box must be i0,j0,k0,i1,j1,k1 (integers), got {text!r}") from None
    if len(box) != 6 or not all(0 <= box[a] <= box[a + 3] < size[a] for a in range(3)):
        raise InputError(f"box {text!r} is not inside the image of {list(size)} voxels")
    return box


class BodyLimit:
    """ASGI middleware: a request body larger than ``limit`` bytes stops with :class:`UploadTooLarge` (413)
    while it streams in, whether or not the client declared its length (chunked uploads too)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise UploadTooLarge(f"the upload is larger than this server's limit of {self.limit // 2**20} MB")
            return message

        await self.app(scope, limited, send)


# -- dependencies -----------------------------------------------------------------------------------------
def authorised(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    access_token: Annotated[str | None, Query()] = None,
) -> None:
    """Checks the bearer token when the server has one."""
    token = request.app.state.config.token
    if token is None:
        return
    given = None
    if authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    elif access_token:
        given = access_token
    if given is None or not hmac.compare_digest(given, token):
        raise Unauthorized("this server needs a bearer token (Authorization: Bearer <token>)")


def entry_of(
    request: Request,
    sid: str,
    x_session_lease: Annotated[str | None, Header()] = None,
    lease: Annotated[str | None, Query()] = None,
) -> Entry:
    """The session named in the path, if the request shows its lease."""
    return request.app.state.store.get(sid, x_session_lease or lease)


Leased = Annotated[Entry, Depends(entry_of)]


# -- the app ----------------------------------------------------------------------------------------------
def create_app(config: ServerConfig, store: SessionStore | None = None) -> FastAPI:
    """The FastAPI application for ``config`` (``store`` for tests that bring their own)."""
    store = store or SessionStore(config.max_sessions, config.idle_timeout_s, config.device_slots)
    app = FastAPI(
        title="volsam",
        version=__version__,
        description="Interactive 3D medical image segmentation sessions (SAM 2 family, LiteMedSAM).",
    )
    app.state.store = store
    app.state.config = config
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes + _CHUNK)  # + room for the multipart framing
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "X-Session-Lease", "Content-Type"],
        )

    @app.exception_handler(VolsamError)
    async def _volsam_error(request: Request, exc: VolsamError) -> JSONResponse:
        status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
        if isinstance(exc, Unauthorized):
            status = 401
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, 500)

    auth = [Depends(authorised)]

    @app.get("/api/health", dependencies=auth)
    def health() -> dict:
        return {"status": "ok", "version": __version__, "sessions": len(store), "max_sessions": config.max_sessions}

    @app.get("/api/capabilities", dependencies=auth)
    def capabilities() -> dict:
        import torch

        from volsam.engines.catalog import CATALOG, installed
        from volsam.engines.registry import available

        devices = ["cpu"] + [f"cuda:{n}" for n in range(torch.cuda.device_count())]
        if torch.backends.mps.is_available():
            devices.append("mps")
        return {
            "engines": [{"name": e["name"], "kind": e["kind"], "description": e["description"]} for e in available()],
            "models": [
                {"name": m.name, "engine": m.engine, "installed": installed(m) is not None, "license": m.license}
                for m in CATALOG.values()
            ],
            "devices": devices,
            "default_device": config.device,
            "max_upload_mb": config.max_upload_mb,
        }

    @app.post("/api/sessions", dependencies=auth, status_code=201)
    async def create_session(
        request: Request,
        file: Annotated[UploadFile, File(description="NIfTI, NRRD, MHA, CVPR .npz, or a DICOM series as .zip")],
        engine: Annotated[str, Form()] = "medsam-lite",
        model: Annotated[str | None, Form(description="a catalogue name (never a server path)")] = None,
        modality: Annotated[str, Form()] = "auto",
        window: Annotated[str | None, Form()] = None,
        axis: Annotated[str, Form()] = "k",
    ) -> dict:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_upload_bytes + _CHUNK:
            raise UploadTooLarge(f"the upload is larger than this server's limit of {config.max_upload_mb:g} MB")
        if model is not None and ("/" in model or "\\" in model or model.startswith(".")):
            raise InputError("model must be a name from the catalogue (GET /api/capabilities), not a path")
        folder = scratch()
        try:

            def chunks():
                while True:
                    block = file.file.read(_CHUNK)
                    if not block:
                        return
                    yield block

            path = await run_in_threadpool(save_upload, chunks(), file.filename, config.max_upload_bytes, folder)
            volume = await run_in_threadpool(read_upload, path, config.max_upload_bytes)
        finally:
            discard(folder)
        options = {"modality": modality, "window": window, "axis": axis}
        entry = await run_in_threadpool(store.create, volume, engine, model, config.device, **options)
        return {"id": entry.id, "lease": entry.lease, "geometry": _geometry(volume, entry.session.axis)}

    @app.get("/api/sessions/{sid}", dependencies=auth)
    def describe(entry: Leased) -> dict:
        with store.locked(entry) as s:
            return {
                "id": entry.id,
                "engine": entry.engine,
                "model": entry.model,
                "geometry": _geometry(s.volume, s.axis),
                "objects": [
                    {"label": label, "name": name, "prompts": len(s.prompts(label))} for label, name in s.objects
                ],
            }

    @app.delete("/api/sessions/{sid}", dependencies=auth, status_code=204)
    def close(entry: Leased) -> Response:
        store.close(entry.id, entry.lease)
        return Response(status_code=204)

    @app.post("/api/sessions/{sid}/objects", dependencies=auth, status_code=201)
    def add_object(entry: Leased, body: ObjectIn) -> dict:
        with store.locked(entry) as session:
            label = session.add_object(body.label, body.name)
            return {"label": label, "name": dict(session.objects)[label]}

    @app.delete("/api/sessions/{sid}/objects/{label}", dependencies=auth)
    def remove_object(entry: Leased, label: int) -> dict:
        with store.locked(entry) as session:
            return _change(session.remove_object(label))

    @app.post("/api/sessions/{sid}/objects/{label}/reset", dependencies=auth)
    def reset_object(entry: Leased, label: int) -> dict:
        with store.locked(entry) as session:
            return _change(session.reset_object(label))

    @app.post("/api/sessions/{sid}/prompts", dependencies=auth)
    def add_prompt(entry: Leased, body: PromptIn) -> dict:
        with store.using(entry) as session:
            return _change(_apply_prompt(session, body))

    @app.post("/api/sessions/{sid}/run", dependencies=auth)
    def run(entry: Leased) -> dict:
        with store.using(entry) as session:
            return _change(session.run())

    @app.post("/api/sessions/{sid}/undo", dependencies=auth)
    def undo(entry: Leased) -> dict:
        with store.locked(entry) as session:
            return _change(session.undo())

    @app.post("/api/sessions/{sid}/redo", dependencies=auth)
    def redo(entry: Leased) -> dict:
        with store.locked(entry) as session:
            return _change(session.redo())

    @app.get("/api/sessions/{sid}/labelmap", dependencies=auth)
    def labelmap(
        entry: Leased,
        format: Annotated[
            Literal["nifti", "dicom-seg"], Query(description="dicom-seg: for images uploaded as a DICOM series")
        ] = "nifti",
    ) -> Response:
        with store.locked(entry) as session:
            volume, image = session.labelmap(), session.volume
        if format == "dicom-seg":
            return Response(
                _dicom_seg_bytes(volume, image, entry.engine, entry.model),
                media_type="application/dicom",
                headers={"Content-Disposition": 'attachment; filename="labelmap.dcm"'},
            )
        return Response(
            _nifti_bytes(volume, label=True),
            media_type="application/gzip",
            headers={"Content-Disposition": 'attachment; filename="labelmap.nii.gz"'},
        )

    @app.get("/api/sessions/{sid}/labelmap/region", dependencies=auth)
    def labelmap_region(entry: Leased, box: Annotated[str, Query(description="i0,j0,k0,i1,j1,k1")]) -> Response:
        with store.locked(entry) as session:
            volume = session.labelmap()
        i0, j0, k0, i1, j1, k1 = _parse_box(box, volume.size)
        block = np.ascontiguousarray(volume.array[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1].astype("<u2"))
        return Response(
            gzip.compress(block.tobytes(), compresslevel=1),
            media_type="application/octet-stream",
            headers={
                "X-Volsam-Box": ",".join(str(v) for v in (i0, j0, k0, i1, j1, k1)),
                "X-Volsam-Shape": ",".join(str(v) for v in block.shape),
                "X-Volsam-Dtype": "uint16-le",
            },
        )

    @app.get("/api/sessions/{sid}/image", dependencies=auth)
    def image(entry: Leased) -> Response:
        with store.locked(entry) as session:
            volume = session.volume
        return Response(_nifti_bytes(volume, label=False), media_type="application/gzip")

    @app.get("/api/sessions/{sid}/prompts", dependencies=auth)
    def prompts(entry: Leased) -> Response:
        with store.locked(entry) as session, tempfile.TemporaryDirectory(prefix="volsam-prompts-") as tmp:
            path = session.save_prompts(Path(tmp) / "prompts.json")
            files = sorted(p for p in Path(tmp).iterdir() if p.is_file())
            if files == [path]:
                return JSONResponse(json.loads(path.read_text()))
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in files:
                    zf.write(f, f.name)
            return Response(buf.getvalue(), media_type="application/zip")

    @app.get("/api/sessions/{sid}/events", dependencies=auth)
    async def events(entry: Leased, after: int = 0, follow: bool = True) -> StreamingResponse:
        """Server-Sent Events: ``busy``, ``frame`` (a slice segmented: ``index``), ``idle``, ``closed``.
        ``after``: the first event number wanted; ``follow=false`` ends the stream after the events so far."""

        async def stream():
            seen = after
            while True:
                batch, upto = entry.events_after(seen)
                for n, event in enumerate(batch, start=upto - len(batch)):
                    yield f"id: {n}\ndata: {json.dumps(event)}\n\n"
                    if event["type"] == "closed":
                        return
                seen = upto
                if not follow:
                    return
                if not batch:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0.1 if batch else 0.5)

        return StreamingResponse(stream(), media_type="text/event-stream")

    from volsam.server.web import mount_web

    mount_web(app)
    return app

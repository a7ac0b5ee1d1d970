"""The HTTP API (FastAPI; schema at ``/docs`` and ``/openapi.json``) and the web page at ``/``.

Every call is a thin layer over one :class:`volsam.Session` method. Before the app sees a request,
:class:`.guard.Guard` checks its ``Host``, its ``Origin`` (state-changing requests), the bearer token
(``Authorization: Bearer <token>``; never in a URL) and its body size, in that order and before the body is
read (see :mod:`.guard` and ``docs/security.md``). Each session also has a lease token, returned when it is
created, that every request for that session must show (``X-Session-Lease`` header).

Errors (:mod:`.errors`): ``{"detail": "<the CLI's one-line message>", "error": "<volsam error type>"}`` with
the error's ``http_status``: 400 bad input, prompt or setting, 401 missing/wrong token, 403 wrong lease or a
refused Host / Origin, 404 unknown session, 409 a DICOM-SEG asked of an image that was not uploaded as DICOM
(or of a session without objects) or a prompt stopped by ``POST .../cancel`` (``Cancelled``), 413 upload or
decoded image too large, 422 malformed request (``error`` InputError), 503 server full. Anything else is a 500
(``error`` internal) whose body never carries a traceback (it is logged). No answer names a folder of the server.

Request bodies are in :mod:`.bodies`, downloads in :mod:`.outputs`, uploads in :mod:`.uploads`, model names
in :mod:`.models`, the web page and the API docs in :mod:`.web`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from typing import Annotated, Literal

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Query, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from volsam import __version__
from volsam.core.errors import InputError, NoDicomSource, Unauthorized, VolsamError
from volsam.engines.backends import BACKENDS
from volsam.jobs.request import SegmentRequest
from volsam.server.access import Leased, authorised
from volsam.server.bodies import ERRORS, CandidateIn, ObjectIn, PromptIn, apply_prompt, parse_box
from volsam.server.config import ServerConfig
from volsam.server.errors import install_error_handlers, server_folders
from volsam.server.guard import COOKIE, Guard, cookie_value
from volsam.server.models import backend_in_use, local_models, resolve_model, session_backend
from volsam.server.outputs import (
    MASK_PNG_NAME,
    SEG_NAME,
    SLICER_SEG_NAME,
    colour_nifti_bytes,
    dicom_seg_bytes,
    geometry,
    mask_png_bytes,
    nifti_bytes,
    prompts_response,
    slicer_seg_bytes,
)
from volsam.server.preview import PREVIEW_SCHEMA
from volsam.server.store import SessionStore
from volsam.server.uploads import (
    CHUNK,
    check_video,
    discard,
    is_video_upload,
    read_upload,
    renamed,
    save_upload,
    scratch,
)
from volsam.server.videos import VIDEO_FORMATS, VideoSession, VideoUpload, video_download, video_of, volume_of

log = logging.getLogger(__name__)

__all__ = ["NoDicomSource", "Unauthorized", "create_app"]  # the two errors live in volsam.core.errors


def _content(*types: str, what: str) -> dict:
    return {
        200: {"description": what, "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in types}}
    }


LABELMAP = _content(
    "application/gzip",
    "application/dicom",
    "application/octet-stream",
    "image/png",
    what="the label map (NIfTI .nii.gz, DICOM-SEG, 3D Slicer's .seg.nrrd, or a 2D image's mask PNG)",
)
IMAGE = _content("application/gzip", what="the image as uploaded, as NIfTI .nii.gz (colour=true: RGB24)")
REGION = _content("application/octet-stream", what="gzip of uint16 little-endian [k, j, i] inside the box")
PROMPTS = {200: {"description": "the prompts document (a zip with its mask files when it has mask prompts)",
                 "content": {"application/json": {"schema": {"type": "object"}},
                             "application/zip": {"schema": {"type": "string", "format": "binary"}}}}}  # fmt: skip
PNG = _content("image/png", what="a PNG")
OVERLAY = _content("video/mp4", what="the overlay video (MP4)")
EVENT = {"type": "object", "properties": {k: {"type": "string"} for k in ("id", "event", "data")}}
EVENTS = {200: {"description": "Server-Sent Events", "content": {"text/event-stream": {"schema": EVENT}}}}
PREVIEW = {
    200: {"description": "the running step's slice masks", "content": {"application/json": {"schema": PREVIEW_SCHEMA}}}
}


# -- the app ----------------------------------------------------------------------------------------------
def create_app(config: ServerConfig, store: SessionStore | None = None) -> FastAPI:
    """The FastAPI application for ``config`` (``store`` for tests that bring their own)."""
    if store is None:  # not `store or ...`: an empty store is falsy (it has a length)
        store = SessionStore(config.max_sessions, config.idle_timeout_s, config.device_slots)
    app = FastAPI(
        title="volsam",
        version=__version__,
        description="Interactive 3D medical image segmentation sessions (SAM 2 family, LiteMedSAM).",
        docs_url=None,  # served by volsam.server.web from a package's files (no CDN), behind the token
        redoc_url=None,
        responses=ERRORS,
    )
    app.state.store = store
    app.state.config = config
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "X-Session-Lease", "Content-Type"],
        )
    app.add_middleware(Guard, config=config)  # added last: runs first, before any body is read

    install_error_handlers(app, server_folders([config.models_dir]))
    auth = [Depends(authorised)] if config.token else []  # the schema declares a token only when there is one

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
            "local_models": local_models(config.models_dir),
            "devices": devices,
            "default_device": config.device,
            "backends": list(BACKENDS),
            "default_backend": config.backend,
            "max_upload_mb": config.max_upload_mb,
            "max_image_mb": config.max_image_mb,
        }

    @app.post("/api/login", dependencies=auth, status_code=204)
    def login() -> Response:
        """For a browser: a cookie (HttpOnly, SameSite=Strict) that opens the API docs (/docs) of a server with
        a token. The API itself takes the ``Authorization`` header only."""
        response = Response(status_code=204)
        if config.token is not None:
            response.set_cookie(
                COOKIE, cookie_value(config.token), httponly=True, samesite="strict", secure=config.tls, path="/"
            )
        return response

    @app.post("/api/sessions", dependencies=auth, status_code=201)
    async def create_session(
        file: Annotated[
            UploadFile,
            File(
                description="NIfTI, NRRD, MHA, CVPR .npz, a DICOM series as .zip, a 2D image: "
                ".png .jpg .jpeg .bmp .tif .tiff, a single .dcm, or a video: .mp4 .avi .mov .mkv .webm, a DICOM "
                "cine .dcm (a video session: geometry.video; frames by GET .../frames/{n})"
            ),
        ],
        engine: Annotated[str, Form()] = "medsam-lite",
        model: Annotated[
            str | None, Form(description="a model name from GET /api/capabilities (never a path)", max_length=100)
        ] = None,
        backend: Annotated[
            str | None,
            Form(
                description="what runs the image encoder, as `volsam segment --backend`: auto, torch or openvino "
                "(default: the server's `--backend` for engines that offer the choice; the session's `backend` "
                "says what runs it)"
            ),
        ] = None,
        modality: Annotated[str, Form()] = "auto",
        window: Annotated[str | None, Form()] = None,
        axis: Annotated[str, Form()] = "k",
        channel: Annotated[
            int | None, Form(description="which volume of a 4D image (0-based), as `volsam segment --channel`", ge=0)
        ] = None,
    ) -> dict:
        options = SegmentRequest(
            engine=engine,
            model=resolve_model(engine, model, config.models_dir),
            device=config.device,
            backend=session_backend(engine, backend, config.backend),
            modality=modality,
            window=window,
            axis=axis,
        )  # refused here, before the upload is read, like the command line's flags
        folder = scratch()
        kept = False
        try:

            def chunks():
                while True:
                    block = file.file.read(CHUNK)
                    if not block:
                        return
                    yield block

            path = await run_in_threadpool(save_upload, chunks(), file.filename, config.max_upload_bytes, folder)
            if await run_in_threadpool(is_video_upload, path):  # the file stays: its frames are read on demand
                if channel is not None:
                    raise InputError("channel applies to 4D or vector NIfTI/NRRD/MetaImage uploads only")
                await run_in_threadpool(check_video, path, config.max_image_bytes)
                entry = await run_in_threadpool(store.create, VideoUpload(folder, path), options, True)
                kept = True
                session = entry.session
                return {
                    "id": entry.id,
                    "lease": entry.lease,
                    "backend": backend_in_use(session),
                    "geometry": session.geometry(),
                }
            volume = await run_in_threadpool(
                read_upload, path, config.max_upload_bytes, config.max_image_bytes, channel
            )
        except VolsamError as exc:
            raise renamed(exc, f"{folder}/", to="") from None
        finally:
            if not kept:
                discard(folder)
        entry = await run_in_threadpool(store.create, volume, options)
        session = entry.session
        return {
            "id": entry.id,
            "lease": entry.lease,
            "backend": backend_in_use(session),
            "geometry": geometry(volume, session.axis, session),
        }

    @app.get("/api/sessions/{sid}", dependencies=auth)
    def describe(entry: Leased) -> dict:
        with store.locked(entry) as s:
            return {
                "id": entry.id,
                "engine": entry.engine,
                "model": entry.model,
                "device": entry.device,
                "backend": backend_in_use(s),
                "geometry": s.geometry() if isinstance(s, VideoSession) else geometry(s.volume, s.axis, s),
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
            return session.remove_object(label).to_dict()

    @app.post("/api/sessions/{sid}/objects/{label}/reset", dependencies=auth)
    def reset_object(entry: Leased, label: int) -> dict:
        with store.locked(entry) as session:
            return session.reset_object(label).to_dict()

    @app.post("/api/sessions/{sid}/prompts", dependencies=auth)
    def add_prompt(entry: Leased, body: PromptIn) -> dict:
        with store.using(entry) as session:
            return apply_prompt(session, body).to_dict()

    @app.post("/api/sessions/{sid}/objects/{label}/candidate", dependencies=auth)
    def next_candidate(entry: Leased, label: int, body: CandidateIn) -> dict:
        """The model's next candidate mask for the object's prompt on ``slice``, re-propagated (undoable):
        the change, plus ``candidate`` (the rank shown; 0 = the model's first answer) and ``candidates``."""
        with store.using(entry) as session:
            change = session.next_candidate(label, body.slice).to_dict()
            rank, count = session.last_candidate
            return {**change, "candidate": rank, "candidates": count}

    @app.post("/api/sessions/{sid}/run", dependencies=auth)
    def run(entry: Leased) -> dict:
        with store.using(entry) as session:
            return session.run().to_dict()

    @app.post("/api/sessions/{sid}/cancel", dependencies=auth)
    def cancel(entry: Leased) -> dict:
        """Stop the session's running prompt / run at its next segmented slice: that request answers 409
        ``Cancelled`` and the session is as it was before it. ``cancelling`` is false when nothing was running.
        Takes no session lock (the running request holds it)."""
        return {"cancelling": entry.cancel()}

    @app.post("/api/sessions/{sid}/undo", dependencies=auth)
    def undo(entry: Leased) -> dict:
        with store.locked(entry) as session:
            return session.undo().to_dict()

    @app.post("/api/sessions/{sid}/redo", dependencies=auth)
    def redo(entry: Leased) -> dict:
        with store.locked(entry) as session:
            return session.redo().to_dict()

    @app.get("/api/sessions/{sid}/labelmap", dependencies=auth, response_class=Response, responses=LABELMAP)
    def labelmap(
        entry: Leased,
        format: Annotated[
            Literal["nifti", "dicom-seg", "seg-nrrd", "png", "npz", "png-zip"],
            Query(
                description="dicom-seg: for images uploaded as a DICOM series; seg-nrrd: 3D Slicer's .seg.nrrd; "
                "png: a 2D image's label map, the input's size (as `volsam segment photo.png -o mask.png`); "
                "npz / png-zip: a video's masks (as `volsam segment VIDEO -o masks.npz` / `-o masks/`, the zip "
                "with the JSON sidecar); a video session has only these two"
            ),
        ] = "nifti",
    ) -> Response:
        if format in VIDEO_FORMATS:
            with store.locked(entry) as session:
                return video_download(video_of(session), format)
        with store.locked(entry) as session:
            volume, image = volume_of(session).labelmap(), session.volume
        if format == "png":
            return Response(
                mask_png_bytes(volume),
                media_type="image/png",
                headers={"Content-Disposition": f'attachment; filename="{MASK_PNG_NAME}"'},
            )
        if format == "seg-nrrd":
            return Response(
                slicer_seg_bytes(volume),
                media_type="application/octet-stream",
                headers={"Content-Disposition": f'attachment; filename="{SLICER_SEG_NAME}"'},
            )
        if format == "dicom-seg":
            return Response(
                dicom_seg_bytes(volume, image, entry.engine, entry.model),
                media_type="application/dicom",
                headers={"Content-Disposition": f'attachment; filename="{SEG_NAME}"'},
            )
        return Response(
            nifti_bytes(volume, label=True),
            media_type="application/gzip",
            headers={"Content-Disposition": 'attachment; filename="labelmap.nii.gz"'},
        )

    @app.get("/api/sessions/{sid}/labelmap/region", dependencies=auth, response_class=Response, responses=REGION)
    def labelmap_region(entry: Leased, box: Annotated[str, Query(description="i0,j0,k0,i1,j1,k1")]) -> Response:
        with store.locked(entry) as session:
            volume = volume_of(session).labelmap()
        i0, j0, k0, i1, j1, k1 = parse_box(box, volume.size)
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

    @app.get("/api/sessions/{sid}/image", dependencies=auth, response_class=Response, responses=IMAGE)
    def image(
        entry: Leased,
        colour: Annotated[
            bool, Query(description="a colour 2D image's RGB picture (NIfTI RGB24) instead of its grey values")
        ] = False,
    ) -> Response:
        with store.locked(entry) as session:
            volume = volume_of(session).volume
        body = colour_nifti_bytes(volume) if colour else nifti_bytes(volume, label=False)
        return Response(body, media_type="application/gzip")

    @app.get("/api/sessions/{sid}/prompts", dependencies=auth, response_class=Response, responses=PROMPTS)
    def prompts(
        entry: Leased,
        document: Annotated[
            bool, Query(description="the JSON document only, even with mask prompts (their files left out)")
        ] = False,
    ) -> Response:
        with store.locked(entry) as session:
            if isinstance(session, VideoSession):
                return JSONResponse(session.sidecar())
            return prompts_response(session, document_only=document)

    @app.get("/api/sessions/{sid}/frames/{n}", dependencies=auth, response_class=Response, responses=PNG)
    def frame(entry: Leased, n: int) -> Response:
        """A video session's frame ``n`` (0-based) as a PNG, decoded on demand (a run may be going on)."""
        return Response(video_of(entry.session).frame_png(n), media_type="image/png")

    @app.get("/api/sessions/{sid}/labelmap/frames/{n}", dependencies=auth, response_class=Response, responses=PNG)
    def labelmap_frame(entry: Leased, n: int) -> Response:
        """A video session's label map of frame ``n``: a grey PNG of label values (uint16 above 255). Answered during
        a run (no session lock): a frame the run has written shows its new masks, the others the state before it."""
        return Response(video_of(entry.session).labels_png(n), media_type="image/png")

    @app.get("/api/sessions/{sid}/overlay", dependencies=auth, response_class=Response, responses=OVERLAY)
    def overlay(entry: Leased) -> Response:
        """A video session's overlay video (each object's contour), as ``volsam segment VIDEO --overlay``."""
        with store.locked(entry) as session:
            return video_download(video_of(session), "overlay")

    @app.get("/api/sessions/{sid}/preview", dependencies=auth, responses=PREVIEW)
    def preview(
        entry: Leased,
        after: Annotated[int, Query(ge=0, description="the `next` of the previous answer (0: from the start)")] = 0,
    ) -> JSONResponse:
        """The slice masks the running prompt / run / correction has made so far, those after entry ``after``
        (the last entry per object and slice; a live preview: the label map replaces them when the step ends,
        and they are emptied then). Each is a bounding box and its bits, packed 8 per byte (see the schema).
        Takes no session lock (the running request holds it); answers at once."""
        return JSONResponse(entry.preview.since(after))

    @app.get("/api/sessions/{sid}/events", dependencies=auth, response_class=StreamingResponse, responses=EVENTS)
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

    from volsam.server.web import mount_docs, mount_web

    mount_docs(app)
    mount_web(app)
    return app

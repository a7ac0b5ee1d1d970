"""The server's error answers: every refusal is JSON ``{"detail": "<one line>", "error": "<type>"}``.

* volsam's own errors: the status is the error's ``http_status`` and ``error`` names its class (or the
  nearest volsam class it refines, :func:`volsam.core.errors.error_name`), so that the client raises the same
  type (:func:`volsam.core.errors.error_class`).
* A malformed request (FastAPI's validation, 422): ``detail`` lists each problem as ``where: what`` on one
  line, ``error`` is ``InputError``.
* Anything else: 500, ``error`` is ``internal``; the body names the exception type, never a traceback (it is
  logged).

No answer names a folder of the server: :func:`redact` replaces any path under the server's own folders (the
temporary folder, its home and model caches, its working directory, the Python installation, ``--models-dir``)
with ``<server path>``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from volsam.core.errors import InputError, VolsamError, error_name

log = logging.getLogger(__name__)


def error_body(detail: str, error: str) -> dict[str, str]:
    """The JSON body of a refusal: ``detail`` on one line, ``error`` the type's name."""
    return {"detail": " ".join(detail.splitlines()), "error": error}


def server_folders(extra: Iterable[Path | str | None] = ()) -> list[str]:
    """The folders of this server whose paths no answer may show (longest first)."""
    from volsam.engines.catalog import models_dir

    found = {tempfile.gettempdir(), str(Path.home()), os.getcwd(), sys.prefix, sys.base_prefix, str(models_dir())}
    found |= {str(p) for p in extra if p is not None}
    for folder in list(found):
        found.add(os.path.realpath(folder))
    return sorted((f for f in found if len(f) > 1), key=len, reverse=True)


def redact(text: str, folders: Iterable[str]) -> str:
    """``text`` with every path under one of ``folders`` replaced by ``<server path>``."""
    for folder in folders:
        text = re.sub(re.escape(folder) + r"(?:/[^\s'\",;:)\]]*|(?![\w.-]))", "<server path>", text)
    return text


def validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's validation errors on one line, e.g. ``body.box: Field required; query.format: ...``."""
    parts = []
    for problem in exc.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()))
        parts.append(f"{where}: {problem.get('msg', 'invalid')}" if where else str(problem.get("msg", "invalid")))
    return "; ".join(parts) or "malformed request"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app accepts for this request's path (for a 405's ``Allow``)."""
    methods: set[str] = set()
    scope = dict(request.scope)
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches({**scope, "method": "GET"})[0] != Match.NONE:
            methods |= set(route.methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI, folders: Iterable[str] = ()) -> None:
    """Answer volsam errors, validation errors and anything unexpected as described in the module notes
    (``folders``: the server's own, never shown; see :func:`server_folders`)."""
    folders = list(folders)

    @app.exception_handler(VolsamError)
    async def _volsam_error(request: Request, exc: VolsamError) -> JSONResponse:
        return JSONResponse(error_body(redact(str(exc), folders), error_name(exc)), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = redact(validation_detail(exc), folders)
        return JSONResponse(error_body(detail, InputError.__name__), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:  # unknown path, wrong method
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        detail = exc.detail if isinstance(exc.detail, str) else "refused"
        return JSONResponse(error_body(detail, "RemoteError"), status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        detail = f"internal error ({type(exc).__name__}); see the server log"
        return JSONResponse(error_body(detail, "internal"), status_code=500)

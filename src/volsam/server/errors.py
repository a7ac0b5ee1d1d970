"""The server's error answers: every refusal is JSON ``{"detail": "<one line>", "error": "<type>"}``.

* volsam's own errors: the status is the error's ``http_status`` and ``error`` names its class (or the
  nearest volsam class it refines, :func:`volsam.core.errors.error_name`), so that the client raises the same
  type (:func:`volsam.core.errors.error_class`).
* A malformed request (FastAPI's validation, 422): ``detail`` lists each problem as ``where: what`` on one
  line, ``error`` is ``InputError``.
* Anything else: 500, ``error`` is ``internal``; the body names the exception type, never a traceback (it is
  logged).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from volsam.core.errors import InputError, VolsamError, error_name

log = logging.getLogger(__name__)


def error_body(detail: str, error: str) -> dict[str, str]:
    """The JSON body of a refusal: ``detail`` on one line, ``error`` the type's name."""
    return {"detail": " ".join(detail.splitlines()), "error": error}


def validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's validation errors on one line, e.g. ``body.box: Field required; query.format: ...``."""
    parts = []
    for problem in exc.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()))
        parts.append(f"{where}: {problem.get('msg', 'invalid')}" if where else str(problem.get("msg", "invalid")))
    return "; ".join(parts) or "malformed request"


def install_error_handlers(app: FastAPI) -> None:
    """Answer volsam errors, validation errors and anything unexpected as described in the module notes."""

    @app.exception_handler(VolsamError)
    async def _volsam_error(request: Request, exc: VolsamError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), error_name(exc)), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(validation_detail(exc), InputError.__name__), status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        detail = f"internal error ({type(exc).__name__}); see the server log"
        return JSONResponse(error_body(detail, "internal"), status_code=500)

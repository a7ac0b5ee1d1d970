"""The web page and the API docs: static files shipped inside packages (no CDN, no internet at run time).

* ``/`` and ``/static/``: the web page (``static/``); public, so that it can ask for the token.
* ``/docs``: Swagger UI, its script and style from the ``fastapi-offline`` wheel (``/docs/assets/``), started
  by ``static/docs.js`` (no inline script: the page's Content-Security-Policy is ``default-src 'self'``).
  With a token, ``/docs`` and ``/openapi.json`` need it (:mod:`volsam.server.guard`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>volsam API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"><link rel="icon" href="/docs/assets/favicon.png">
</head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/static/docs.js"></script>
</body></html>
"""


def swagger_assets() -> Path:
    """Swagger UI's files inside the installed ``fastapi-offline`` wheel."""
    return Path(str(files("fastapi_offline") / "static"))


def mount_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` from the package's files."""
    app.mount("/docs/assets", StaticFiles(directory=swagger_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)


def mount_web(app: FastAPI) -> None:
    """Serve ``static/index.html`` at ``/`` and the other files under ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

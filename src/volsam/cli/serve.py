"""``volsam serve``: the HTTP API, its docs and the web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from volsam.cli.app import app


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface; needs a token).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the bearer token (default beyond loopback: a new one, printed).")
    ] = None,
    max_sessions: Annotated[int, typer.Option(help="Sessions open at once (more get HTTP 503).")] = 8,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted (HTTP 413 above).")] = 2048.0,
    idle_timeout: Annotated[float, typer.Option(help="Seconds before an unused session is closed.")] = 1800.0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allow browser pages of this origin (repeatable; none by default).")
    ] = None,
) -> None:
    """Serve the session API, its OpenAPI docs (/docs) and the web page on http://HOST:PORT."""
    import uvicorn

    from volsam.server.app import create_app
    from volsam.server.config import ServerConfig, is_loopback, new_token, read_token

    token = read_token(token_file) if token_file else None
    if token is None and not is_loopback(host):
        token = new_token()
        typer.echo(f"volsam serve: listening beyond loopback; bearer token for this run: {token}", err=True)
    config = ServerConfig(
        host=host,
        port=port,
        token=token,
        max_sessions=max_sessions,
        max_upload_mb=max_upload_mb,
        idle_timeout_s=idle_timeout,
        device=device,
        cors_origins=list(cors_origin or []),
    )
    typer.echo(f"volsam serve: http://{host}:{port} (API docs at /docs)", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")

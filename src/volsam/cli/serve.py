"""``volsam serve``: the HTTP API, its docs and the web page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volsam.cli.app import app

if TYPE_CHECKING:
    from volsam.server.config import ServerConfig


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
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted (HTTP 413 above).")] = 512.0,
    max_image_mb: Annotated[
        float | None,
        typer.Option(
            help="Largest decoded image accepted (voxels x bytes per voxel as its header declares them; HTTP 413 "
            "above, refused before decompressing). Default: 2 x --max-upload-mb."
        ),
    ] = None,
    idle_timeout: Annotated[float, typer.Option(help="Seconds before an unused session is closed.")] = 1800.0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allow browser pages of this origin (repeatable; none by default).")
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Also answer to this name in the Host header (repeatable; loopback names and the listening "
            "address always; '*': any, behind a proxy that checks it)."
        ),
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of extra models clients may name (NAME/ or NAME.pt: sam2; NAME.pth: LiteMedSAM)."),
    ] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="The certificate's private key (PEM).")] = None,
) -> None:
    """Serve the session API, its OpenAPI docs (/docs) and the web page on http://HOST:PORT."""
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
        max_image_mb=max_image_mb,
        idle_timeout_s=idle_timeout,
        device=device,
        cors_origins=list(cors_origin or []),
        allowed_hosts=list(allowed_host or []),
        models_dir=models_dir,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    start(config)


def start(config: ServerConfig) -> None:
    """Print the banner and run uvicorn until stopped."""
    import uvicorn

    from volsam.server.app import create_app

    scheme = "https" if config.tls else "http"
    typer.echo(f"volsam serve: {scheme}://{config.host}:{config.port} (API docs at /docs)", err=True)
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="warning",
        ssl_certfile=str(config.ssl_certfile) if config.ssl_certfile else None,
        ssl_keyfile=str(config.ssl_keyfile) if config.ssl_keyfile else None,
    )

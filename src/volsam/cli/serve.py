"""``volsam serve``: the HTTP API, its docs and the web page."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volsam.cli.app import app
from volsam.core.errors import SettingsError

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
    backend: Annotated[
        str,
        typer.Option(
            help="Image encoder runtime of engines that offer one (medsam-lite): auto, torch or openvino (CPU, "
            "fp32); auto = openvino if installed. Sessions may ask for another."
        ),
    ] = "auto",
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
    fresh_token = token is None and not is_loopback(host)
    if fresh_token:
        token = new_token()
    config = ServerConfig(
        host=host,
        port=port,
        token=token,
        max_sessions=max_sessions,
        max_upload_mb=max_upload_mb,
        max_image_mb=max_image_mb,
        idle_timeout_s=idle_timeout,
        device=device,
        backend=backend,
        cors_origins=list(cors_origin or []),
        allowed_hosts=list(allowed_host or []),
        models_dir=models_dir,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    sock = listen(config.host, config.port)  # a port in use is one line, before anything is printed
    if fresh_token:
        typer.echo(f"volsam serve: listening beyond loopback; bearer token for this run: {config.token}", err=True)
    start(config, sock)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``; SettingsError (one line) for a port out of range or one that cannot be
    bound (in use, not allowed, an address this machine does not have)."""
    if isinstance(port, bool) or not 1 <= port <= 65535:
        raise SettingsError(f"--port must be 1..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = " (another server on that port? choose --port)" if exc.errno == errno.EADDRINUSE else ""
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    return sock


def start(config: ServerConfig, sock: socket.socket) -> None:
    """Print the banner and serve on the bound ``sock`` until stopped."""
    import uvicorn

    from volsam.server.app import create_app

    scheme = "https" if config.tls else "http"
    typer.echo(f"volsam serve: {scheme}://{config.host}:{config.port} (API docs at /docs)", err=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            log_level="warning",
            ssl_certfile=str(config.ssl_certfile) if config.ssl_certfile else None,
            ssl_keyfile=str(config.ssl_keyfile) if config.ssl_keyfile else None,
        )
    )
    server.run(sockets=[sock])

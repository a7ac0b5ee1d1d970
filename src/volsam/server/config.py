"""Server settings and the bearer token."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from volsam.core.errors import InputError
from volsam.engines.backends import check_backend


@dataclass
class ServerConfig:
    """How ``volsam serve`` runs.

    Attributes:
        host, port: where to listen.
        token: the bearer token every request must carry (None: no token; only allowed on loopback).
        max_sessions: sessions open at once; more get HTTP 503.
        max_upload_mb: largest upload accepted (HTTP 413 above); a zip may unpack to 4x this.
        max_image_mb: largest decoded image accepted (voxels x bytes per voxel, as the file's header declares
            them; HTTP 413 above, refused before anything is decompressed). None: twice ``max_upload_mb``.
        idle_timeout_s: a session unused this long is closed.
        device: device for the models (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        backend: what runs the image encoder of the engines that offer a choice (``auto``, ``torch``,
            ``openvino``; as ``volsam segment --backend``): the default of every session, which a client may
            override when it opens one. Engines without the choice run on torch whatever it says.
        device_slots: model runs allowed at once per device (others wait their turn).
        cors_origins: origins allowed to call the API from a browser page of another site (none by default).
        allowed_hosts: extra names the server answers to in the ``Host`` header (besides loopback names, the
            listening address, the address a request came in on and, on a wildcard address, the machine's
            names); ``*`` answers any (behind a proxy that checks it).
        models_dir: a folder of extra models clients may name (``NAME/`` transformers directories or
            ``NAME.pt`` for sam2, ``NAME.pth`` or ``NAME/lite_medsam.pth`` for medsam-lite).
        ssl_certfile, ssl_keyfile: serve HTTPS with this certificate and key (PEM), through uvicorn.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_sessions: int = 8
    max_upload_mb: float = 512.0
    max_image_mb: float | None = None
    idle_timeout_s: float = 1800.0
    device: str = "auto"
    backend: str = "auto"
    device_slots: int = 1
    cors_origins: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=list)
    models_dir: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise InputError(f"--max-sessions must be at least 1, got {self.max_sessions}")
        if not self.max_upload_mb > 0:  # also refuses NaN
            raise InputError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if self.max_image_mb is None:
            self.max_image_mb = IMAGE_PER_UPLOAD * self.max_upload_mb
        if not self.max_image_mb > 0:
            raise InputError(f"--max-image-mb must be positive, got {self.max_image_mb}")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise InputError("--ssl-certfile and --ssl-keyfile go together")
        for flag, path in (("--ssl-certfile", self.ssl_certfile), ("--ssl-keyfile", self.ssl_keyfile)):
            if path is not None and not Path(path).expanduser().is_file():
                raise InputError(f"{flag} {path}: no such file")
        if self.models_dir is not None:
            self.models_dir = Path(self.models_dir).expanduser().resolve()
            if not self.models_dir.is_dir():
                raise InputError(f"--models-dir {self.models_dir}: no such folder")
        if self.idle_timeout_s <= 0:
            raise InputError(f"--idle-timeout must be positive, got {self.idle_timeout_s}")
        check_backend(self.backend)  # SettingsError, the command line's line
        if self.device_slots < 1:
            raise InputError(f"device slots must be at least 1, got {self.device_slots}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_image_bytes(self) -> int:
        return int((self.max_image_mb or 0) * 1024 * 1024)

    @property
    def tls(self) -> bool:
        return self.ssl_certfile is not None

    def host_names(self) -> frozenset[str] | None:
        """The names accepted in the ``Host`` header (lower case, no port); None: any (``*`` was allowed)."""
        if "*" in self.allowed_hosts:
            return None
        names = {"localhost", "127.0.0.1", "::1", *(h.lower().strip("[]") for h in self.allowed_hosts)}
        host = self.host.lower().strip("[]")
        if host in ("0.0.0.0", "::", ""):
            names |= machine_names()
        else:
            names.add(host)
        return frozenset(names)


IMAGE_PER_UPLOAD = 2  # --max-image-mb defaults to this many times --max-upload-mb


def machine_names() -> set[str]:
    """This machine's host name, its fully qualified name and the addresses they resolve to (lower case)."""
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    for name in list(names):
        try:
            names |= {str(info[4][0]).lower() for info in socket.getaddrinfo(name, None)}
        except OSError:
            pass
    return {n for n in names if n}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str | Path) -> str:
    """The token stored in ``path`` (first line, stripped); refuses an empty or missing file."""
    path = Path(path).expanduser()
    try:
        token = path.read_text().strip().splitlines()[0].strip() if path.read_text().strip() else ""
    except OSError as exc:
        raise InputError(f"--token-file {path}: cannot read it ({exc.strerror or exc})") from exc
    if len(token) < 16:
        raise InputError(f"--token-file {path}: the token must be at least 16 characters")
    return token


def new_token() -> str:
    """A fresh random token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)

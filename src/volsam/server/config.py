"""Server settings and the bearer token."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from volsam.core.errors import InputError


@dataclass
class ServerConfig:
    """How ``volsam serve`` runs.

    Attributes:
        host, port: where to listen.
        token: the bearer token every request must carry (None: no token; only allowed on loopback).
        max_sessions: sessions open at once; more get HTTP 503.
        max_upload_mb: largest upload accepted (HTTP 413 above); a zip may unpack to 4x this.
        idle_timeout_s: a session unused this long is closed.
        device: device for the models (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        device_slots: model runs allowed at once per device (others wait their turn).
        cors_origins: origins allowed to call the API from a browser page of another site (none by default).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_sessions: int = 8
    max_upload_mb: float = 2048.0
    idle_timeout_s: float = 1800.0
    device: str = "auto"
    device_slots: int = 1
    cors_origins: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise InputError(f"--max-sessions must be at least 1, got {self.max_sessions}")
        if self.max_upload_mb <= 0:
            raise InputError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if self.idle_timeout_s <= 0:
            raise InputError(f"--idle-timeout must be positive, got {self.idle_timeout_s}")
        if self.device_slots < 1:
            raise InputError(f"device slots must be at least 1, got {self.device_slots}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


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

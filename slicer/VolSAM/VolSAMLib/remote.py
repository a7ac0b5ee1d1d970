"""The HTTP side of the VolSAM module: one ``volsam serve`` server, standard library only.

No torch, no httpx, no volsam: this file runs inside 3D Slicer's own Python. Every request carries the
server's bearer token (``Authorization``) when there is one and, for a session, its lease
(``X-Session-Lease``); the token never goes into a URL. A refusal becomes :class:`VolSAMError` with the
server's one-line message, its HTTP status and the volsam error type it named; a server that cannot be
reached (refused, reset, timed out) becomes :class:`ServerUnreachable`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

CHUNK = 1 << 20  # bytes sent at a time while uploading


class VolSAMError(Exception):
    """A one-line reason why a VolSAM call did nothing.

    Attributes:
        status: the HTTP status of the server's refusal (None when no answer came).
        error: the volsam error type the server named (``PromptError``, ``Unauthorized``...), or None.
    """

    def __init__(self, message: str, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.status = status
        self.error = error


class ServerUnreachable(VolSAMError):
    """The server did not answer (not running, stopped mid-request, network down, timed out)."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Exchange:
    """One request, as :attr:`Remote.log` keeps it (tests and tools check what travelled)."""

    method: str
    path: str
    params: dict | None
    status: int | None
    sent: int
    received: int


@dataclass
class Remote:
    """A volsam server at ``url`` (``http://host:port`` or ``https://...``).

    Args:
        url: the server; a path prefix (behind a proxy) is kept.
        token: the server's bearer token, or None.
        timeout: seconds to wait for one answer (a propagation on a CPU can take minutes).
        cafile: a CA bundle or the server's own certificate for HTTPS (None: the system's).
    """

    url: str
    token: str | None = None
    timeout: float = 900.0
    cafile: str | None = None
    log: deque = field(default_factory=lambda: deque(maxlen=1000))

    def __post_init__(self) -> None:
        parts = urlsplit(self.url.strip().rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise VolSAMError(f"the server URL must look like http://127.0.0.1:8000, got {self.url!r}")
        self._scheme, self._host = parts.scheme, parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path}"

    @property
    def loopback(self) -> bool:
        """True when the server runs on this computer (uploads then go uncompressed)."""
        return self._host in ("localhost", "::1") or self._host.startswith("127.")

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        wait = self.timeout if timeout is None else timeout
        if self._scheme == "https":
            context = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection(self._host, self._port, timeout=wait, context=context)
        return http.client.HTTPConnection(self._host, self._port, timeout=wait)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        lease: str | None = None,
        body: Any = None,
        length: int | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request; the reply of a 2xx status, else :class:`VolSAMError` / :class:`ServerUnreachable`.

        ``body`` may be bytes or an iterable of bytes (then ``length`` is its total size: it is streamed)."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if lease:
            headers["X-Session-Lease"] = lease
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        if body is not None:
            headers["Content-Length"] = str(len(body) if isinstance(body, (bytes, bytearray)) else length)
        target = self._prefix + path + (("?" + urlencode(params)) if params else "")
        sent = int(headers.get("Content-Length", 0))
        conn = self._connection(timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        except (OSError, http.client.HTTPException) as exc:
            self.log.append(Exchange(method, path, params, None, sent, 0))
            raise ServerUnreachable(f"the volsam server at {self.url} did not answer ({_reason(exc)})") from exc
        finally:
            conn.close()
        self.log.append(Exchange(method, path, params, reply.status, sent, len(data)))
        if not 200 <= reply.status < 300:
            raise _refusal(reply, self.url)
        return reply

    def upload(self, path: str, filename: str, form: dict[str, str], timeout: float | None = None) -> Reply:
        """``POST /api/sessions`` with ``form`` and the file at ``path`` (multipart, streamed from disk)."""
        boundary = "volsam-" + uuid.uuid4().hex
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in form.items()
            if v is not None
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = len(head) + os.path.getsize(path) + len(tail)

        def chunks():
            yield head
            with open(path, "rb") as fh:
                while block := fh.read(CHUNK):
                    yield block
            yield tail

        return self.request(
            "POST",
            "/api/sessions",
            body=chunks(),
            length=size,
            content_type=f"multipart/form-data; boundary={boundary}",
            timeout=timeout,
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: is volsam serve running?"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return "the connection was closed before an answer came"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return str(exc) or type(exc).__name__


def _refusal(reply: Reply, url: str) -> VolSAMError:
    """The server's ``{"detail": ..., "error": ...}`` answer as a VolSAMError."""
    detail, error = None, None
    try:
        body = reply.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        error = body.get("error") if isinstance(body.get("error"), str) else None
    if not isinstance(detail, str):
        detail = reply.body[:200].decode("utf-8", "replace").strip() or "no reason given"
    if reply.status == 401:
        detail = f"the server at {url} refused the token: {detail}"
    return VolSAMError(f"{detail} (HTTP {reply.status})", status=reply.status, error=error)

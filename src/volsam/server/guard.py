"""What every request passes before the app sees it (one ASGI middleware, outermost, so that nothing of the
body has been read yet), and the headers every answer carries.

In this order:

1. ``Host`` must be one of the server's own names (:meth:`ServerConfig.host_names`) or the address the request
   came in on; otherwise :class:`~volsam.core.errors.Forbidden` (403). A web page whose name was made to point
   at 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
2. A state-changing request (not GET, HEAD, OPTIONS) that carries an ``Origin`` must come from the server's
   own origin or a ``--cors-origin``; otherwise Forbidden (403). Browsers always send ``Origin`` on
   cross-origin POST / DELETE, so another site's page cannot create, change or close sessions, even on a
   token-less loopback server. Requests without ``Origin`` (curl, the Python client) pass.
3. With a token, everything except the web page's own files (``/``, ``/static/``) needs
   ``Authorization: Bearer <token>`` -- checked before one byte of the body is read; tokens in URLs are
   refused. The API docs (``/docs``, ``/openapi.json``) also accept the cookie that ``POST /api/login`` sets
   for a browser (HttpOnly, SameSite=Strict); the API itself takes the header only.
4. A body larger than its limit gets :class:`~volsam.core.errors.UploadTooLarge` (413): at once when its
   ``Content-Length`` says so, else as soon as the bytes streamed in pass it -- whatever the app was doing
   with them (the app's own answer is dropped and the 413 sent instead).

Every answer carries ``Content-Security-Policy`` (``default-src 'self'``, ``frame-ancestors 'none'``),
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any
from urllib.parse import parse_qs, urlsplit

from volsam.core.errors import Forbidden, Unauthorized, UploadTooLarge, VolsamError, error_name
from volsam.server.config import ServerConfig
from volsam.server.errors import error_body

UPLOAD_PATH = "/api/sessions"  # the one endpoint whose body may be as large as --max-upload-mb
FRAMING = 1 << 20  # room for the multipart framing around an upload's file
JSON_LIMIT = 32 << 20  # any other body (JSON prompts, mask data): 32 MiB
COOKIE = "volsam-docs"
PUBLIC = ("/static/",)  # the web page's files: no token (the page asks for it)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' blob: data:; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (  # Swagger UI sets inline styles and shows data: images
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def cookie_value(token: str) -> str:
    """What the docs cookie holds: a digest of the token (never the token itself)."""
    return hmac.new(token.encode(), b"volsam docs cookie", hashlib.sha256).hexdigest()


def _headers(scope: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def split_host(value: str) -> tuple[str, str]:
    """``("name", "port")`` of a ``Host`` header value (IPv6 in brackets); lower case; port may be ""."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        return name, rest.lstrip(":")
    name, _, port = value.partition(":")
    return name, port


def _same_address(name: str, scope: dict) -> bool:
    """True when ``name`` is the IP address this request was received on."""
    server = scope.get("server")
    if not server:
        return False
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(str(server[0]))
    except ValueError:
        return False


class Guard:
    """ASGI middleware applying the module's rules for ``config``."""

    def __init__(self, app: Any, config: ServerConfig):
        self.app, self.config = app, config
        self.names = config.host_names()
        self.origins = {o.rstrip("/").lower() for o in config.cors_origins}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = DOCS_CSP if path.startswith("/docs") else PAGE_CSP

        async def send_secured(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0].lower() != b"content-security-policy"),
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
            await send(message)

        headers = _headers(scope)
        try:
            self.check(scope, headers)
        except VolsamError as exc:
            await _answer(send_secured, exc)
            return
        await self._limited(scope, receive, send_secured, headers)

    # -- the rules --------------------------------------------------------------------------------------------
    def check(self, scope: dict, headers: dict[str, str]) -> None:
        """Host, Origin, token and declared length, in that order (raises the refusal)."""
        host = headers.get("host", "")
        name, _ = split_host(host)
        if self.names is not None and name not in self.names and not _same_address(name, scope):
            raise Forbidden(
                f"this server does not answer to the host name {name or '(none)'!r}; "
                "its operator can allow it with --allowed-host"
            )
        method = scope.get("method", "GET").upper()
        origin = headers.get("origin")
        if origin is not None and method not in SAFE_METHODS and not self._origin_ok(origin, host, scope):
            raise Forbidden(f"requests from pages of {origin[:100]!r} may not change anything on this server")
        self._check_token(scope, headers, method)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit(scope):
            raise self.too_large()

    def _origin_ok(self, origin: str, host: str, scope: dict) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, file: pages) and anything odd
        expected = "https" if self.config.tls else "http"
        return parts.scheme == expected and parts.netloc == host.strip().lower()

    def _check_token(self, scope: dict, headers: dict[str, str], method: str) -> None:
        token = self.config.token
        path = scope.get("path", "")
        if token is None or method == "OPTIONS" or path == "/" or path.startswith(PUBLIC):
            return
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
            return
        if path.startswith("/docs") or path == "/openapi.json":
            cookie = _cookie(headers.get("cookie", ""), COOKIE)
            if cookie is not None and hmac.compare_digest(cookie.encode(), cookie_value(token).encode()):
                return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "access_token" in query:
            raise Unauthorized("tokens are not accepted in URLs: send Authorization: Bearer <token>")
        raise Unauthorized("this server needs a bearer token (Authorization: Bearer <token>)")

    def limit(self, scope: dict) -> int:
        """The largest body accepted for this request."""
        if scope.get("path") == UPLOAD_PATH and scope.get("method", "").upper() == "POST":
            return self.config.max_upload_bytes + FRAMING
        return min(JSON_LIMIT, self.config.max_upload_bytes + FRAMING)

    def too_large(self) -> UploadTooLarge:
        return UploadTooLarge(f"the upload is larger than this server's limit of {self.config.max_upload_mb:g} MB")

    # -- the body ---------------------------------------------------------------------------------------------
    async def _limited(self, scope: dict, receive: Any, send: Any, headers: dict[str, str]) -> None:
        limit, seen, state = self.limit(scope), 0, {"over": False, "started": False}

        async def counted() -> dict:
            nonlocal seen
            if state["over"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    state["over"] = True
                    return {"type": "http.disconnect"}  # the app stops reading; the 413 is sent below
            return message

        async def held(message: dict) -> None:
            if state["over"] and not state["started"]:
                return  # the app's answer to a cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted, held)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await _answer(send, self.too_large())


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _answer(send: Any, exc: VolsamError) -> None:
    """Send ``exc`` as the JSON refusal every endpoint gives (``{"detail", "error"}`` with its status)."""
    import json

    body = json.dumps(error_body(str(exc), error_name(exc))).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if isinstance(exc, Unauthorized):
        headers.append((b"www-authenticate", b"Bearer"))
    if exc.http_status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

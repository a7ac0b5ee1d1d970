"""Who may call: the server's bearer token and each session's lease (FastAPI dependencies).

The token is enforced before the body is read, by :class:`volsam.server.guard.Guard`; :func:`authorised`
checks it again and declares it in the OpenAPI schema (Swagger UI's *Authorize*). When the server has a
token, every ``/api`` request carries ``Authorization: Bearer <token>`` -- never in the URL -- otherwise
:class:`~volsam.core.errors.Unauthorized` (401). A request for one session shows its lease token in the
``X-Session-Lease`` header; otherwise :class:`~volsam.core.errors.LeaseRefused` (403).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from volsam.core.errors import Unauthorized
from volsam.server.store import Entry

bearer = HTTPBearer(auto_error=False, description="the server's token (volsam serve --token-file)")


def authorised(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None
) -> None:
    """Checks the bearer token when the server has one."""
    token = request.app.state.config.token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else None
    if given is None or not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("this server needs a bearer token (Authorization: Bearer <token>)")


def entry_of(
    request: Request,
    sid: str,
    x_session_lease: Annotated[str | None, Header(description="the lease given when it was created")] = None,
) -> Entry:
    """The session named in the path, if the request shows its lease."""
    return request.app.state.store.get(sid, x_session_lease)


Leased = Annotated[Entry, Depends(entry_of)]

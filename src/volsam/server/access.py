"""Who may call: the server's bearer token and each session's lease (FastAPI dependencies).

When the server has a token, every ``/api`` request carries ``Authorization: Bearer <token>`` (or
``?access_token=`` for plain browser GETs such as downloads and the event stream); otherwise
:class:`~volsam.core.errors.Unauthorized` (401). A request for one session shows its lease token
(``X-Session-Lease`` or ``?lease=``); otherwise :class:`~volsam.core.errors.LeaseRefused` (403).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from volsam.core.errors import Unauthorized
from volsam.server.store import Entry


def authorised(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    access_token: Annotated[str | None, Query()] = None,
) -> None:
    """Checks the bearer token when the server has one."""
    token = request.app.state.config.token
    if token is None:
        return
    given = None
    if authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    elif access_token:
        given = access_token
    if given is None or not hmac.compare_digest(given, token):
        raise Unauthorized("this server needs a bearer token (Authorization: Bearer <token>)")


def entry_of(
    request: Request,
    sid: str,
    x_session_lease: Annotated[str | None, Header()] = None,
    lease: Annotated[str | None, Query()] = None,
) -> Entry:
    """The session named in the path, if the request shows its lease."""
    return request.app.state.store.get(sid, x_session_lease or lease)


Leased = Annotated[Entry, Depends(entry_of)]

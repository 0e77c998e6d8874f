"""``X-Request-ID``: every request gets an id, echoed in the response and kept in the audit log."""

from __future__ import annotations

import re
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.core.services.audit import request_id

HEADER = "X-Request-ID"
SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
"""An id a client may choose; anything else is replaced by one the server makes."""
SCOPE_KEY = "dealflow.request_id"


def choose(given: str | None) -> str:
    """The client's id when it is a sane token, else a new random one."""
    return given if given is not None and SANE.match(given) else uuid.uuid4().hex


def request_id_of(scope: Scope) -> str:
    """The id of the request in ``scope``, chosen (and kept in the scope) on first use."""
    current = scope.get(SCOPE_KEY)  # type: ignore[misc]
    if current is None:
        raw = dict(scope.get("headers") or []).get(HEADER.lower().encode("latin-1"))
        current = choose(raw.decode("latin-1") if raw is not None else None)
        scope[SCOPE_KEY] = current  # type: ignore[literal-required]
    return str(current)


class RequestIdMiddleware:
    """Keep the request's id in a context variable while the request is served, so that
    whatever it changes is recorded with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_id.set(request_id_of(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            request_id.reset(token)


async def send_request_id(message: Message, scope: Scope) -> None:
    """Before-send hook: every HTTP response carries its request's ``X-Request-ID`` — also
    the answers Litestar makes outside the route middleware (401, 404, 405)."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[HEADER] = request_id_of(scope)

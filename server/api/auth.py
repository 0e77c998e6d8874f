"""Bearer API-key authentication and the per-request team scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy.orm import Session, sessionmaker

from server.core.errors import Forbidden, Unauthorized
from server.core.scope import Actor, TeamScope
from server.core.services import teams

PUBLIC_PATHS = {"/schema", "/healthz"}
"""Path prefixes served without an API key. A single route opts out instead with
``opt={"exclude_from_auth": True}`` (the signed public webhook route, ``server/api/hooks.py``),
which binds the exemption to that route handler rather than to a path pattern."""


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Resolve ``Authorization: Bearer <key>`` to the key's team and user."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
        factory: sessionmaker[Session] = connection.app.state.session_factory
        with factory() as session:
            actor = teams.authenticate(session, key.strip())
        return AuthenticationResult(user=actor, auth=actor.key_id)


def admin_only(connection: ASGIConnection[Any, Actor, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard: only an admin's key may change workflows, team settings and domains."""
    if connection.user.role != "admin":
        raise Forbidden(
            f"this needs the admin role; the key's user is a {connection.user.role}", role="admin"
        )


def provide_scope(request: Request[Actor, Any, Any]) -> Iterator[TeamScope]:
    """A session scoped to the caller's team, closed (rolled back if uncommitted) afterwards."""
    runtime = request.app.state.runtime
    with runtime.sessions() as session:
        yield TeamScope(session, request.user, runtime.engine)

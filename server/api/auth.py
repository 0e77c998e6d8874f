"""Bearer API-key authentication, the access check every route passes, and the team scope.

Each route handler declares one access level in its ``opt`` (``opt={"access": "admin"}``);
without one, GET routes are ``read`` and every other method is ``member``. The one guard,
:func:`check_access`, registered on the app, compares it with the kind of key calling:

=========  ==============================================================
level      callers allowed
=========  ==============================================================
public     anyone (the route authenticates by other means, or not at all)
ingest     admin, member and ``ingest``-scoped keys
read       admin, member and ``read``-scoped keys
member     admin and member keys without a scope
admin      admin keys without a scope
=========  ==============================================================

A key's kind is its scope when it has one, else its user's role: a scope only narrows, so a
member's key never acts as an admin and an admin's ``read`` key only reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.plugins.problem_details import ProblemDetailsException

from server.api.problems import PROBLEM_BASE
from server.core.errors import Unauthorized
from server.core.ratelimit import LocalBuckets
from server.core.scope import Actor, TeamScope
from server.core.services import keys

PUBLIC_PATHS = {"/schema", "/healthz"}
"""Path prefixes served without an API key. A single route opts out instead with
``opt={"exclude_from_auth": True}`` (the signed public webhook route, ``server/api/hooks.py``),
which binds the exemption to that route handler rather than to a path pattern."""

ALLOWED: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin"}),
    "member": frozenset({"admin", "member"}),
    "read": frozenset({"admin", "member", "read"}),
    "ingest": frozenset({"admin", "member", "ingest"}),
}
"""Each access level (but ``public``) and the kinds of key it lets in."""

ACCESS_LEVELS = ("public", *ALLOWED)

NEEDS = {
    "admin": "an admin's key without a scope",
    "member": "a member's or an admin's key without a scope",
    "read": "a key that may read: a member's or an admin's without a scope, or a read key",
    "ingest": "a key that may ingest: a member's or an admin's without a scope, or an "
    "ingest key",
}


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Resolve ``Authorization: Bearer <key>`` to the key's team and user."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
        state = connection.app.state
        failures: LocalBuckets | None = state.get("auth_failures")
        try:
            actor = keys.verified(state.session_factory, state.get("key_cache"), key.strip())
        except Unauthorized:
            if failures is not None:
                # A valid key always passes; an address that keeps presenting wrong ones is
                # told to wait, and told how long.
                client = connection.client.host if connection.client else "unknown"
                taken = failures.take_now(client)
                if not taken.allowed:
                    raise too_many_failures(failures, taken.retry_after) from None
            raise
        return AuthenticationResult(user=actor, auth=actor.key_id)


AUTH_FAILURE_BURST = 20
"""Wrong keys an address may present in a row before it has to wait."""
AUTH_FAILURE_RATE = 0.2
"""Further wrong keys an address may present per second after that (one every 5 s)."""


def failure_buckets(rate_limited: bool) -> LocalBuckets | None:
    """The per-address buckets of failed authentications, or None when the server's rate
    limits are off (``DEALFLOW_RATE_LIMIT_PER_SECOND=0``). Kept in each process's memory."""
    return LocalBuckets(AUTH_FAILURE_RATE, AUTH_FAILURE_BURST) if rate_limited else None


def too_many_failures(buckets: LocalBuckets, retry_after: int) -> ProblemDetailsException:
    """429 for an address that presented too many unknown or revoked keys."""
    return ProblemDetailsException(
        status_code=429,
        type_=PROBLEM_BASE + "rate-limited",
        title="Too many requests",
        detail=f"this address presented {buckets.burst} unknown or revoked API keys; it may "
        f"try another one every {1 / buckets.rate:g} s; retry in {retry_after} s",
        extra={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def access_of(handler: BaseRouteHandler) -> str:
    """The access level ``handler`` declares, or its method's default."""
    declared = handler.opt.get("access")
    if declared is not None:
        if declared not in ACCESS_LEVELS:
            raise ValueError(f"{handler}: access {declared!r} is not one of {ACCESS_LEVELS}")
        return str(declared)
    if handler.opt.get("exclude_from_auth"):
        return "public"
    methods = getattr(handler, "http_methods", None) or set()
    return "read" if methods and set(methods) <= {"GET", "HEAD"} else "member"


def kind_of(actor: Actor) -> str:
    """``admin``, ``member``, ``read`` or ``ingest``: the key's scope, else its user's role."""
    return actor.scope or actor.role


def forbidden(level: str, actor: Actor) -> ProblemDetailsException:
    """403 naming what the route needs (``required_role`` or ``required_scope``) and what the
    key has (``key_role``, ``key_scope``)."""
    has = f"the {actor.scope} scope" if actor.scope else f"a {actor.role}'s role"
    needs = {"required_role": level} if level in ("admin", "member") else {"required_scope": level}
    return ProblemDetailsException(
        status_code=403,
        type_=PROBLEM_BASE + "forbidden",
        title="Forbidden",
        detail=f"this needs {NEEDS[level]}; the key has {has}",
        extra={**needs, "key_role": actor.role, "key_scope": actor.scope},
    )


async def check_access(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard (app-wide): refuse a key whose kind the route's access level does not let in.

    Async although it waits for nothing: Litestar runs a plain function guard on a worker
    thread, a thread hand-off on every request."""
    level = access_of(handler)
    if level == "public":
        return
    actor = connection.scope.get("user")
    if not isinstance(actor, Actor):
        # Only the paths the key middleware skips reach here without an actor.
        if any(connection.url.path.startswith(p) for p in PUBLIC_PATHS):
            return
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    if kind_of(actor) not in ALLOWED[level]:
        raise forbidden(level, actor)


async def provide_scope(request: Request[Actor, Any, Any]) -> AsyncIterator[TeamScope]:
    """A session scoped to the caller's team, closed (rolled back if uncommitted) afterwards.

    An async generator although it does no I/O of its own: Litestar would run a plain
    generator's two steps on a worker thread, two thread hand-offs on every request."""
    runtime = request.app.state.runtime
    with runtime.sessions() as session:
        yield TeamScope(session, request.user, runtime.engine)

"""Console sign-in state: the session cookie, the CSRF checks and the refusals they raise."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from litestar import Request
from sqlalchemy.orm import Session, sessionmaker

from server.core.ratelimit import key_bucket
from server.core.services import console_sessions
from server.core.services.console_sessions import Current

COOKIE = "dealflow_session"
SIGN_IN_COOKIE = "dealflow_sign_in"
"""A random token set with the sign-in form and sent back in it: a sign-in posted from
another site (login CSRF) has neither, on top of what SameSite=Strict already refuses."""
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PATH = "/console"


class SignInNeeded(Exception):
    """Raised when a console page is asked for without a live session: it sends the browser
    to the sign-in page."""


@dataclass
class Refused(Exception):
    """Raised when a console request is refused: shown as an HTML page with ``status``."""

    status: int
    message: str


def cookie_args(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """How every console cookie is set: HttpOnly, SameSite=Strict, on /console only, and
    Secure when the console is reached over https."""
    return {
        "path": PATH,
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }


def current_session(request: Request[Any, Any, Any]) -> Current | None:
    """The live session the request's cookie names, or None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        return console_sessions.current(session, token)


def require_session(request: Request[Any, Any, Any]) -> Current:
    """Dependency of every console page: the live session, or off to the sign-in page (a
    POST without one is refused instead: nothing it carries can be trusted)."""
    found = current_session(request)
    if found is None:
        if request.method == "GET":
            raise SignInNeeded()
        raise Refused(403, "Sign in first: this form was sent without a live console session.")
    return found


def check_csrf(current: Current, sent: str | None) -> None:
    """Refuse a state-changing request whose CSRF token is missing or not the session's."""
    if not sent or not hmac.compare_digest(sent.encode(), current.csrf_token.encode()):
        raise Refused(
            403,
            "This form's CSRF token is missing or out of date: reload the page and try again.",
        )


def require_member(current: Current) -> None:
    """Refuse the workflow tools that post a body (live check, dry run, impact preview) to a
    ``read`` key, as the API does: only admins' and members' keys without a scope use them."""
    if current.kind not in ("admin", "member"):
        raise Refused(
            403,
            f"A {current.kind} key only reads: checking, dry-running or previewing a draft needs "
            f"a member's or an admin's key ({current.email}).",
        )


async def draw_token(request: Request[Any, Any, Any], current: Current) -> None:
    """Take a token from the bucket the session's API key draws on over the API (the user's,
    for a password sign-in), so that the console's costly tools (live check, dry run, impact
    preview over every open deal) are limited as the API is; 429 when it is empty."""
    buckets = request.app.state.get("rate_limiter")
    if buckets is None:
        return
    actor = current.actor
    key = key_bucket(actor.key_id) if actor.key_id is not None else f"user:{actor.user_id}"
    decision = await buckets.take(key)
    if not decision.allowed:
        raise Refused(
            429,
            f"Too many requests for this key: retry in {decision.retry_after} s (the limits are "
            "DEALFLOW_RATE_LIMIT_PER_SECOND and DEALFLOW_RATE_LIMIT_BURST).",
        )


def require_admin(current: Current) -> None:
    """Refuse a save to anyone but an admin signed in without a narrowing scope."""
    if current.kind != "admin":
        raise Refused(
            403,
            f"Only an admin can change this; you are signed in as {current.kind} "
            f"({current.email}).",
        )

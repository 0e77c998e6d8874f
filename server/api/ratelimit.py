"""Per-key rate limits: a token bucket per API key, answering 429 with ``Retry-After``."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.api.auth import PUBLIC_PATHS
from server.api.problems import PROBLEM_BASE
from server.core.ratelimit import Buckets, key_bucket

SETTINGS = "DEALFLOW_RATE_LIMIT_PER_SECOND and DEALFLOW_RATE_LIMIT_BURST"


def unlimited(scope: Scope) -> bool:
    """Health checks and the API schema are never limited."""
    return scope["path"].startswith(tuple(PUBLIC_PATHS))


def bucket_key(scope: Scope) -> str:
    """Whose bucket a request draws on: its API key's (set by the authentication middleware,
    which runs first), or, on a route needing no key (the public signed webhook), the
    client address's."""
    key_id = scope.get("auth")
    if key_id is not None:
        return key_bucket(key_id)
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


class RateLimitMiddleware(ASGIMiddleware):
    """Take a token from the caller's bucket (``app.state.rate_limiter``, None when limits
    are off) before the handler runs; an empty bucket is a 429 problem with ``Retry-After``.
    Every limited answer carries ``RateLimit-Limit`` and ``RateLimit-Remaining``."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "exclude_from_rate_limit"
    should_bypass_for_scope = staticmethod(unlimited)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        buckets: Buckets | None = scope["litestar_app"].state.get("rate_limiter")
        if buckets is None:
            await next_app(scope, receive, send)
            return
        key = bucket_key(scope)
        decision = await buckets.take(key)
        limit = str(buckets.burst)
        if not decision.allowed:
            raise _too_many(buckets, key, decision.retry_after)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["RateLimit-Limit"] = limit
                headers["RateLimit-Remaining"] = str(decision.remaining)
            await send(message)

        await next_app(scope, receive, send_with_headers)


def _too_many(buckets: Buckets, key: str, retry_after: int) -> ProblemDetailsException:
    who = "this API key" if key.startswith("key:") else "this address"
    extra: dict[str, Any] = {
        "retry_after": retry_after,
        "limit": {"burst": buckets.burst, "per_second": buckets.rate},
    }
    return ProblemDetailsException(
        status_code=429,
        type_=PROBLEM_BASE + "rate-limited",
        title="Too many requests",
        detail=f"{who} may make {buckets.burst} requests at once and {buckets.rate:g} a second "
        f"after that; retry in {retry_after} s (the limits are {SETTINGS})",
        extra=extra,
        headers={
            "Retry-After": str(retry_after),
            "RateLimit-Limit": str(buckets.burst),
            "RateLimit-Remaining": "0",
        },
    )


__all__ = ["RateLimitMiddleware", "bucket_key", "unlimited"]

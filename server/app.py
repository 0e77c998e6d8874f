"""The Litestar application factory."""

from __future__ import annotations

import logging

from litestar import Litestar, get
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.problem_details import ProblemDetailsPlugin
from sqlalchemy import Engine

from server import __version__
from server.api import api_router
from server.api.auth import PUBLIC_PATHS, ApiKeyMiddleware, check_access, failure_buckets
from server.api.inputs import check_input
from server.api.problems import internal_error, problem_details_config
from server.api.ratelimit import RateLimitMiddleware
from server.api.request_id import RequestIdMiddleware, send_request_id
from server.console import SignInLimiter, console_router, send_security_headers, template_config
from server.core.ratelimit import RedisBuckets, make_buckets
from server.core.runtime import build_runtime
from server.core.services.keys import KeyCache
from server.settings import Settings, load_settings


@get("/healthz", sync_to_thread=False, include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Litestar:
    """Build the app for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    runtime = build_runtime(settings, engine)
    rate_limiter = make_buckets(settings)
    app = Litestar(
        route_handlers=[api_router(), console_router(), healthz],
        on_startup=[runtime.start],
        on_shutdown=[runtime.close],
        guards=[check_access],
        before_request=check_input,
        before_send=[send_request_id, send_security_headers],  # on every answer, errors too
        middleware=[
            RequestIdMiddleware,
            DefineMiddleware(ApiKeyMiddleware, exclude=[f"^{p}" for p in PUBLIC_PATHS]),
            # After authentication, which names the key whose bucket a request draws on.
            RateLimitMiddleware(),
        ],
        plugins=[ProblemDetailsPlugin(problem_details_config())],
        template_config=template_config(),
        exception_handlers={500: internal_error},
        openapi_config=OpenAPIConfig(
            title="Dealflow",
            version=__version__,
            description="Workflow automation for sales and marketing teams. "
            "Authenticate with `Authorization: Bearer <API key>`.",
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerAuth": SecurityScheme(
                        type="http", scheme="bearer", description="API key"
                    )
                }
            ),
        ),
        request_max_body_size=settings.max_body_size,
        debug=settings.debug,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.engine = runtime.db
    app.state.session_factory = runtime.sessions
    app.state.rate_limiter = rate_limiter
    app.state.key_cache = KeyCache()
    app.state.auth_failures = failure_buckets(rate_limiter is not None)
    app.state.console_sign_in_limiter = SignInLimiter()
    if isinstance(rate_limiter, RedisBuckets):
        app.on_shutdown.append(rate_limiter.close)
    logging.getLogger("dealflow").setLevel(logging.INFO)
    # Plugins' HTTP clients would log every call at INFO: one line per side effect.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return app

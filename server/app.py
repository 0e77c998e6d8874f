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
from server.api.auth import PUBLIC_PATHS, ApiKeyMiddleware
from server.api.problems import internal_error, problem_details_config
from server.core.db import make_engine, make_session_factory
from server.settings import Settings, load_settings


@get("/healthz", sync_to_thread=False, include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Litestar:
    """Build the app for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    engine = engine or make_engine(settings.database_url)
    app = Litestar(
        route_handlers=[api_router(), healthz],
        middleware=[
            DefineMiddleware(ApiKeyMiddleware, exclude=[f"^{p}" for p in PUBLIC_PATHS]),
        ],
        plugins=[ProblemDetailsPlugin(problem_details_config())],
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
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    logging.getLogger("dealflow").setLevel(logging.INFO)
    return app

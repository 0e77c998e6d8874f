"""The admin console: server-rendered pages under ``/console`` over the same services as the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.datastructures import MutableScopeHeaders
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import Message, Scope

from server.console.auth import PATH, Refused, SignInNeeded
from server.console.limits import SignInLimiter
from server.console.insights import HANDLERS as INSIGHTS
from server.console.pages import HANDLERS
from server.console.settings import HANDLERS as SETTINGS
from server.console.workflow_tools import HANDLERS as WORKFLOW_TOOLS

HERE = Path(__file__).parent

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
CONSOLE_OPT = {"access": "public", "exclude_from_auth": True, "exclude_from_rate_limit": True,
               "console": True}
"""Console routes pass the API's key guard and middlewares: they authenticate with the
session cookie (``server/console/auth.py``) and limit failed sign-ins themselves."""


def _refused(request: Request[Any, Any, Any], exc: Refused) -> Response[Any]:
    return Template(
        template_name="error.html",
        context={"status": exc.status, "message": exc.message, "current": None},
        status_code=exc.status,
    )


def _sign_in_needed(_request: Request[Any, Any, Any], _exc: SignInNeeded) -> Response[Any]:
    return Redirect("/console/sign-in")


def console_router() -> Router:
    """The ``/console`` pages and their static files (no third-party assets)."""
    static = create_static_files_router(
        path="/static",
        directories=[HERE / "static"],
        include_in_schema=False,
        opt=CONSOLE_OPT,
        cache_control=None,
    )
    return Router(
        path=PATH,
        route_handlers=[*HANDLERS, *WORKFLOW_TOOLS, *INSIGHTS, *SETTINGS, static],
        include_in_schema=False,
        opt=CONSOLE_OPT,
        exception_handlers={Refused: _refused, SignInNeeded: _sign_in_needed},
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 templates with autoescaping on (Litestar's default for Jinja)."""
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


async def send_security_headers(message: Message, scope: Scope) -> None:
    """Before-send hook: every console answer (errors too) carries the CSP and friends; pages
    are never cached (they show keys' data and carry CSRF tokens), static files may be."""
    if message["type"] != "http.response.start" or not scope["path"].startswith(PATH):
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value
    if not scope["path"].startswith(PATH + "/static/"):
        headers["Cache-Control"] = "no-store"


__all__ = ["SignInLimiter", "console_router", "send_security_headers", "template_config"]

"""The console's forecast and analytics pages: tables from the services the API calls, charts
drawn by :mod:`server.core.charts` (the CLI's ``--chart``), CSV as the API's ``text/csv``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromQuery
from litestar.response import Template

from server.console.auth import Refused, require_session
from server.console.pages import page, team_scope
from server.core import charts
from server.core.errors import DealflowError
from server.core.models import User
from server.core.scope import TeamScope
from server.core.services import analytics
from server.core.services.analytics import to_csv
from server.core.services.forecast import ForecastOut, forecast

GROUPS = ("owner", "stage")
SVG = "image/svg+xml"
CSV = "text/csv; charset=utf-8"


def _group_by(value: str | None) -> Any:
    if not value:
        return None
    if value not in GROUPS:
        raise Refused(400, f"group_by: {value!r} is not owner or stage")
    return value


def _day(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Refused(400, f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _owners(scope: TeamScope) -> dict[int, str]:
    rows = scope.session.execute(scope.select(User, User.id, User.name, User.email)).all()
    return {user_id: name or email for user_id, name, email in rows}


def _forecast(scope: TeamScope, group_by: str | None) -> ForecastOut:
    try:
        return forecast(scope, group_by=_group_by(group_by))
    except DealflowError as exc:
        raise Refused(exc.status, exc.message) from None


def _svg(content: bytes) -> Response[bytes]:
    return Response(content, media_type=SVG)


def _csv(content: str, name: str) -> Response[str]:
    return Response(content, media_type=CSV,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _chart(kind: str, report: Any, **kwargs: Any) -> Response[bytes]:
    if not charts.available():
        raise Refused(404, charts.INSTALL_HINT)
    return _svg(charts.render(kind, report, "svg", **kwargs))


# --- forecast -------------------------------------------------------------------------------


@get("/forecast", sync_to_thread=True)
def forecast_page(request: Request[Any, Any, Any],
                  group_by: FromQuery[str | None] = None) -> Template:
    current = require_session(request)
    with team_scope(request, current) as scope:
        report = _forecast(scope, group_by)
        owners = _owners(scope)
    query = f"?group_by={report.group_by}" if report.group_by else ""
    return page(request, "forecast.html", current, report=report, owners=owners,
                charts=charts.available(), install_hint=charts.INSTALL_HINT, query=query)


@get("/forecast/chart.svg", sync_to_thread=True)
def forecast_chart(request: Request[Any, Any, Any],
                   group_by: FromQuery[str | None] = None) -> Response[bytes]:
    current = require_session(request)
    with team_scope(request, current) as scope:
        report = _forecast(scope, group_by)
        owners = _owners(scope)
    return _chart("forecast", report, owners=owners)


@get("/forecast/forecast.csv", sync_to_thread=True)
def forecast_csv(request: Request[Any, Any, Any],
                 group_by: FromQuery[str | None] = None) -> Response[str]:
    current = require_session(request)
    with team_scope(request, current) as scope:
        report = _forecast(scope, group_by)
    return _csv(to_csv(report), "forecast.csv")


# --- analytics ------------------------------------------------------------------------------


def _span(date_from: str | None, date_to: str | None) -> dict[str, dt.date | None]:
    return {"date_from": _day(date_from, "from"), "date_to": _day(date_to, "to")}


def _funnel(scope: TeamScope, date_from: str | None, date_to: str | None) -> Any:
    try:
        return analytics.funnel(scope, **_span(date_from, date_to))
    except DealflowError as exc:
        raise Refused(exc.status, exc.message) from None


def _channels(scope: TeamScope, date_from: str | None, date_to: str | None,
              currency: str | None) -> Any:
    try:
        return analytics.channels(scope, **_span(date_from, date_to), currency=currency or None)
    except DealflowError as exc:
        raise Refused(exc.status, exc.message) from None


@get("/analytics", sync_to_thread=True)
def analytics_page(
    request: Request[Any, Any, Any],
    date_from: FromQuery[str | None] = None,  # ?date_from= (the form's field)
    date_to: FromQuery[str | None] = None,
    currency: FromQuery[str | None] = None,
) -> Template:
    current = require_session(request)
    with team_scope(request, current) as scope:
        funnel = _funnel(scope, date_from, date_to)
        channels = _channels(scope, date_from, date_to, currency)
    span = {"date_from": funnel.date_from.isoformat(), "date_to": funnel.date_to.isoformat()}
    return page(request, "analytics.html", current, funnel=funnel, channels=channels,
                span=span, currency=currency or "", charts=charts.available(),
                install_hint=charts.INSTALL_HINT)


@get("/analytics/funnel.svg", sync_to_thread=True)
def funnel_chart(request: Request[Any, Any, Any], date_from: FromQuery[str | None] = None,
                 date_to: FromQuery[str | None] = None) -> Response[bytes]:
    current = require_session(request)
    with team_scope(request, current) as scope:
        report = _funnel(scope, date_from, date_to)
    return _chart("funnel", report)


@get("/analytics/funnel.csv", sync_to_thread=True)
def funnel_csv(request: Request[Any, Any, Any], date_from: FromQuery[str | None] = None,
               date_to: FromQuery[str | None] = None) -> Response[str]:
    current = require_session(request)
    with team_scope(request, current) as scope:
        report = _funnel(scope, date_from, date_to)
    return _csv(to_csv(report), "funnel.csv")


@get("/analytics/channels.csv", sync_to_thread=True)
def channels_csv(request: Request[Any, Any, Any], date_from: FromQuery[str | None] = None,
                 date_to: FromQuery[str | None] = None,
                 currency: FromQuery[str | None] = None) -> Response[str]:
    current = require_session(request)
    with team_scope(request, current) as scope:
        report = _channels(scope, date_from, date_to, currency)
    return _csv(to_csv(report), "channels.csv")


HANDLERS = [forecast_page, forecast_chart, forecast_csv, analytics_page, funnel_chart,
            funnel_csv, channels_csv]

"""HTTP endpoints for analytics: outreach volume, channels, users, the lead funnel; JSON or CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from server.core.errors import InvalidInput
from server.core.scope import TeamScope
from server.core.services import analytics as service
from server.core.services.analytics import ChannelsOut, FunnelOut, Report, UsersOut, VolumeOut

CSV = "text/csv"
JSON = "application/json"

# Dates are parsed here rather than by Litestar, whose errors would name the Python argument
# (`date_from`) instead of the query parameter the client sent (`from`).
DateFrom = Annotated[
    str | None,
    QueryParameter(
        name="from",
        format="date",
        description="First local day of the range (default: 90 days before `to`).",
    ),
]
DateTo = Annotated[
    str | None,
    QueryParameter(
        name="to", format="date", description="Day after the range, exclusive (default: tomorrow)."
    ),
]
Currency = Annotated[
    str | None,
    QueryParameter(description="Currency of revenue and ROI (default: that of most won deals)."),
]
FORMATS = "JSON by default; `Accept: text/csv` answers CSV (a header row, one line per row)."


def day(value: str | None, name: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` query parameter, or :class:`InvalidInput` naming it."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {value!r} is not a date (YYYY-MM-DD)", field=name) from exc


def span(date_from: str | None, date_to: str | None) -> dict[str, dt.date | None]:
    return {"date_from": day(date_from, "from"), "date_to": day(date_to, "to")}


def answer(request: Request[Any, Any, Any], report: Report) -> Response[Any]:
    """The report as JSON, or as CSV when the client prefers ``text/csv``."""
    if request.accept.best_match([JSON, CSV], default=JSON) == CSV:
        return Response(service.to_csv(report), media_type=f"{CSV}; charset=utf-8")
    return Response(report)


class AnalyticsController(Controller):
    path = "/analytics"
    tags = ["analytics"]

    @get(
        "/outreach-volume",
        sync_to_thread=False,
        summary="Outreach efforts per day, week or month of the team's timezone",
        description="Optionally split by type or by user. Weeks start on Monday. " + FORMATS,
    )
    def volume(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[TeamScope],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        bucket: Annotated[Literal["day", "week", "month"], QueryParameter()] = "week",
        by: Annotated[Literal["type", "user"] | None, QueryParameter()] = None,
    ) -> Response[VolumeOut]:
        return answer(
            request,
            service.volume(team, bucket=bucket, by=by, **span(date_from, date_to)),
        )

    @get(
        "/channels",
        sync_to_thread=False,
        summary="Outreach → contact → deal → won, revenue and ROI per type and platform",
        description=FORMATS,
    )
    def channels(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[TeamScope],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        currency: Currency = None,
    ) -> Response[ChannelsOut]:
        return answer(
            request,
            service.channels(team, **span(date_from, date_to), currency=currency),
        )

    @get(
        "/users",
        sync_to_thread=False,
        summary="Outreach → contact → deal → won, revenue and ROI per user",
        description=FORMATS,
    )
    def users(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[TeamScope],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        currency: Currency = None,
    ) -> Response[UsersOut]:
        return answer(
            request, service.users(team, **span(date_from, date_to), currency=currency)
        )

    @get(
        "/funnel",
        sync_to_thread=False,
        summary="Leads per lifecycle stage: conversion, median time in stage, SLA, recycles",
        description=FORMATS,
    )
    def funnel(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[TeamScope],
        date_from: DateFrom = None,
        date_to: DateTo = None,
    ) -> Response[FunnelOut]:
        return answer(request, service.funnel(team, **span(date_from, date_to)))

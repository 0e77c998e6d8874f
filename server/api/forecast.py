"""HTTP endpoint for the forecast: open deals per expected close month and currency."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from server.api.analytics import FORMATS, answer
from server.core.scope import TeamScope
from server.core.services import forecast as service
from server.core.services.forecast import ForecastOut


class ForecastController(Controller):
    path = "/forecast"
    tags = ["forecast"]

    @get(
        "/",
        sync_to_thread=False,
        summary="Forecast open deals per expected close month and currency",
        description=(
            "Count, amount and weighted amount of the team's open deals per expected close "
            "month (`YYYY-MM`, `null` for no date, listed last) and currency, optionally per "
            "owner or stage. `close_from` is inclusive, `close_to` exclusive. " + FORMATS
        ),
        response_description="The forecast (JSON: ForecastOut; CSV: month, currency[, owner_id "
        "or stage], deals, amount, weighted_amount)",
    )
    def forecast(
        self,
        request: Request[Any, Any, Any],
        team: NamedDependency[TeamScope],
        group_by: FromQuery[Literal["owner", "stage"] | None] = None,
        close_from: FromQuery[dt.date | None] = None,
        close_to: FromQuery[dt.date | None] = None,
    ) -> Response[ForecastOut]:
        report = service.forecast(team, group_by=group_by, close_from=close_from, close_to=close_to)
        return answer(request, report)

"""HTTP endpoint for the forecast: open deals per expected close month and currency."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

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
            "owner or stage. `close_from` is inclusive, `close_to` exclusive."
        ),
    )
    def forecast(
        self,
        team: NamedDependency[TeamScope],
        group_by: FromQuery[Literal["owner", "stage"] | None] = None,
        close_from: FromQuery[dt.date | None] = None,
        close_to: FromQuery[dt.date | None] = None,
    ) -> ForecastOut:
        return service.forecast(team, group_by=group_by, close_from=close_from, close_to=close_to)

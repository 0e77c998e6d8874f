"""HTTP endpoints for the run log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from server.api.pages import Cursor, IdFilter, Limit, Page, page
from server.core.scope import TeamScope
from server.core.services import runs as service
from server.core.services.runs import RunOut


class RunController(Controller):
    path = "/runs"
    tags = ["runs"]

    @get("/", sync_to_thread=False, summary="List runs")
    def list(
        self,
        team: NamedDependency[TeamScope],
        limit: Limit = 50,
        cursor: Cursor = None,
        entity: FromQuery[str | None] = None,
        record_id: IdFilter = None,
        workflow: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        since: FromQuery[dt.datetime | None] = None,
        until: FromQuery[dt.datetime | None] = None,
        order: Annotated[
            Literal["oldest", "newest"],
            Parameter(description="`oldest` first (the default) or `newest` first; keep the "
                      "same order for every page of a cursor"),
        ] = "oldest",
    ) -> Page[RunOut]:
        return page(
            *service.list_(
                team,
                limit=limit,
                cursor=cursor,
                entity=entity,
                record_id=record_id,
                workflow=workflow,
                status=status,
                since=since,
                until=until,
                newest_first=order == "newest",
            )
        )

    @get("/{run_id:int}", sync_to_thread=False, summary="Read a run with its executions")
    def read(self, run_id: FromPath[int], team: NamedDependency[TeamScope]) -> RunOut:
        return service.get(team, run_id)

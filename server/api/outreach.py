"""HTTP endpoints for outreach efforts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from server.api.pages import Cursor, IdFilter, Limit, Page, page
from server.core.scope import TeamScope
from server.core.services import outreach as service
from server.core.services.outreach import OutreachIn, OutreachOut, OutreachPatch


class OutreachController(Controller):
    path = "/outreach"
    tags = ["outreach"]

    @post(
        "/", sync_to_thread=False, opt={"access": "ingest"}, summary="Record an outreach effort"
    )
    def create(self, data: JSONBody[OutreachIn], team: NamedDependency[TeamScope]) -> OutreachOut:
        return service.create(team, data)

    @get("/", sync_to_thread=False, summary="List outreach efforts")
    def list(
        self,
        team: NamedDependency[TeamScope],
        limit: Limit = 50,
        cursor: Cursor = None,
        type: Annotated[str | None, QueryParameter(description="Type code (1–5) or name.")] = None,
        user_id: IdFilter = None,
        occurred_from: FromQuery[dt.datetime | None] = None,
        occurred_to: FromQuery[dt.datetime | None] = None,
    ) -> Page[OutreachOut]:
        return page(
            *service.list_(
                team,
                limit=limit,
                cursor=cursor,
                type=type,
                user_id=user_id,
                occurred_from=occurred_from,
                occurred_to=occurred_to,
            )
        )

    @get("/{outreach_id:int}", sync_to_thread=False, summary="Read an outreach effort")
    def read(self, outreach_id: FromPath[int], team: NamedDependency[TeamScope]) -> OutreachOut:
        return service.get(team, outreach_id)

    @patch("/{outreach_id:int}", sync_to_thread=False, summary="Change an outreach effort")
    def update(
        self,
        outreach_id: FromPath[int],
        data: JSONBody[OutreachPatch],
        team: NamedDependency[TeamScope],
    ) -> OutreachOut:
        return service.update(team, outreach_id, data)

    @delete("/{outreach_id:int}", sync_to_thread=False, summary="Delete an outreach effort")
    def remove(self, outreach_id: FromPath[int], team: NamedDependency[TeamScope]) -> None:
        service.delete(team, outreach_id)

"""HTTP endpoints for deals."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from server.api.pages import Cursor, IdFilter, Limit, Page, page
from server.core.scope import TeamScope
from server.core.services import deals as service
from server.core.services.deals import DealIn, DealOut, DealPatch


class DealController(Controller):
    path = "/deals"
    tags = ["deals"]

    @post("/", sync_to_thread=False, summary="Create a deal")
    def create(self, data: JSONBody[DealIn], team: NamedDependency[TeamScope]) -> DealOut:
        return service.create(team, data)

    @get("/", sync_to_thread=False, summary="List deals")
    def list(
        self,
        team: NamedDependency[TeamScope],
        limit: Limit = 50,
        cursor: Cursor = None,
        stage: FromQuery[str | None] = None,
        status: FromQuery[Literal["open", "won", "lost", "cancelled"] | None] = None,
        contact_id: IdFilter = None,
        owner_id: IdFilter = None,
        outreach_id: IdFilter = None,
        close_from: FromQuery[dt.date | None] = None,
        close_to: FromQuery[dt.date | None] = None,
    ) -> Page[DealOut]:
        return page(
            *service.list_(
                team,
                limit=limit,
                cursor=cursor,
                stage=stage,
                status=status,
                contact_id=contact_id,
                owner_id=owner_id,
                outreach_id=outreach_id,
                close_from=close_from,
                close_to=close_to,
            )
        )

    @get("/{deal_id:int}", sync_to_thread=False, summary="Read a deal")
    def read(self, deal_id: FromPath[int], team: NamedDependency[TeamScope]) -> DealOut:
        return service.get(team, deal_id)

    @patch("/{deal_id:int}", sync_to_thread=False, summary="Change a deal")
    def update(
        self, deal_id: FromPath[int], data: JSONBody[DealPatch], team: NamedDependency[TeamScope]
    ) -> DealOut:
        return service.update(team, deal_id, data)

    @delete("/{deal_id:int}", sync_to_thread=False, summary="Delete a deal")
    def remove(self, deal_id: FromPath[int], team: NamedDependency[TeamScope]) -> None:
        service.delete(team, deal_id)

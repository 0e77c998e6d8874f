"""HTTP endpoints for deals."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from server.api.external import (
    ExternalIdFilter,
    ExternalIdPath,
    created_spec,
    missing_external_id,
    upserted,
)
from server.api.pages import Cursor, IdFilter, Limit, Page, page
from server.core.scope import TeamScope
from server.core.services import deals as service
from server.core.services.deals import DealIn, DealOut, DealPatch, DealPut


class DealController(Controller):
    path = "/deals"
    tags = ["deals"]

    @post("/", sync_to_thread=False, opt={"access": "ingest"}, summary="Create a deal")
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
        external_id: ExternalIdFilter = None,
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
                external_id=external_id,
            )
        )

    @put(
        "/external/{external_id:str}",
        sync_to_thread=False,
        opt={"access": "ingest"},
        summary="Create or update the deal with this external id",
        description="Creates the deal (201) when no deal of the team has this external id, "
        "else applies the body as a partial update (200): fields left out of the body keep "
        "their values, and a null `stage`, `owner_id` or `outreach_id` keeps its value too.",
        response_description="Updated: a record of the team had this external id.",
        responses=created_spec(DealOut),
    )
    def upsert(
        self,
        external_id: ExternalIdPath,
        data: JSONBody[DealPut],
        team: NamedDependency[TeamScope],
        request: Request,
    ) -> Response[DealOut]:
        deal, created = service.put(team, external_id, data)
        return upserted(request, deal, created, "deals:read", deal_id=deal.id)

    @put("/external", sync_to_thread=False, opt={"access": "ingest"}, include_in_schema=False)
    def upsert_without_id(self) -> None:
        raise missing_external_id()

    @get("/{deal_id:int}", sync_to_thread=False, name="deals:read", summary="Read a deal")
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

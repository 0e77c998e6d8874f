"""HTTP endpoints for leads and their stage history."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from server.api.external import (
    ExternalIdFilter,
    ExternalIdPath,
    created_spec,
    missing_external_id,
    upserted,
)
from server.api.pages import Cursor, IdFilter, Limit, Page, page
from server.core.scope import TeamScope
from server.core.services import leads as service
from server.core.services.leads import LeadIn, LeadOut, LeadPatch, LeadPut, StageChangeOut


class LeadController(Controller):
    path = "/leads"
    tags = ["leads"]

    @post("/", sync_to_thread=False, opt={"access": "ingest"}, summary="Create a lead")
    def create(self, data: JSONBody[LeadIn], team: NamedDependency[TeamScope]) -> LeadOut:
        return service.create(team, data)

    @get("/", sync_to_thread=False, summary="List leads")
    def list(
        self,
        team: NamedDependency[TeamScope],
        limit: Limit = 50,
        cursor: Cursor = None,
        stage: FromQuery[
            Literal["lead", "mql", "sal", "opportunity", "customer", "recycled"] | None
        ] = None,
        owner_id: IdFilter = None,
        contact_id: IdFilter = None,
        min_score: Annotated[int | None, QueryParameter(ge=-1_000_000, le=1_000_000)] = None,
        external_id: ExternalIdFilter = None,
    ) -> Page[LeadOut]:
        return page(
            *service.list_(
                team,
                limit=limit,
                cursor=cursor,
                stage=stage,
                owner_id=owner_id,
                contact_id=contact_id,
                min_score=min_score,
                external_id=external_id,
            )
        )

    @put(
        "/external/{external_id:str}",
        sync_to_thread=False,
        opt={"access": "ingest"},
        summary="Create or update the lead with this external id",
        description="Creates the lead (201) when no lead of the team has this external id, "
        "else applies the body as a partial update (200): fields left out of the body keep "
        "their values, and a `stage` it gives must be an allowed move.",
        response_description="Updated: a record of the team had this external id.",
        responses=created_spec(LeadOut),
    )
    def upsert(
        self,
        external_id: ExternalIdPath,
        data: JSONBody[LeadPut],
        team: NamedDependency[TeamScope],
        request: Request,
    ) -> Response[LeadOut]:
        lead, created = service.put(team, external_id, data)
        return upserted(request, lead, created, "leads:read", lead_id=lead.id)

    @put("/external", sync_to_thread=False, opt={"access": "ingest"}, include_in_schema=False)
    def upsert_without_id(self) -> None:
        raise missing_external_id()

    @get("/{lead_id:int}", sync_to_thread=False, name="leads:read", summary="Read a lead")
    def read(self, lead_id: FromPath[int], team: NamedDependency[TeamScope]) -> LeadOut:
        return service.get(team, lead_id)

    @get("/{lead_id:int}/history", sync_to_thread=False, summary="A lead's stage history")
    def history(
        self, lead_id: FromPath[int], team: NamedDependency[TeamScope]
    ) -> list[StageChangeOut]:
        return service.history(team, lead_id)

    @patch("/{lead_id:int}", sync_to_thread=False, summary="Change a lead (or move its stage)")
    def update(
        self, lead_id: FromPath[int], data: JSONBody[LeadPatch], team: NamedDependency[TeamScope]
    ) -> LeadOut:
        return service.update(team, lead_id, data)

    @delete("/{lead_id:int}", sync_to_thread=False, summary="Delete a lead")
    def remove(self, lead_id: FromPath[int], team: NamedDependency[TeamScope]) -> None:
        service.delete(team, lead_id)

"""HTTP endpoints for contacts and their logged communications."""

from __future__ import annotations

import datetime as dt
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
from server.core.services import communications, contacts
from server.core.services.communications import (
    CommunicationIn,
    CommunicationOut,
    CommunicationPatch,
)
from server.core.services.contacts import ContactIn, ContactOut, ContactPatch, ContactPut


class ContactController(Controller):
    path = "/contacts"
    tags = ["contacts"]

    @post("/", sync_to_thread=False, opt={"access": "ingest"}, summary="Create a contact")
    def create(self, data: JSONBody[ContactIn], team: NamedDependency[TeamScope]) -> ContactOut:
        return contacts.create(team, data)

    @get("/", sync_to_thread=False, summary="List contacts")
    def list(
        self,
        team: NamedDependency[TeamScope],
        limit: Limit = 50,
        cursor: Cursor = None,
        email: FromQuery[str | None] = None,
        company: FromQuery[str | None] = None,
        outreach_id: IdFilter = None,
        q: Annotated[
            str | None, QueryParameter(description="Part of the name, email or company.")
        ] = None,
        contacted_before: Annotated[
            dt.datetime | None,
            QueryParameter(description="Only contacts not contacted since this time (or never)."),
        ] = None,
        external_id: ExternalIdFilter = None,
    ) -> Page[ContactOut]:
        return page(
            *contacts.list_(
                team,
                limit=limit,
                cursor=cursor,
                email=email,
                company=company,
                outreach_id=outreach_id,
                q=q,
                contacted_before=contacted_before,
                external_id=external_id,
            )
        )

    @put(
        "/external/{external_id:str}",
        sync_to_thread=False,
        opt={"access": "ingest"},
        summary="Create or update the contact with this external id",
        description="Creates the contact (201) when no contact of the team has this "
        "external id, else applies the body as a partial update (200): fields left out of "
        "the body keep their values.",
        response_description="Updated: a record of the team had this external id.",
        responses=created_spec(ContactOut),
    )
    def upsert(
        self,
        external_id: ExternalIdPath,
        data: JSONBody[ContactPut],
        team: NamedDependency[TeamScope],
        request: Request,
    ) -> Response[ContactOut]:
        contact, created = contacts.put(team, external_id, data)
        return upserted(request, contact, created, "contacts:read", contact_id=contact.id)

    @put("/external", sync_to_thread=False, opt={"access": "ingest"}, include_in_schema=False)
    def upsert_without_id(self) -> None:
        raise missing_external_id()

    @get("/{contact_id:int}", sync_to_thread=False, name="contacts:read", summary="Read a contact")
    def read(self, contact_id: FromPath[int], team: NamedDependency[TeamScope]) -> ContactOut:
        return contacts.get(team, contact_id)

    @patch("/{contact_id:int}", sync_to_thread=False, summary="Change a contact")
    def update(
        self,
        contact_id: FromPath[int],
        data: JSONBody[ContactPatch],
        team: NamedDependency[TeamScope],
    ) -> ContactOut:
        return contacts.update(team, contact_id, data)

    @delete("/{contact_id:int}", sync_to_thread=False, summary="Delete a contact")
    def remove(self, contact_id: FromPath[int], team: NamedDependency[TeamScope]) -> None:
        contacts.delete(team, contact_id)

    @post(
        "/{contact_id:int}/communications",
        sync_to_thread=False,
        opt={"access": "ingest"},
        summary="Log a communication",
    )
    def log(
        self,
        contact_id: FromPath[int],
        data: JSONBody[CommunicationIn],
        team: NamedDependency[TeamScope],
    ) -> CommunicationOut:
        return communications.create(team, contact_id, data)

    @get("/{contact_id:int}/communications", sync_to_thread=False, summary="List communications")
    def communications(
        self,
        contact_id: FromPath[int],
        team: NamedDependency[TeamScope],
        limit: Limit = 50,
        cursor: Cursor = None,
        channel: FromQuery[
            Literal["email", "call", "meeting", "message", "social", "other"] | None
        ] = None,
        direction: FromQuery[Literal["inbound", "outbound"] | None] = None,
    ) -> Page[CommunicationOut]:
        return page(
            *communications.list_(
                team, contact_id, limit=limit, cursor=cursor, channel=channel, direction=direction
            )
        )

    @get(
        "/{contact_id:int}/communications/{communication_id:int}",
        sync_to_thread=False,
        summary="Read a communication",
    )
    def communication(
        self,
        contact_id: FromPath[int],
        communication_id: FromPath[int],
        team: NamedDependency[TeamScope],
    ) -> CommunicationOut:
        return communications.get(team, contact_id, communication_id)

    @patch(
        "/{contact_id:int}/communications/{communication_id:int}",
        sync_to_thread=False,
        summary="Change a communication",
    )
    def update_communication(
        self,
        contact_id: FromPath[int],
        communication_id: FromPath[int],
        data: JSONBody[CommunicationPatch],
        team: NamedDependency[TeamScope],
    ) -> CommunicationOut:
        return communications.update(team, contact_id, communication_id, data)

    @delete(
        "/{contact_id:int}/communications/{communication_id:int}",
        sync_to_thread=False,
        summary="Delete a communication",
    )
    def remove_communication(
        self,
        contact_id: FromPath[int],
        communication_id: FromPath[int],
        team: NamedDependency[TeamScope],
    ) -> None:
        communications.delete(team, contact_id, communication_id)

"""HTTP endpoints for the work lists: leads by priority, leads one field short, follow-ups."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from server.api.pages import Cursor, Limit, Page, page
from server.core.scope import TeamScope
from server.core.services import lists as service
from server.core.services.leads import LeadOut
from server.core.services.lists import FollowUpOut, MissingOneOut

Days = Annotated[
    int,
    QueryParameter(ge=0, le=3650, description="Not contacted for at least this many days."),
]


class ListController(Controller):
    path = "/lists"
    tags = ["lists"]

    @get(
        "/leads-by-priority",
        sync_to_thread=False,
        summary="Leads by priority",
        description="Highest score first, then the oldest lead first. Customers are left out "
        "unless `stage=customer` asks for them. `next_cursor` pages on in the same order.",
    )
    def leads_by_priority(
        self,
        team: NamedDependency[TeamScope],
        limit: Limit = 50,
        cursor: Cursor = None,
        stage: FromQuery[
            Literal["lead", "mql", "sal", "opportunity", "customer", "recycled"] | None
        ] = None,
    ) -> Page[LeadOut]:
        return page(*service.leads_by_priority(team, limit=limit, cursor=cursor, stage=stage))

    @get(
        "/leads-missing-one-field",
        sync_to_thread=False,
        summary="Leads one profile field short of qualifying",
        description="Leads in marketing stages whose score reached the team's "
        "`settings.qualification.score_threshold` but that lack exactly one of its "
        "`required_fields`, each with the field it lacks; by score, then age.",
    )
    def leads_missing_one_field(
        self, team: NamedDependency[TeamScope], limit: Limit = 50, cursor: Cursor = None
    ) -> Page[MissingOneOut]:
        return page(*service.leads_missing_one_field(team, limit=limit, cursor=cursor))

    @get(
        "/follow-up",
        sync_to_thread=False,
        summary="Contacts to follow up",
        description="Contacts not contacted for `days` or more calendar days in the team's "
        "timezone (never contacted: counted from their creation), by the value of their open "
        "deals, then their lead's score, then the longest wait. `as_of` (a date in the team's "
        "timezone) replaces today.",
    )
    def follow_up(
        self,
        team: NamedDependency[TeamScope],
        days: Days = 7,
        limit: Limit = 50,
        cursor: Cursor = None,
        as_of: FromQuery[dt.date | None] = None,
    ) -> Page[FollowUpOut]:
        return page(
            *service.follow_up(team, days=days, limit=limit, cursor=cursor, as_of=as_of)
        )

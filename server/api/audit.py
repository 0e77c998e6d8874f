"""``/api/v1/audit``: the team's audit log of admin changes (admins only, read only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from server.api.pages import Cursor, Limit, Page, page
from server.core.scope import TeamScope
from server.core.services import audit as service
from server.core.services.audit import ACTIONS, AuditEntryOut

Action = Annotated[
    str | None,
    QueryParameter(description="Only entries of this action: " + ", ".join(ACTIONS) + "."),
]
Since = Annotated[
    dt.datetime | None,
    QueryParameter(
        description="Only entries recorded at or after this time (ISO 8601; without an offset "
        "it is read in the team's timezone)."
    ),
]


@get(
    "/audit",
    sync_to_thread=False,
    opt={"access": "admin"},
    tags=["audit"],
    summary="List the team's audit log",
    description="Every admin change, oldest first: who (user and API key, or the CLI), when, "
    "the request id, and a before/after summary. Credential and secret values never appear. "
    "The log is append-only: there is no way to change or delete an entry.",
)
def list_audit(
    team: NamedDependency[TeamScope],
    limit: Limit = 50,
    cursor: Cursor = None,
    action: Action = None,
    since: Since = None,
) -> Page[AuditEntryOut]:
    return page(*service.list_(team, limit=limit, cursor=cursor, action=action, since=since))


HANDLERS: list[object] = [list_audit]

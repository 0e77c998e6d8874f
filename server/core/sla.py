"""A lifecycle stage's SLA in SQL: its deadline and whether the expected action came in time.

One definition for the scheduler's ``sla_breached`` and the funnel's SLA compliance: a stage
entry's window runs from the entry to the deadline (entry + the SLA's hours, both included).
In the sales stages (``CONTACT_STAGES``) the expected action is reaching the lead's contact
inside the window; in the others it is leaving the stage by the deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, literal, or_, type_coerce
from sqlalchemy.orm import aliased

from server.core.models import Communication, Contact
from server.core.models.base import UTCDateTime

CONTACT_STAGES = ("sal", "opportunity")
"""Sales stages, whose expected action is contacting the lead (a logged communication, or
the contact's ``last_contacted_at`` set by hand); in the others it is leaving the stage."""


def deadline(
    dialect: str, entered: Any, hours: int | Mapping[str, int], stage: Any = None
) -> ColumnElement[dt.datetime]:
    """``entered`` plus the SLA's hours: one number, or per stage (``hours`` keyed by the value
    of the ``stage`` column)."""
    if dialect == "sqlite":
        # SQLite's date functions shift whole seconds; the stored microseconds are put back
        # unchanged (datetime() would round them to milliseconds, and may carry a second).
        if isinstance(hours, Mapping):
            shift: Any = case({s: f"+{h} hours" for s, h in hours.items()}, value=stage)
        else:
            shift = f"+{hours} hours"
        whole = func.datetime(func.substr(entered, 1, 19), shift)
        return type_coerce(whole.concat(func.substr(entered, 20)), UTCDateTime)
    if isinstance(hours, Mapping):
        interval: Any = case({s: dt.timedelta(hours=h) for s, h in hours.items()}, value=stage)
    else:
        interval = literal(dt.timedelta(hours=hours))
    return type_coerce(entered + interval, UTCDateTime)


def contacted(contact_id: Any, start: Any, end: Any) -> ColumnElement[bool]:
    """Whether the contact was reached between ``start`` and ``end`` (both included): a
    communication logged at that time, or its ``last_contacted_at`` (as set by hand) in it."""
    logged = exists().where(
        Communication.contact_id == contact_id,
        Communication.at >= start,
        Communication.at <= end,
    )
    # An alias: a query that already joins contacts must not correlate this one away.
    person = aliased(Contact)
    by_hand = exists().where(
        person.id == contact_id,
        person.last_contacted_at >= start,
        person.last_contacted_at <= end,
    )
    return or_(logged, by_hand)

"""Due occurrences of each schedule kind, found with SQL: what is due and not yet fired.

An occurrence is one (workflow, record, basis): the basis is the lead's entry into the stage
(``sla_breached``), the contact's last contact or creation (``not_contacted``), or the deal's
expected close date (``before_close``). A new basis is a new occurrence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from server.core.models import Contact, Deal, Lead, ScheduleOccurrence, Team
from server.core.sla import CONTACT_STAGES, contacted, deadline
from server.triggers.schedule.trigger import KINDS


@dataclass(frozen=True)
class Occurrence:
    """One due occurrence of a schedule kind for one record."""

    kind: str
    entity_id: int
    key: str
    due_at: dt.datetime
    since: dt.datetime | None = None
    close_date: dt.date | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def entity(self) -> str:
        return KINDS[self.kind]

    def document(self) -> dict[str, Any]:
        """What the event carries (``event.kind``, ``event.due_at``, …)."""
        doc: dict[str, Any] = {
            "kind": self.kind,
            "occurrence": self.key,
            "due_at": self.due_at.isoformat(),
            **self.details,
        }
        if self.since is not None:
            doc["since"] = self.since.isoformat()
        if self.close_date is not None:
            doc["close_date"] = self.close_date.isoformat()
        return doc


Due = list[tuple[Any, Occurrence]]
"""Due records (the ORM rows) with their occurrence, in id order."""


def _fired(
    team_id: int, workflow: str, kind: str, entity_id: Any, basis: ColumnElement[bool]
) -> Any:
    """Whether ``workflow`` already fired for this record and basis."""
    O = ScheduleOccurrence  # noqa: N806
    return exists().where(
        O.team_id == team_id,
        O.workflow_key == workflow,
        O.kind == kind,
        O.entity_id == entity_id,
        basis,
    )


def sla_hours(team: Team, config: Mapping[str, Any]) -> int | None:
    """The trigger's ``hours``, else the team's SLA for the stage (None: no SLA, no firing)."""
    if config.get("hours"):
        return int(config["hours"])
    hours = ((team.settings or {}).get("stage_sla_hours") or {}).get(config["stage"])
    return int(hours) if hours else None


def sla_breached(
    session: Session,
    team: Team,
    workflow: str,
    config: Mapping[str, Any],
    now: dt.datetime,
    limit: int,
) -> Due:
    """Leads in ``stage`` past the SLA's deadline without the expected action: in the sales
    stages, no contact within the window from the stage entry to the deadline (a contact after
    it, even before this scan, does not meet the SLA)."""
    stage = config["stage"]
    hours = sla_hours(team, config)
    if hours is None:
        return []
    since_entry = ScheduleOccurrence.since == Lead.stage_changed_at
    fired = _fired(team.id, workflow, "sla_breached", Lead.id, since_entry)
    stmt = select(Lead).where(
        Lead.team_id == team.id,
        Lead.stage == stage,
        Lead.stage_changed_at <= now - dt.timedelta(hours=hours),
        ~fired,
    )
    if stage in CONTACT_STAGES:
        due = deadline(session.get_bind().dialect.name, Lead.stage_changed_at, hours)
        stmt = stmt.where(~contacted(Lead.contact_id, Lead.stage_changed_at, due))
    out = []
    for lead in session.scalars(stmt.order_by(Lead.id).limit(limit)):
        since = lead.stage_changed_at
        occurrence = Occurrence(
            kind="sla_breached",
            entity_id=lead.id,
            key=f"{stage}@{since.isoformat()}",
            due_at=since + dt.timedelta(hours=hours),
            since=since,
            details={"stage": stage, "hours": hours},
        )
        out.append((lead, occurrence))
    return out


def not_contacted(
    session: Session,
    team: Team,
    workflow: str,
    config: Mapping[str, Any],
    now: dt.datetime,
    limit: int,
) -> Due:
    """Contacts whose last contact (or creation, if never contacted) is ``days`` × 24 hours ago
    or more."""
    days = int(config["days"])
    basis = func.coalesce(Contact.last_contacted_at, Contact.created_at)
    since_last = ScheduleOccurrence.since == basis
    fired = _fired(team.id, workflow, "not_contacted", Contact.id, since_last)
    stmt = (
        select(Contact, basis.label("since"))
        .where(Contact.team_id == team.id, basis <= now - dt.timedelta(days=days), ~fired)
        .order_by(Contact.id)
        .limit(limit)
    )
    out = []
    for contact, since in session.execute(stmt):
        occurrence = Occurrence(
            kind="not_contacted",
            entity_id=contact.id,
            key=since.isoformat(),
            due_at=since + dt.timedelta(days=days),
            since=since,
            details={"days": days},
        )
        out.append((contact, occurrence))
    return out


def before_close(
    session: Session,
    team: Team,
    workflow: str,
    config: Mapping[str, Any],
    now: dt.datetime,
    limit: int,
) -> Due:
    """Open deals whose expected close date is at most ``days`` days after today (the team's
    today, in its timezone) and not yet past."""
    days = int(config["days"])
    zone = ZoneInfo(team.timezone)
    today = now.astimezone(zone).date()
    fired = _fired(
        team.id,
        workflow,
        "before_close",
        Deal.id,
        ScheduleOccurrence.close_date == Deal.expected_close_date,
    )
    stmt = (
        select(Deal)
        .where(
            Deal.team_id == team.id,
            Deal.status == "open",
            Deal.expected_close_date >= today,
            Deal.expected_close_date <= today + dt.timedelta(days=days),
            ~fired,
        )
        .order_by(Deal.id)
        .limit(limit)
    )
    out = []
    for deal in session.scalars(stmt):
        close = deal.expected_close_date
        assert close is not None
        # Due at the start of the day ``days`` before the close date, in the team's timezone.
        start = dt.datetime.combine(close - dt.timedelta(days=days), dt.time(), zone)
        occurrence = Occurrence(
            kind="before_close",
            entity_id=deal.id,
            key=close.isoformat(),
            due_at=start.astimezone(dt.UTC),
            close_date=close,
            details={"days": days},
        )
        out.append((deal, occurrence))
    return out


DUE = {"sla_breached": sla_breached, "not_contacted": not_contacted, "before_close": before_close}

"""ScheduleOccurrence: one time-based occurrence a schedule workflow has fired for."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class ScheduleOccurrence(TeamOwned, Base):
    """A due occurrence (an SLA breach, a silence, an approaching close date) that workflow
    ``workflow_key`` fired for, written in the transaction of the event it caused.

    The unique constraint makes it fire once: a second scanner (another process) that finds
    the same occurrence fails its insert and moves on. ``since`` (the stage entry or the last
    contact) or ``close_date`` is what the occurrence counts from; a new value is a new one.
    """

    __tablename__ = "schedule_occurrences"
    __table_args__ = (
        UniqueConstraint(
            "team_id",
            "workflow_key",
            "kind",
            "entity_id",
            "occurrence_key",
            name="uq_schedule_occurrences_once",
        ),
    )

    workflow_key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int]
    occurrence_key: Mapped[str] = mapped_column(String(200))
    since: Mapped[dt.datetime | None]
    close_date: Mapped[dt.date | None]
    due_at: Mapped[dt.datetime]
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))

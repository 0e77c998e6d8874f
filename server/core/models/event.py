"""Event, Run and ActionExecution: the durable trail of what a change caused."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class Event(TeamOwned, Base):
    """A change to a record (or a posted webhook), written in the transaction of the change."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_team_record", "team_id", "entity", "record_id"),
        # Only the few events still owed to plugins: the relay's scan stays cheap, and an
        # event that owes nothing (NULL) adds no index entry to a save.
        Index(
            "ix_events_notify_at",
            "notify_at",
            postgresql_where=text("notify_at IS NOT NULL"),
            sqlite_where=text("notify_at IS NOT NULL"),
        ),
    )

    entity: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[int | None]
    op: Mapped[str] = mapped_column(String(16))
    changed: Mapped[list[Any]] = mapped_column(default=list)
    record: Mapped[dict[str, Any] | None]
    previous: Mapped[dict[str, Any] | None]
    payload: Mapped[dict[str, Any] | None]
    name: Mapped[str | None] = mapped_column(String(100))
    """The hook name of a webhook event."""
    source: Mapped[str] = mapped_column(String(16), default="api")
    depth: Mapped[int] = mapped_column(default=0)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    dispatched_at: Mapped[dt.datetime | None]
    notify_at: Mapped[dt.datetime | None]
    """Set while the ``dealflow_event`` hook is owed for this event: from this time on any
    relay may deliver it (the saving process's grace, or a delivery's lease, ran out). NULL
    once delivered, and for an event no plugin listened to (see ``server.core.notifications``)."""


class Run(TeamOwned, Base):
    """What the engine did for one event: workflows evaluated, why (not) matched, actions run."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_team_record", "team_id", "entity", "record_id"),)

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    entity: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16))
    matched: Mapped[str] = mapped_column(Text, default="")
    """Comma-framed keys of the workflows that matched (``,a,b,``), for filtering."""
    evaluations: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[list[Any]] = mapped_column(default=list)
    duration_ms: Mapped[float] = mapped_column(default=0.0)


EXECUTION_STATUSES = ("pending", "queued", "running", "failed", "succeeded", "dead")


class ActionExecution(TeamOwned, Base):
    """One side-effect action to perform after commit, at least once, keyed for idempotency.

    ``status`` moves ``pending`` (written with the change, not yet handed to the broker) →
    ``queued`` (a message is on the broker since ``dispatched_at``) → ``running`` (a worker
    holds it until ``next_attempt_at``, its lease) → ``succeeded``; or → ``failed`` (to be
    retried at ``next_attempt_at``) → ... → ``dead`` (out of attempts, or a permanent error).
    """

    __tablename__ = "action_executions"
    __table_args__ = (Index("ix_action_executions_status", "status", "next_attempt_at"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    workflow_key: Mapped[str] = mapped_column(String(100))
    workflow_version: Mapped[int]
    action_index: Mapped[int]
    action_type: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    attempt_log: Mapped[list[Any]] = mapped_column(default=list)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]
    next_attempt_at: Mapped[dt.datetime | None]
    dispatched_at: Mapped[dt.datetime | None]

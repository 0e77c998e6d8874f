"""AuditEntry: one admin change, recorded in the transaction of the change and never altered."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, IdMixin, utcnow

ACTIONS = (
    "workflow.save",
    "workflow.enable",
    "workflow.disable",
    "workflow.delete",
    "team.settings",
    "team.domains",
    "credentials.set",
    "credentials.delete",
    "key.create",
    "key.revoke",
    "hook_secret.create",
    "hook_secret.rotate",
    "execution.retry",
    "group.recompute",
)
"""Every action the log records."""


class AppendOnly(RuntimeError):
    """Raised when code tries to change or delete an audit entry through the ORM."""


class AuditEntry(IdMixin, Base):
    """Who changed what in a team, when, through which door, and a before/after summary.

    ``user_id`` and ``key_id`` are kept as plain ids, not foreign keys: an entry keeps naming
    the user and key that acted even after they are gone. Rows go only with their team
    (``ON DELETE CASCADE``); a database trigger refuses every other UPDATE and DELETE.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_team_id_id", "team_id", "id"),)
    __entity__ = "audit entry"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), sort_order=-9
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    via: Mapped[str] = mapped_column(String(8))
    """``api`` (an API key acted) or ``cli`` (an operator on the server's command line)."""
    user_id: Mapped[int | None]
    key_id: Mapped[int | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    """What was done: ``workflow.save``, ``team.settings``, ``credentials.set``, ..."""
    target: Mapped[str | None] = mapped_column(String(200))
    """What it was done to: a workflow id, a credential set's name, an execution id, ..."""
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """``{"before": ..., "after": ...}``: versions, changed keys, field names — never secrets."""


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(_mapper: Any, _connection: Any, target: AuditEntry) -> None:
    raise AppendOnly(f"audit entry {target.id} cannot be changed: the audit log is append-only")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(_mapper: Any, _connection: Any, target: AuditEntry) -> None:
    raise AppendOnly(f"audit entry {target.id} cannot be deleted: the audit log is append-only")

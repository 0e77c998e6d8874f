"""The audit log: admin changes recorded in their own transaction, read back by admins."""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from server.core.errors import InvalidInput
from server.core.models import AuditEntry
from server.core.models.audit import ACTIONS
from server.core.scope import Actor, TeamScope
from server.core.services.common import aware, fetch_page

request_id: ContextVar[str | None] = ContextVar("dealflow_request_id", default=None)
"""The id of the HTTP request being served (set by ``server.api.request_id``), else None."""


class AuditEntryOut(msgspec.Struct):
    """One recorded admin change."""

    id: int
    at: dt.datetime
    via: str
    """``api`` (made with an API key) or ``cli`` (made on the server's command line)."""
    user_id: int | None
    key_id: int | None
    request_id: str | None
    action: str
    target: str | None
    summary: dict[str, Any]
    """``{"before": ..., "after": ...}``; never a credential's or secret's value."""


def entry_out(row: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=row.id,
        at=row.at,
        via=row.via,
        user_id=row.user_id,
        key_id=row.key_id,
        request_id=row.request_id,
        action=row.action,
        target=row.target,
        summary=dict(row.summary or {}),
    )


def _add(
    session: Session,
    team_id: int,
    actor: Actor | None,
    action: str,
    target: object,
    before: Any,
    after: Any,
) -> AuditEntry:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    row = AuditEntry(
        team_id=team_id,
        via=_via(actor),
        user_id=(actor.user_id or None) if actor is not None else None,
        key_id=actor.key_id if actor is not None else None,
        request_id=request_id.get(),
        action=action,
        target=None if target is None else str(target)[:200],
        summary={"before": before, "after": after},
    )
    session.add(row)
    return row


def record(
    scope: TeamScope, action: str, target: object = None, before: Any = None, after: Any = None
) -> AuditEntry:
    """Add an entry for a change the scope's actor is making, to be committed with it: a
    change that is rolled back (refused, or failing at commit) leaves no entry."""
    return _add(scope.session, scope.team_id, scope.actor, action, target, before, after)


def record_for(
    session: Session,
    team_id: int,
    action: str,
    target: object = None,
    before: Any = None,
    after: Any = None,
    *,
    actor: Actor | None = None,
) -> AuditEntry:
    """Like :func:`record` for services that work on a plain session and a team id (hook
    secrets); with no ``actor`` the change is recorded as made from the CLI."""
    return _add(session, team_id, actor, action, target, before, after)


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The top-level keys whose values differ between two JSON objects, sorted."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def check_action(action: str | None) -> str | None:
    """``action`` if the log records it (or None), else :class:`InvalidInput` naming it."""
    if action is not None and action not in ACTIONS:
        raise InvalidInput(
            f"action: {action[:80]!r} is not an audited action; use one of {', '.join(ACTIONS)}",
            field="action",
        )
    return action


def list_(
    scope: TeamScope,
    *,
    limit: int,
    cursor: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
) -> tuple[list[AuditEntryOut], str | None]:
    """One page of the team's entries, oldest first (in id order)."""
    stmt = scope.select(AuditEntry)
    if check_action(action) is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= aware(since, scope))
    rows, next_cursor = fetch_page(scope, stmt, AuditEntry, limit, cursor)
    return [entry_out(r) for r in rows], next_cursor


def latest(
    scope: TeamScope, *, limit: int, action: str | None = None
) -> list[AuditEntryOut]:
    """The team's ``limit`` most recent entries, newest first (for the CLI)."""
    stmt = scope.select(AuditEntry)
    if check_action(action) is not None:
        stmt = stmt.where(AuditEntry.action == action)
    rows = scope.session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit))
    return [entry_out(r) for r in rows]


__all__ = [
    "ACTIONS",
    "AuditEntryOut",
    "changed_keys",
    "check_action",
    "entry_out",
    "latest",
    "list_",
    "record",
    "record_for",
    "request_id",
]


def _via(actor: Actor | None) -> str:
    """``console`` for a console session; otherwise a change made with an API key came
    through the API, one without from the CLI (which acts as the team's first admin, or as
    no user at all)."""
    if actor is not None and actor.via:
        return actor.via
    return "api" if actor is not None and actor.key_id is not None else "cli"

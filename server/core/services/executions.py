"""Side-effect executions: list and read them, and put dead ones back in the queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Select, update

from server.core.engine import PENDING_KEY
from server.core.errors import Conflict, InvalidInput, NotFound
from server.core.models import ActionExecution, utcnow
from server.core.models.event import EXECUTION_STATUSES
from server.core.scope import TeamScope
from server.core.services import audit
from server.core.services.common import commit, fetch_page

STATUSES = EXECUTION_STATUSES
"""Every status an execution can have, in the order it moves through them."""


class ExecutionOut(msgspec.Struct):
    """A side-effect execution: its state, every attempt and its result.

    The action's ``config`` and the ``document`` it renders are left out on purpose: they
    may carry secrets.
    """

    id: int
    run_id: int
    event_id: int
    workflow: str
    workflow_version: int
    action_index: int
    action_type: str
    idempotency_key: str
    status: str
    attempts: int
    attempt_log: list[dict[str, Any]]
    last_error: str | None
    result: Any
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


def execution_out(row: ActionExecution) -> ExecutionOut:
    return ExecutionOut(
        id=row.id,
        run_id=row.run_id,
        event_id=row.event_id,
        workflow=row.workflow_key,
        workflow_version=row.workflow_version,
        action_index=row.action_index,
        action_type=row.action_type,
        idempotency_key=row.idempotency_key,
        status=row.status,
        attempts=row.attempts,
        attempt_log=list(row.attempt_log or []),
        last_error=row.last_error,
        result=row.result,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def check_status(status: str | None) -> str | None:
    """``status`` if it is one an execution can have (or None), else :class:`InvalidInput`."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"status: {status!r} is not an execution status; use one of {', '.join(STATUSES)}",
            field="status",
        )
    return status


def filtered(
    scope: TeamScope,
    *,
    status: str | None = None,
    workflow: str | None = None,
    action_type: str | None = None,
    run_id: int | None = None,
) -> Select[Any]:
    """The team's executions matching every filter given (unordered)."""
    stmt = scope.select(ActionExecution)
    if check_status(status) is not None:
        stmt = stmt.where(ActionExecution.status == status)
    if workflow is not None:
        stmt = stmt.where(ActionExecution.workflow_key == workflow)
    if action_type is not None:
        stmt = stmt.where(ActionExecution.action_type == action_type)
    if run_id is not None:
        stmt = stmt.where(ActionExecution.run_id == run_id)
    return stmt


def list_(
    scope: TeamScope,
    *,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    workflow: str | None = None,
    action_type: str | None = None,
    run_id: int | None = None,
) -> tuple[list[ExecutionOut], str | None]:
    stmt = filtered(
        scope, status=status, workflow=workflow, action_type=action_type, run_id=run_id
    )
    rows, next_cursor = fetch_page(scope, stmt, ActionExecution, limit, cursor)
    return [execution_out(r) for r in rows], next_cursor


def _find(scope: TeamScope, execution_id: int, *, lock: bool = False) -> ActionExecution:
    """The team's execution with this id, else :class:`NotFound`; with ``lock``, its row is
    locked (on PostgreSQL) until the commit, so two retries at once cannot both take it."""
    row = None
    if -(2**63) <= execution_id < 2**63:  # beyond, no key column holds it: simply not found
        stmt = scope.select(ActionExecution).where(ActionExecution.id == execution_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        row = scope.session.scalar(stmt)
    if row is None:
        raise NotFound("execution", execution_id)
    return row


def get(scope: TeamScope, execution_id: int) -> ExecutionOut:
    return execution_out(_find(scope, execution_id))


def _check_dead(row: ActionExecution) -> None:
    if row.status != "dead":
        raise Conflict(
            f"execution {row.id} is {row.status}; only a dead execution can be retried",
            field="status",
        )


def _requeue(scope: TeamScope, row: ActionExecution) -> None:
    """Make a dead execution pending again, as if just written, keeping its history."""
    _check_dead(row)
    before = {"status": row.status, "attempts": row.attempts, "workflow": row.workflow_key}
    now = utcnow()
    marker = {"retry": True, "at": now.isoformat(), "user_id": scope.actor.user_id or None}
    # Conditional, so that a retry racing another one (SQLite has no row locks) never
    # resets an execution that a worker already took up again.
    changed = scope.session.execute(
        update(ActionExecution)
        .where(
            ActionExecution.id == row.id,
            ActionExecution.team_id == scope.team_id,
            ActionExecution.status == "dead",
        )
        .values(
            status="pending",
            attempts=0,  # a fresh round of the action's max_attempts
            next_attempt_at=now,
            dispatched_at=None,
            attempt_log=[*(row.attempt_log or []), marker],
            updated_at=now,
        ),
        execution_options={"synchronize_session": False},
    ).rowcount
    if changed != 1:
        raise Conflict(
            f"execution {row.id} was retried meanwhile; only a dead execution can be retried",
            field="status",
        )
    audit.record(scope, "execution.retry", row.id, before, {"status": "pending", "attempts": 0})
    scope.session.expire(row)  # read back what the statement wrote
    # Handed to the runner right after the commit; a runner's scan of pending rows is the
    # fallback when this process has none (the CLI).
    scope.session.info.setdefault(PENDING_KEY, []).append(row.id)


def _finish(scope: TeamScope, rows: Sequence[ActionExecution]) -> list[ExecutionOut]:
    # Read back before the commit: right after it the runner may already be performing them.
    scope.session.flush()
    requeued = [execution_out(r) for r in rows]
    commit(scope)
    return requeued


def retry_many(scope: TeamScope, execution_ids: Sequence[int]) -> list[ExecutionOut]:
    """Requeue these dead executions of the team, all or none: an unknown id is a 404, one
    that is not dead a 409, and then nothing is requeued."""
    rows = [_find(scope, execution_id, lock=True) for execution_id in dict.fromkeys(execution_ids)]
    for row in rows:
        _check_dead(row)  # every one before changing any
    for row in rows:
        _requeue(scope, row)
    return _finish(scope, rows)


def retry(scope: TeamScope, execution_id: int) -> ExecutionOut:
    """Requeue one dead execution: pending again with a fresh count of attempts; its
    ``attempt_log`` and ``last_error`` stay, and the log gains a retry marker."""
    (out,) = retry_many(scope, [execution_id])
    return out


def retry_dead(scope: TeamScope, *, workflow: str | None = None) -> list[ExecutionOut]:
    """Requeue every dead execution of the team (of one workflow, if given)."""
    rows = scope.session.scalars(
        filtered(scope, status="dead", workflow=workflow)
        .order_by(ActionExecution.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for row in rows:
        _requeue(scope, row)
    return _finish(scope, rows)


__all__ = [
    "STATUSES",
    "ExecutionOut",
    "check_status",
    "execution_out",
    "filtered",
    "get",
    "list_",
    "retry",
    "retry_dead",
    "retry_many",
]

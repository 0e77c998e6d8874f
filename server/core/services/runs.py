"""The run log: what the engine did for each event, and the side-effect executions it queued."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from server.core.models import ActionExecution, Event, Run
from server.core.scope import TeamScope
from server.core.services.common import aware, fetch_page
from server.core.services.executions import ExecutionOut, execution_out


class RunOut(msgspec.Struct):
    """One event's run: the event, every workflow evaluated, why (not) matched, actions run."""

    id: int
    event_id: int
    entity: str | None
    record_id: int | None
    op: str
    changed: list[str]
    source: str
    depth: int
    status: str
    evaluations: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    duration_ms: float
    created_at: dt.datetime
    executions: list[ExecutionOut] = []


def out(run: Run, event: Event, executions: list[ActionExecution] | None = None) -> RunOut:
    return RunOut(
        id=run.id,
        event_id=run.event_id,
        entity=run.entity,
        record_id=run.record_id,
        op=event.op,
        changed=list(event.changed or []),
        source=event.source,
        depth=event.depth,
        status=run.status,
        evaluations=list(run.evaluations or []),
        notes=list(run.notes or []),
        duration_ms=run.duration_ms,
        created_at=run.created_at,
        executions=[execution_out(e) for e in executions or []],
    )


def get(scope: TeamScope, run_id: int) -> RunOut:
    run = scope.get(Run, run_id)
    event = scope.get(Event, run.event_id)
    executions = scope.session.scalars(
        scope.select(ActionExecution)
        .where(ActionExecution.run_id == run.id)
        .order_by(ActionExecution.id)
    ).all()
    return out(run, event, list(executions))


def list_(
    scope: TeamScope,
    *,
    limit: int,
    cursor: str | None = None,
    entity: str | None = None,
    record_id: int | None = None,
    workflow: str | None = None,
    status: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    newest_first: bool = False,
) -> tuple[list[RunOut], str | None]:
    stmt = scope.select(Run)
    if entity is not None:
        stmt = stmt.where(Run.entity == entity)
    if record_id is not None:
        stmt = stmt.where(Run.record_id == record_id)
    if workflow is not None:
        stmt = stmt.where(Run.matched.contains(f",{workflow},", autoescape=True))
    if status is not None:
        stmt = stmt.where(Run.status == status)
    if since is not None:
        stmt = stmt.where(Run.created_at >= aware(since, scope))
    if until is not None:
        stmt = stmt.where(Run.created_at < aware(until, scope))
    runs, next_cursor = fetch_page(scope, stmt, Run, limit, cursor, newest_first=newest_first)
    events = {
        e.id: e
        for e in scope.session.scalars(
            scope.select(Event).where(Event.id.in_([r.event_id for r in runs]))
        )
    }
    return [out(r, events[r.event_id]) for r in runs], next_cursor

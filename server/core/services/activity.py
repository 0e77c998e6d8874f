"""What each workflow did lately: its last run, runs and errors in a recent window."""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy import and_, case, func, literal

from server.core.models import Run, Workflow, utcnow
from server.core.scope import TeamScope

WINDOW = dt.timedelta(hours=24)


class Activity(msgspec.Struct):
    """One workflow's figures; the runs are those where it matched (as ``GET /api/v1/runs?
    workflow=`` counts them), the errors those of them whose status is ``error``."""

    workflow: str
    last_run_at: dt.datetime | None
    runs: int
    errors: int


def workflow_activity(
    scope: TeamScope, *, now: dt.datetime | None = None, window: dt.timedelta = WINDOW
) -> dict[str, Activity]:
    """Every workflow of the team → its activity, in one grouped query."""
    since = (now or utcnow()) - window
    framed = literal(",") + Workflow.key + literal(",")
    finder = func.strpos if scope.session.get_bind().dialect.name == "postgresql" else func.instr
    recent = Run.created_at >= since
    stmt = (
        scope.select(Workflow, Workflow.key)
        .add_columns(
            func.max(Run.created_at),
            func.count(case((recent, 1))),
            func.count(case((and_(recent, Run.status == "error"), 1))),
        )
        .outerjoin(
            Run,
            and_(Run.team_id == Workflow.team_id, finder(Run.matched, framed) > 0),
        )
        .group_by(Workflow.key)
    )
    return {
        key: Activity(key, last, int(runs), int(errors))
        for key, last, runs, errors in scope.session.execute(stmt)
    }

"""What each workflow did lately: its last run, runs and errors in a recent window."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import msgspec
from sqlalchemy import select

from server.core.models import Run, Workflow, utcnow
from server.core.scope import TeamScope

WINDOW = dt.timedelta(hours=24)
LAST_RUN_SCAN = 10_000
"""How many of the team's latest runs are searched for a workflow's last run beyond the
window: older than that, the last run is not shown (a page must not read the whole log)."""


class Activity(msgspec.Struct):
    """One workflow's figures; the runs are those where it matched (as ``GET /api/v1/runs?
    workflow=`` counts them), the errors those of them whose status is ``error``."""

    workflow: str
    last_run_at: dt.datetime | None
    runs: int
    errors: int


def _keys(matched: str) -> list[str]:
    return [key for key in matched.split(",") if key]


def workflow_activity(
    scope: TeamScope, *, now: dt.datetime | None = None, window: dt.timedelta = WINDOW
) -> dict[str, Activity]:
    """Every workflow of the team → its activity.

    The runs of the window are read once (their matched keys and status) and counted; the
    last run of a workflow with none in the window is looked for in the team's latest runs,
    newest first, until every workflow is found or :data:`LAST_RUN_SCAN` runs were read.
    A join of every workflow to every run on the comma-framed ``matched`` column cannot use
    an index: with 100,000 runs it took over a second."""
    since = (now or utcnow()) - window
    keys = scope.session.scalars(scope.select(Workflow, Workflow.key).order_by(Workflow.key)).all()
    runs: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    last: dict[str, dt.datetime] = {}
    recent = scope.session.execute(
        select(Run.matched, Run.status, Run.created_at).where(
            Run.team_id == scope.team_id, Run.created_at >= since, Run.matched != ""
        )
    )
    for matched, status, at in recent:
        for key in _keys(matched):
            runs[key] += 1
            if status == "error":
                errors[key] += 1
            if key not in last or at > last[key]:
                last[key] = at
    missing = set(keys) - set(last)
    if missing:
        older = scope.session.execute(
            select(Run.matched, Run.created_at)
            .where(Run.team_id == scope.team_id, Run.created_at < since, Run.matched != "")
            .order_by(Run.id.desc())
            .limit(LAST_RUN_SCAN)
            .execution_options(yield_per=2000)
        )
        for matched, at in older:
            for key in _keys(matched):
                if key in missing:
                    last[key] = at
                    missing.discard(key)
            if not missing:
                break
        older.close()
    return {key: Activity(key, last.get(key), runs[key], errors[key]) for key in keys}

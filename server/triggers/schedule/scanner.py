"""The scanner: finds due schedule occurrences in the database and fires each once.

Nothing is kept in memory between scans: what fired is the ``schedule_occurrences`` table,
written in the transaction of the event the occurrence caused, so a restart, a crash or a
second process scanning at the same time never fires an occurrence twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.core.models import Run, ScheduleOccurrence, Team, Workflow, utcnow
from server.core.scope import Actor, TeamScope
from server.triggers.schedule.kinds import DUE, Occurrence
from server.triggers.schedule.trigger import KINDS

if TYPE_CHECKING:
    from server.core.engine import WorkflowEngine
    from server.core.matching import CompiledWorkflow

log = logging.getLogger("dealflow.schedule")

BATCH = 500
"""Most occurrences one workflow fires per scan; the rest wait for the next scan."""

Clock = Callable[[], dt.datetime]


def scan(
    factory: sessionmaker[Session],
    engine: WorkflowEngine,
    now: Clock = utcnow,
    *,
    batch: int = BATCH,
) -> int:
    """Fire what is due at ``now()`` for every team's enabled schedule workflows; return how
    many occurrences fired."""
    moment = now()
    with factory() as session:
        teams = session.execute(
            select(Team.id)
            .where(
                Team.id.in_(
                    select(Workflow.team_id).where(
                        Workflow.enabled.is_(True), Workflow.trigger_type == "schedule"
                    )
                )
            )
            .order_by(Team.id)
        ).scalars().all()
    fired = 0
    for team_id in teams:
        with factory() as session:
            # No user stands behind a scheduled event: its user_id stays None.
            scope = TeamScope(
                session, Actor(team_id, user_id=0, role="member", scope="schedule"), engine
            )
            team = scope.team
            index = engine.index.for_team(session, team.id, team.workflows_rev)
            workflows = [
                wf
                for entity in dict.fromkeys(KINDS.values())
                for wf in index.by_key.get((entity, "schedule"), [])
            ]
            for wf in sorted(workflows, key=lambda w: w.key):
                try:
                    fired += _scan_workflow(scope, wf, moment, batch)
                except Exception:  # noqa: BLE001 - one broken workflow must not stop the others
                    log.exception("schedule scan of workflow %s failed", wf.key)
                    session.rollback()
    return fired


def _scan_workflow(
    scope: TeamScope, wf: CompiledWorkflow, moment: dt.datetime, batch: int
) -> int:
    """Fire up to ``batch`` due occurrences of one workflow and commit; how many fired."""
    from server.core.engine import forget_since, pending_marks  # the engine imports triggers

    session = scope.session
    kind = wf.trigger_config["kind"]
    due = DUE[kind](session, scope.team, wf.key, wf.trigger_config, moment, batch)
    fired = 0
    for row, occurrence in due:
        marks = pending_marks(session)
        try:
            # One savepoint per occurrence: losing a race for one does not undo the others.
            with session.begin_nested():
                _fire(scope, wf.key, row, occurrence)
            fired += 1
        except AlreadyFired:
            forget_since(session, marks)
            log.debug("%s for %s#%s already fired", wf.key, occurrence.entity, row.id)
        except Exception:  # noqa: BLE001 - one broken record must not stop the scan
            forget_since(session, marks)
            log.exception("schedule %s for %s#%s failed", wf.key, occurrence.entity, row.id)
    session.commit()
    if fired:
        log.info("schedule: %s fired %d time(s) for team %s", wf.key, fired, scope.team_id)
    return fired


class AlreadyFired(Exception):
    """Raised when another scan (another process) fired the occurrence first."""


def _fire(scope: TeamScope, workflow: str, row: Any, occurrence: Occurrence) -> None:
    """Mark the occurrence fired, then run the workflow on the record, in one transaction."""
    mark = ScheduleOccurrence(
        workflow_key=workflow,
        kind=occurrence.kind,
        entity=occurrence.entity,
        entity_id=row.id,
        occurrence_key=occurrence.key,
        since=occurrence.since,
        close_date=occurrence.close_date,
        due_at=occurrence.due_at,
    )
    scope.add(mark)
    try:
        scope.session.flush()  # the unique constraint speaks here, before any work is done
    except IntegrityError as exc:
        raise AlreadyFired(occurrence.key) from exc
    run_id = scope.engine.scheduled(scope, occurrence.entity, row, workflow, occurrence.document())
    run = scope.session.get(Run, run_id)
    mark.event_id = run.event_id if run is not None else None


class Scheduler:
    """Scans every ``interval`` seconds in a thread of its own (``dealflow serve`` and
    ``dealflow worker``); an interval of 0 or less turns it off."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        engine: WorkflowEngine,
        interval: float,
        now: Clock = utcnow,
    ) -> None:
        self.factory = factory
        self.engine = engine
        self.interval = interval
        self.now = now
        self.scans = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start scanning (the first scan at once: what came due while no process ran)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(self._stop,), daemon=True, name="dealflow-schedule"
        )
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the scan under way, if any."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                scan(self.factory, self.engine, self.now)
            except Exception:  # noqa: BLE001 - the database is away; the next scan retries
                log.exception("schedule scan failed; retrying in %.0f s", self.interval)
            self.scans += 1
            stop.wait(self.interval)

"""The engine: for each change, match workflows, check conditions, apply actions, log the run."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from server.core.action import ActionContext, ActionError
from server.core.budget import DEFAULTS, Budget, refused_execution
from server.core.change import Change, diff
from server.core.conditions import MATCHED, Outcome, evaluate
from server.core.errors import DealflowError
from server.core.fastsql import writer
from server.core.matching import CompiledGroup, CompiledWorkflow, WorkflowIndex
from server.core.models import ActionExecution, Event, Run, Team, utcnow
from server.core.notifications import owed
from server.core.plugins import Registry
from server.core.records import RecordState, record_type
from server.core.related import CONTACT_ENTITIES, attach_contact, carry_contact
from server.core.scope import TeamInfo, TeamScope
from server.triggers.lead_acquired import outreach_payload

log = logging.getLogger("dealflow.engine")
PENDING_KEY = "dealflow_pending_executions"
EVENTS_KEY = "dealflow_committed_events"


@dataclass
class Step:
    """One link of a chain of workflow-made changes, for loop detection and its report."""

    workflow: str
    fields: tuple[str, ...]
    depth: int = 0

    def __str__(self) -> str:
        return f"{self.workflow} set {', '.join(self.fields)}"


@dataclass
class Pending:
    change: Change
    row: Any
    chain: tuple[Step, ...] = ()
    parent_id: int | None = None
    only: str | None = None
    """The one workflow a scheduled event is for (its follow-up changes run every workflow)."""


@dataclass
class RunReport:
    """What one event's run did, as recorded in its ``Run`` row."""

    status: str = "no_match"
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def team_document(team: Team | TeamInfo) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "timezone": team.timezone,
        "settings": team.settings or {},
    }


def context_document(change: Change, team: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The document conditions and templates read."""
    return {
        "record": change.record,
        "previous": change.previous,
        "changed": change.changed,
        "event": event,
        "team": team,
        "payload": change.payload,
    }


class WorkflowEngine:
    """Runs a team's workflows on each change, inside the transaction of that change."""

    def __init__(self, registry: Registry, settings: Any = None) -> None:
        self.registry = registry
        self.settings = settings
        self.max_depth: int = getattr(settings, "max_depth", DEFAULTS.max_depth)
        """Deepest chain of workflow-made changes followed (``DEALFLOW_MAX_DEPTH``); the change
        past it is recorded, not run (a workflow firing again on its own change is stopped
        sooner, as a loop)."""
        self.index = WorkflowIndex(registry)
        # Only keep event documents for after-commit hooks when some plugin listens.
        self.event_listeners = bool(registry.pm.hook.dealflow_event.get_hookimpls())

    # --- entry point ----------------------------------------------------------------------

    def record_saved(
        self, scope: TeamScope, entity: str, row: Any, previous: dict[str, Any] | None, op: str
    ) -> None:
        """Called by a service after it changed ``row`` (flushed, not committed)."""
        rtype = record_type(entity)
        record = None if op == "deleted" else rtype.document(row)
        change = Change(
            team_id=scope.team_id,
            entity=entity,
            op=op,  # type: ignore[arg-type]
            record=record,
            previous=previous,
            changed=diff(previous, record),
            user_id=scope.actor.user_id,
        )
        if (
            entity == "deal"
            and op == "created"
            and record
            and record.get("outreach_id")
            and self._listening(scope, "deal", "lead_acquired")
        ):
            # Only when a workflow listens: the outreach is what lead_acquired workflows read.
            change.payload = outreach_payload(scope.session, scope.team_id, record["outreach_id"])
        self.process(scope, change, None if op == "deleted" else row)

    def _listening(self, scope: TeamScope, entity: str, trigger: str) -> bool:
        """Whether an enabled workflow of the team listens to ``trigger`` on ``entity``."""
        team = scope.info
        index = self.index.for_team(scope.session, team.id, team.workflows_rev)
        return bool(index.by_key.get((entity, trigger)))

    def scheduled(
        self, scope: TeamScope, entity: str, row: Any, workflow: str, occurrence: dict[str, Any]
    ) -> int:
        """Called by the schedule scanner for one due occurrence: run ``workflow`` alone on
        ``row`` (and whatever its record changes trigger) in the scanner's transaction. The
        event carries the occurrence; returns the id of its run."""
        change = Change(
            team_id=scope.team_id,
            entity=entity,
            op="scheduled",
            record=record_type(entity).document(row),
            previous=None,
            payload={"schedule": occurrence},
            source="schedule",
        )
        return self.process(scope, change, row, only=workflow)[0]

    def budget(self) -> Budget:
        """A fresh budget of follow-up events and side-effect executions for one change."""
        return Budget.of(self.settings)

    def process(
        self,
        scope: TeamScope,
        change: Change,
        row: Any = None,
        only: str | None = None,
        budget: Budget | None = None,
    ) -> list[int]:
        """Handle ``change`` and the changes its workflows make, breadth first; return run ids.
        They draw on ``budget``, shared by a caller that handles several events as one change
        (a webhook's addressed records), else a fresh one."""
        budget = budget or self.budget()
        team = scope.info
        index = self.index.for_team(scope.session, team.id, team.workflows_rev)
        team_doc = team_document(team)
        queue = deque([Pending(change, row, only=only)])
        run_ids = []
        while queue:
            item = queue.popleft()
            run_ids.append(self._run(scope, index, team_doc, item, queue, budget))
        if isinstance(row, RecordState) and change.entity is not None:
            # The workflows' changes to a record written without the ORM: one UPDATE.
            record_type(change.entity).write_back(scope, row)
        return run_ids

    # --- one event ------------------------------------------------------------------------

    def _run(
        self,
        scope: TeamScope,
        index: Any,
        team_doc: dict[str, Any],
        item: Pending,
        queue: deque[Pending],
        budget: Budget,
    ) -> int:
        started = time.perf_counter()
        change = item.change
        session = scope.session
        # Only an event that arrives deep gets past the limit (a webhook whose Dealflow-Hops is
        # past it): workflow-made changes are not followed that far.
        too_deep = change.depth > self.max_depth
        candidates = [] if too_deep else index.candidates(change)
        if item.only is not None:
            candidates = [wf for wf in candidates if wf.key == item.only]
        if change.entity in CONTACT_ENTITIES and any(wf.reads_contact for wf in candidates):
            # Only when a workflow that can run names it: one read, not one per save.
            attach_contact(scope, change)
        event_id = writer(session, Event.__table__).insert(
            session,
            {
                "team_id": scope.team_id,
                "entity": change.entity,
                "record_id": change.record_id,
                "op": change.op,
                "changed": change.changed,
                "record": change.record,
                "previous": change.previous,
                "payload": change.payload,
                "name": change.name,
                "source": change.source,
                "depth": change.depth,
                "parent_id": item.parent_id,
                "user_id": change.user_id,
                # Owed to the dealflow_event hook, durably (only when some plugin listens).
                **(owed(self.settings) if self.event_listeners else {}),
            },
        )
        event_doc = {
            "id": event_id,
            "op": change.op,
            "entity": change.entity,
            "record_id": change.record_id,
            "name": change.name,
            "source": change.source,
            "depth": change.depth,
            "user_id": change.user_id,
        }
        if change.op == "scheduled":
            # event.kind, event.due_at, event.stage, event.days …: the occurrence.
            event_doc.update((change.payload or {}).get("schedule") or {})
        document = context_document(change, team_doc, event_doc)
        if self.event_listeners:
            session.info.setdefault(EVENTS_KEY, []).append((scope.team_id, dict(document)))
        report = RunReport()
        if too_deep:
            report.status = "limit"
            report.notes.append(
                {"depth_limit": self.max_depth, "refused": f"event at depth {change.depth}"}
            )
        matched = self._match(candidates, document, report, index.groups)
        before = change.record
        steps, queued = self._act(scope, matched, document, item, event_id, report, budget)
        if steps and item.row is not None:
            after = record_type(change.entity).document(item.row)  # type: ignore[arg-type]
            # The contact the event carried goes on with the workflows' change.
            after = carry_contact(scope, document["record"], after)
            changed = diff(before, after)
            if changed:
                self._follow(
                    item, before, after, changed, steps, event_id, queue, report, budget
                )
        run_id = writer(session, Run.__table__).insert(
            session,
            {
                "team_id": scope.team_id,
                "event_id": event_id,
                "entity": change.entity,
                "record_id": change.record_id,
                "status": report.status,
                "matched": ","
                + ",".join(e["workflow"] for e in report.evaluations if e["matched"])
                + ",",
                "evaluations": report.evaluations,
                "notes": report.notes,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )
        if queued:
            # The executions name their run, and the run's evaluations name the executions.
            self._queue(scope, run_id, event_id, queued)
            writer(session, Run.__table__).update(
                session, run_id, {"evaluations": report.evaluations}
            )
        return run_id

    def _match(
        self,
        candidates: list[CompiledWorkflow],
        document: dict[str, Any],
        report: RunReport,
        compiled: Mapping[str, CompiledGroup] | None = None,
    ) -> list[tuple[CompiledWorkflow, dict[str, Any]]]:
        matched = []
        groups: dict[str, list[tuple[CompiledWorkflow, dict[str, Any]]]] = {}
        assigned: dict[str, str | None] = {}
        for wf in candidates:
            table = compiled.get(wf.group) if compiled and wf.exclusive and wf.group else None
            if table is not None and wf.group not in assigned:
                assigned[wf.group] = table.lookup(document["record"])  # type: ignore[index]
            owner = assigned.get(wf.group) if table is not None else None
            if owner is not None:
                # A proven group: one dict lookup instead of a condition per workflow.
                outcome = MATCHED if owner == wf.key else Outcome(
                    matched=False, failed_part=f"the group's table assigns this combination to {owner}"
                )
            else:
                outcome = evaluate(wf.condition, document)
            evaluation = {
                "workflow": wf.key,
                "version": wf.version,
                **outcome.as_dict(),
                "actions": [],
            }
            report.evaluations.append(evaluation)
            if outcome.error:
                report.status = "error"
            if outcome.matched:
                matched.append((wf, evaluation))
                if wf.exclusive and wf.group:
                    groups.setdefault(wf.group, []).append((wf, evaluation))
        # Runtime guard: two matches in one exclusive group apply nothing of that group.
        for group, hits in groups.items():
            if len(hits) > 1:
                keys = [wf.key for wf, _ in hits]
                report.notes.append({"conflict": group, "workflows": keys})
                report.status = "conflict"
                for _, evaluation in hits:
                    evaluation["conflict"] = [k for k in keys if k != evaluation["workflow"]]
                matched = [(wf, ev) for wf, ev in matched if wf.group != group or not wf.exclusive]
        if matched and report.status == "no_match":
            report.status = "ok"
        return matched

    def _act(
        self,
        scope: TeamScope,
        matched: list[tuple[CompiledWorkflow, dict[str, Any]]],
        document: dict[str, Any],
        item: Pending,
        event_id: int,
        report: RunReport,
        budget: Budget,
    ) -> tuple[list[Step], list[tuple[dict[str, Any], ActionContext, str, dict[str, Any]]]]:
        """Run the matched workflows' record actions on the record; return the steps that
        changed it and the side-effect actions to queue (those within ``budget``; the others
        are recorded as refused)."""
        refused = 0
        steps: list[Step] = []
        queued: list[tuple[dict[str, Any], ActionContext, str, dict[str, Any]]] = []
        looping = _looping(item.chain)
        for wf, evaluation in matched:
            changed_here: list[str] = []
            for index, action, config in wf.actions:
                entry: dict[str, Any] = {"index": index, "type": action.name}
                evaluation["actions"].append(entry)
                context = ActionContext(
                    team_id=scope.team_id,
                    workflow_id=wf.key,
                    workflow_version=wf.version,
                    action_index=index,
                    document=document,
                    idempotency_key=f"{event_id}:{wf.key}:{wf.version}:{index}",
                    settings=self.settings,
                    template_filters=self.registry.template_filters,
                )
                if action.kind == "side_effect":
                    if not budget.take_execution():
                        error = refused_execution(budget.max_executions)
                        entry.update(status="refused", error=error)
                        refused += 1
                        continue
                    entry["status"] = "queued"
                    queued.append((entry, context, action.name, config))
                    continue
                if item.row is None:
                    entry.update(status="skipped", error="the record was deleted")
                    continue
                started = time.perf_counter()
                try:
                    changes = action.execute(config, context)
                    if wf.key in looping and self._would_change(item, changes):
                        chain = " → ".join(map(str, item.chain)) + f" → {wf.key} …"
                        entry.update(status="skipped", error=f"loop: {chain}")
                        report.notes.append({"loop": [str(s) for s in item.chain] + [wf.key]})
                        report.status = "loop"
                        continue
                    if differs(document["record"], changes):
                        rtype = record_type(item.change.entity)  # type: ignore[arg-type]
                        rtype.apply_changes(scope, item.row, dict(changes))
                        after = carry_contact(scope, document["record"], rtype.document(item.row))
                        # Field names as conditions see them (custom.x), for the chain.
                        changed_here += diff(document["record"], after)
                        document["record"] = after
                    # else the record already holds these values: nothing to check or write.
                    entry.update(status="ok", result={"changes": changes})
                except (ActionError, DealflowError) as exc:
                    entry.update(status="error", error=exc.message)
                    report.status = "error"
                except Exception as exc:  # noqa: BLE001 - a plugin's bug is its action's error
                    log.exception("action %s of workflow %s failed", action.name, wf.key)
                    entry.update(status="error", error=f"{type(exc).__name__}: {exc}")
                    report.status = "error"
                entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
            if changed_here:
                steps.append(Step(wf.key, tuple(dict.fromkeys(changed_here)), item.change.depth))
        if refused:
            report.notes.append({"execution_limit": budget.max_executions, "refused": refused})
            if report.status in ("ok", "no_match"):
                report.status = "limit"
        return steps, queued

    @staticmethod
    def _would_change(item: Pending, changes: dict[str, Any]) -> bool:
        return differs(item.change.record, changes)

    def _follow(
        self,
        item: Pending,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        changed: list[str],
        steps: list[Step],
        event_id: int,
        queue: deque[Pending],
        report: RunReport,
        budget: Budget,
    ) -> None:
        change = item.change
        if change.depth + 1 > self.max_depth:
            report.notes.append({"depth_limit": self.max_depth, "not_followed": changed})
            return
        if not budget.take_event():
            report.notes.append({"event_limit": budget.max_events, "not_followed": changed})
            return
        follow = Change(
            team_id=change.team_id,
            entity=change.entity,
            op="updated",
            record=after,
            previous=before,
            changed=changed,
            source="workflow",
            depth=change.depth + 1,
            user_id=change.user_id,
        )
        queue.append(Pending(follow, item.row, item.chain + tuple(steps), event_id))

    # --- side effects ---------------------------------------------------------------------

    @staticmethod
    def _execution(
        run_id: int, event_id: int, context: ActionContext, name: str, config: dict[str, Any]
    ) -> ActionExecution:
        return ActionExecution(
            team_id=context.team_id,
            run_id=run_id,
            event_id=event_id,
            workflow_key=context.workflow_id,
            workflow_version=context.workflow_version,
            action_index=context.action_index,
            action_type=name,
            idempotency_key=context.idempotency_key,
            config=config,
            document=dict(context.document),
            status="pending",
            next_attempt_at=utcnow(),
        )

    def _queue(
        self,
        scope: TeamScope,
        run_id: int,
        event_id: int,
        queued: list[tuple[dict[str, Any], ActionContext, str, dict[str, Any]]],
    ) -> None:
        """Write an event's side-effect executions in one flush (one batched INSERT), in the
        transaction of the change: the outbox the relay reads after commit."""
        executions = [
            (entry, self._execution(run_id, event_id, context, name, config))
            for entry, context, name, config in queued
        ]
        scope.session.add_all([execution for _, execution in executions])
        scope.session.flush()
        pending = scope.session.info.setdefault(PENDING_KEY, [])
        for entry, execution in executions:
            entry["execution_id"] = execution.id
            pending.append(execution.id)


def differs(record: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> bool:
    """Whether setting ``changes`` (``custom.x`` for custom fields) would change ``record``."""
    record = record or {}
    for name, value in changes.items():
        if name.startswith("custom."):
            current = (record.get("custom") or {}).get(name[7:])
        else:
            current = record.get(name)
        # true == 1 in Python, not in a record: a flag set to 1 is a change.
        if current != value or isinstance(current, bool) != isinstance(value, bool):
            return True
    return False


def _looping(chain: tuple[Step, ...]) -> set[str]:
    """The workflows whose firing again would close a cycle: after a workflow's last change,
    another workflow changed the record in a later step (A → B → A), or it alone changed the
    record in its step (A → A). A workflow that changed the record beside others in one step
    may run again on their changes (a formula over the probability a ladder just set)."""
    last: dict[str, int] = {}
    at: dict[int, set[str]] = {}
    for step in chain:
        last[step.workflow] = max(last.get(step.workflow, step.depth), step.depth)
        at.setdefault(step.depth, set()).add(step.workflow)
    looping = set()
    for workflow, depth in last.items():
        later = any(d > depth and names - {workflow} for d, names in at.items())
        if later or at[depth] == {workflow}:
            looping.add(workflow)
    return looping


def hand_over_after_commit(factory: sessionmaker[Session], submit: Any, notify: Any = None) -> None:
    """After each commit, hand the side-effect executions it wrote to ``submit`` and its
    events to ``notify`` (for the ``dealflow_event`` hook)."""

    def after_commit(session: Session) -> None:
        pending = session.info.pop(PENDING_KEY, None)
        if pending:
            submit(pending)
        events = session.info.pop(EVENTS_KEY, None)
        if events and notify is not None:
            notify(events)

    def after_rollback(session: Session, previous: Any) -> None:
        if previous.nested:
            # A savepoint: what the outer transaction wrote before it stands. Who opened the
            # savepoint forgets what it added (see :func:`pending_marks`).
            return
        session.info.pop(PENDING_KEY, None)
        session.info.pop(EVENTS_KEY, None)

    sa_event.listen(factory, "after_commit", after_commit)
    sa_event.listen(factory, "after_soft_rollback", after_rollback)


def pending_marks(session: Session) -> tuple[int, int]:
    """How many executions and events the session holds for after its commit: taken before a
    savepoint, so that :func:`forget_since` can drop what a rolled-back savepoint added."""
    return len(session.info.get(PENDING_KEY, ())), len(session.info.get(EVENTS_KEY, ()))


def forget_since(session: Session, marks: tuple[int, int]) -> None:
    """Drop the executions and events added after ``marks`` (their rows were rolled back)."""
    for key, keep in zip((PENDING_KEY, EVENTS_KEY), marks, strict=True):
        if key in session.info:
            del session.info[key][keep:]

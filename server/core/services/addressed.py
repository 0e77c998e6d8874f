"""Webhook events addressed to records: find the record each workflow's ``trigger.record``
names in the payload, and run those workflows with it (see ``server/triggers/webhook.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func

from server.core.budget import Budget
from server.core.change import Change
from server.core.models import Contact, Lead, Run
from server.core.records import record_type
from server.core.scope import TeamScope
from server.triggers.webhook import address, addressed_value


@dataclass
class Target:
    """A record some webhook workflows addressed, and which."""

    entity: str
    row: Any
    workflows: list[str] = field(default_factory=list)


def _find(scope: TeamScope, entity: str, key: str, value: Any) -> Any:
    model = record_type(entity).model
    if key == "id":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
            return None
        row = scope.session.get(model, value)
        return row if row is not None and row.team_id == scope.team_id else None
    if not isinstance(value, str) or not value:
        return None
    if key == "external_id":
        return scope.session.scalar(scope.select(model).where(model.external_id == value))
    email = func.lower(Contact.email) == value.strip().lower()
    if entity == "contact":
        stmt = scope.select(Contact).where(email).order_by(Contact.id.desc())
    else:
        # The contact's open lead: its newest that has not become a customer.
        stmt = (
            scope.select(Lead)
            .join(Contact, Contact.id == Lead.contact_id)
            .where(email, Lead.stage != "customer")
            .order_by(Lead.id.desc())
        )
    return scope.session.scalars(stmt.limit(1)).first()


def resolve(
    scope: TeamScope, name: str, payload: dict[str, Any]
) -> tuple[list[Target], list[dict[str, Any]]]:
    """The records the hook's addressing workflows name (one target per record, in id order),
    and an evaluation entry for each workflow whose record was not found."""
    team = scope.team
    index = scope.engine.index.for_team(scope.session, team.id, team.workflows_rev)
    targets: dict[tuple[str, int], Target] = {}
    # Workflows of one hook usually address one record the same way (the shipped scoring
    # workflows all by the payload's email): each lookup is made once per event.
    found: dict[tuple[str, str, str], Any] = {}
    skipped = []
    for (entity, trigger), listening in sorted(index.by_key.items(), key=lambda i: str(i[0])):
        if trigger != "webhook" or entity is None:
            continue
        for wf in listening:
            if wf.trigger_config.get("name") != name:
                continue
            key, expression = address(wf.trigger_config) or ("", "")
            try:
                value = addressed_value(wf.trigger_config, payload)
            except Exception as exc:  # noqa: BLE001 - recorded as the reason it was skipped
                reason = f"trigger.record.{key}: {expression}: {exc}"
            else:
                lookup = (entity, key, repr(value))
                if lookup not in found:
                    found[lookup] = _find(scope, entity, key, value)
                row = found[lookup]
                if row is not None:
                    target = targets.setdefault((entity, row.id), Target(entity, row))
                    target.workflows.append(wf.key)
                    continue
                reason = (
                    f"trigger.record.{key}: {expression} is null in the payload"
                    if value is None
                    else f"no {entity} of the team has {key} {value!r} "
                    f"(trigger.record.{key}: {expression})"
                )
            skipped.append(
                {
                    "workflow": wf.key,
                    "version": wf.version,
                    "matched": False,
                    "skipped": reason,
                    "actions": [],
                }
            )
    return [targets[k] for k in sorted(targets)], skipped


def run_addressed(
    scope: TeamScope,
    name: str,
    payload: dict[str, Any],
    user_id: int | None,
    first_run_id: int | None,
    budget: Budget | None = None,
    depth: int = 0,
) -> list[int]:
    """Run the hook's addressing workflows, one event per record they name; a workflow whose
    record is not found is recorded on the hook's own run (``first_run_id``) as skipped.
    Each record's event is a follow-up event of the delivery, drawn from ``budget`` (the
    delivery's); a record past the limit is recorded on the hook's run as not run. The
    events are at ``depth``, the delivery's hops."""
    budget = budget or scope.engine.budget()
    targets, skipped = resolve(scope, name, payload)
    run_ids = []
    refused: list[dict[str, Any]] = []
    for target in targets:
        if not budget.take_event():
            refused.append(
                {
                    "event_limit": budget.max_events,
                    "not_run": target.workflows,
                    "entity": target.entity,
                    "record_id": target.row.id,
                }
            )
            continue
        document = record_type(target.entity).document(target.row)
        change = Change(
            team_id=scope.team_id,
            entity=target.entity,
            op="received",
            record=document,
            previous=document,
            payload=payload,
            name=name,
            source="webhook",
            depth=depth,
            user_id=user_id,
        )
        run_ids += scope.engine.process(scope, change, target.row, budget=budget)
    if (skipped or refused) and first_run_id is not None:
        run = scope.session.get(Run, first_run_id)
        if run is not None:
            run.evaluations = [*(run.evaluations or []), *skipped]
            run.notes = [
                *(run.notes or []),
                *({"skipped": s["workflow"], "reason": s["skipped"]} for s in skipped),
            ]
            if run.status == "no_match" and skipped:
                run.status = "skipped"
            if refused:
                run.notes = [*run.notes, *refused]
                if run.status in ("ok", "no_match", "skipped"):
                    run.status = "limit"
    return run_ids

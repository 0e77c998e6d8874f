"""Dry run: the engine's own matching, conditions and actions on a sample, stopped before effects."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from server.core.action import ActionContext, ActionError
from server.core.change import Change, diff
from server.core.conditions import evaluate
from server.core.definitions import ENTITIES
from server.core.engine import context_document, team_document
from server.core.errors import DealflowError, InvalidInput
from server.core.matching import compile_workflow
from server.core.records import record_type
from server.core.related import CONTACT_ENTITIES, with_contacts
from server.core.scope import TeamScope
from server.core.services import workflows


class DryRunIn(msgspec.Struct, forbid_unknown_fields=True):
    """A workflow (inline, or the id of a stored one) and the record to try it on: inline in
    ``record``, or an existing one by ``record_id``."""

    workflow: dict[str, Any] | None = None
    workflow_id: str | None = None
    record: dict[str, Any] | None = None
    record_id: int | None = None
    previous: dict[str, Any] | None = None
    op: str | None = None
    payload: dict[str, Any] | None = None


class ActionPreview(msgspec.Struct):
    index: int
    type: str
    kind: str
    preview: Any = None
    error: str | None = None


class DryRunOut(msgspec.Struct):
    """What the workflow would do: whether it fires and matches, why not, and each action."""

    workflow: str
    version: int | None
    trigger_fires: bool
    matched: bool
    condition: dict[str, Any]
    changes: dict[str, Any]
    record_after: dict[str, Any] | None
    actions: list[ActionPreview]


def set_path(record: dict[str, Any], name: str, value: Any) -> None:
    if name.startswith("custom."):
        record.setdefault("custom", {})[name.removeprefix("custom.")] = value
    else:
        record[name] = value


def _definition(scope: TeamScope, data: DryRunIn) -> tuple[dict[str, Any], int | None]:
    if (data.workflow is None) == (data.workflow_id is None):
        raise InvalidInput(
            "workflow: give either workflow (a definition) or workflow_id", field="workflow"
        )
    if data.workflow_id is not None:
        row = workflows.get_row(scope, data.workflow_id)
        return row.document, row.version
    workflows.check(scope, data.workflow)
    return data.workflow, None  # type: ignore[return-value]


def _record(scope: TeamScope, entity: str | None, data: DryRunIn) -> dict[str, Any] | None:
    if data.record_id is not None:
        if entity not in ENTITIES:
            raise InvalidInput(
                "record_id: the workflow names no entity to read it from", field="record_id"
            )
        rtype = record_type(entity)  # type: ignore[arg-type]
        return rtype.document(scope.get(rtype.model, data.record_id, field="record_id"))
    return copy.deepcopy(data.record) if data.record is not None else None


def dry_run(scope: TeamScope, data: DryRunIn) -> DryRunOut:
    """Run one workflow on a sample without writing or sending anything."""
    document, version = _definition(scope, data)
    wf = compile_workflow(document, version or 0, scope.engine.registry)
    record = _record(scope, wf.entity, data)
    previous = copy.deepcopy(data.previous)
    if wf.reads_contact and wf.entity in CONTACT_ENTITIES:
        # As the engine does: the team's contact of the record (and of the previous record),
        # unless the sample gives its own ``contact``.
        record, previous = with_contacts(scope, record, previous)
    if not wf.trigger.has_record:
        # A webhook workflow is tried on a posted payload, as its hook would receive it.
        op = "received"
        if data.op not in (None, "received"):
            raise InvalidInput("op: a webhook workflow receives; leave op out", field="op")
    elif wf.trigger_config.get("type") == "schedule":
        # A schedule workflow is tried as its scanner would run it on a due occurrence.
        op = "scheduled"
        if data.op not in (None, "scheduled"):
            raise InvalidInput("op: a schedule workflow runs on its occurrences; leave op out",
                               field="op")
    else:
        op = data.op or ("created" if data.previous is None else "updated")
        if op not in ("created", "updated", "deleted"):
            raise InvalidInput("op: created, updated or deleted", field="op")
    payload = data.payload
    if op == "scheduled":
        occurrence = {k: v for k, v in wf.trigger_config.items() if k != "type"}
        given = payload or {}
        payload = {**given, "schedule": {**occurrence, **given.get("schedule", {})}}
    name = wf.trigger_config.get("name") if not wf.trigger.has_record else None
    change = Change(
        team_id=scope.team_id,
        # A webhook workflow that addresses a record runs with it: the sample is that record.
        entity=wf.entity if wf.trigger.carries_record(wf.trigger_config) else None,
        op=op,  # type: ignore[arg-type]
        record=record,
        previous=previous,
        changed=diff(previous, record),
        payload=payload,
        name=name,
        user_id=scope.actor.user_id,
    )
    fires = wf.trigger.relevant(change) and wf.trigger.fires(wf.trigger_config, change)
    event = {
        "id": None,
        "op": op,
        "entity": wf.entity,
        "record_id": change.record_id,
        "name": name,
        "source": "dry_run",
        "depth": 0,
        "user_id": scope.actor.user_id,
    }
    if op == "scheduled":
        event.update(payload["schedule"])  # type: ignore[index]
    ctx_doc = context_document(change, team_document(scope.team), event)
    outcome = evaluate(wf.condition, ctx_doc)
    changes: dict[str, Any] = {}
    previews = []
    after = copy.deepcopy(record)
    if fires and outcome.matched:
        for index, action, config in wf.actions:
            context = ActionContext(
                team_id=scope.team_id,
                workflow_id=wf.key,
                workflow_version=wf.version,
                action_index=index,
                document=ctx_doc,
                idempotency_key=f"dry-run:{wf.key}:{index}",
                settings=scope.engine.settings,
                # Never the team's credential values: a preview shows what would be sent,
                # and its answer must not carry a token. A preview that needs one says so.
                credentials={},
                template_filters=scope.engine.registry.template_filters,
            )
            item = ActionPreview(index=index, type=action.name, kind=action.kind)
            try:
                if action.kind == "record":
                    made = dict(action.execute(config, context))
                    item.preview = {"changes": made}
                    changes.update(made)
                    if after is not None:
                        for name, value in made.items():
                            set_path(after, name, value)
                        if "contact_id" in made and "contact" in after:
                            # The contact follows the contact id the action set.
                            del after["contact"]
                            (after,) = with_contacts(scope, after)
                        ctx_doc["record"] = after
                elif action.preview is not None:
                    item.preview = action.preview(config, context)
                else:
                    item.preview = {"note": f"{action.name} has no preview"}
            except (ActionError, DealflowError) as exc:
                item.error = exc.message
            except Exception as exc:  # noqa: BLE001 - a plugin's bug is its preview's error
                item.error = f"{type(exc).__name__}: {exc}"
            previews.append(item)
    return DryRunOut(
        workflow=wf.key,
        version=version,
        trigger_fires=fires,
        matched=bool(fires and outcome.matched),
        condition=outcome.as_dict(),
        changes=changes,
        record_after=after,
        actions=previews,
    )

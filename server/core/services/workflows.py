"""The workflow store: validated saves, kept versions, enable/disable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy import func

from server.core.definitions import MAX_ACTIONS, validate
from server.core.errors import Conflict, GroupConflict, InvalidInput, InvalidWorkflow, NotFound
from server.core.exclusivity import GroupReport
from server.core.exclusivity import check_group as check_documents
from server.core.models import Workflow, WorkflowVersion
from server.core.outbound import OutboundRefused, allow_list, check_url, is_url
from server.core.scope import TeamScope
from server.core.services import audit
from server.core.services.common import bump_rules, commit, domains


class WorkflowOut(msgspec.Struct):
    """A stored workflow: its current definition and state."""

    id: str
    name: str
    entity: str | None
    trigger_type: str
    group: str | None
    enabled: bool
    version: int
    document: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class VersionOut(msgspec.Struct):
    """One saved version of a workflow."""

    version: int
    document: dict[str, Any]
    created_by_id: int | None
    created_at: dt.datetime


def out(row: Workflow) -> WorkflowOut:
    return WorkflowOut(
        id=row.key,
        name=row.document.get("name", row.key),
        entity=row.entity,
        trigger_type=row.trigger_type,
        group=row.group,
        enabled=row.enabled,
        version=row.version,
        document=row.document,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def max_actions(scope: TeamScope) -> int:
    """The server's ``max_actions_per_workflow`` (the default when the engine has no settings)."""
    return int(getattr(scope.engine.settings, "max_actions_per_workflow", MAX_ACTIONS))


def check(scope: TeamScope, document: Any) -> None:
    """Raise :class:`InvalidWorkflow` listing every problem of ``document``."""
    problems = validate(document, scope.engine.registry, max_actions=max_actions(scope))
    if problems:
        raise InvalidWorkflow([(p.path, p.message) for p in problems])
    refused = outbound_problems(scope, document)
    if refused:
        raise InvalidWorkflow(refused)


def outbound_problems(scope: TeamScope, document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Action config values that are URLs a request would be sent to (properties whose schema
    says ``"x-dealflow-outbound": true``) and whose host is no outbound target: loopback,
    private, link-local, metadata... unless ``outbound_allow`` admits it. Sends check again."""
    allow = allow_list(scope.engine.settings)
    problems = []
    for index, config in enumerate(document.get("actions") or []):
        action = scope.engine.registry.action(config.get("type", ""))
        if action is None:
            continue
        for name, schema in (action.config_schema.get("properties") or {}).items():
            value = config.get(name)
            if not (schema.get("x-dealflow-outbound") and isinstance(value, str) and is_url(value)):
                continue
            path = f"$.actions[{index}].{name}"
            try:
                check_url(value.strip(), allow, field=path)
            except OutboundRefused as exc:
                problems.append((path, exc.message.removeprefix(f"{path}: ")))
    return problems


def find(scope: TeamScope, key: str) -> Workflow | None:
    """The team's workflow with this id, or None."""
    return scope.session.scalar(scope.select(Workflow).where(Workflow.key == key))


def get_row(scope: TeamScope, key: str) -> Workflow:
    row = find(scope, key)
    if row is None:
        raise NotFound("workflow", key)
    return row


def save(scope: TeamScope, document: Any, key: str | None = None) -> tuple[WorkflowOut, bool]:
    """Create or update a workflow; each changed definition becomes a new version.

    Returns the workflow and whether it was created. Saving an identical definition again
    keeps the current version.
    """
    if key is not None and isinstance(document, dict):
        document.setdefault("id", key)
        if document["id"] != key:
            raise InvalidInput(
                f"$.id: {document['id']!r} does not match the URL's {key!r}", field="$.id"
            )
    check(scope, document)
    row = find(scope, document["id"])
    if row is not None and row.document == document:
        return out(row), False  # unchanged: nothing to check or save
    if row is None:
        check_room(scope)
    if document.get("exclusive") and document.get("group"):
        report = check_group(scope, str(document["group"]), replacing=document)
        if report.overlap_count or report.errors:
            raise GroupConflict(report.as_dict())
    created = row is None
    enabled = bool(document.get("enabled", True))
    before = None if row is None else {"version": row.version, "enabled": row.enabled}
    changed = audit.changed_keys({} if row is None else row.document, document)
    if row is None:
        row = scope.add(
            Workflow(
                key=document["id"],
                version=1,
                enabled=enabled,
                document=document,
                entity=document.get("entity"),
                trigger_type=document["trigger"]["type"],
                group=document.get("group"),
            )
        )
        scope.session.flush()
    else:
        row.version += 1
        row.document = document
        row.enabled = enabled
        row.entity = document.get("entity")
        row.trigger_type = document["trigger"]["type"]
        row.group = document.get("group")
    scope.add(
        WorkflowVersion(
            workflow_id=row.id,
            version=row.version,
            document=document,
            created_by_id=scope.actor.user_id,
        )
    )
    audit.record(
        scope,
        "workflow.save",
        row.key,
        before,
        {"version": row.version, "enabled": row.enabled, "changed": changed},
    )
    bump_rules(scope)
    commit(scope)
    return out(row), created


def check_room(scope: TeamScope) -> None:
    """Raise :class:`Conflict` when the team already has ``max_workflows_per_team`` workflows."""
    cap = getattr(scope.engine.settings, "max_workflows_per_team", None)
    if cap is None:
        return
    count = scope.session.scalar(scope.select(Workflow, func.count(Workflow.id))) or 0
    if count >= cap:
        raise Conflict(
            f"the team already has {count} workflows, the most the server allows a team "
            f"(max_workflows_per_team, DEALFLOW_MAX_WORKFLOWS_PER_TEAM, is {cap}): delete one, "
            "or save a new version of an existing one, before creating another"
        )


def set_enabled(scope: TeamScope, key: str, enabled: bool) -> WorkflowOut:
    row = get_row(scope, key)
    if row.enabled != enabled:
        row.enabled = enabled
        audit.record(
            scope,
            "workflow.enable" if enabled else "workflow.disable",
            row.key,
            {"version": row.version, "enabled": not enabled},
            {"version": row.version, "enabled": enabled},
        )
        bump_rules(scope)
        commit(scope)
    return out(row)


def delete(scope: TeamScope, key: str) -> None:
    row = get_row(scope, key)
    audit.record(
        scope, "workflow.delete", key, {"version": row.version, "enabled": row.enabled}, None
    )
    scope.session.delete(row)
    bump_rules(scope)
    commit(scope)


def get(scope: TeamScope, key: str) -> WorkflowOut:
    return out(get_row(scope, key))


def list_(
    scope: TeamScope,
    *,
    entity: str | None = None,
    group: str | None = None,
    enabled: bool | None = None,
) -> list[WorkflowOut]:
    stmt = scope.select(Workflow).order_by(Workflow.key)
    if entity is not None:
        stmt = stmt.where(Workflow.entity == entity)
    if group is not None:
        stmt = stmt.where(Workflow.group == group)
    if enabled is not None:
        stmt = stmt.where(Workflow.enabled.is_(enabled))
    return [out(r) for r in scope.session.scalars(stmt)]


def versions(scope: TeamScope, key: str) -> list[VersionOut]:
    row = get_row(scope, key)
    rows = scope.session.scalars(
        scope.select(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == row.id)
        .order_by(WorkflowVersion.version)
    )
    return [VersionOut(r.version, r.document, r.created_by_id, r.created_at) for r in rows]


def version(scope: TeamScope, key: str, number: int) -> VersionOut:
    row = get_row(scope, key)
    found = scope.session.scalar(
        scope.select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == row.id, WorkflowVersion.version == number
        )
    )
    if found is None:
        raise NotFound("workflow version", f"{key}@{number}")
    return VersionOut(found.version, found.document, found.created_by_id, found.created_at)


def group_documents(scope: TeamScope, group: str) -> list[dict[str, Any]]:
    """The current definitions of a team's exclusive group, in id order."""
    rows = scope.session.scalars(
        scope.select(Workflow).where(Workflow.group == group).order_by(Workflow.key)
    )
    return [r.document for r in rows if r.document.get("exclusive")]


def check_group(
    scope: TeamScope, group: str, *, replacing: dict[str, Any] | None = None
) -> GroupReport:
    """The exclusivity report of a group (with ``replacing`` saved in place of its old version)."""
    documents = group_documents(scope, group)
    if replacing is not None:
        documents = [d for d in documents if d.get("id") != replacing.get("id")] + [replacing]
    if not documents:
        raise NotFound("exclusive group", group)
    return check_documents(group, documents, domains(scope))


def check_all_groups(scope: TeamScope) -> list[GroupReport]:
    """Reports for every exclusive group of the team."""
    groups = sorted({
        r.group for r in scope.session.scalars(scope.select(Workflow).where(Workflow.group.is_not(None)))
        if r.document.get("exclusive")
    })
    return [check_group(scope, g) for g in groups if g]

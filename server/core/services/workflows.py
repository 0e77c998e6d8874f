"""The workflow store: validated saves, kept versions, enable/disable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from server.core.definitions import validate
from server.core.errors import GroupConflict, InvalidInput, InvalidWorkflow, NotFound
from server.core.exclusivity import GroupReport
from server.core.exclusivity import check_group as check_documents
from server.core.models import Workflow, WorkflowVersion
from server.core.scope import TeamScope
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


def check(scope: TeamScope, document: Any) -> None:
    """Raise :class:`InvalidWorkflow` listing every problem of ``document``."""
    problems = validate(document, scope.engine.registry)
    if problems:
        raise InvalidWorkflow([(p.path, p.message) for p in problems])


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
    if document.get("exclusive") and document.get("group"):
        report = check_group(scope, str(document["group"]), replacing=document)
        if report.overlap_count or report.errors:
            raise GroupConflict(report.as_dict())
    created = row is None
    enabled = bool(document.get("enabled", True))
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
    bump_rules(scope)
    commit(scope)
    return out(row), created


def set_enabled(scope: TeamScope, key: str, enabled: bool) -> WorkflowOut:
    row = get_row(scope, key)
    if row.enabled != enabled:
        row.enabled = enabled
        bump_rules(scope)
        commit(scope)
    return out(row)


def delete(scope: TeamScope, key: str) -> None:
    scope.session.delete(get_row(scope, key))
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

"""Matching: which workflow versions listen to an event, from a per-team index."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.action import Action
from server.core.change import Change
from server.core.models import FieldDomain, Workflow
from server.core.plugins import Registry
from server.core.related import CONTACT_ENTITIES, names_contact
from server.triggers import TRIGGERS, Trigger


@dataclass(frozen=True)
class CompiledWorkflow:
    """A workflow version ready to run: trigger, condition and resolved action types."""

    key: str
    version: int
    entity: str | None
    trigger: Trigger
    trigger_config: Mapping[str, Any]
    condition: str | None
    actions: tuple[tuple[int, Action, dict[str, Any]], ...]
    group: str | None = None
    exclusive: bool = False
    document: Mapping[str, Any] = field(default_factory=dict)
    reads_contact: bool = False
    """Whether its condition or actions name ``contact``: its events' ``record`` (and
    ``previous``) then carry the record's contact (see :mod:`server.core.related`)."""


def compile_workflow(
    document: Mapping[str, Any], version: int, registry: Registry
) -> CompiledWorkflow:
    """A validated definition turned into what the engine runs."""
    trigger = dict(document["trigger"])
    actions = []
    for index, action in enumerate(document.get("actions", [])):
        kind = registry.action(action["type"])
        if kind is None:
            raise LookupError(
                f"action type {action['type']!r} is not registered (plugin disabled?)"
            )
        actions.append((index, kind, {k: v for k, v in action.items() if k != "type"}))
    return CompiledWorkflow(
        key=document["id"],
        version=version,
        entity=document.get("entity"),
        trigger=TRIGGERS[trigger["type"]],
        trigger_config=trigger,
        condition=document.get("condition") or None,
        actions=tuple(actions),
        group=document.get("group"),
        exclusive=bool(document.get("exclusive")),
        document=document,
        reads_contact=document.get("entity") in CONTACT_ENTITIES and names_contact(document),
    )


@dataclass(frozen=True)
class CompiledGroup:
    """An exclusive group proven over finite domains: factor values → its one workflow."""

    factors: tuple[tuple[str, ...], ...]
    """Each factor as a path inside the record (``("custom", "proposal_type")``)."""
    table: Mapping[tuple[Any, ...], str]

    def lookup(self, record: Mapping[str, Any] | None) -> str | None:
        """The workflow assigned to the record's combination; None when the table cannot tell
        (a value outside the domains, or a combination no workflow covers)."""
        if record is None:
            return None
        values = []
        for path in self.factors:
            value: Any = record
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            values.append(value)
        return self.table.get(tuple(values))


def compile_groups(workflows: list[CompiledWorkflow], domains: Mapping[str, list[Any]]) -> dict[str, CompiledGroup]:
    """Lookup tables for the exclusive groups the validator can prove."""
    from server.core.exclusivity import check_group, exclusive_groups

    out = {}
    documents = [wf.document for wf in workflows]
    for group, members in exclusive_groups(documents).items():
        report = check_group(group, members, domains)
        if report.table is not None and not report.errors:
            factors = tuple(tuple(f.split(".")[1:]) for f in report.factors)
            out[group] = CompiledGroup(factors, report.table)
    return out


class TeamIndex:
    """A team's enabled workflows by (entity, trigger type), and its compiled groups."""

    def __init__(
        self,
        rev: int,
        workflows: list[CompiledWorkflow],
        broken: dict[str, str],
        groups: dict[str, CompiledGroup] | None = None,
        domains: dict[str, list[Any]] | None = None,
    ) -> None:
        self.rev = rev
        self.domains: Mapping[str, list[Any]] = domains or {}
        """The team's field domains at this revision (shared: read, never change)."""
        self.broken = broken
        self.groups = groups or {}
        self.by_key: dict[tuple[str | None, str], list[CompiledWorkflow]] = defaultdict(list)
        for wf in workflows:
            # A webhook event has no entity: its workflows listen whatever entity they name,
            # unless they address a record from the payload (then they listen to that entity).
            entity = wf.entity if wf.trigger.carries_record(wf.trigger_config) else None
            self.by_key[(entity, wf.trigger.name)].append(wf)
        self.trigger_types = {t for _, t in self.by_key}

    def candidates(self, change: Change) -> list[CompiledWorkflow]:
        """Workflows of this change's entity whose trigger fires on it, in key order."""
        out: list[CompiledWorkflow] = []
        for name in self.trigger_types:
            trigger = TRIGGERS[name]
            listening = self.by_key.get((change.entity, name))
            if not listening or not trigger.relevant(change):
                continue
            out += [wf for wf in listening if trigger.fires(wf.trigger_config, change)]
        return sorted(out, key=lambda wf: wf.key)


class WorkflowIndex:
    """The per-process cache of team indexes, reloaded when a team's workflow revision moves."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._teams: dict[int, TeamIndex] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every cached team index."""
        with self._lock:
            self._teams.clear()

    def for_team(self, session: Session, team_id: int, rev: int) -> TeamIndex:
        index = self._teams.get(team_id)
        if index is not None and index.rev == rev:
            return index
        rows = session.execute(
            select(Workflow.key, Workflow.version, Workflow.document).where(
                Workflow.team_id == team_id, Workflow.enabled.is_(True)
            )
        ).all()
        compiled, broken = [], {}
        for key, version, document in rows:
            try:
                compiled.append(compile_workflow(document, version, self.registry))
            except (LookupError, KeyError) as exc:
                broken[key] = str(exc)
        domains = {
            path: list(values)
            for path, values in session.execute(
                select(FieldDomain.path, FieldDomain.values).where(FieldDomain.team_id == team_id)
            )
        }
        index = TeamIndex(rev, compiled, broken, compile_groups(compiled, domains), domains)
        with self._lock:
            self._teams[team_id] = index
        return index

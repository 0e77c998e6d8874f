"""The ``schedule`` trigger's definition: its kinds, their fields and their checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.core.change import Change
from server.triggers.base import Trigger

KINDS: dict[str, str] = {
    "sla_breached": "lead",
    "not_contacted": "contact",
    "before_close": "deal",
}
"""Each kind and the entity whose records it watches."""

SLA_STAGES = ("lead", "mql", "sal", "opportunity", "recycled")

_FIELDS = {
    "sla_breached": {"required": ("stage",), "allowed": ("stage", "hours")},
    "not_contacted": {"required": ("days",), "allowed": ("days",)},
    "before_close": {"required": ("days",), "allowed": ("days",)},
}


class Schedule(Trigger):
    name = "schedule"
    entities = tuple(dict.fromkeys(KINDS.values()))
    config_schema = {
        "kind": {
            "enum": list(KINDS),
            "description": "sla_breached (lead), not_contacted (contact) or before_close (deal).",
        },
        "stage": {
            "enum": list(SLA_STAGES),
            "description": "sla_breached: the lifecycle stage whose SLA is watched.",
        },
        "hours": {
            "type": "integer",
            "minimum": 1,
            "maximum": 8760,
            "description": "sla_breached: the SLA in hours (default: the team's "
            "settings.stage_sla_hours for the stage).",
        },
        "days": {
            "type": "integer",
            "minimum": 0,
            "maximum": 3650,
            "description": "not_contacted: days without contact (at least 1); before_close: "
            "days before the expected close date (0: on the day).",
        },
    }
    required = ("kind",)

    def relevant(self, change: Change) -> bool:
        return change.op == "scheduled"

    def fires(self, config: Mapping[str, Any], change: Change) -> bool:
        occurrence = (change.payload or {}).get("schedule") or {}
        return bool(occurrence.get("kind") == config.get("kind"))

    def check(self, config: Mapping[str, Any], entity: str | None) -> list[tuple[str, str]]:
        kind = config.get("kind")
        if kind not in KINDS:
            return []  # the schema reports it
        problems = []
        if entity in KINDS.values() and entity != KINDS[kind]:
            problems.append(
                ("kind", f"{kind} watches {KINDS[kind]} records: the workflow's entity is {entity}")
            )
        fields = _FIELDS[kind]
        for name in fields["required"]:
            if name not in config:
                problems.append((name, f"is required for {kind}"))
        for name in sorted(set(config) - {"type", "kind"} - set(fields["allowed"])):
            problems.append((name, f"is not a field of {kind}"))
        if kind == "not_contacted" and config.get("days") == 0:
            problems.append(("days", "not_contacted needs at least 1 day"))
        return problems


TRIGGER = Schedule()

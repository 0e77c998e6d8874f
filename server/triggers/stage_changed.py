"""``stage_changed``: a deal's pipeline stage or a lead's lifecycle stage changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.core.change import Change
from server.triggers.base import Trigger

_STAGES = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}


def _accepts(wanted: str | list[str] | None, value: Any) -> bool:
    if wanted is None:
        return True
    return value in wanted if isinstance(wanted, list) else value == wanted


class StageChanged(Trigger):
    name = "stage_changed"
    entities = ("deal", "lead")
    config_schema = {
        "from": {**_STAGES, "description": "Only when leaving this stage (or one of these)."},
        "to": {**_STAGES, "description": "Only when entering this stage (or one of these)."},
    }

    def relevant(self, change: Change) -> bool:
        return change.entity in self.entities and (
            change.op == "created" or (change.op == "updated" and "stage" in change.changed)
        )

    def fires(self, config: Mapping[str, Any], change: Change) -> bool:
        old = (change.previous or {}).get("stage")
        new = (change.record or {}).get("stage")
        return _accepts(config.get("from"), old) and _accepts(config.get("to"), new)


TRIGGER = StageChanged()

"""``record_saved``: a record was created, updated or deleted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.core.change import Change
from server.triggers.base import Trigger


class RecordSaved(Trigger):
    name = "record_saved"
    config_schema = {
        "on": {
            "type": "array",
            "items": {"enum": ["created", "updated", "deleted"]},
            "minItems": 1,
            "uniqueItems": True,
            "description": "Which saves fire (default: created and updated).",
        },
        "fields": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "description": "Only fire when one of these fields changed (custom.x for custom fields).",
        },
    }

    def fires(self, config: Mapping[str, Any], change: Change) -> bool:
        if change.op not in config.get("on", ("created", "updated")):
            return False
        fields = config.get("fields")
        if fields and change.op == "updated":
            return any(f in change.changed for f in fields)
        return True


TRIGGER = RecordSaved()

"""``webhook``: an external system posted a signed event to ``/api/v1/hooks/<name>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.core.change import Change
from server.triggers.base import Trigger

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"


class Webhook(Trigger):
    name = "webhook"
    has_record = False
    config_schema = {
        "name": {
            "type": "string",
            "pattern": NAME_PATTERN,
            "description": "The hook name: a signed POST to /api/v1/hooks/<name> fires it.",
        }
    }
    required = ("name",)

    def relevant(self, change: Change) -> bool:
        return change.op == "received"

    def fires(self, config: Mapping[str, Any], change: Change) -> bool:
        return config.get("name") == change.name


TRIGGER = Webhook()

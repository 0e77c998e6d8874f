"""The Trigger base class: what each trigger module implements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from server.core.change import Change


class Trigger:
    """A kind of event a workflow can listen to. Methods have no-op defaults."""

    name: ClassVar[str]
    entities: ClassVar[tuple[str, ...] | None] = None
    """Entities a workflow with this trigger may name; None: any, or none needed."""
    config_schema: ClassVar[dict[str, Any]] = {}
    """JSON Schema properties of the trigger object besides ``type``."""
    required: ClassVar[tuple[str, ...]] = ()
    has_record: ClassVar[bool] = True
    """Whether its events carry a record. False (a webhook's payload only): its workflows
    need no entity, may not use record actions, and are matched whatever entity they name."""

    def carries_record(self, config: Mapping[str, Any]) -> bool:
        """Called when a workflow is indexed and saved: do its events carry a record?"""
        return self.has_record

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of this trigger's object in a workflow definition."""
        return {
            "type": "object",
            "properties": {"type": {"const": self.name}, **self.config_schema},
            "required": ["type", *self.required],
            "additionalProperties": False,
        }

    def relevant(self, change: Change) -> bool:
        """Called once per change: can any workflow with this trigger fire on it?"""
        return change.entity is not None and change.op != "received"

    def fires(self, config: Mapping[str, Any], change: Change) -> bool:
        """Called per listening workflow: do this workflow's trigger filters accept the change?"""
        return True

    def check(self, config: Mapping[str, Any], entity: str | None) -> list[tuple[str, str]]:
        """Called when a workflow is saved: problems beyond the schema, as (path, message)."""
        return []

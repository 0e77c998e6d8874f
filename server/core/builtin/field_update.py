"""The ``field_update`` action: set record fields to literals or to values read from the context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from server.core.action import Action, ActionContext, ActionError
from server.core.expressions import ExpressionError, check_expression, compile_expression

hookimpl = pluggy.HookimplMarker("dealflow")

FIELD_PATTERN = r"^(custom\.)?[A-Za-z_][A-Za-z0-9_]*$"

CONFIG_SCHEMA = {
    "type": "object",
    "description": "Set fields: `set` gives literal values, `set_from` JMESPath expressions "
    "evaluated on the context (record, previous, changed, event, team, payload).",
    "properties": {
        "set": {
            "type": "object",
            "propertyNames": {"pattern": FIELD_PATTERN},
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            "minProperties": 1,
        },
        "set_from": {
            "type": "object",
            "propertyNames": {"pattern": FIELD_PATTERN},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 2000},
            "minProperties": 1,
        },
    },
    "anyOf": [{"required": ["set"]}, {"required": ["set_from"]}],
    "additionalProperties": False,
}


def check(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Save-time problems as ``(config path, message)``: expressions that do not compile."""
    problems = []
    for name, expression in (config.get("set_from") or {}).items():
        try:
            check_expression(expression)
        except ExpressionError as exc:
            problems.append((f"set_from.{name}", exc.message))
    return problems


def changes(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    out = dict(config.get("set") or {})
    for name, expression in (config.get("set_from") or {}).items():
        try:
            out[name] = compile_expression(expression).search(context.document)
        except Exception as exc:  # noqa: BLE001 - JMESPath runtime errors vary; all are recorded
            raise ActionError(f"field_update: set_from.{name}: {exc}", permanent=True) from exc
    return out


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    return {"changes": changes(config, context)}


FIELD_UPDATE = Action(
    name="field_update",
    kind="record",
    config_schema=CONFIG_SCHEMA,
    execute=changes,
    preview=preview,
    check=check,
    description="Set record fields to literal values or to values read from the context.",
)


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [FIELD_UPDATE]

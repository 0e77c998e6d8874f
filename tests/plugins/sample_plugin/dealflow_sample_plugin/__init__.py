"""A sample third-party plugin: a ``tag_record`` action, a buggy ``explode`` action and a
``shout`` template filter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from server.plugin import Action, ActionContext, ActionError, hookimpl

CONFIG_SCHEMA = {
    "type": "object",
    "properties": {"tag": {"type": "string", "minLength": 1}},
    "required": ["tag"],
    "additionalProperties": False,
}


def tag(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """Set the record's ``custom.tag``."""
    if context.document.get("record") is None:
        raise ActionError("tag_record: there is no record to tag", permanent=True)
    return {"custom.tag": config["tag"]}


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    return {"changes": tag(config, context)}


def explode(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """A bug, as a plugin might have one: not an ActionError."""
    raise ZeroDivisionError("the plugin divided by zero")


def shout(value: Any) -> str:
    return f"{value}".upper() + "!"


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [
        Action(
            name="tag_record",
            kind="record",
            config_schema=CONFIG_SCHEMA,
            execute=tag,
            preview=preview,
            description="Tag the record (custom.tag).",
        ),
        Action(
            name="explode",
            kind="record",
            config_schema={"type": "object", "additionalProperties": False},
            execute=explode,
            preview=explode,
            description="Fail with an unexpected exception (a plugin bug).",
        ),
    ]


@hookimpl
def dealflow_template_filters() -> Mapping[str, Callable[..., Any]]:
    return {"shout": shout}

"""Workflow definitions: the published JSON Schema and validation with JSON paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from server.core.expressions import MAX_LENGTH, ExpressionError, check_expression
from server.core.plugins import Registry
from server.triggers import TRIGGERS

ENTITIES = ("outreach", "contact", "communication", "deal", "lead")
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
MAX_ACTIONS = 50
"""Most actions a workflow may list unless ``max_actions_per_workflow`` says otherwise."""
RECORDLESS = sorted(t.name for t in TRIGGERS.values() if not t.has_record)
"""Trigger types whose events carry no record (``webhook``): their workflows need no entity."""

BASE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Dealflow workflow",
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN, "description": "Unique within the team."},
        "name": {"type": "string", "minLength": 1, "maxLength": 300},
        "description": {"type": "string", "maxLength": 5000},
        "entity": {"enum": list(ENTITIES), "description": "The record type the trigger watches."},
        "enabled": {"type": "boolean", "description": "Default true."},
        "group": {"type": "string", "pattern": ID_PATTERN},
        "exclusive": {
            "type": "boolean",
            "description": "At most one workflow of the group may match.",
        },
        "exhaustive": {"type": "boolean", "description": "Every combination must be matched."},
        "condition": {
            "type": ["string", "null"],
            "maxLength": 2000,
            "description": "JMESPath over record, previous, changed, event, team, payload.",
        },
        "trigger": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string"}},
        },
        "actions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string"}},
            },
        },
    },
    "required": ["id", "name", "trigger", "actions"],
    # Every workflow names its entity, except those of a trigger without records (webhook).
    "if": {
        "properties": {
            "trigger": {
                "type": "object",
                "properties": {"type": {"enum": RECORDLESS}},
                "required": ["type"],
            }
        },
        "required": ["trigger"],
    },
    "else": {"required": ["entity"]},
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: where (a JSON path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


def _message(error: ValidationError) -> str:
    """A short reason in the words a workflow author uses."""
    if error.validator == "type":
        kinds = (
            error.validator_value
            if isinstance(error.validator_value, list)
            else [error.validator_value]
        )
        return "expected " + " or ".join(_TYPE_NAMES.get(k, k) for k in kinds)
    if error.validator == "required":
        return error.message.replace(" is a required property", " is required")
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown property")
    if error.validator == "maxLength":
        # Not jsonschema's message: it repeats the whole (too long) value.
        return f"is longer than {error.validator_value} characters (the limit)"
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return f"{error.instance!r} is not one of " + ", ".join(map(repr, allowed))
    return error.message


def _schema_problems(schema: Mapping[str, Any], instance: Any, prefix: str) -> list[Problem]:
    validator = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        if error.validator == "required":
            missing = error.message.split("'")[1]
            problems.append(Problem(f"{prefix}{_path(error)}.{missing}", "is required"))
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - allowed):
                problems.append(Problem(f"{prefix}{_path(error)}.{extra}", "unknown property"))
            continue
        if error.validator == "anyOf" and error.context:
            # e.g. field_update needs set or set_from: report the requirement, not both branches.
            reasons = sorted({_message(e) for e in error.context})
            problems.append(Problem(prefix + _path(error), " or ".join(reasons)))
            continue
        problems.append(Problem(prefix + _path(error), _message(error)))
    return problems


def _path(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate(
    document: Any, registry: Registry, *, max_actions: int = MAX_ACTIONS
) -> list[Problem]:
    """Every problem with a workflow definition, each with its JSON path; empty when valid.

    ``max_actions`` is the server's ``max_actions_per_workflow``; a longer list of actions
    is one problem at ``$.actions``, and its actions are not checked one by one."""
    problems = _schema_problems(BASE_SCHEMA, document, "$")
    if not isinstance(document, dict):
        return problems
    actions = document.get("actions")
    too_many = isinstance(actions, list) and len(actions) > max_actions
    if too_many:
        problems.append(
            Problem(
                "$.actions",
                f"{len(actions)} actions, more than the {max_actions} a workflow may have "
                "(the server's max_actions_per_workflow, DEALFLOW_MAX_ACTIONS_PER_WORKFLOW)",
            )
        )
    entity = document.get("entity")
    trigger = document.get("trigger")
    recordless = (
        isinstance(trigger, dict)
        and trigger.get("type") in RECORDLESS
        # A webhook workflow that addresses a record from its payload has one to change.
        and not TRIGGERS[trigger["type"]].carries_record(trigger)
    )
    if isinstance(trigger, dict) and isinstance(trigger.get("type"), str):
        kind = TRIGGERS.get(trigger["type"])
        if kind is None:
            problems.append(
                Problem(
                    "$.trigger.type",
                    f"unknown trigger type {trigger['type']!r} "
                    f"(known: {', '.join(sorted(TRIGGERS))})",
                )
            )
        else:
            problems += _schema_problems(kind.schema(), trigger, "$.trigger")
            if kind.entities is not None and entity in ENTITIES and entity not in kind.entities:
                problems.append(
                    Problem(
                        "$.entity",
                        f"a {kind.name} trigger watches "
                        f"{' or '.join(kind.entities)} records, not {entity}",
                    )
                )
            problems += [Problem(f"$.trigger.{p}", m) for p, m in kind.check(trigger, entity)]
    condition = document.get("condition")
    if isinstance(condition, str) and condition.strip() and len(condition) <= MAX_LENGTH:
        try:
            check_expression(condition)
        except ExpressionError as exc:
            problems.append(Problem("$.condition", exc.message))
    if document.get("exclusive") and not document.get("group"):
        problems.append(Problem("$.exclusive", "an exclusive workflow needs a group"))
    for index, action in enumerate([] if too_many else actions or []):
        if not isinstance(action, dict) or not isinstance(action.get("type"), str):
            continue
        at = f"$.actions[{index}]"
        kind = registry.action(action["type"])
        if kind is None:
            problems.append(
                Problem(
                    f"{at}.type",
                    f"unknown action type {action['type']!r} "
                    f"(known: {', '.join(sorted(registry.actions))})",
                )
            )
            continue
        if recordless and kind.kind == "record":
            problems.append(
                Problem(
                    f"{at}.type",
                    f"{action['type']} changes the triggering record, but a {trigger['type']} "
                    "event has no record to change: use side-effect actions only, or "
                    "address a record from the payload with trigger.record",
                )
            )
            continue
        config = {k: v for k, v in action.items() if k != "type"}
        found = _schema_problems(kind.config_schema, config, at)
        if not found and kind.check is not None:
            found = [Problem(f"{at}.{p}", m) for p, m in kind.check(config)]
        if not found and entity in ENTITIES:
            found = _targets(action["type"], config, entity, at)
        problems += found
    return problems


def writable_fields(entity: str) -> set[str]:
    """Fields of ``entity`` a record action may set (``custom.<name>`` besides)."""
    from server.core.records import record_type

    return set(record_type(entity).patch_type.__struct_fields__) - {"stage_reason", "custom"}


def _targets(action: str, config: Mapping[str, Any], entity: str, at: str) -> list[Problem]:
    """Refuse built-in record actions that would set a field the entity does not let them set."""
    if action == "field_update":
        targets = [(f"{at}.{key}.{name}", name) for key in ("set", "set_from") for name in config.get(key) or {}]
    elif action == "formula":
        targets = [(f"{at}.field", config["field"])]
    elif action == "assign_owner" and entity != "lead":
        return [Problem(f"{at}.type", f"assign_owner gives a lead an owner, not a {entity}")]
    else:
        return []
    allowed = writable_fields(entity)
    problems = [
        Problem(path, f"{name} is not a field a workflow can set on a {entity} "
                f"(settable: {', '.join(sorted(allowed))}, custom.<name>)")
        for path, name in targets
        if not name.startswith("custom.") and name not in allowed
    ]
    if action == "field_update" and not problems:
        problems = _literal_values(config.get("set") or {}, entity, f"{at}.set")
    return problems


def _literal_values(values: Mapping[str, Any], entity: str, at: str) -> list[Problem]:
    """Literal values must be what the field takes (a probability is an integer 0–100)."""
    from server.core.records import record_type

    patch_type = record_type(entity).patch_type
    problems = []
    for name, value in values.items():
        if name.startswith("custom."):
            continue
        try:
            msgspec.convert({name: value}, patch_type, strict=False)
        except msgspec.ValidationError as exc:
            problems.append(Problem(f"{at}.{name}", str(exc).split(" - at ")[0]))
    return problems


def published_schema(registry: Registry, *, max_actions: int = MAX_ACTIONS) -> dict[str, Any]:
    """The whole JSON Schema of a workflow document, with every trigger and action type."""
    schema = {k: v for k, v in BASE_SCHEMA.items()}
    properties = dict(schema["properties"])
    properties["trigger"] = {"oneOf": [t.schema() for t in TRIGGERS.values()]}
    action_schemas = []
    for name, action in sorted(registry.actions.items()):
        config = dict(action.config_schema)
        config["properties"] = {"type": {"const": name}, **config.get("properties", {})}
        config["required"] = ["type", *config.get("required", [])]
        if action.description:
            config["description"] = action.description
        action_schemas.append(config)
    properties["actions"] = {
        "type": "array",
        "maxItems": max_actions,
        "items": {"oneOf": action_schemas},
    }
    schema["properties"] = properties
    return schema

"""The ``formula`` action: set a record field to arithmetic over the record's other fields."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import pluggy

from server.core.action import Action, ActionContext, ActionError
from server.core.formula import MAX_LENGTH, Formula, FormulaError, compile_formula

hookimpl = pluggy.HookimplMarker("dealflow")

FIELD_PATTERN = r"^(custom\.)?[A-Za-z_][A-Za-z0-9_]*$"

CONFIG_SCHEMA = {
    "type": "object",
    "description": "Set `field` to the value of `expression` (numbers, record fields, "
    "custom.<name>, + - * / // % **, round/min/max/abs), optionally rounded to `round` digits.",
    "properties": {
        "field": {"type": "string", "pattern": FIELD_PATTERN},
        "expression": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
        "round": {"type": "integer", "minimum": 0, "maximum": 6},
    },
    "required": ["field", "expression"],
    "additionalProperties": False,
}


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> Formula:
    # The same few formulas run on every matching change: parse each once per process.
    return compile_formula(expression)


def check(config: Mapping[str, Any]) -> None:
    """Raise :class:`FormulaError` when the config's expression does not compile (save time)."""
    _compiled(config["expression"])


def problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Save-time problems as ``(config path, message)``, for :attr:`Action.check`."""
    try:
        check(config)
    except FormulaError as exc:
        return [("expression", exc.message)]
    return []


def changes(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """Evaluate the formula on the triggering record; failures are permanent (a retry fails too)."""
    try:
        value = _compiled(config["expression"]).evaluate(context.document.get("record") or {})
    except FormulaError as exc:
        raise ActionError(f"{exc.message} (setting {config['field']})", permanent=True) from exc
    digits = config.get("round")
    if digits is not None:
        value = round(value, digits)
    return {config["field"]: value}


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """What :func:`changes` would set, for dry runs and the workflow tester."""
    return {"changes": changes(config, context)}


FORMULA = Action(
    name="formula",
    kind="record",
    config_schema=CONFIG_SCHEMA,
    execute=changes,
    preview=preview,
    check=problems,
    description="Set a field to arithmetic over the record's fields, e.g. weighted amount = "
    "amount * probability / 100.",
)


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [FORMULA]

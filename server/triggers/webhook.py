"""``webhook``: an external system posted a signed event to ``/api/v1/hooks/<name>``.

A workflow may address a record from the payload with ``record`` (one of ``id``,
``external_id`` or ``contact_email``, each a JMESPath expression over ``{"payload": …}``):
it then runs with that record of its ``entity`` and may change it with record actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.core.change import Change
from server.core.expressions import ExpressionError, compile_expression
from server.triggers.base import Trigger

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"
ADDRESS_KEYS = ("id", "external_id", "contact_email")
"""How a workflow may find its record: by id, by external id, or by its contact's email."""
ADDRESSABLE: dict[str, tuple[str, ...]] = {
    "lead": ADDRESS_KEYS,
    "contact": ADDRESS_KEYS,
    "deal": ("id", "external_id"),
}
"""The entities a webhook workflow may address, and by what."""

_EXPRESSION = {"type": "string", "minLength": 1, "maxLength": 500}


def address(config: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(key, expression)`` of a workflow's ``record``, or None when it addresses none."""
    record = config.get("record")
    if not isinstance(record, Mapping):
        return None
    for key in ADDRESS_KEYS:
        if isinstance(record.get(key), str):
            return key, record[key]
    return None


def addressed_value(config: Mapping[str, Any], payload: Any) -> Any:
    """The value a workflow's ``record`` expression finds in ``payload`` (None if none)."""
    found = address(config)
    if found is None:
        return None
    return compile_expression(found[1]).search({"payload": payload})


def matches_record(config: Mapping[str, Any], record: Mapping[str, Any], value: Any) -> bool:
    """Whether ``record`` (a document) is the one ``value`` addresses through ``config``."""
    found = address(config)
    if found is None or value is None:
        return False
    key = found[0]
    if key == "id":
        return record.get("id") == value
    if key == "external_id":
        return record.get("external_id") == value
    # A lead carries its contact's email under ``contact``; a contact has its own.
    holder = (record.get("contact") or {}) if "contact" in record else record
    email = holder.get("email")
    return (
        isinstance(value, str)
        and isinstance(email, str)
        and email.strip().lower() == value.strip().lower()
    )


class Webhook(Trigger):
    name = "webhook"
    has_record = False
    config_schema = {
        "name": {
            "type": "string",
            "pattern": NAME_PATTERN,
            "description": "The hook name: a signed POST to /api/v1/hooks/<name> fires it.",
        },
        "record": {
            "type": "object",
            "description": "Run with the record of the workflow's entity that the payload "
            "names: one of id, external_id, contact_email, each a JMESPath expression over "
            "{payload} (e.g. payload.lead_id).",
            "properties": {key: _EXPRESSION for key in ADDRESS_KEYS},
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
        },
    }
    required = ("name",)

    def carries_record(self, config: Mapping[str, Any]) -> bool:
        return address(config) is not None

    def relevant(self, change: Change) -> bool:
        return change.op == "received"

    def fires(self, config: Mapping[str, Any], change: Change) -> bool:
        if config.get("name") != change.name:
            return False
        if change.entity is None:
            return address(config) is None
        # An addressed event fires the workflows whose own expression names its record.
        try:
            value = addressed_value(config, change.payload)
        except Exception:  # noqa: BLE001 - the service recorded why it found no record
            return False
        return matches_record(config, change.record or {}, value)

    def check(self, config: Mapping[str, Any], entity: str | None) -> list[tuple[str, str]]:
        found = address(config)
        if found is None:
            return []
        key, expression = found
        problems = []
        try:
            compile_expression(expression)
        except ExpressionError as exc:
            problems.append((f"record.{key}", exc.message))
        if entity is None:
            problems.append(
                ("record", "addressing a record needs the workflow's entity (lead, contact, deal)")
            )
        elif key not in ADDRESSABLE.get(entity, ()):
            allowed = ", ".join(ADDRESSABLE.get(entity, ())) or "nothing"
            problems.append(
                (f"record.{key}", f"a {entity} cannot be addressed by {key} (allowed: {allowed})")
            )
        return problems


TRIGGER = Webhook()

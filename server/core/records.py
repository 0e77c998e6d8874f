"""Record types: how the engine reads a record as a document and writes a workflow's changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import inspect

from server.core.errors import InvalidInput
from server.core.scope import TeamScope


@dataclass(frozen=True)
class RecordType:
    """One entity: its model, its API representation and how a partial change is applied."""

    entity: str
    model: type
    out: Callable[[Any], msgspec.Struct]
    patch_type: type[msgspec.Struct]
    apply: Callable[[TeamScope, Any, Any], list[str]]
    """Validate and apply a patch to a row without committing; returns the changed fields."""

    def document(self, row: Any) -> dict[str, Any]:
        """The record as a condition sees it: the API representation as plain JSON values."""
        return msgspec.to_builtins(self.out(row))

    def apply_changes(self, scope: TeamScope, row: Any, changes: dict[str, Any]) -> list[str]:
        """Apply ``{"probability": 70, "custom.x": "y"}`` through the same rules as the API."""
        body: dict[str, Any] = {}
        for name, value in changes.items():
            if name.startswith("custom."):
                body.setdefault("custom", {})[name.removeprefix("custom.")] = value
            else:
                body[name] = value
        try:
            # Lax: a formula's 70.0 is a fine probability of 70.
            patch = msgspec.convert(body, self.patch_type, strict=False)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"{self.entity}: {exc}") from exc
        # All or nothing: a rule checked after some fields were set (a stage outside the
        # team's domain) must not leave those fields set on the row the save commits.
        columns = [attr.key for attr in inspect(row).mapper.column_attrs]
        before = {key: getattr(row, key) for key in columns}
        try:
            return self.apply(scope, row, patch)
        except Exception:
            for key, value in before.items():
                if getattr(row, key) is not value:
                    setattr(row, key, value)
            raise


_TYPES: dict[str, RecordType] = {}


def register(record_type: RecordType) -> RecordType:
    _TYPES[record_type.entity] = record_type
    return record_type


def record_type(entity: str) -> RecordType:
    if not _TYPES:
        # The services register their record types when imported.
        import server.core.services.all  # noqa: F401
    return _TYPES[entity]

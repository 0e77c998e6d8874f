"""Record types: how the engine reads a record as a document and writes a workflow's changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgspec
from sqlalchemy import inspect

from server.core.errors import InvalidInput
from server.core.fastsql import writer
from server.core.scope import TeamScope


class RecordState:
    """A record written on the save path without the ORM: its columns as plain attributes.

    A service creates one, checks it like a model instance (the same rules read and set the
    same attribute names), and :meth:`RecordType.insert` writes it in one statement. The
    engine applies workflow changes to it and :meth:`RecordType.write_back` writes what
    changed in one ``UPDATE`` when the save's workflows are done.
    """

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
        self._saved: dict[str, Any] = {}

    def copy(self) -> RecordState:
        twin = RecordState()
        twin.__dict__.update(self.__dict__)
        return twin

    def values(self, keys: tuple[str, ...]) -> dict[str, Any]:
        return {key: self.__dict__[key] for key in keys if key in self.__dict__}


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

    @cached_property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """(attribute, column name) of each column of the model."""
        mapper = inspect(self.model)
        return tuple((attr.key, attr.columns[0].name) for attr in mapper.column_attrs)

    def new(self, **values: Any) -> RecordState:
        """A record to create: every column None (as on a new model instance) but ``values``."""
        state = RecordState(**{key: None for key, _ in self.columns})
        state.__dict__.update(values)
        return state

    def insert(self, scope: TeamScope, state: RecordState) -> None:
        """Write a new record in one INSERT, stamped with the scope's team; the state gets its
        id and the columns' defaults."""
        table = self.model.__table__  # type: ignore[attr-defined]
        target = writer(scope.session, table)
        state.team_id = scope.team_id
        names = dict(self.columns)
        # As in an ORM insert, a column left None takes its default (the id its sequence).
        values = target.complete(
            {
                names[key]: value
                for key, value in state.values(tuple(names)).items()
                if value is not None or (names[key] not in target.defaults and key != "id")
            }
        )
        state.id = target.insert(scope.session, values)
        keys = {name: key for key, name in self.columns}
        for name, value in values.items():
            setattr(state, keys[name], value)
        state._saved = state.values(tuple(names))

    def write_back(self, scope: TeamScope, state: RecordState) -> None:
        """Write the columns changed since :meth:`insert` (or the last write-back)."""
        changed = {
            name: state.__dict__.get(key)
            for key, name in self.columns
            if state.__dict__.get(key) != state._saved.get(key)
        }
        if not changed:
            return
        table = self.model.__table__  # type: ignore[attr-defined]
        written = writer(scope.session, table).update(scope.session, state.id, changed)
        keys = {name: key for key, name in self.columns}
        for name, value in written.items():
            setattr(state, keys[name], value)
        state._saved = state.values(tuple(key for key, _ in self.columns))

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
        if isinstance(row, RecordState):
            # All or nothing: the rules run on a copy, kept only when every check passed.
            trial = row.copy()
            changed = self.apply(scope, trial, patch)
            row.__dict__.update(trial.__dict__)
            return changed
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

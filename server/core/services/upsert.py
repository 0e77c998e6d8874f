"""Upsert by external id: create the team's record with that id, or update the one that has it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec

from server.core.errors import Conflict, InvalidInput
from server.core.scope import TeamScope

S = TypeVar("S", bound=msgspec.Struct)
Out = TypeVar("Out")

_FIELD = re.compile(r"unknown field `([^`]+)`|at `\$\.([^`\[]+)")


def given(body: msgspec.Struct) -> dict[str, Any]:
    """The fields the client sent (an upsert body leaves the others UNSET)."""
    return {
        name: value
        for name in body.__struct_fields__
        if (value := getattr(body, name)) is not msgspec.UNSET
    }


def convert(fields: dict[str, Any], struct: type[S]) -> S:
    """``fields`` as ``struct`` (the create body or the patch); a value the upsert body took
    but ``struct`` refuses is a 422 naming the field, never a 500 from the database."""
    try:
        return msgspec.convert(fields, struct)
    except msgspec.ValidationError as exc:
        match = _FIELD.search(str(exc))
        field = (match.group(1) or match.group(2)) if match else None
        raise InvalidInput(f"{field or 'body'}: {exc}", field=field) from exc


def find(scope: TeamScope, model: Any, external_id: str) -> int | None:
    """The id of the team's record of ``model`` with this external id, or None."""
    with scope.session.no_autoflush:
        return scope.session.scalar(
            scope.select(model, model.id).where(model.external_id == external_id)
        )


def upsert(
    scope: TeamScope,
    model: Any,
    external_id: str,
    body: msgspec.Struct,
    *,
    create: Callable[[dict[str, Any]], Out],
    update: Callable[[int, dict[str, Any]], Out],
    default_when_null: Iterable[str] = (),
) -> tuple[Out, bool]:
    """Create the record (``True``) or update the team's record with ``external_id`` (``False``).

    ``create`` gets the fields the body gave, with the external id; ``update`` gets the
    record's id and the same fields, so fields left out of the body keep their values, like
    a PATCH. ``default_when_null`` names fields whose ``null`` asks the server for its
    default when creating (a deal's ``stage``): on an update they keep their value instead,
    so the same body sent twice changes nothing the second time.
    """
    fields = given(body)
    sent = fields.setdefault("external_id", external_id)
    if sent != external_id:
        raise InvalidInput(
            f"external_id: the body's {sent!r} differs from the path's {external_id!r}; "
            "leave it out of the body or send the same value",
            field="external_id",
        )
    record_id = find(scope, model, external_id)
    if record_id is None:
        try:
            return create(fields), True
        except Conflict as exc:
            # A concurrent request created the record after our look-up and committed first;
            # the failed insert was rolled back, so this request becomes an update of that one.
            if exc.field != "external_id":
                raise
            record_id = find(scope, model, external_id)
            if record_id is None:
                raise
    for name in default_when_null:
        if fields.get(name, msgspec.UNSET) is None:
            del fields[name]
    return update(record_id, fields), False

"""Outreach records: channel types, their required fields, the user who reached out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from server.core.errors import InvalidInput
from server.core.models import Outreach, OutreachType, utcnow
from server.core.records import RecordType, register
from server.core.scope import TeamScope
from server.core.services.common import (
    aware,
    check_email,
    check_phone,
    fetch_page,
    insert,
    money,
    saved,
    set_fields,
    to_float,
)

TypeCode = Literal[1, 2, 3, 4, 5]
TypeName = Literal["platform", "email", "call", "social", "messenger"]
# As long as their columns: a longer value is a 422 naming the field, on every backend.
Value = Annotated[str, msgspec.Meta(max_length=500)]
Email = Annotated[str, msgspec.Meta(max_length=320)]
Phone = Annotated[str, msgspec.Meta(max_length=64)]
LongText = Annotated[str, msgspec.Meta(max_length=10_000)]
Cost = Annotated[float, msgspec.Meta(ge=0)]


class OutreachIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new outreach effort. ``type`` is an integer code or its name."""

    type: TypeCode | TypeName
    value: Value | None = None
    email: Email | None = None
    phone: Phone | None = None
    description: LongText | None = None
    occurred_at: dt.datetime | None = None
    user_id: int | None = None
    cost: Cost | None = None


class OutreachPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial update: only the fields given change."""

    type: TypeCode | TypeName | UnsetType = UNSET
    value: Value | None | UnsetType = UNSET
    email: Email | None | UnsetType = UNSET
    phone: Phone | None | UnsetType = UNSET
    description: LongText | None | UnsetType = UNSET
    occurred_at: dt.datetime | UnsetType = UNSET
    user_id: int | UnsetType = UNSET
    cost: Cost | None | UnsetType = UNSET


class OutreachOut(msgspec.Struct):
    """An outreach effort as the API returns it."""

    id: int
    type: int
    type_name: str
    value: str | None
    email: str | None
    phone: str | None
    description: str | None
    occurred_at: dt.datetime
    user_id: int
    created_by_id: int
    cost: float | None
    created_at: dt.datetime
    updated_at: dt.datetime


def type_code(value: int | str) -> int:
    """The integer code of an outreach type given as code or name."""
    if isinstance(value, str):
        return int(OutreachType[value])
    return int(OutreachType(value))


def out(row: Outreach) -> OutreachOut:
    return OutreachOut(
        id=row.id,
        type=row.type,
        type_name=OutreachType(row.type).name,
        value=row.value,
        email=row.email,
        phone=row.phone,
        description=row.description,
        occurred_at=row.occurred_at,
        user_id=row.user_id,
        created_by_id=row.created_by_id,
        cost=to_float(row.cost),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check(row: Outreach) -> None:
    """Each channel needs the field that identifies who was reached."""
    row.email = check_email(row.email)
    row.phone = check_phone(row.phone)
    kind = OutreachType(row.type)
    if kind is OutreachType.email and not row.email:
        raise InvalidInput(
            "email: an email outreach needs the email address it went to", field="email"
        )
    if kind is OutreachType.call and not row.phone:
        raise InvalidInput("phone: a call outreach needs the phone number called", field="phone")
    if kind is OutreachType.messenger and not (row.phone or row.value):
        raise InvalidInput(
            "phone: a messenger outreach needs a phone number or a handle in value", field="phone"
        )
    if kind in (OutreachType.platform, OutreachType.social) and not row.value:
        raise InvalidInput(
            f"value: a {kind.name} outreach needs the platform name or profile URL in value",
            field="value",
        )


def create(scope: TeamScope, data: OutreachIn) -> OutreachOut:
    user_id = data.user_id if data.user_id is not None else scope.actor.user_id
    scope.check_user(user_id, field="user_id")
    row = RECORD.new(
        type=type_code(data.type),
        value=data.value,
        email=data.email,
        phone=data.phone,
        description=data.description,
        occurred_at=aware(data.occurred_at, scope) if data.occurred_at else utcnow(),
        user_id=user_id,
        created_by_id=scope.actor.user_id,
        cost=money(data.cost, "cost"),
    )
    _check(row)  # type: ignore[arg-type]
    insert(scope, RECORD, row)
    saved(scope, "outreach", row, None, "created")
    return out(row)  # type: ignore[arg-type]


def get(scope: TeamScope, outreach_id: int) -> OutreachOut:
    return out(scope.get(Outreach, outreach_id))


def update(scope: TeamScope, outreach_id: int, patch: OutreachPatch) -> OutreachOut:
    row = scope.get(Outreach, outreach_id)
    previous = RECORD.document(row)
    apply(scope, row, patch)
    saved(scope, "outreach", row, previous, "updated")
    return out(row)


def apply(scope: TeamScope, row: Outreach, patch: OutreachPatch) -> list[str]:
    """Check and apply a partial change without committing; the changed field names."""
    if patch.type is not UNSET:
        patch.type = type_code(patch.type)
    if patch.user_id is not UNSET:
        scope.check_user(patch.user_id, field="user_id")
    if patch.occurred_at is not UNSET:
        patch.occurred_at = aware(patch.occurred_at, scope)
    if patch.cost is not UNSET:
        patch.cost = money(patch.cost, "cost")  # type: ignore[assignment]
    changed = set_fields(row, patch)
    _check(row)
    return changed


def delete(scope: TeamScope, outreach_id: int) -> None:
    row = scope.get(Outreach, outreach_id)
    previous = RECORD.document(row)
    scope.session.delete(row)
    saved(scope, "outreach", row, previous, "deleted")


def list_(
    scope: TeamScope,
    *,
    limit: int,
    cursor: str | None = None,
    type: int | str | None = None,
    user_id: int | None = None,
    occurred_from: dt.datetime | None = None,
    occurred_to: dt.datetime | None = None,
) -> tuple[list[OutreachOut], str | None]:
    stmt = scope.select(Outreach)
    if type is not None:
        try:
            code = type_code(int(type) if str(type).isdigit() else type)
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"type: unknown outreach type {type!r}", field="type") from exc
        stmt = stmt.where(Outreach.type == code)
    if user_id is not None:
        stmt = stmt.where(Outreach.user_id == user_id)
    if occurred_from is not None:
        stmt = stmt.where(Outreach.occurred_at >= aware(occurred_from, scope))
    if occurred_to is not None:
        stmt = stmt.where(Outreach.occurred_at < aware(occurred_to, scope))
    rows, next_cursor = fetch_page(scope, stmt, Outreach, limit, cursor)
    return [out(r) for r in rows], next_cursor


RECORD = register(RecordType("outreach", Outreach, out, OutreachPatch, apply))

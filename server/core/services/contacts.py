"""Contacts: people the team talks to, their lead source and when they were last contacted."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import func, or_

from server.core.models import Contact, Outreach
from server.core.records import RecordType, register
from server.core.scope import TeamScope
from server.core.services.common import (
    Custom,
    aware,
    check_email,
    check_phone,
    fetch_page,
    insert,
    merge_custom,
    saved,
    set_fields,
)
from server.core.services.upsert import convert, upsert

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# As long as their columns: a longer value is a 422 naming the field, on every backend.
Email = Annotated[str, msgspec.Meta(max_length=320)]
Phone = Annotated[str, msgspec.Meta(max_length=64)]
Company = Annotated[str, msgspec.Meta(max_length=200)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ContactIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new contact; ``outreach_id`` names the outreach that found them."""

    name: Name
    email: Email | None = None
    phone: Phone | None = None
    company: Company | None = None
    outreach_id: int | None = None
    last_contacted_at: dt.datetime | None = None
    custom: Custom = {}
    external_id: ExternalId | None = None


class ContactPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial update; ``custom`` is merged key by key (``null`` removes a key)."""

    name: Name | UnsetType = UNSET
    email: Email | None | UnsetType = UNSET
    phone: Phone | None | UnsetType = UNSET
    company: Company | None | UnsetType = UNSET
    outreach_id: int | None | UnsetType = UNSET
    last_contacted_at: dt.datetime | None | UnsetType = UNSET
    custom: Custom | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET


class ContactPut(msgspec.Struct, forbid_unknown_fields=True):
    """The create body for ``PUT /contacts/external/{external_id}``: what it leaves out is
    the default when the contact is created and is kept when it is updated."""

    name: Name
    email: Email | None | UnsetType = UNSET
    phone: Phone | None | UnsetType = UNSET
    company: Company | None | UnsetType = UNSET
    outreach_id: int | None | UnsetType = UNSET
    last_contacted_at: dt.datetime | None | UnsetType = UNSET
    custom: Custom | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET


class ContactOut(msgspec.Struct):
    """A contact as the API returns it."""

    id: int
    name: str
    email: str | None
    phone: str | None
    company: str | None
    outreach_id: int | None
    last_contacted_at: dt.datetime | None
    custom: dict[str, str | int | float | bool | None]
    external_id: str | None
    created_by_id: int
    created_at: dt.datetime
    updated_at: dt.datetime


def out(row: Contact) -> ContactOut:
    return ContactOut(
        id=row.id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        company=row.company,
        outreach_id=row.outreach_id,
        last_contacted_at=row.last_contacted_at,
        custom=dict(row.custom or {}),
        external_id=row.external_id,
        created_by_id=row.created_by_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def create(scope: TeamScope, data: ContactIn) -> ContactOut:
    if data.outreach_id is not None:
        scope.check(Outreach, data.outreach_id, field="outreach_id")
    row = RECORD.new(
        name=data.name,
        email=check_email(data.email),
        phone=check_phone(data.phone),
        company=data.company,
        outreach_id=data.outreach_id,
        last_contacted_at=aware(data.last_contacted_at, scope) if data.last_contacted_at else None,
        custom=merge_custom(scope, "contact", {}, data.custom),
        external_id=data.external_id,
        created_by_id=scope.actor.user_id,
    )
    insert(scope, RECORD, row, unique_field="external_id")
    saved(scope, "contact", row, None, "created", unique_field="external_id")
    return out(row)  # type: ignore[arg-type]


def get(scope: TeamScope, contact_id: int) -> ContactOut:
    return out(scope.get(Contact, contact_id))


def update(scope: TeamScope, contact_id: int, patch: ContactPatch) -> ContactOut:
    row = scope.get(Contact, contact_id)
    previous = RECORD.document(row)
    apply(scope, row, patch)
    saved(scope, "contact", row, previous, "updated", unique_field="external_id")
    return out(row)


def put(scope: TeamScope, external_id: str, data: ContactPut) -> tuple[ContactOut, bool]:
    """Create the contact with this external id (True) or update the team's one (False)."""
    return upsert(
        scope,
        Contact,
        external_id,
        data,
        create=lambda fields: create(scope, convert(fields, ContactIn)),
        update=lambda contact_id, fields: update(
            scope, contact_id, convert(fields, ContactPatch)
        ),
    )


def apply(scope: TeamScope, row: Contact, patch: ContactPatch) -> list[str]:
    """Check and apply a partial change without committing; the changed field names."""
    if patch.outreach_id not in (UNSET, None):
        scope.check(Outreach, patch.outreach_id, field="outreach_id")
    if patch.email is not UNSET:
        patch.email = check_email(patch.email)
    if patch.phone is not UNSET:
        patch.phone = check_phone(patch.phone)
    if patch.last_contacted_at not in (UNSET, None):
        # Set by hand (offline contact): taken as given, even if earlier than before.
        patch.last_contacted_at = aware(patch.last_contacted_at, scope)  # type: ignore[arg-type]
    changed = []
    if patch.custom is not UNSET:
        custom = merge_custom(scope, "contact", row.custom, patch.custom)
        if custom != row.custom:
            row.custom = custom
            changed.append("custom")
    return changed + set_fields(row, patch, skip=("custom",))


def delete(scope: TeamScope, contact_id: int) -> None:
    row = scope.get(Contact, contact_id)
    previous = RECORD.document(row)
    scope.session.delete(row)
    saved(scope, "contact", row, previous, "deleted")


def list_(
    scope: TeamScope,
    *,
    limit: int,
    cursor: str | None = None,
    email: str | None = None,
    company: str | None = None,
    outreach_id: int | None = None,
    q: str | None = None,
    contacted_before: dt.datetime | None = None,
    external_id: str | None = None,
) -> tuple[list[ContactOut], str | None]:
    stmt = scope.select(Contact)
    if external_id is not None:
        stmt = stmt.where(Contact.external_id == external_id)
    if email is not None:
        stmt = stmt.where(func.lower(Contact.email) == email.lower())
    if company is not None:
        stmt = stmt.where(Contact.company == company)
    if outreach_id is not None:
        stmt = stmt.where(Contact.outreach_id == outreach_id)
    if q:
        # q is matched literally: % and _ in it are not LIKE wildcards.
        literal = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{literal}%"
        stmt = stmt.where(
            or_(
                func.lower(Contact.name).like(pattern, escape="\\"),
                func.lower(Contact.email).like(pattern, escape="\\"),
                func.lower(Contact.company).like(pattern, escape="\\"),
            )
        )
    if contacted_before is not None:
        stmt = stmt.where(
            or_(
                Contact.last_contacted_at.is_(None),
                Contact.last_contacted_at < aware(contacted_before, scope),
            )
        )
    rows, next_cursor = fetch_page(scope, stmt, Contact, limit, cursor)
    return [out(r) for r in rows], next_cursor


RECORD = register(RecordType("contact", Contact, out, ContactPatch, apply))

"""Communications: logged touches with a contact, which move its last-contacted time forward."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from server.core.errors import NotFound
from server.core.models import Communication, Contact, utcnow
from server.core.records import RecordType, register
from server.core.scope import TeamScope
from server.core.services import contacts
from server.core.services.common import aware, commit, fetch_page, flush, set_fields

Channel = Literal["email", "call", "meeting", "message", "social", "other"]
Direction = Literal["inbound", "outbound"]
Note = Annotated[str, msgspec.Meta(max_length=10_000)]


class CommunicationIn(msgspec.Struct, forbid_unknown_fields=True):
    """A touch to log; ``at`` defaults to now."""

    channel: Channel
    direction: Direction = "outbound"
    at: dt.datetime | None = None
    note: Note | None = None


class CommunicationPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial update of a logged touch."""

    channel: Channel | UnsetType = UNSET
    direction: Direction | UnsetType = UNSET
    at: dt.datetime | UnsetType = UNSET
    note: Note | None | UnsetType = UNSET


class CommunicationOut(msgspec.Struct):
    """A logged touch as the API returns it."""

    id: int
    contact_id: int
    channel: str
    direction: str
    at: dt.datetime
    note: str | None
    created_by_id: int
    created_at: dt.datetime
    updated_at: dt.datetime


def out(row: Communication) -> CommunicationOut:
    return CommunicationOut(
        id=row.id,
        contact_id=row.contact_id,
        channel=row.channel,
        direction=row.direction,
        at=row.at,
        note=row.note,
        created_by_id=row.created_by_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _touch(contact: Contact, at: dt.datetime) -> dict[str, Any] | None:
    """Move ``last_contacted_at`` forward to ``at``, never backward; the contact as it was
    before when it moved."""
    if contact.last_contacted_at is None or at > contact.last_contacted_at:
        previous = contacts.RECORD.document(contact)
        contact.last_contacted_at = at
        return previous
    return None


def _saved(
    scope: TeamScope,
    row: Communication,
    previous: dict[str, Any] | None,
    op: str,
    contact: Contact | None = None,
    contact_before: dict[str, Any] | None = None,
) -> None:
    """Flush, run workflows for the communication (and the contact whose last-contacted time
    it moved), commit."""
    flush(scope)
    scope.engine.record_saved(scope, "communication", row, previous, op)
    if contact is not None and contact_before is not None:
        scope.engine.record_saved(scope, "contact", contact, contact_before, "updated")
    commit(scope)


def _get(scope: TeamScope, contact_id: int, communication_id: int) -> Communication:
    scope.get(Contact, contact_id)
    row = scope.get(Communication, communication_id)
    if row.contact_id != contact_id:
        raise NotFound("communication", communication_id)
    return row


def create(scope: TeamScope, contact_id: int, data: CommunicationIn) -> CommunicationOut:
    contact = scope.get(Contact, contact_id)
    at = aware(data.at, scope) if data.at else utcnow()
    row = Communication(
        contact_id=contact.id,
        channel=data.channel,
        direction=data.direction,
        at=at,
        note=data.note,
        created_by_id=scope.actor.user_id,
    )
    scope.add(row)
    _saved(scope, row, None, "created", contact, _touch(contact, at))
    return out(row)


def get(scope: TeamScope, contact_id: int, communication_id: int) -> CommunicationOut:
    return out(_get(scope, contact_id, communication_id))


def update(
    scope: TeamScope, contact_id: int, communication_id: int, patch: CommunicationPatch
) -> CommunicationOut:
    row = _get(scope, contact_id, communication_id)
    previous = RECORD.document(row)
    contact = scope.get(Contact, contact_id)
    contact_before = apply_touching(scope, row, patch, contact)
    _saved(scope, row, previous, "updated", contact, contact_before)
    return out(row)


def apply_touching(
    scope: TeamScope, row: Communication, patch: CommunicationPatch, contact: Contact
) -> dict[str, Any] | None:
    """Apply a partial change; the contact as it was if its last-contacted time moved."""
    contact_before = None
    if patch.at is not UNSET:
        patch.at = aware(patch.at, scope)
        contact_before = _touch(contact, patch.at)
    set_fields(row, patch)
    return contact_before


def apply(scope: TeamScope, row: Communication, patch: CommunicationPatch) -> list[str]:
    """A workflow's change to a communication (its contact's time moves with it)."""
    before = RECORD.document(row)
    apply_touching(scope, row, patch, scope.get(Contact, row.contact_id))
    after = RECORD.document(row)
    return [k for k in after if after[k] != before.get(k) and k != "updated_at"]


def delete(scope: TeamScope, contact_id: int, communication_id: int) -> None:
    row = _get(scope, contact_id, communication_id)
    previous = RECORD.document(row)
    scope.session.delete(row)
    _saved(scope, row, previous, "deleted")


def list_(
    scope: TeamScope,
    contact_id: int,
    *,
    limit: int,
    cursor: str | None = None,
    channel: str | None = None,
    direction: str | None = None,
) -> tuple[list[CommunicationOut], str | None]:
    scope.get(Contact, contact_id)
    stmt = scope.select(Communication).where(Communication.contact_id == contact_id)
    if channel is not None:
        stmt = stmt.where(Communication.channel == channel)
    if direction is not None:
        stmt = stmt.where(Communication.direction == direction)
    rows, next_cursor = fetch_page(scope, stmt, Communication, limit, cursor)
    return [out(r) for r in rows], next_cursor


RECORD = register(RecordType("communication", Communication, out, CommunicationPatch, apply))

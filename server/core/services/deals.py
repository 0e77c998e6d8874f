"""Deals: pipeline stage, status, probability and weighted amount, and lead-source attribution."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from server.core.errors import InvalidInput
from server.core.models import Contact, Deal, Outreach, User, utcnow
from server.core.models.deal import CLOSED_PROBABILITY
from server.core.records import RecordType, register
from server.core.scope import TeamScope
from server.core.services.common import (
    Custom,
    check_in_domain,
    domains,
    fetch_page,
    insert,
    merge_custom,
    money,
    saved,
    set_fields,
    to_float,
)
from server.core.services.upsert import convert, upsert

DEFAULT_STAGE = "new"
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Stage = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Currency = Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
Amount = Annotated[float, msgspec.Meta(ge=0)]
Probability = Annotated[int, msgspec.Meta(ge=0, le=100)]
Status = Literal["open", "won", "lost", "cancelled"]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class DealIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new deal. Without ``outreach_id`` it inherits the contact's lead source."""

    title: Title
    contact_id: int | None = None
    outreach_id: int | None = None
    amount: Amount = 0
    currency: Currency = "USD"
    stage: Stage | None = None
    status: Status = "open"
    expected_close_date: dt.date | None = None
    probability: Probability | None = None
    owner_id: int | None = None
    custom: Custom = {}
    external_id: ExternalId | None = None


class DealPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial update; ``custom`` is merged key by key (``null`` removes a key)."""

    title: Title | UnsetType = UNSET
    contact_id: int | None | UnsetType = UNSET
    outreach_id: int | None | UnsetType = UNSET
    amount: Amount | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    stage: Stage | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    expected_close_date: dt.date | None | UnsetType = UNSET
    probability: Probability | None | UnsetType = UNSET
    owner_id: int | None | UnsetType = UNSET
    custom: Custom | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET


class DealPut(msgspec.Struct, forbid_unknown_fields=True):
    """The create body for ``PUT /deals/external/{external_id}``: what it leaves out is the
    default when the deal is created and is kept when it is updated."""

    title: Title
    contact_id: int | None | UnsetType = UNSET
    outreach_id: int | None | UnsetType = UNSET
    amount: Amount | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    stage: Stage | None | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    expected_close_date: dt.date | None | UnsetType = UNSET
    probability: Probability | None | UnsetType = UNSET
    owner_id: int | None | UnsetType = UNSET
    custom: Custom | UnsetType = UNSET
    external_id: ExternalId | None | UnsetType = UNSET


# A null in these asks for the server's choice when a deal is created (the first stage, the
# caller as owner, the contact's outreach); an upsert that updates keeps the value instead.
SERVER_DEFAULTS = ("stage", "owner_id", "outreach_id")


class DealOut(msgspec.Struct):
    """A deal as the API returns it (and as a workflow condition sees it as ``record``)."""

    id: int
    title: str
    contact_id: int | None
    outreach_id: int | None
    amount: float
    currency: str
    stage: str
    status: str
    expected_close_date: dt.date | None
    closed_at: dt.datetime | None
    probability: int | None
    weighted_amount: float | None
    owner_id: int | None
    custom: dict[str, str | int | float | bool | None]
    external_id: str | None
    created_by_id: int
    created_at: dt.datetime
    updated_at: dt.datetime


def out(row: Deal) -> DealOut:
    return DealOut(
        id=row.id,
        title=row.title,
        contact_id=row.contact_id,
        outreach_id=row.outreach_id,
        amount=float(row.amount),
        currency=row.currency,
        stage=row.stage,
        status=row.status,
        expected_close_date=row.expected_close_date,
        closed_at=row.closed_at,
        probability=row.probability,
        weighted_amount=to_float(row.weighted_amount),
        owner_id=row.owner_id,
        custom=dict(row.custom or {}),
        external_id=row.external_id,
        created_by_id=row.created_by_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def default_stage(scope: TeamScope) -> str:
    """The first stage of the team's pipeline, or ``new`` when it declared none."""
    stages = domains(scope).get("deal.stage")
    return str(stages[0]) if stages else DEFAULT_STAGE


def _settle(scope: TeamScope, row: Deal) -> None:
    """Apply the rules every saved deal obeys: domains, closed-deal probability, weighted amount."""
    if not CURRENCY_RE.match(row.currency):
        raise InvalidInput(
            f"currency: {row.currency!r} is not an ISO 4217 code such as USD", field="currency"
        )
    check_in_domain(scope, "deal.stage", row.stage, "stage")
    check_in_domain(scope, "deal.currency", row.currency, "currency")
    if row.status in CLOSED_PROBABILITY:
        row.probability = CLOSED_PROBABILITY[row.status]
        row.closed_at = row.closed_at or utcnow()
    else:
        row.closed_at = None
    if row.probability is None:
        row.weighted_amount = None
    else:
        row.weighted_amount = (Decimal(row.amount) * row.probability / 100).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )


def create(scope: TeamScope, data: DealIn) -> DealOut:
    contact = None
    if data.contact_id is not None:
        contact = scope.get(Contact, data.contact_id, field="contact_id")
    outreach_id = data.outreach_id
    if outreach_id is not None:
        scope.check(Outreach, outreach_id, field="outreach_id")
    elif contact is not None:
        outreach_id = contact.outreach_id
    owner_id = data.owner_id if data.owner_id is not None else scope.actor.user_id
    scope.check_user(owner_id, field="owner_id")
    row = RECORD.new(
        title=data.title,
        contact_id=data.contact_id,
        outreach_id=outreach_id,
        amount=money(data.amount, "amount"),
        currency=data.currency,
        stage=data.stage or default_stage(scope),
        status=data.status,
        expected_close_date=data.expected_close_date,
        probability=data.probability,
        owner_id=owner_id,
        custom=merge_custom(scope, "deal", {}, data.custom),
        external_id=data.external_id,
        created_by_id=scope.actor.user_id,
    )
    _settle(scope, row)  # type: ignore[arg-type]
    insert(scope, RECORD, row, unique_field="external_id")
    saved(scope, "deal", row, None, "created", unique_field="external_id")
    return out(row)  # type: ignore[arg-type]


def get(scope: TeamScope, deal_id: int) -> DealOut:
    return out(scope.get(Deal, deal_id))


def update(scope: TeamScope, deal_id: int, patch: DealPatch) -> DealOut:
    row = scope.get(Deal, deal_id)
    previous = RECORD.document(row)
    apply(scope, row, patch)
    saved(scope, "deal", row, previous, "updated", unique_field="external_id")
    return out(row)


def put(scope: TeamScope, external_id: str, data: DealPut) -> tuple[DealOut, bool]:
    """Create the deal with this external id (True) or update the team's one (False)."""
    return upsert(
        scope,
        Deal,
        external_id,
        data,
        create=lambda fields: create(scope, convert(fields, DealIn)),
        update=lambda deal_id, fields: update(scope, deal_id, convert(fields, DealPatch)),
        default_when_null=SERVER_DEFAULTS,
    )


def apply(scope: TeamScope, row: Deal, patch: DealPatch) -> list[str]:
    """Check and apply a partial change without committing; the changed field names."""
    for name, model in (("contact_id", Contact), ("outreach_id", Outreach), ("owner_id", User)):
        value = getattr(patch, name)
        if value not in (UNSET, None):
            scope.check(model, value, field=name)
    if patch.amount is not UNSET:
        patch.amount = money(patch.amount, "amount")  # type: ignore[assignment]
    changed = []
    if patch.custom is not UNSET:
        custom = merge_custom(scope, "deal", row.custom, patch.custom)
        if custom != row.custom:
            row.custom = custom
            changed.append("custom")
    changed += set_fields(row, patch, skip=("custom",))
    _settle(scope, row)
    return changed


def delete(scope: TeamScope, deal_id: int) -> None:
    row = scope.get(Deal, deal_id)
    previous = RECORD.document(row)
    scope.session.delete(row)
    saved(scope, "deal", row, previous, "deleted")


def list_(
    scope: TeamScope,
    *,
    limit: int,
    cursor: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    contact_id: int | None = None,
    owner_id: int | None = None,
    outreach_id: int | None = None,
    close_from: dt.date | None = None,
    close_to: dt.date | None = None,
    external_id: str | None = None,
) -> tuple[list[DealOut], str | None]:
    stmt = scope.select(Deal)
    for column, value in (
        (Deal.external_id, external_id),
        (Deal.stage, stage),
        (Deal.status, status),
        (Deal.contact_id, contact_id),
        (Deal.owner_id, owner_id),
        (Deal.outreach_id, outreach_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if close_from is not None:
        stmt = stmt.where(Deal.expected_close_date >= close_from)
    if close_to is not None:
        stmt = stmt.where(Deal.expected_close_date < close_to)
    rows, next_cursor = fetch_page(scope, stmt, Deal, limit, cursor)
    return [out(r) for r in rows], next_cursor


RECORD = register(RecordType("deal", Deal, out, DealPatch, apply))

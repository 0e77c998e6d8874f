"""Work lists: leads by priority, leads one profile field short of qualifying, and the
follow-up queue of contacts not contacted for a while. Each is ordered by the database and
paged with a cursor over its sort key."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import ColumnElement, Numeric, Select, and_, case, func, literal, or_, select
from sqlalchemy.sql import Subquery

from server.core.errors import InvalidInput
from server.core.models import Contact, Deal, Lead, utcnow
from server.core.scope import TeamScope
from server.core.services.leads import LeadOut, out
from server.core.services.teams import settings_of

NO_SCORE = -1_000_001
"""Sorts a contact without a lead below any score a lead can have."""
PROFILE_COLUMNS = ("name", "email", "phone", "company")


class MissingOneOut(msgspec.Struct):
    """A lead whose score qualifies but that lacks exactly one required profile field."""

    lead: LeadOut
    missing_field: str
    """The required field it lacks, as the rule names it (``contact.phone``)."""


class FollowUpOut(msgspec.Struct):
    """A contact due for a follow-up, with the figures that rank it."""

    contact_id: int
    name: str
    email: str | None
    company: str | None
    last_contacted_at: dt.datetime | None
    """None when the contact was never contacted (its creation time then counts)."""
    days_since_contact: int
    """Calendar days in the team's timezone since the last contact (or the creation)."""
    open_deal_value: float
    """Sum of the amounts of the contact's open deals, as stored (currencies are not
    converted): what the queue is ordered by."""
    open_deal_values: dict[str, float]
    """The same open deals' amounts per currency (``{"EUR": 5000.0, "USD": 1200.0}``): the
    figures to show, never added up across currencies."""
    lead_score: int | None
    """Highest score among the contact's leads that are not customers; None without one."""


# --- keyset paging ---------------------------------------------------------------------------

Key = tuple[str, bool, Callable[[Any], Any]]
"""A sort key: the subquery column's name, descending or not, and how to read a cursor value."""


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _encode(values: Sequence[Any]) -> str:
    raw = json.dumps(["k", *(_json_value(v) for v in values)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str | None, keys: Sequence[Key]) -> list[Any] | None:
    if not cursor:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or raw[:1] != ["k"] or len(raw) != len(keys) + 1:
            raise ValueError(cursor)
        return [read(value) for (_, _, read), value in zip(keys, raw[1:], strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, ArithmeticError) as exc:
        raise InvalidInput("cursor: not a cursor this list handed out", field="cursor") from exc


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**63:
        raise ValueError(value)
    return value


def _time(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(value)
    return parsed


def _decimal(value: Any) -> Decimal:
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(value)
    return amount


def _after(inner: Subquery, keys: Sequence[Key], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``."""
    options = []
    for i, (name, desc, _) in enumerate(keys):
        column = inner.c[name]
        equal = [inner.c[k] == v for (k, _, _), v in zip(keys[:i], values[:i], strict=True)]
        beyond = column < values[i] if desc else column > values[i]
        options.append(and_(*equal, beyond))
    return or_(*options)


def _page(
    scope: TeamScope, inner: Subquery, keys: Sequence[Key], limit: int, cursor: str | None
) -> tuple[Sequence[Any], str | None]:
    """One page of ``inner`` in the order of ``keys`` and the cursor of the next page."""
    stmt: Select[Any] = select(inner)
    after = _decode(cursor, keys)
    if after is not None:
        stmt = stmt.where(_after(inner, keys, after))
    order = [inner.c[name].desc() if desc else inner.c[name].asc() for name, desc, _ in keys]
    rows = scope.session.execute(stmt.order_by(*order).limit(limit + 1)).all()
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], _encode([getattr(last, name) for name, _, _ in keys])
    return rows, None


LEAD_KEYS: tuple[Key, ...] = (
    ("score", True, _int),
    ("created_at", False, _time),
    ("id", False, _int),
)


def _leads(scope: TeamScope, rows: Sequence[Any]) -> dict[int, Lead]:
    ids = [row.id for row in rows]
    found = scope.session.scalars(scope.select(Lead).where(Lead.id.in_(ids))).all() if ids else []
    return {lead.id: lead for lead in found}


# --- the lists -------------------------------------------------------------------------------


def leads_by_priority(
    scope: TeamScope, *, limit: int, cursor: str | None = None, stage: str | None = None
) -> tuple[list[LeadOut], str | None]:
    """Leads, highest score first, then the oldest first; customers are left out unless
    ``stage`` asks for them."""
    stmt = scope.select(Lead, Lead.id, Lead.score, Lead.created_at)
    stmt = stmt.where(Lead.stage == stage) if stage else stmt.where(Lead.stage != "customer")
    rows, next_cursor = _page(scope, stmt.subquery(), LEAD_KEYS, limit, cursor)
    leads = _leads(scope, rows)
    return [out(leads[row.id]) for row in rows], next_cursor


def _missing(path: str) -> ColumnElement[bool]:
    """SQL for "the required field ``path`` is empty" (null or blank)."""
    head, _, rest = path.partition(".")
    if head == "contact" and rest in PROFILE_COLUMNS:
        value: Any = getattr(Contact, rest)
    else:
        name = rest.removeprefix("custom.")
        value = (Contact.custom if head == "contact" else Lead.custom)[name].as_string()
    return or_(value.is_(None), func.trim(value) == "")


def leads_missing_one_field(
    scope: TeamScope, *, limit: int, cursor: str | None = None
) -> tuple[list[MissingOneOut], str | None]:
    """Marketing leads whose score reached the team's threshold but that lack exactly one of
    the rule's required fields, highest score first, then the oldest; each names the field.
    Empty when the team has no rule or it requires no field."""
    settings = settings_of(scope.team)
    rule = settings.rule()
    if rule is None or not rule.required_fields:
        return [], None
    missing = [(path, _missing(path)) for path in rule.required_fields]
    count = sum((case((test, 1), else_=0) for _, test in missing), literal(0))
    field = case(*((test, literal(path)) for path, test in missing), else_=None)
    marketing = [s for s, side in settings.stage_owners.items() if side == "marketing"]
    stmt = (
        scope.select(Lead, Lead.id, Lead.score, Lead.created_at, field.label("missing_field"))
        .join(Contact, Contact.id == Lead.contact_id)
        .where(Lead.score >= rule.score_threshold, Lead.stage.in_(marketing), count == 1)
    )
    rows, next_cursor = _page(scope, stmt.subquery(), LEAD_KEYS, limit, cursor)
    leads = _leads(scope, rows)
    return [MissingOneOut(out(leads[r.id]), r.missing_field) for r in rows], next_cursor


FOLLOW_UP_KEYS: tuple[Key, ...] = (
    ("open_deal_value", True, _decimal),
    ("score_key", True, _int),
    ("last_contact", False, _time),
    ("id", False, _int),
)


def today_in(scope: TeamScope, now: dt.datetime | None = None) -> dt.date:
    """Today's date in the team's timezone."""
    return (now or utcnow()).astimezone(ZoneInfo(scope.team.timezone)).date()


def follow_up(
    scope: TeamScope,
    *,
    days: int,
    limit: int,
    cursor: str | None = None,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[FollowUpOut], str | None]:
    """Contacts last contacted (or, never contacted, created) ``days`` or more calendar days
    before ``as_of`` (default: today), both in the team's timezone; ordered by the value of
    their open deals, then their lead's score, then the longest wait."""
    zone = ZoneInfo(scope.team.timezone)
    today = as_of or today_in(scope, now)
    # Contacted on local day D is "days" ago when D <= today - days: before the next midnight.
    cutoff = dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time(0), zone)
    last = func.coalesce(Contact.last_contacted_at, Contact.created_at)
    open_value = (
        # Rounded to cents in SQL: SQLite sums money as REAL (0.10 + 0.20 is not 0.30), and the
        # next page's cursor compares with the value this page gave.
        select(func.round(func.coalesce(func.sum(Deal.amount), 0), 2, type_=Numeric(16, 2)))
        .where(Deal.contact_id == Contact.id, Deal.status == "open", Deal.team_id == scope.team_id)
        .scalar_subquery()
    )
    score = (
        select(func.max(Lead.score))
        .where(Lead.contact_id == Contact.id, Lead.stage != "customer")
        .scalar_subquery()
    )
    stmt = scope.select(
        Contact,
        Contact.id,
        Contact.name,
        Contact.email,
        Contact.company,
        Contact.last_contacted_at,
        last.label("last_contact"),
        open_value.label("open_deal_value"),
        score.label("lead_score"),
        func.coalesce(score, NO_SCORE).label("score_key"),
    ).where(last < cutoff.astimezone(dt.UTC))
    rows, next_cursor = _page(scope, stmt.subquery(), FOLLOW_UP_KEYS, limit, cursor)
    per_currency = _open_values(scope, [row.id for row in rows])
    items = []
    for row in rows:
        seen = _aware(row.last_contact).astimezone(zone).date()
        items.append(
            FollowUpOut(
                contact_id=row.id,
                name=row.name,
                email=row.email,
                company=row.company,
                last_contacted_at=row.last_contacted_at,
                days_since_contact=(today - seen).days,
                open_deal_value=float(row.open_deal_value or 0),
                open_deal_values=per_currency.get(row.id, {}),
                lead_score=row.lead_score,
            )
        )
    return items, next_cursor


def _open_values(scope: TeamScope, contact_ids: list[int]) -> dict[int, dict[str, float]]:
    """The page's contacts → their open deals' amounts per currency (one GROUP BY query)."""
    if not contact_ids:
        return {}
    total = func.round(func.sum(Deal.amount), 2, type_=Numeric(16, 2))
    rows = scope.session.execute(
        scope.select(Deal, Deal.contact_id, Deal.currency, total)
        .where(Deal.contact_id.in_(contact_ids), Deal.status == "open")
        .group_by(Deal.contact_id, Deal.currency)
        .order_by(Deal.contact_id, Deal.currency)
    )
    out: dict[int, dict[str, float]] = {}
    for contact_id, currency, amount in rows:
        out.setdefault(contact_id, {})[currency] = float(amount)
    return out


def _aware(value: dt.datetime | str) -> dt.datetime:
    # A coalesce of two timestamp columns comes back typed on PostgreSQL; SQLite may hand
    # back the stored text or a naive datetime (stored as UTC).
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)

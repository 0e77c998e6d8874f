"""Effectiveness per channel, platform and user: outreach → contact → deal → won, revenue, ROI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from server.core.errors import InvalidInput
from server.core.models import Contact, Deal, Outreach, User
from server.core.models.outreach import OutreachType
from server.core.scope import TeamScope
from server.core.services.analytics.period import (
    TYPE_NAMES,
    Period,
    dialect,
    in_range,
    period,
    ratio,
)
from server.core.services.forecast import _decimal, _exact_sum, _money
from server.core.services.teams import settings_of


class Effect(msgspec.Struct):
    """Outreach → contact → deal → won for one channel, platform or user.

    Contacts and deals count when their source is an outreach of the range (a deal's source
    is its own ``outreach_id``, else its contact's), whenever they were created. Rates are
    ratios of the counts (``null`` when the denominator is 0); ``revenue_won`` sums the won
    deals in the report's currency; ``cost`` is each outreach's own cost, else the team's
    cost for its type; ``roi`` = (revenue − cost) / cost.
    """

    outreach: int
    contacts: int
    deals: int
    deals_won: int
    revenue_won: float
    cost: float
    contact_rate: float | None
    deal_rate: float | None
    win_rate: float | None
    outreach_to_won: float | None
    roi: float | None
    type: str | None = None
    value: str | None = None
    user_id: int | None = None
    user: str | None = None


class ChannelsOut(msgspec.Struct):
    """Effectiveness per outreach type, and per ``value`` of platform outreach."""

    timezone: str
    date_from: dt.date
    date_to: dt.date
    currency: str
    types: list[Effect]
    platforms: list[Effect]
    total: Effect


class UsersOut(msgspec.Struct):
    """Effectiveness per user who reached out."""

    timezone: str
    date_from: dt.date
    date_to: dt.date
    currency: str
    users: list[Effect]
    total: Effect


def report_currency(scope: TeamScope, currency: str | None) -> str:
    """``currency`` upper-cased, or the currency most of the team's won deals are in."""
    if currency:
        if len(currency) != 3 or not currency.isalpha():
            raise InvalidInput(f"currency: {currency!r} is not a 3-letter code", field="currency")
        return currency.upper()
    found = scope.session.execute(
        scope.select(Deal, Deal.currency, func.count(Deal.id))
        .where(Deal.status == "won")
        .group_by(Deal.currency)
        .order_by(func.count(Deal.id).desc(), Deal.currency)
        .limit(1)
    ).first()
    return str(found[0]) if found else "USD"


def _cost_sum(scope: TeamScope) -> ColumnElement[Any]:
    """SUM of each outreach's cost, its type's team default when it has none (0 without one)."""
    defaults = {
        OutreachType[name].value: Decimal(str(cost)).quantize(Decimal("0.01"))
        for name, cost in settings_of(scope.team).outreach_costs.items()
    }
    if dialect(scope) == "sqlite":
        cents = {code: int(value * 100) for code, value in defaults.items()}
        default: Any = case(cents, value=Outreach.type, else_=0) if cents else literal(0)
        return func.sum(func.coalesce(cast(func.round(Outreach.cost * 100), BigInteger), default))
    fallback: Any = Decimal(0)
    if defaults:
        fallback = case(defaults, value=Outreach.type, else_=Decimal(0))
    return func.sum(func.coalesce(Outreach.cost, fallback))


def _effects(
    scope: TeamScope,
    when: Period,
    currency: str,
    keys: list[Any],
    *where: Any,
    group: list[Any] | None = None,
) -> dict[tuple[Any, ...], Effect]:
    """The measures of :class:`Effect` per value of ``keys`` (Outreach columns): three GROUP BYs,
    by ``keys`` or by ``group`` (grouping sets) when given."""
    scoped = [Outreach.team_id == scope.team_id, in_range(Outreach.occurred_at, when), *where]
    grouping = group or keys
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}

    def acc(key: Iterable[Any]) -> dict[str, Any]:
        return sums.setdefault(tuple(key), _zero())

    efforts = (
        select(*keys, func.count(Outreach.id), _cost_sum(scope)).where(*scoped).group_by(*grouping)
    )
    for record in scope.session.execute(efforts):
        entry = acc(record[: len(keys)])
        entry["outreach"] = int(record[-2])
        entry["cost"] = _decimal(scope, record[-1])

    contacts = (
        select(*keys, func.count(Contact.id))
        .select_from(Contact)
        .join(Outreach, Outreach.id == Contact.outreach_id)
        .where(Contact.team_id == scope.team_id, *scoped)
        .group_by(*grouping)
    )
    for record in scope.session.execute(contacts):
        acc(record[: len(keys)])["contacts"] = int(record[-1])

    source = aliased(Contact)
    won = Deal.status == "won"
    deals = (
        select(
            *keys,
            func.count(Deal.id),
            func.sum(case((won, 1), else_=0)),
            _exact_sum(scope, case((and_(won, Deal.currency == currency), Deal.amount))),
        )
        .select_from(Deal)
        .outerjoin(source, source.id == Deal.contact_id)
        .join(Outreach, Outreach.id == func.coalesce(Deal.outreach_id, source.outreach_id))
        .where(Deal.team_id == scope.team_id, *scoped)
        .group_by(*grouping)
    )
    for record in scope.session.execute(deals):
        entry = acc(record[: len(keys)])
        entry["deals"], entry["won"] = int(record[-3]), int(record[-2] or 0)
        entry["revenue"] = _decimal(scope, record[-1])
    return {key: _effect(entry) for key, entry in sums.items()}


def _zero() -> dict[str, Any]:
    return dict(outreach=0, contacts=0, deals=0, won=0, revenue=Decimal(0), cost=Decimal(0))


def _effect(entry: dict[str, Any]) -> Effect:
    revenue, cost = entry["revenue"], entry["cost"]
    return Effect(
        outreach=entry["outreach"],
        contacts=entry["contacts"],
        deals=entry["deals"],
        deals_won=entry["won"],
        revenue_won=_money(revenue),
        cost=_money(cost),
        contact_rate=ratio(entry["contacts"], entry["outreach"]),
        deal_rate=ratio(entry["deals"], entry["contacts"]),
        win_rate=ratio(entry["won"], entry["deals"]),
        outreach_to_won=ratio(entry["won"], entry["outreach"]),
        roi=None if not cost else round(float((revenue - cost) / cost), 4),
    )


def _total(effects: Iterable[Effect]) -> Effect:
    entry = _zero()
    for e in effects:
        entry["outreach"] += e.outreach
        entry["contacts"] += e.contacts
        entry["deals"] += e.deals
        entry["won"] += e.deals_won
        entry["revenue"] += Decimal(str(e.revenue_won))
        entry["cost"] += Decimal(str(e.cost))
    return _effect(entry)


def _per_type_and_platform(
    scope: TeamScope, when: Period, currency: str
) -> tuple[dict[int, Effect], dict[str | None, Effect]]:
    """Effects per type and per platform value. PostgreSQL gets both levels from one pass
    (GROUPING SETS); SQLite, which has none, from two."""
    platform = OutreachType.platform.value
    if dialect(scope) != "postgresql":
        types = _effects(scope, when, currency, [Outreach.type])
        values = _effects(scope, when, currency, [Outreach.value], Outreach.type == platform)
        return {k[0]: e for k, e in types.items()}, {k[0]: e for k, e in values.items()}
    # A literal, not a bound parameter: the SELECT and GROUP BY expressions must be identical.
    value = case((Outreach.type == literal_column(str(platform)), Outreach.value))
    sets = func.grouping_sets(tuple_(Outreach.type), tuple_(Outreach.type, value))
    found = _effects(
        scope, when, currency, [Outreach.type, value, func.grouping(value)], group=[sets]
    )
    by_type = {code: e for (code, _, level), e in found.items() if level == 1}
    by_value = {v: e for (code, v, level), e in found.items() if level == 0 and code == platform}
    return by_type, by_value


def channels(
    scope: TeamScope,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    currency: str | None = None,
) -> ChannelsOut:
    """Effectiveness per outreach type (by code) and per platform (by ``value``)."""
    when = period(scope, date_from, date_to)
    currency = report_currency(scope, currency)
    by_type, by_value = _per_type_and_platform(scope, when, currency)
    types = []
    for code, effect in sorted(by_type.items()):
        effect.type = TYPE_NAMES.get(code, str(code))
        types.append(effect)
    platforms = []
    for value, effect in sorted(by_value.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        effect.type, effect.value = "platform", value
        platforms.append(effect)
    return ChannelsOut(
        timezone=when.timezone,
        date_from=when.date_from,
        date_to=when.date_to,
        currency=currency,
        types=types,
        platforms=platforms,
        total=_total(types),
    )


def users(
    scope: TeamScope,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    currency: str | None = None,
) -> UsersOut:
    """Effectiveness per user who reached out (``Outreach.user_id``)."""
    when = period(scope, date_from, date_to)
    currency = report_currency(scope, currency)
    found = _effects(scope, when, currency, [Outreach.user_id])
    names = {
        user_id: name
        for user_id, name in scope.session.execute(
            scope.select(User, User.id, User.name).where(User.id.in_([k[0] for k in found]))
        )
    }
    rows = []
    for (user_id,), effect in sorted(found.items()):
        effect.user_id, effect.user = user_id, names.get(user_id)
        rows.append(effect)
    return UsersOut(
        timezone=when.timezone,
        date_from=when.date_from,
        date_to=when.date_to,
        currency=currency,
        users=rows,
        total=_total(rows),
    )

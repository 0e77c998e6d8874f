"""The forecast: open deals per expected close month and currency, optionally per owner or stage.

Months are the calendar months of each deal's ``expected_close_date``. That column is a
date, not an instant: it has no time of day, so there is nothing to convert into the team's
timezone; the timezone is echoed in the answer so that clients label the months the way the
team reads them. Amounts in different currencies are never added together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec
from sqlalchemy import BigInteger, cast, extract, func
from sqlalchemy.sql.elements import ColumnElement

from server.core.errors import InvalidInput
from server.core.models import Deal
from server.core.scope import TeamScope

GroupBy = Literal["owner", "stage"]

CENT = Decimal("0.01")


class ForecastRow(msgspec.Struct):
    """One month × currency (× owner or stage) of open deals.

    ``month`` is ``"YYYY-MM"``, or ``null`` for deals without an expected close date.
    ``owner_id`` is set when grouped by owner, ``stage`` when grouped by stage; otherwise
    both are ``null``.
    """

    month: str | None
    currency: str
    deals: int
    amount: float
    weighted_amount: float
    owner_id: int | None = None
    stage: str | None = None


class ForecastTotal(msgspec.Struct):
    """All the rows of one currency added up."""

    currency: str
    deals: int
    amount: float
    weighted_amount: float


class ForecastOut(msgspec.Struct):
    """The forecast: rows by month (``null`` last), currency, then owner or stage; totals by currency."""

    timezone: str
    group_by: str | None
    rows: list[ForecastRow]
    totals: list[ForecastTotal]


def _exact_sum(scope: TeamScope, column: Any) -> ColumnElement[Any]:
    """A SUM of a two-decimal money column that comes back exact on both backends.

    PostgreSQL keeps NUMERIC exactly and sums it exactly. SQLite stores the values as
    binary floating point, so there the sum is taken in whole cents (integers) instead.
    """
    if scope.session.get_bind().dialect.name == "sqlite":
        return func.sum(cast(func.round(column * 100), BigInteger))
    return func.sum(column)


def _decimal(scope: TeamScope, value: Any) -> Decimal:
    """The value :func:`_exact_sum` returned, as an exact Decimal (``NULL`` counts as 0)."""
    if value is None:
        return Decimal(0)
    if scope.session.get_bind().dialect.name == "sqlite":
        return Decimal(int(value)) / 100
    return Decimal(value)


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT))


def _none_last(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


def forecast(
    scope: TeamScope,
    *,
    group_by: GroupBy | None = None,
    close_from: dt.date | None = None,
    close_to: dt.date | None = None,
) -> ForecastOut:
    """The team's open deals summed per expected close month and currency.

    Each row counts the deals and sums their ``amount`` and ``weighted_amount`` (a deal
    without a weighted amount counts as 0 there). ``group_by`` splits the rows further by
    ``owner_id`` or ``stage``. ``close_from`` is inclusive and ``close_to`` exclusive
    (``close_from=2026-04-01&close_to=2026-05-01`` is April); with either of them, deals
    without an expected close date are left out, since they fall in no window.

    Months are calendar months of the expected close date: a date has no time of day, so no
    timezone conversion applies; ``timezone`` (the team's) is echoed for labelling.
    Aggregation happens in SQL; sums are exact decimals, rounded to cents in the output.
    """
    if close_from is not None and close_to is not None and close_to <= close_from:
        raise InvalidInput(
            f"close_to: must be after close_from (close_to is exclusive), "
            f"got {close_from.isoformat()} .. {close_to.isoformat()}",
            field="close_to",
        )
    year = extract("year", Deal.expected_close_date).label("year")
    month = extract("month", Deal.expected_close_date).label("month")
    keys: list[Any] = [year, month, Deal.currency]
    if group_by == "owner":
        keys.append(Deal.owner_id)
    elif group_by == "stage":
        keys.append(Deal.stage)
    stmt = scope.select(
        Deal,
        *keys,
        func.count(Deal.id),
        _exact_sum(scope, Deal.amount),
        _exact_sum(scope, Deal.weighted_amount),
    ).where(Deal.status == "open")
    if close_from is not None:
        stmt = stmt.where(Deal.expected_close_date >= close_from)
    if close_to is not None:
        stmt = stmt.where(Deal.expected_close_date < close_to)
    stmt = stmt.group_by(*keys)

    found: list[tuple[tuple[Any, ...], ForecastRow, Decimal, Decimal]] = []
    for record in scope.session.execute(stmt).all():
        y, m, currency = record[0], record[1], record[2]
        group = record[3] if group_by else None
        count, amount, weighted = record[-3], record[-2], record[-1]
        label = None if y is None else f"{int(y):04d}-{int(m):02d}"
        amount_sum = _decimal(scope, amount)
        weighted_sum = _decimal(scope, weighted)
        row = ForecastRow(
            month=label,
            currency=currency,
            deals=int(count),
            amount=_money(amount_sum),
            weighted_amount=_money(weighted_sum),
            owner_id=group if group_by == "owner" else None,
            stage=group if group_by == "stage" else None,
        )
        sort_key = (label is None, label or "", currency, *_none_last(group))
        found.append((sort_key, row, amount_sum, weighted_sum))
    found.sort(key=lambda item: item[0])
    return ForecastOut(
        timezone=scope.team.timezone,
        group_by=group_by,
        rows=[row for _, row, _, _ in found],
        totals=_totals([(row.currency, row.deals, a, w) for _, row, a, w in found]),
    )


def _totals(rows: Sequence[tuple[str, int, Decimal, Decimal]]) -> list[ForecastTotal]:
    """Per currency: the deals, amounts and weighted amounts of its rows, summed exactly."""
    sums: dict[str, list[Any]] = {}
    for currency, deals, amount, weighted in rows:
        acc = sums.setdefault(currency, [0, Decimal(0), Decimal(0)])
        acc[0] += deals
        acc[1] += amount
        acc[2] += weighted
    return [
        ForecastTotal(
            currency=currency,
            deals=deals,
            amount=_money(amount),
            weighted_amount=_money(weighted),
        )
        for currency, (deals, amount, weighted) in sorted(sums.items())
    ]

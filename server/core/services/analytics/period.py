"""The range a report covers, in the team's timezone, and local buckets of UTC instants in SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import Date, and_, case, cast, func, literal, text
from sqlalchemy.sql.elements import ColumnElement

from server.core.errors import InvalidInput
from server.core.models import utcnow
from server.core.models.outreach import OutreachType
from server.core.scope import TeamScope

Bucket = Literal["day", "week", "month"]

DEFAULT_DAYS = 90
MAX_DAYS = 5 * 366
EARLIEST, LATEST = dt.date(1970, 1, 1), dt.date(2999, 12, 31)
TYPE_NAMES = {t.value: t.name for t in OutreachType}


class Period(msgspec.Struct):
    """The local dates a report covers (``to`` exclusive) and the UTC instants they map to."""

    timezone: str
    date_from: dt.date
    date_to: dt.date
    start: dt.datetime
    end: dt.datetime


def period(scope: TeamScope, date_from: dt.date | None, date_to: dt.date | None) -> Period:
    """The range in the team's timezone; refuses an empty, reversed or over-long one.

    On PostgreSQL it also turns JIT compilation off for the rest of the transaction: the
    reports are a few scans and aggregates, for which compiling costs more (about 0.2 s per
    query over a million rows) than it saves.
    """
    if dialect(scope) == "postgresql":
        scope.session.execute(text("SET LOCAL jit = off"))
    tz = ZoneInfo(scope.team.timezone)
    for name, day in (("from", date_from), ("to", date_to)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise InvalidInput(f"{name}: {day} is not between {EARLIEST} and {LATEST}", field=name)
    if date_to is None:
        base = date_from + dt.timedelta(days=DEFAULT_DAYS) if date_from else None
        date_to = base or utcnow().astimezone(tz).date() + dt.timedelta(days=1)
    if date_from is None:
        date_from = date_to - dt.timedelta(days=DEFAULT_DAYS)
    if date_to <= date_from:
        raise InvalidInput(
            f"to: must be after from (to is exclusive), got {date_from} .. {date_to}", field="to"
        )
    if (date_to - date_from).days > MAX_DAYS:
        raise InvalidInput(
            f"to: a report covers at most {MAX_DAYS} days, got {(date_to - date_from).days}",
            field="to",
        )
    return Period(
        timezone=scope.team.timezone,
        date_from=date_from,
        date_to=date_to,
        start=_local_midnight(date_from, tz),
        end=_local_midnight(date_to, tz),
    )


def _local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def _offset(instant: dt.datetime, tz: ZoneInfo) -> int:
    delta = instant.astimezone(tz).utcoffset()
    return int(delta.total_seconds()) if delta else 0


def offset_segments(
    tz: ZoneInfo, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    """The team's UTC offset over ``[start, end)``: ``(until, seconds)`` pairs, the last one
    open-ended (``until`` = ``end``). Transitions are found to the second by bisection within
    the day where the offset changes; zoneinfo exposes no transition list."""
    segments: list[tuple[dt.datetime, int]] = []
    current = _offset(start, tz)
    day = start
    while day < end:
        step = min(day + dt.timedelta(days=1), end)
        if _offset(step, tz) != current:
            low, high = day, step  # offset(low) == current != offset(high)
            while high - low > dt.timedelta(seconds=1):
                mid = low + (high - low) / 2
                mid = mid.replace(microsecond=0)
                if mid <= low:
                    break
                if _offset(mid, tz) == current:
                    low = mid
                else:
                    high = mid
            segments.append((high, current))
            current = _offset(high, tz)
            day = high
        else:
            day = step
    segments.append((end, current))
    return segments


def dialect(scope: TeamScope) -> str:
    return scope.session.get_bind().dialect.name


def local_bucket(
    scope: TeamScope, column: Any, bucket: Bucket, when: Period
) -> ColumnElement[Any]:
    """The first local day of the bucket ``column`` (a UTC instant) falls in, as SQL.

    PostgreSQL converts with the tz database; SQLite has none, so the offsets that apply
    within the range are computed here and the column is shifted by a CASE over them.
    Weeks start on Monday (ISO).
    """
    if dialect(scope) == "postgresql":
        local = func.timezone(when.timezone, column)
        return cast(func.date_trunc(bucket, local), Date)
    segments = offset_segments(ZoneInfo(when.timezone), when.start, when.end)
    modifiers = [f"{seconds:+d} seconds" for _, seconds in segments]
    shift: Any = literal(modifiers[-1])
    if len(segments) > 1:
        limits = [until for until, _ in segments[:-1]]
        shift = case(
            *[(column < until, mod) for until, mod in zip(limits, modifiers, strict=False)],
            else_=modifiers[-1],
        )
    local = func.datetime(column, shift)
    if bucket == "day":
        return func.date(local)
    if bucket == "week":
        return func.date(local, "weekday 0", "-6 days")
    return func.strftime("%Y-%m-01", local)


def bucket_starts(when: Period, bucket: Bucket) -> list[dt.date]:
    """Every bucket of the range, in order (the first may start before ``date_from``)."""
    day = when.date_from
    if bucket == "week":
        day -= dt.timedelta(days=day.weekday())
    elif bucket == "month":
        day = day.replace(day=1)
    starts = []
    while day < when.date_to:
        starts.append(day)
        if bucket == "day":
            day += dt.timedelta(days=1)
        elif bucket == "week":
            day += dt.timedelta(days=7)
        else:
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return starts


def iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def in_range(column: Any, when: Period) -> ColumnElement[bool]:
    return and_(column >= when.start, column < when.end)


def ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else round(numerator / denominator, 4)

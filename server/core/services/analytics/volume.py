"""Outreach volume per day, week or month of the team's timezone."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
from sqlalchemy import func, select

from server.core.models import Outreach, User
from server.core.scope import TeamScope
from server.core.services.analytics.period import (
    TYPE_NAMES,
    Bucket,
    bucket_starts,
    in_range,
    iso,
    local_bucket,
    period,
)

VolumeBy = Literal["type", "user"]


class VolumeRow(msgspec.Struct):
    """Outreach efforts in one bucket (and of one type or user when split)."""

    bucket: str
    outreach: int
    type: str | None = None
    user_id: int | None = None
    user: str | None = None


class VolumeOut(msgspec.Struct):
    """Outreach per bucket: ``buckets`` lists every bucket of the range, ``rows`` the non-empty
    ones, ordered by bucket then type code or user id."""

    timezone: str
    date_from: dt.date
    date_to: dt.date
    bucket: str
    by: str | None
    buckets: list[str]
    rows: list[VolumeRow]
    total: int


def volume(
    scope: TeamScope,
    *,
    bucket: Bucket = "week",
    by: VolumeBy | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> VolumeOut:
    """Outreach efforts per day, week or month of the team's timezone, optionally per type or
    user."""
    when = period(scope, date_from, date_to)
    label = local_bucket(scope, Outreach.occurred_at, bucket, when).label("bucket")
    keys: list[Any] = [label]
    if by == "type":
        keys.append(Outreach.type)
    elif by == "user":
        keys += [Outreach.user_id, User.name]
    stmt = (
        select(*keys, func.count(Outreach.id))
        .where(Outreach.team_id == scope.team_id, in_range(Outreach.occurred_at, when))
        .group_by(*keys)
    )
    if by == "user":
        stmt = stmt.join(User, User.id == Outreach.user_id)
    rows = []
    for record in scope.session.execute(stmt).all():
        row = VolumeRow(bucket=iso(record[0]), outreach=int(record[-1]))
        if by == "type":
            row.type = TYPE_NAMES.get(record[1], str(record[1]))
        elif by == "user":
            row.user_id, row.user = record[1], record[2]
        rows.append((record[1] if by else 0, row))
    rows.sort(key=lambda item: (item[1].bucket, item[0]))
    return VolumeOut(
        timezone=when.timezone,
        date_from=when.date_from,
        date_to=when.date_to,
        bucket=bucket,
        by=by,
        buckets=[d.isoformat() for d in bucket_starts(when, bucket)],
        rows=[row for _, row in rows],
        total=sum(row.outreach for _, row in rows),
    )

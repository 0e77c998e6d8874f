"""The lead funnel: counts, conversion, median time in stage, SLA compliance, recycles."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import BigInteger, Integer, and_, case, cast, extract, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from server.core.models import Lead, LeadStageChange, utcnow
from server.core.scope import TeamScope
from server.core.sla import CONTACT_STAGES, contacted, deadline
from server.core.services.analytics.period import Period, dialect, in_range, period, ratio
from server.core.services.teams import settings_of

FUNNEL = ("lead", "mql", "sal", "opportunity", "customer")
NEXT_STAGE = dict(zip(FUNNEL, FUNNEL[1:], strict=False))


class StageRow(msgspec.Struct):
    """One lifecycle stage.

    ``current``: leads in the stage now. ``entered``: leads that entered it in the range.
    ``converted``: of those, the leads that entered the next stage afterwards within the range
    (``conversion_rate`` = converted / entered). Stays are the periods between a lead entering
    the stage (in the range) and its next change: ``median_hours`` over the finished ones.
    The SLA is judged as the scheduler's ``sla_breached`` judges it, against the deadline
    (entry + the team's SLA hours): ``sla_met`` counts stays whose expected action came by the
    deadline (sales stages: the lead's contact reached during the stay; the others: leaving
    the stage), ``sla_missed`` stays still in the stage after the deadline without it. Stays
    not decided yet, and sales stays left before the deadline without contact, count in neither.
    """

    stage: str
    current: int
    entered: int
    converted: int | None
    conversion_rate: float | None
    median_hours: float | None
    sla_hours: int | None
    sla_met: int | None
    sla_missed: int | None
    sla_compliance: float | None


class RecycleRow(msgspec.Struct):
    """Leads recycled in the range, per stage they left and reason."""

    from_stage: str | None
    reason: str | None
    count: int


class FunnelOut(msgspec.Struct):
    """The lifecycle funnel: one row per stage in lifecycle order (``recycled`` last)."""

    timezone: str
    date_from: dt.date
    date_to: dt.date
    stages: list[StageRow]
    recycles: list[RecycleRow]


def _epoch(scope: TeamScope, column: Any) -> ColumnElement[Any]:
    """Whole seconds since 1970 of a UTC instant."""
    if dialect(scope) == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def funnel(
    scope: TeamScope,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    now: dt.datetime | None = None,
) -> FunnelOut:
    """Counts, conversions, median time in stage, SLA compliance and recycles per stage.

    ``now`` decides whether a stay still open has passed its SLA (default: the current time).
    """
    when = period(scope, date_from, date_to)
    sla: dict[str, int] = dict(settings_of(scope.team).stage_sla_hours)
    current = {
        stage: int(count)
        for stage, count in scope.session.execute(
            scope.select(Lead, Lead.stage, func.count(Lead.id)).group_by(Lead.stage)
        )
    }
    entered = _conversions(scope, when)
    stays = _stays(scope)
    medians = _medians(scope, stays, when)
    compliance = _compliance(scope, stays, when, sla, now or utcnow()) if sla else {}
    rows = []
    for stage in (*FUNNEL, "recycled"):
        n, m = entered.get(stage, (0, 0))
        following = stage in NEXT_STAGE
        decided = compliance.get(stage, (0, 0)) if stage in sla else None
        median = medians.get(stage)
        rows.append(
            StageRow(
                stage=stage,
                current=current.get(stage, 0),
                entered=n,
                converted=m if following else None,
                conversion_rate=ratio(m, n) if following else None,
                median_hours=None if median is None else round(median / 3600, 2),
                sla_hours=sla.get(stage),
                sla_met=decided[0] if decided else None,
                sla_missed=decided[1] if decided else None,
                sla_compliance=ratio(decided[0], sum(decided)) if decided else None,
            )
        )
    return FunnelOut(
        timezone=when.timezone,
        date_from=when.date_from,
        date_to=when.date_to,
        stages=rows,
        recycles=_recycles(scope, when),
    )


def _conversions(scope: TeamScope, when: Period) -> dict[str, tuple[int, int]]:
    """Per stage: leads that entered it in the range, and those of them that entered the next
    stage afterwards (before the range ends)."""
    entry, later = aliased(LeadStageChange), aliased(LeadStageChange)
    stmt = (
        select(
            entry.to_stage,
            func.count(entry.lead_id.distinct()),
            func.count(later.lead_id.distinct()),
        )
        .select_from(entry)
        .outerjoin(
            later,
            and_(
                later.lead_id == entry.lead_id,
                later.to_stage == case(NEXT_STAGE, value=entry.to_stage),
                later.at >= entry.at,
                later.at < when.end,
            ),
        )
        .where(entry.team_id == scope.team_id, in_range(entry.at, when))
        .group_by(entry.to_stage)
    )
    return {stage: (int(n), int(m)) for stage, n, m in scope.session.execute(stmt)}


def _stays(scope: TeamScope) -> Any:
    """Every stage entry of the team with the time of the lead's next change (NULL if none)
    and the lead's contact."""
    change = LeadStageChange
    return (
        select(
            change.to_stage.label("stage"),
            change.at.label("at"),
            func.lead(change.at)
            .over(partition_by=change.lead_id, order_by=(change.at, change.id))
            .label("next_at"),
            Lead.contact_id.label("contact_id"),
        )
        .join(Lead, Lead.id == change.lead_id)
        .where(change.team_id == scope.team_id)
        .subquery()
    )


def _seconds(scope: TeamScope, stays: Any) -> ColumnElement[Any]:
    return (_epoch(scope, stays.c.next_at) - _epoch(scope, stays.c.at)).label("seconds")


def _medians(scope: TeamScope, stays: Any, when: Period) -> dict[str, float]:
    """Median seconds of the finished stays per stage: the middle one or two of each stage's
    durations, found with window functions (SQLite has no median aggregate)."""
    seconds = _seconds(scope, stays)
    ranked = (
        select(
            stays.c.stage,
            seconds,
            func.row_number().over(partition_by=stays.c.stage, order_by=seconds).label("rn"),
            func.count().over(partition_by=stays.c.stage).label("n"),
        )
        .where(stays.c.next_at.is_not(None), in_range(stays.c.at, when))
        .subquery()
    )
    middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
    stmt = (
        select(ranked.c.stage, func.avg(ranked.c.seconds)).where(middle).group_by(ranked.c.stage)
    )
    return {stage: float(value) for stage, value in scope.session.execute(stmt)}


def _compliance(
    scope: TeamScope, stays: Any, when: Period, sla: dict[str, int], now: dt.datetime
) -> dict[str, tuple[int, int]]:
    """Per stage with an SLA: stays whose expected action came by the deadline, and stays
    still in the stage after it without that action (the scheduler's breaches)."""
    due = deadline(dialect(scope), stays.c.at, sla, stays.c.stage)
    done = stays.c.next_at.is_not(None)
    left_in_time = and_(done, stays.c.next_at <= due)
    # In the stage after the deadline: left later, or still there when the deadline passed.
    stayed_past = or_(and_(done, stays.c.next_at > due), and_(~done, due <= now))
    # The sales stages' window ends at the deadline or when the lead left, whichever is first.
    until = case((left_in_time, stays.c.next_at), else_=due)
    reached = and_(
        stays.c.stage.in_(CONTACT_STAGES), contacted(stays.c.contact_id, stays.c.at, until)
    )
    acted = or_(reached, and_(stays.c.stage.not_in(CONTACT_STAGES), left_in_time))
    met = func.sum(case((acted, 1), else_=0))
    missed = func.sum(case((and_(~acted, stayed_past), 1), else_=0))
    stmt = (
        select(stays.c.stage, met, missed)
        .where(in_range(stays.c.at, when), stays.c.stage.in_(list(sla)))
        .group_by(stays.c.stage)
    )
    return {stage: (int(a or 0), int(b or 0)) for stage, a, b in scope.session.execute(stmt)}


def _recycles(scope: TeamScope, when: Period) -> list[RecycleRow]:
    change = LeadStageChange
    stmt = (
        select(change.from_stage, change.reason, func.count(change.id))
        .where(
            change.team_id == scope.team_id,
            change.to_stage == "recycled",
            in_range(change.at, when),
        )
        .group_by(change.from_stage, change.reason)
    )
    rows = [
        RecycleRow(from_stage=f, reason=r, count=int(c))
        for f, r, c in scope.session.execute(stmt)
    ]
    rows.sort(key=lambda r: (-r.count, r.from_stage or "", r.reason or ""))
    return rows

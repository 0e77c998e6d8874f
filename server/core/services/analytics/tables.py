"""The reports as a header and rows: what the CLI prints and what CSV answers carry."""

from __future__ import annotations

import csv
import io
from typing import Any

from server.core.services.analytics.effects import ChannelsOut, UsersOut
from server.core.services.analytics.funnel import FunnelOut
from server.core.services.analytics.volume import VolumeOut
from server.core.services.forecast import ForecastOut

Report = VolumeOut | ChannelsOut | UsersOut | FunnelOut | ForecastOut
EFFECT_COLUMNS = (
    "outreach", "contacts", "deals", "deals_won", "revenue_won", "cost",
    "contact_rate", "deal_rate", "win_rate", "outreach_to_won", "roi",
)  # fmt: skip
STAGE_COLUMNS = (
    "current", "entered", "converted", "conversion_rate", "median_hours",
    "sla_hours", "sla_met", "sla_missed", "sla_compliance",
)  # fmt: skip


def as_table(report: Report) -> tuple[list[str], list[list[Any]]]:
    """A report as a header row and value rows: what the CLI prints and CSV carries."""
    if isinstance(report, VolumeOut):
        split = {"type": ["type"], "user": ["user_id", "user"]}.get(report.by or "", [])
        headers = ["bucket", *split, "outreach"]
        return headers, [[getattr(r, h) for h in headers] for r in report.rows]
    if isinstance(report, ChannelsOut):
        headers = ["type", "value", *EFFECT_COLUMNS]
        rows = [*report.types, *report.platforms]
        return headers, [[getattr(e, h) for h in headers] for e in rows]
    if isinstance(report, ForecastOut):
        split = {"owner": ["owner_id"], "stage": ["stage"]}.get(report.group_by or "", [])
        headers = ["month", "currency", *split, "deals", "amount", "weighted_amount"]
        return headers, [[getattr(r, h) for h in headers] for r in report.rows]
    if isinstance(report, UsersOut):
        headers = ["user_id", "user", *EFFECT_COLUMNS]
        return headers, [[getattr(e, h) for h in headers] for e in report.users]
    # Stage rows, then one row per recycle reason (stage ``recycled``, the stage it left).
    headers = ["stage", "from_stage", "reason", *STAGE_COLUMNS, "recycles"]
    rows = [
        [s.stage, None, None, *[getattr(s, h) for h in STAGE_COLUMNS], None] for s in report.stages
    ]
    blank = [None] * len(STAGE_COLUMNS)
    rows += [["recycled", r.from_stage, r.reason, *blank, r.count] for r in report.recycles]
    return headers, rows


def to_csv(report: Report) -> str:
    """A report as CSV: a header row, then one line per row (empty cells for ``null``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    headers, rows = as_table(report)
    writer.writerow(headers)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell: empty for ``null``; text a spreadsheet would run as a formula (it starts
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: a platform name, a recycle
    reason, a user's name are typed by people) is prefixed with ``'`` and so stays text."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value

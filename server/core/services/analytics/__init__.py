"""Analytics: outreach volume, channel and per-user effectiveness, the lead funnel — in SQL.

Every figure is a GROUP BY over the team's rows; Python only labels, orders and divides the
sums the database returns. Date ranges are local dates of the team's timezone, ``date_from``
inclusive and ``date_to`` exclusive (the forecast's convention); the default is the 90 days
up to and including today.
"""

from server.core.services.analytics.effects import (
    ChannelsOut,
    Effect,
    UsersOut,
    channels,
    report_currency,
    users,
)
from server.core.services.analytics.funnel import FunnelOut, RecycleRow, StageRow, funnel
from server.core.services.analytics.period import (
    Bucket,
    Period,
    bucket_starts,
    offset_segments,
    period,
)
from server.core.services.analytics.tables import Report, as_table, to_csv
from server.core.services.analytics.volume import VolumeBy, VolumeOut, VolumeRow, volume

__all__ = [
    "Bucket",
    "ChannelsOut",
    "Effect",
    "FunnelOut",
    "Period",
    "RecycleRow",
    "Report",
    "StageRow",
    "UsersOut",
    "VolumeBy",
    "VolumeOut",
    "VolumeRow",
    "as_table",
    "bucket_starts",
    "channels",
    "funnel",
    "offset_segments",
    "period",
    "report_currency",
    "to_csv",
    "users",
    "volume",
]

"""``dealflow report volume|channels|users|funnel|forecast``: analytics as tables, CSV or charts.

Charts are drawn by :mod:`server.core.charts` with matplotlib, imported
only when ``--chart`` is given.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import sys
from pathlib import Path
from typing import Any

from server.cli.common import admin_scope, runtime, table
from server.core.errors import DealflowError

REPORTS = ("volume", "channels", "users", "funnel", "forecast")
CHARTED = ("volume", "funnel", "forecast")  # server.core.charts.CHARTED
MONEY = {"revenue_won", "cost", "amount", "weighted_amount"}
SHARES = {"contact_rate", "deal_rate", "win_rate", "outreach_to_won", "conversion_rate"}
SHARES |= {"sla_compliance", "roi"}
INSTALL_HINT = "--chart needs matplotlib: pip install 'matplotlib==3.11.*'"


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def build(args: argparse.Namespace, scope: Any) -> Any:
    """The report the arguments ask for, from the services the API uses."""
    from server.core.services import analytics
    from server.core.services.forecast import forecast

    span = {"date_from": args.date_from, "date_to": args.date_to}
    if args.report == "volume":
        return analytics.volume(scope, bucket=args.bucket, by=args.by, **span)
    if args.report == "channels":
        return analytics.channels(scope, currency=args.currency, **span)
    if args.report == "users":
        return analytics.users(scope, currency=args.currency, **span)
    if args.report == "funnel":
        return analytics.funnel(scope, **span)
    return forecast(scope, close_from=args.date_from, close_to=args.date_to)


def rows_of(report: Any) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of any report (the forecast's rows included)."""
    from server.core.services.analytics import as_table

    return as_table(report)


def shown(header: str, value: Any) -> str:
    if value is None:
        return "-"
    if header in MONEY:
        return f"{value:,.2f}"
    if header in SHARES:
        return f"{value:.1%}"
    return str(value)


def cmd_report(args: argparse.Namespace) -> int:
    if args.chart is not None:
        check_chart(args.report, args.chart)
    with runtime() as rt, rt.sessions() as session:
        scope = admin_scope(session, args.team, rt)
        report = build(args, scope)
        name = scope.team.name
    headers, rows = rows_of(report)
    if args.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        print(buffer.getvalue(), end="")
    else:
        start = getattr(report, "date_from", None)
        span = f", {start} up to {report.date_to}" if start else ""
        print(f"{args.report} of team {name!r}{span} ({report.timezone})")
        cells = [[shown(h, v) for h, v in zip(headers, row, strict=True)] for row in rows]
        print(table(headers, cells))
    if args.chart is not None:
        draw(args.report, report, args.chart)
        # With --csv, stdout is the data alone.
        print(f"chart written to {args.chart}", file=sys.stderr if args.csv else sys.stdout)
    return 0


def check_chart(report: str, path: Path) -> None:
    """Refuse before any work a chart of a report that has none, or of an unknown format."""
    if report not in CHARTED:
        raise DealflowError(f"--chart: charts are drawn for {', '.join(CHARTED)}, not {report}")
    if path.suffix.lower() not in (".png", ".svg"):
        raise DealflowError(f"--chart: {path.name} must end in .png or .svg")
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise DealflowError(INSTALL_HINT) from exc


# --- charts -----------------------------------------------------------------------------------


def draw(kind: str, report: Any, path: Path) -> None:
    """Write the chart of ``report`` to ``path`` (PNG or SVG by its suffix): the drawing the
    console serves too (:mod:`server.core.charts`)."""
    from server.core import charts

    charts.write(kind, report, path)


def add_commands(commands: Any) -> None:
    """Add ``report``."""
    report = commands.add_parser(
        "report", help="analytics and the forecast as a table, CSV or chart"
    )
    report.add_argument("report", choices=REPORTS)
    report.add_argument("--team", default=None, help="team name or id (default: the first team)")
    report.add_argument(
        "--from", dest="date_from", type=_date, default=None,
        help="first local day (default: 90 days before --to; forecast: first close date)",
    )  # fmt: skip
    report.add_argument(
        "--to", dest="date_to", type=_date, default=None,
        help="the day after the range, exclusive (default: tomorrow; forecast: no limit)",
    )  # fmt: skip
    report.add_argument("--bucket", choices=["day", "week", "month"], default="week")
    report.add_argument("--by", choices=["type", "user"], default=None, help="volume: split by")
    report.add_argument("--currency", default=None, help="channels, users: revenue currency")
    report.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    report.add_argument(
        "--chart", type=Path, default=None, metavar="FILE.png|FILE.svg",
        help="also draw the volume, funnel or forecast chart to this file",
    )  # fmt: skip
    report.set_defaults(func=cmd_report)

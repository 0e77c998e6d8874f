"""``dealflow report volume|channels|users|funnel|forecast``: analytics as tables, CSV or charts.

Charts are drawn with matplotlib (the ``charts`` extra), imported only when ``--chart`` is given.
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
CHARTED = ("volume", "funnel", "forecast")
MONEY = {"revenue_won", "cost", "amount", "weighted_amount"}
SHARES = {"contact_rate", "deal_rate", "win_rate", "outreach_to_won", "conversion_rate"}
SHARES |= {"sla_compliance", "roi"}
TYPE_ORDER = ["platform", "email", "call", "social", "messenger"]
INSTALL_HINT = "--chart needs matplotlib: pip install 'dealflow[charts]'"


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
    """Write the chart of ``report`` to ``path`` (PNG or SVG by its suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    # Text stays text in SVG (small files), and the same data gives the same file.
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "dealflow", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
        try:
            {"volume": _volume, "funnel": _funnel, "forecast": _forecast}[kind](ax, report)
            ax.spines[["top", "right"]].set_visible(False)
            fmt = path.suffix.lower().lstrip(".")
            stamp = {"Date": None} if fmt == "svg" else None
            fig.savefig(path, format=fmt, dpi=100, metadata=stamp)
        finally:
            plt.close(fig)


def _volume(ax: Any, report: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    labels = report.buckets
    series: dict[tuple[int, str], dict[str, int]] = {}
    for row in report.rows:
        # One colour per type (in code order) or user (in id order), whatever the data.
        if row.type:
            key = (TYPE_ORDER.index(row.type) if row.type in TYPE_ORDER else 99, row.type)
        elif row.user_id is not None:
            key = (row.user_id, row.user or str(row.user_id))
        else:
            key = (0, "outreach")
        series.setdefault(key, {})[row.bucket] = row.outreach
    bottom = [0] * len(labels)
    for (_, name), counts in sorted(series.items()):
        values = [counts.get(label, 0) for label in labels]
        ax.bar(range(len(labels)), values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("outreach")
    ax.set_title(f"Outreach per {report.bucket} ({report.timezone})")
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))


def _funnel(ax: Any, report: Any) -> None:
    stages = [s for s in report.stages if s.stage != "recycled"]
    names = [s.stage for s in stages][::-1]
    values = [s.entered for s in stages][::-1]
    bars = ax.barh(names, values, color="#4c72b0")
    notes = [
        f"{s.entered}" + (f"  → {s.conversion_rate:.0%}" if s.conversion_rate is not None else "")
        for s in stages
    ][::-1]
    ax.bar_label(bars, notes, padding=3)
    ax.set_xlabel("leads that entered the stage")
    ax.set_title(f"Lead funnel, {report.date_from} to {report.date_to}")
    ax.margins(x=0.2)


def _forecast(ax: Any, report: Any) -> None:
    months = sorted({r.month for r in report.rows if r.month})
    currencies = sorted({r.currency for r in report.rows if r.month})
    width = 0.8 / max(1, len(currencies))
    for n, currency in enumerate(currencies):
        sums = {r.month: r.weighted_amount for r in report.rows if r.currency == currency}
        xs = [i + n * width for i in range(len(months))]
        ax.bar(xs, [sums.get(m, 0) for m in months], width=width, label=currency)
    ax.set_xticks([i + width * (len(currencies) - 1) / 2 for i in range(len(months))], months)
    ax.set_ylabel("weighted amount")
    ax.set_title("Forecast of open deals per expected close month")
    if len(currencies) > 1:
        ax.legend(frameon=False)


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

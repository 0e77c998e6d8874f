"""``dealflow workflows matrix|preview``, ``recompute`` and ``forecast``: exclusive groups and
the weighted pipeline from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from server.cli.common import admin_scope, runtime, table, teams
from server.cli.files import check, collect
from server.core.errors import DealflowError


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


def cmd_matrix(args: argparse.Namespace) -> int:
    from server.core.services import groups, workflows

    with runtime() as rt, rt.sessions() as session:
        scope = admin_scope(session, args.team, rt)
        workflows.check_group(scope, args.group)  # an unknown group is an error
        result = groups.matrix(scope, args.group)
    fields = sorted({name for row in result.rows for name in row.sets})
    headers = [f.split(".")[-1] for f in result.factors] + fields + ["workflow", "state"]
    rows = [
        [_show(row.values.get(f)) for f in result.factors]
        + [_show(row.sets.get(name)) for name in fields]
        + [", ".join(row.workflows) or "-", row.state]
        for row in result.rows
    ]
    print(table(headers, rows))
    print(result.summary)
    return 0 if all(row.state != "overlap" for row in result.rows) else 1


def cmd_preview(args: argparse.Namespace) -> int:
    from server.core.services import groups

    with runtime() as rt:
        sources, problems = collect(args.paths)
        checked = check(sources, rt.registry)
        problems += checked.problems
        if problems:
            raise DealflowError("\n".join(problems))
        with rt.sessions() as session:
            scope = admin_scope(session, args.team, rt)
            result = groups.preview(scope, args.group, [doc for _, doc in checked.documents])
            session.rollback()
    print(result.report["summary"])
    print(f"{result.deals_changed} of {result.deals_scanned} open deal(s) would change")
    if result.changes:
        print(
            table(
                ["deal", "title", "field", "old", "new"],
                [
                    [c.id, c.title, name, _show(old), _show(new)]
                    for c in result.changes
                    for name, (old, new) in c.changes.items()
                ],
            )
        )
    if result.forecast:
        print(
            table(
                ["month", "currency", "weighted before", "weighted after", "change"],
                [
                    [
                        m.month or "unscheduled",
                        m.currency,
                        f"{m.weighted_before:,.2f}",
                        f"{m.weighted_after:,.2f}",
                        f"{m.weighted_after - m.weighted_before:+,.2f}",
                    ]
                    for m in result.forecast
                ],
            )
        )
    return 0


def cmd_recompute(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from server.core.services import groups, workflows

    with runtime() as rt, rt.sessions() as session:
        for team in teams(session, args.team):
            scope = admin_scope(session, team.id, rt)
            names = (
                [args.group] if args.group else [r.group for r in workflows.check_all_groups(scope)]
            )
            for group in names:
                workflows.check_group(scope, group)
                total = groups.count_open(scope)
                with Progress(transient=True) as bar:
                    task = bar.add_task(f"{team.name} / {group}", total=total)
                    result = groups.recompute(scope, group, progress=lambda n: bar.advance(task, n))
                print(
                    f"team {team.name!r}, group {group}: {result.deals_changed} of "
                    f"{result.deals_scanned} open deal(s) changed"
                )
                if result.conflicts:
                    shown = ", ".join(str(i) for i in result.conflict_ids)
                    more = ", …" if result.conflicts > len(result.conflict_ids) else ""
                    print(
                        f"  {result.conflicts} deal(s) left as they are: two or more workflows "
                        f"of the group match them (a conflict): {shown}{more}"
                    )
                for error in result.errors:
                    print(f"  {error}")
    return 0


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def cmd_forecast(args: argparse.Namespace) -> int:
    from server.core.services.forecast import forecast

    with runtime() as rt, rt.sessions() as session:
        scope = admin_scope(session, args.team, rt)
        result = forecast(
            scope, group_by=args.group_by, close_from=args.close_from, close_to=args.close_to
        )
        name = scope.team.name
    key = {"owner": "owner_id", "stage": "stage"}.get(args.group_by or "")
    headers = (
        ["month", "currency"] + ([args.group_by] if key else []) + ["deals", "amount", "weighted"]
    )
    rows = [
        [row.month or "unscheduled", row.currency]
        + ([_show(getattr(row, key))] if key else [])
        + [row.deals, f"{row.amount:,.2f}", f"{row.weighted_amount:,.2f}"]
        for row in result.rows
    ]
    print(f"forecast of open deals for team {name!r} (months of the expected close date)")
    print(table(headers, rows))
    for total in result.totals:
        print(
            f"total {total.currency}: {total.deals} deal(s), {total.amount:,.2f}, "
            f"weighted {total.weighted_amount:,.2f}"
        )
    return 0


def add_commands(commands: Any, workflow_actions: Any) -> None:
    """Add ``workflows matrix|preview``, ``recompute`` and ``forecast``."""
    matrix = workflow_actions.add_parser(
        "matrix", help="the probability matrix of an exclusive group"
    )
    matrix.add_argument("group")
    matrix.add_argument("--team", default=None, help="team name or id (default: the first team)")
    matrix.set_defaults(func=cmd_matrix)

    preview = workflow_actions.add_parser(
        "preview",
        help="what draft workflows of a group would change on open deals (writes nothing)",
    )
    preview.add_argument("group")
    preview.add_argument("paths", nargs="+", metavar="FILE|DIR", help="the draft workflows")
    preview.add_argument("--team", default=None, help="team name or id (default: the first team)")
    preview.set_defaults(func=cmd_preview)

    recompute = commands.add_parser(
        "recompute", help="re-run exclusive groups over all open deals, in batches"
    )
    recompute.add_argument("--team", default=None, help="team name or id (default: every team)")
    recompute.add_argument(
        "--group", default=None, help="one group (default: every exclusive group)"
    )
    recompute.set_defaults(func=cmd_recompute)

    fc = commands.add_parser(
        "forecast", help="open deals and weighted amounts per expected close month"
    )
    fc.add_argument("--team", default=None, help="team name or id (default: the first team)")
    fc.add_argument("--group-by", choices=["owner", "stage"], default=None)
    fc.add_argument(
        "--from", dest="close_from", type=_date, default=None, help="first close date (inclusive)"
    )
    fc.add_argument(
        "--to", dest="close_to", type=_date, default=None, help="last close date (exclusive)"
    )
    fc.set_defaults(func=cmd_forecast)

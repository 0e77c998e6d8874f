"""``dealflow runs``: the newest runs of the run log as a table."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from server.cli.common import settings, table, teams
from server.core.db import make_engine, make_session_factory

if TYPE_CHECKING:
    from server.core.models import Team
    from server.core.services.runs import RunOut


def _recent(session: Session, team: Team, args: argparse.Namespace) -> list[RunOut]:
    from server.core.models import Event, Run
    from server.core.scope import Actor, TeamScope
    from server.core.services.runs import out

    scope = TeamScope(session, Actor(team.id, 0))  # reading needs no acting user
    stmt = scope.select(Run).order_by(Run.id.desc()).limit(args.limit)
    if args.workflow:
        stmt = stmt.where(Run.matched.contains(f",{args.workflow},", autoescape=True))
    if args.status:
        stmt = stmt.where(Run.status == args.status)
    runs = session.scalars(stmt).all()
    events = {
        e.id: e
        for e in session.scalars(
            scope.select(Event).where(Event.id.in_([r.event_id for r in runs]))
        )
    }
    return [out(r, events[r.event_id]) for r in runs]


def _utc(moment: dt.datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_runs(args: argparse.Namespace) -> int:
    factory = make_session_factory(make_engine(settings().database_url))
    found: list[tuple[str, RunOut]] = []
    with factory() as session:
        for team in teams(session, args.team):
            found += [(team.name, run) for run in _recent(session, team, args)]
    found.sort(key=lambda item: (item[1].created_at.timestamp(), item[1].id), reverse=True)
    rows = []
    for name, run in found[: args.limit]:
        matched = [e["workflow"] for e in run.evaluations if e.get("matched")]
        record = f"{run.entity}#{run.record_id}" if run.entity else "-"
        rows.append(
            (
                run.id,
                name,
                _utc(run.created_at),
                record,
                run.op,
                run.status,
                ",".join(matched) or "-",
                f"{run.duration_ms:.1f}ms",
            )
        )
    print(table(("id", "team", "time", "record", "op", "status", "matched", "duration"), rows))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_positive.__name__ = "positive integer"  # argparse names the type in its error message


def add_commands(commands: Any) -> None:
    """Add ``runs`` to the ``dealflow`` parser."""
    runs = commands.add_parser("runs", help="the newest runs: what each event matched and did")
    runs.add_argument("--team", default=None, help="team name or id (default: every team)")
    runs.add_argument("--limit", type=_positive, default=20, help="how many runs (default 20)")
    runs.add_argument(
        "--workflow", default=None, metavar="ID", help="only runs this workflow matched"
    )
    runs.add_argument(
        "--status",
        default=None,
        help="only runs with this status (ok, no_match, error, conflict, loop)",
    )
    runs.set_defaults(func=cmd_runs)

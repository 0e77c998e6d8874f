"""``dealflow executions``: list side-effect executions and retry dead ones."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from server.cli.common import admin_scope, settings, table, teams
from server.core.db import make_engine, make_session_factory

if TYPE_CHECKING:
    from server.core.services.executions import ExecutionOut

ERROR_WIDTH = 60
"""How much of an execution's last error the table shows."""

PERFORMED_ELSEWHERE = "queued for retry; a running server or worker will perform it"


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _utc(moment: dt.datetime) -> str:
    return _aware(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(text: str | None, width: int = ERROR_WIDTH) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())  # one line per row, whatever the error looked like
    return text if len(text) <= width else text[: width - 1] + "…"


def _session() -> Session:
    # A plain session, without the runtime's runner: what this command requeues is
    # performed by a running server or worker, never by the CLI process itself.
    return make_session_factory(make_engine(settings().database_url))()


def cmd_list(args: argparse.Namespace) -> int:
    from server.core.models import ActionExecution
    from server.core.scope import Actor, TeamScope
    from server.core.services.executions import execution_out, filtered

    found: list[tuple[str, ExecutionOut]] = []
    with _session() as session:
        for team in teams(session, args.team):
            scope = TeamScope(session, Actor(team.id, 0))  # reading needs no acting user
            stmt = filtered(scope, status=args.status, workflow=args.workflow)
            stmt = stmt.order_by(ActionExecution.updated_at.desc(), ActionExecution.id.desc())
            found += [
                (team.name, execution_out(row))
                for row in session.scalars(stmt.limit(args.limit))
            ]
    found.sort(key=lambda item: (_aware(item[1].updated_at), item[1].id), reverse=True)
    rows = [
        (
            e.id,
            name,
            e.workflow,
            e.action_type,
            e.status,
            e.attempts,
            _short(e.last_error),
            _utc(e.updated_at),
        )
        for name, e in found[: args.limit]
    ]
    print(
        table(
            ("id", "team", "workflow", "action", "status", "attempts", "last error", "updated"),
            rows,
        )
    )
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from server.core.errors import DealflowError
    from server.core.services import executions

    if args.workflow and not args.all_dead:
        raise DealflowError("--workflow goes with --all-dead; to retry by id, leave it out")

    with _session() as session:
        scope = admin_scope(session, args.team)
        if args.all_dead:
            requeued = executions.retry_dead(scope, workflow=args.workflow)
        else:
            requeued = executions.retry_many(scope, args.ids)
        team = scope.team.name
    if not requeued:
        of = f" for {args.workflow}" if args.workflow else ""
        print(f"no dead executions in team {team}{of}")
        return 0
    for e in requeued:
        print(f"execution {e.id} ({e.workflow} #{e.action_index}, {e.action_type}): dead → pending")
    print(f"{len(requeued)} execution(s) of team {team} {PERFORMED_ELSEWHERE}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_positive.__name__ = "positive integer"  # argparse names the type in its error message


def add_commands(commands: Any) -> None:
    """Add ``executions list`` and ``executions retry`` to the ``dealflow`` parser."""
    from server.core.models.event import EXECUTION_STATUSES as STATUSES

    executions = commands.add_parser(
        "executions", help="side-effect executions: list them, retry dead ones"
    )
    sub = executions.add_subparsers(dest="executions_command", required=True, metavar="COMMAND")

    listing = sub.add_parser("list", help="the most recently updated executions as a table")
    listing.add_argument("--team", default=None, help="team name or id (default: every team)")
    listing.add_argument("--status", default=None, choices=STATUSES, help="only this status")
    listing.add_argument("--workflow", default=None, metavar="KEY", help="only this workflow's")
    listing.add_argument(
        "--limit", type=_positive, default=20, help="how many executions (default 20)"
    )
    listing.set_defaults(func=cmd_list)

    retry = sub.add_parser(
        "retry",
        help="requeue dead executions for a running server or worker to perform",
        description="Requeue dead executions: pending again, with a fresh count of attempts. "
        "A running server or worker performs them; this command does not.",
    )
    retry.add_argument("--team", required=True, help="team name or id")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "ids", nargs="*", type=_positive, default=[], metavar="ID", help="execution ids"
    )
    which.add_argument("--all-dead", action="store_true", help="every dead execution of the team")
    retry.add_argument(
        "--workflow", default=None, metavar="KEY", help="with --all-dead: only this workflow's"
    )
    retry.set_defaults(func=cmd_retry)

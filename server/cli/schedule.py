"""``dealflow schedule run-once``: fire what is due for schedule workflows, once, now."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from server.cli.common import runtime
from server.core.errors import DealflowError


def _moment(text: str | None) -> dt.datetime:
    from server.core.models import utcnow

    if not text:
        return utcnow()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise DealflowError(
            f"--now: {text!r} is not an ISO 8601 time such as 2026-12-01T09:00:00+00:00"
        ) from exc
    # A time without an offset is read as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def cmd_run_once(args: argparse.Namespace) -> int:
    from server.triggers.schedule import scan

    moment = _moment(args.now)
    with runtime() as rt:
        fired = scan(rt.sessions, rt.engine, lambda: moment)
    print(f"{fired} occurrence(s) fired as of {moment.isoformat()}")
    if fired:
        # This process runs no relay: a running server or worker sends their side effects.
        print("side-effect actions are performed by the running server or workers")
    return 0


def add_commands(commands: Any) -> None:
    """Register the ``schedule`` command group."""
    schedule = commands.add_parser(
        "schedule", help="time-based workflows (SLA breaches, silent contacts, close dates)"
    )
    sub = schedule.add_subparsers(dest="schedule_command", required=True, metavar="COMMAND")
    once = sub.add_parser(
        "run-once",
        help="fire every due occurrence once and exit (servers and workers also scan "
        "every DEALFLOW_SCHEDULE_INTERVAL seconds)",
    )
    once.add_argument(
        "--now", help="scan as of this ISO 8601 time (default: now; no offset means UTC)"
    )
    once.set_defaults(func=cmd_run_once)

"""``dealflow audit``: a team's audit log of admin changes, newest first."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from server.cli.common import settings, table
from server.core.db import make_engine, make_session_factory

SUMMARY_WIDTH = 80
"""How much of an entry's before/after summary the table shows (``--json`` shows it all)."""


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(summary: dict[str, Any]) -> str:
    text = f"{json.dumps(summary.get('before'))} → {json.dumps(summary.get('after'))}"
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def cmd_audit(args: argparse.Namespace) -> int:
    import msgspec

    from server.core.scope import Actor, TeamScope
    from server.core.services import audit
    from server.core.services.teams import find_team

    audit.check_action(args.action)
    factory = make_session_factory(make_engine(settings().database_url))
    with factory() as session:
        team = find_team(session, args.team)
        scope = TeamScope(session, Actor(team.id, 0))  # reading needs no acting user
        entries = audit.latest(scope, limit=args.limit, action=args.action)
    if args.json:
        print(msgspec.json.encode(entries).decode())
        return 0
    rows = [
        (
            e.id,
            _utc(e.at),
            e.via,
            e.user_id,
            e.key_id,
            e.request_id,
            e.action,
            e.target,
            _summary(e.summary),
        )
        for e in entries
    ]
    print(
        table(
            ("id", "at", "via", "user", "key", "request", "action", "target", "summary"), rows
        )
    )
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_positive.__name__ = "positive integer"  # argparse names the type in its error message


def add_commands(commands: Any) -> None:
    """Add ``audit`` to the ``dealflow`` parser."""
    from server.core.models.audit import ACTIONS

    audit = commands.add_parser(
        "audit",
        help="a team's audit log of admin changes, newest first",
        description="Show who changed workflows, settings, domains, credentials (names only), "
        "keys, hook secrets and retries, when, through the API or the CLI. Read only: the "
        "log is append-only.",
    )
    audit.add_argument("--team", required=True, help="team name or id")
    audit.add_argument("--action", default=None, choices=ACTIONS, help="only this action")
    audit.add_argument("--limit", type=_positive, default=50, help="how many entries (default 50)")
    audit.add_argument("--json", action="store_true", help="print the entries as a JSON array")
    audit.set_defaults(func=cmd_audit)

"""``dealflow user password``: set a user's password for signing in to the admin console."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from server.cli.common import settings
from server.core.db import make_engine, make_session_factory, transaction


def _read_password() -> str:
    """The password: prompted for twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("New console password: ")
        if getpass.getpass("Again: ") != first:
            from server.core.errors import InvalidInput

            raise InvalidInput("password: the two entries differ", field="password")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_user_password(args: argparse.Namespace) -> int:
    from server.core.services.console_sessions import set_password
    from server.core.services.teams import find_team

    password = _read_password()
    factory = make_session_factory(make_engine(settings().database_url))
    with transaction(factory) as session:
        team = find_team(session, args.team)
        user = set_password(session, team, args.email, password)
        print(f"console password set for {user.email} ({user.role}) in team {team.name!r}; "
              "their console sessions are ended")
    return 0


def add_commands(commands: Any) -> None:
    """Add ``user password`` to the ``dealflow`` parser."""
    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    password = user.add_parser(
        "password",
        help="set a user's console password (read from stdin, or prompted for on a terminal)",
    )
    password.add_argument("--team", required=True, help="team name or id")
    password.add_argument("--email", required=True, help="the user's email")
    password.set_defaults(func=cmd_user_password)

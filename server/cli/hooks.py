"""``dealflow hooks secret``: manage a team's webhook signing secrets."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from server.cli.common import settings, table
from server.core.db import make_engine, make_session_factory, transaction

SHOWN_ONCE = "secret (shown once, it will not be shown again; store it now): {secret}"


def _when(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_secret(team_id: int, secret: str) -> None:
    print(SHOWN_ONCE.format(secret=secret))
    print(f"post signed events to: /api/v1/hooks/{team_id}/<hook name>")
    print("  (or to /api/v1/hooks/<hook name> with the team's API key; see docs/webhooks.md)")


def cmd_secret_create(args: argparse.Namespace) -> int:
    from server.core.services.hooks import create_secret
    from server.core.services.teams import find_team

    config = settings()
    factory = make_session_factory(make_engine(config.database_url))
    with transaction(factory) as session:
        team = find_team(session, args.team)
        made = create_secret(session, team.id, config)
        team_id, team_name = team.id, team.name
    # Printed after the commit: a secret that was not stored is never shown.
    print(f"webhook secret {made.key_id} created for team {team_name!r} (id {team_id})")
    _print_secret(team_id, made.secret)
    return 0


def cmd_secret_rotate(args: argparse.Namespace) -> int:
    from server.core.services.hooks import rotate_secret
    from server.core.services.teams import find_team

    config = settings()
    factory = make_session_factory(make_engine(config.database_url))
    with transaction(factory) as session:
        team = find_team(session, args.team)
        made = rotate_secret(session, team.id, config, grace=dt.timedelta(hours=args.grace_hours))
        team_id, team_name = team.id, team.name
    if made.previous_key_id is None:
        print(
            f"webhook secret {made.key_id} created for team {team_name!r} (id {team_id}); "
            "it had none to rotate"
        )
    else:
        print(f"webhook secret {made.key_id} is now current for team {team_name!r} (id {team_id})")
        print(
            f"the previous secret {made.previous_key_id} is still accepted until "
            f"{_when(made.previous_expires_at)}; older ones were deleted"
        )
    _print_secret(team_id, made.secret)
    return 0


def cmd_secret_list(args: argparse.Namespace) -> int:
    from server.core.services.hooks import list_secrets
    from server.core.services.teams import find_team

    factory = make_session_factory(make_engine(settings().database_url))
    with factory() as session:
        team = find_team(session, args.team)
        rows = list_secrets(session, team.id)
    if not rows:
        print(
            f"team {team.name!r} has no webhook secret; create one with "
            f"`dealflow hooks secret create --team {args.team}`"
        )
        return 0
    print(
        table(
            ["key_id", "status", "created_at", "expires_at"],
            [(r.key_id, r.status, _when(r.created_at), _when(r.expires_at)) for r in rows],
        )
    )
    return 0


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not 0 <= value <= 24 * 365:
        raise argparse.ArgumentTypeError("must be between 0 and 8760 hours")
    return value


def add_commands(commands: Any) -> None:
    """Register the ``hooks`` command."""
    hooks = commands.add_parser("hooks", help="manage inbound webhooks").add_subparsers(
        dest="hooks_command", required=True, metavar="ACTION"
    )
    secret = hooks.add_parser("secret", help="manage a team's webhook signing secrets")
    actions = secret.add_subparsers(dest="secret_command", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create", help="create the team's first signing secret; print it once"
    )
    create.add_argument("--team", required=True, help="team name or id")
    create.set_defaults(func=cmd_secret_create)

    rotate = actions.add_parser(
        "rotate", help="make a new current secret; the previous one stays valid for a grace period"
    )
    rotate.add_argument("--team", required=True, help="team name or id")
    rotate.add_argument(
        "--grace-hours",
        type=_hours,
        default=24.0,
        help="how long the previous secret is still accepted (default 24)",
    )
    rotate.set_defaults(func=cmd_secret_rotate)

    listing = actions.add_parser("list", help="list the team's secrets (key ids, never values)")
    listing.add_argument("--team", required=True, help="team name or id")
    listing.set_defaults(func=cmd_secret_list)

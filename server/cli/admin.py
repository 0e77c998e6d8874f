"""Commands that run the server and manage the database, teams, keys and the demo team."""

from __future__ import annotations

import argparse
from typing import Any

from server.cli.common import settings
from server.core.db import make_engine, make_session_factory, transaction
from server.settings import Settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app

    config = settings()
    if not args.no_migrate:
        _migrate(config)
    print(
        f"Dealflow serving on http://{args.host}:{args.port} (API docs: http://{args.host}:{args.port}/schema)"
    )
    print(f"Admin console: http://{args.host}:{args.port}/console")
    if config.redis_url:
        print("Side effects: queued on Redis for `dealflow worker` processes")
    else:
        print("Side effects: performed in this process (set REDIS_URL to run workers)")
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _migrate(config: Settings) -> None:
    from server.migrations import upgrade

    engine = make_engine(config.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    config = settings()
    _migrate(config)
    print(f"database is up to date ({config.database_url.split('@')[-1]})")
    return 0


def cmd_team_create(args: argparse.Namespace) -> int:
    from server.core.services.teams import create_team

    factory = make_session_factory(make_engine(settings().database_url))
    with transaction(factory) as session:
        team, user, key = create_team(
            session, args.name, admin_email=args.admin_email, timezone=args.timezone
        )
        print(f"team {team.name!r} created (id {team.id}); admin user {user.email} (id {user.id})")
        team_id = team.id
    try:
        if args.starter:
            from server.cli.workflows import load_starter

            return load_starter(team_id)
        return 0
    finally:
        # Shown even when the starter set fails: the team exists and this is its only key.
        print(f"API key (shown once, store it now): {key}")


def cmd_team_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.core.models import Team

    factory = make_session_factory(make_engine(settings().database_url))
    with factory() as session:
        teams = session.scalars(select(Team).order_by(Team.id)).all()
        print(f"{'ID':>4}  {'NAME':<30} TIMEZONE")
        for team in teams:
            print(f"{team.id:>4}  {team.name:<30} {team.timezone}")
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.core.keys import hash_key
    from server.core.models import ApiKey
    from server.core.services import audit
    from server.core.services.keys import create_key, key_summary
    from server.core.services.teams import ensure_user, find_team

    factory = make_session_factory(make_engine(settings().database_url))
    with transaction(factory) as session:
        team = find_team(session, args.team)
        user = ensure_user(session, team, args.email, name=args.user_name, role=args.role)
        key = create_key(session, user, name=args.label, scope=args.scope)
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one()
        audit.record_for(session, team.id, "key.create", row.id, None, key_summary(row, user.email))
        acts = f"{args.scope} scope" if args.scope else user.role
        print(f"key created for {user.email} ({acts}) in team {team.name!r}")
    print(f"API key (shown once, store it now): {key}")
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    from server.core.services import audit
    from server.core.services.keys import key_summary, revoke_key

    factory = make_session_factory(make_engine(settings().database_url))
    with transaction(factory) as session:
        row = revoke_key(session, args.key)
        if session.is_modified(row):
            before = {**key_summary(row), "revoked": False}
            audit.record_for(session, row.team_id, "key.revoke", row.id, before,
                             {**before, "revoked": True})
        print(f"key {row.prefix}… revoked")
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.core.models import ApiKey, User
    from server.core.services.teams import find_team

    factory = make_session_factory(make_engine(settings().database_url))
    with factory() as session:
        team = find_team(session, args.team)
        rows = session.execute(
            select(ApiKey, User.email)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.team_id == team.id)
            .order_by(ApiKey.id)
        ).all()
        print(f"{'PREFIX':<12} {'USER':<30} {'LABEL':<24} {'SCOPE':<8} STATUS")
        for key, email in rows:
            status = "revoked" if key.revoked_at else "active"
            scope = key.scope or "-"
            print(f"{key.prefix:<12} {email:<30} {key.name:<24} {scope:<8} {status}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from server.core.demo import load_demo

    factory = make_session_factory(make_engine(settings().database_url))
    result = load_demo(factory)
    base = f"http://{args.host}:{args.port}"
    print(
        ("demo team created: " if result.created else "demo team already present: ")
        + result.summary
    )
    print(f"demo API key: {result.key}")
    print(f"API docs:     {base}/schema")
    print(f"console:      {base}/console (sign in with the demo API key)")
    print(f"try:          curl -H 'Authorization: Bearer {result.key}' {base}/api/v1/deals")
    return 0


def add_commands(commands: Any) -> None:
    """Add serve, migrate, team, key and demo to the ``dealflow`` parser."""
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not migrate the database first"
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(func=cmd_serve)

    commands.add_parser("migrate", help="create or upgrade the database schema").set_defaults(
        func=cmd_migrate
    )

    team = commands.add_parser("team", help="manage teams").add_subparsers(
        dest="team_command", required=True, metavar="ACTION"
    )
    create = team.add_parser(
        "create", help="create a team with an admin user and print its API key"
    )
    create.add_argument("name")
    create.add_argument(
        "--admin-email", default=None, help="the admin's email (default admin@<name>.local)"
    )
    create.add_argument("--timezone", default="UTC", help="IANA timezone (default UTC)")
    create.add_argument(
        "--starter", action="store_true", help="also load the shipped workflows (workflows/*.json)"
    )
    create.set_defaults(func=cmd_team_create)
    team.add_parser("list", help="list teams").set_defaults(func=cmd_team_list)

    key = commands.add_parser("key", help="manage API keys").add_subparsers(
        dest="key_command", required=True, metavar="ACTION"
    )
    kcreate = key.add_parser("create", help="create an API key for a user (created if new)")
    kcreate.add_argument("--team", required=True, help="team name or id")
    kcreate.add_argument("--email", required=True, help="the user's email")
    kcreate.add_argument("--user-name", default=None, help="name for a new user")
    kcreate.add_argument(
        "--role", default="member", choices=["admin", "member"], help="role for a new user"
    )
    kcreate.add_argument("--label", default="", help="what the key is for")
    kcreate.add_argument(
        "--scope",
        default=None,
        choices=["ingest", "read"],
        help="narrow the key: ingest (create/upsert records, post webhooks) or read (read only)",
    )
    kcreate.set_defaults(func=cmd_key_create)
    revoke = key.add_parser("revoke", help="revoke a key, given whole or by its prefix")
    revoke.add_argument("key")
    revoke.set_defaults(func=cmd_key_revoke)
    klist = key.add_parser("list", help="list a team's keys (prefixes only)")
    klist.add_argument("--team", required=True, help="team name or id")
    klist.set_defaults(func=cmd_key_list)

    demo = commands.add_parser(
        "demo", help="create the demo team and sample data; print a fresh demo key"
    )
    demo.add_argument("--host", default="127.0.0.1", help="host shown in the printed URLs")
    demo.add_argument("--port", type=int, default=8000, help="port shown in the printed URLs")
    demo.set_defaults(func=cmd_demo)

"""The ``dealflow`` command: serve, migrate, teams, keys, workflows, runs and the demo team."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from server.cli import admin, audit, executions, groups, hooks, plugins, runs, worker, workflows
from server.cli import report, schedule, secret, users
from server.core.errors import DealflowError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dealflow", description="Workflow automation server for sales and marketing teams."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.add_commands(commands)
    groups.add_commands(commands, workflows.add_commands(commands))
    runs.add_commands(commands)
    executions.add_commands(commands)
    audit.add_commands(commands)
    hooks.add_commands(commands)
    secret.add_commands(commands)
    schedule.add_commands(commands)
    worker.add_commands(commands)
    plugins.add_commands(commands)
    report.add_commands(commands)
    users.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "admin_email", "") is None:
        slug = "".join(c for c in args.name.lower() if c.isalnum()) or "team"
        args.admin_email = f"admin@{slug}.local"
    try:
        return int(args.func(args))
    except DealflowError as exc:
        print(f"dealflow: error: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`dealflow runs | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        # Files named on the command line: missing, unreadable, not writable.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"dealflow: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a CLI reports, it does not dump a traceback
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            print(f"dealflow: error: cannot use the database: {exc.orig}", file=sys.stderr)
            print("  (is DATABASE_URL right? run `dealflow migrate` first)", file=sys.stderr)
            return 1
        raise


__all__ = ["build_parser", "main"]

"""``dealflow secret rotate``: re-encrypt every stored secret under the current secret key."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Engine, Table, select, update

from server.cli.common import settings
from server.core.crypto import HasSecretKey, is_current, reencrypt
from server.core.db import make_engine
from server.core.errors import ConfigError

SUFFIX = "_encrypted"
"""Every column whose name ends so holds a token of ``server.core.crypto``."""
BATCH = 500
"""Rows read, re-encrypted and committed at a time."""


@dataclass
class Tally:
    """What one rotation did to one column."""

    column: str
    rotated: int = 0
    current: int = 0
    changed: int = 0
    """Rows written by someone else between the read and the write (already current)."""
    unreadable: int = 0


def encrypted_columns() -> list[tuple[Table, Column[Any]]]:
    """Each table's encrypted columns, found by name, so a new one is never forgotten."""
    from server.core.models import Base

    return [
        (table, column)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith(SUFFIX)
    ]


def rotate_column(
    engine: Engine, table: Table, column: Column[Any], keys: HasSecretKey, batch: int = BATCH
) -> Tally:
    """Re-encrypt ``column`` of every row of ``table`` under the current key, ``batch`` rows
    per transaction. A row is written only if it still holds the token read, so a value
    saved meanwhile (under the current key, by a server already restarted) is kept."""
    (key,) = table.primary_key.columns
    tally = Tally(f"{table.name}.{column.name}")
    last: Any = None
    while True:
        query = select(key, column).order_by(key).limit(batch)
        if last is not None:
            query = query.where(key > last)
        # Read, then write in a short transaction of its own: no lock is held while decrypting.
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        fresh: list[tuple[Any, str, str]] = []
        for row_id, token in rows:
            if token is None or is_current(keys, token):
                tally.current += 1
                continue
            try:
                fresh.append((row_id, token, reencrypt(keys, token)))
            except ConfigError:
                tally.unreadable += 1
        if fresh:
            with engine.begin() as conn:
                for row_id, token, new in fresh:
                    done = conn.execute(
                        update(table).where(key == row_id, column == token).values({column: new})
                    )
                    if done.rowcount == 1:
                        tally.rotated += 1
                    else:
                        tally.changed += 1
        if len(rows) < batch:
            return tally
        last = rows[-1][0]


def rotate_all(engine: Engine, keys: HasSecretKey, batch: int = BATCH) -> list[Tally]:
    """Rotate every encrypted column; each tally says what happened to one of them."""
    return [
        rotate_column(engine, table, column, keys, batch)
        for table, column in encrypted_columns()
    ]


def cmd_rotate(args: argparse.Namespace) -> int:
    config = settings()
    if not config.secret_key:
        raise ConfigError(
            "DEALFLOW_SECRET_KEY is not set: set it to the new key, and the old one as "
            "DEALFLOW_SECRET_KEY_PREVIOUS, then run `dealflow secret rotate` again"
        )
    engine = make_engine(config.database_url)
    try:
        tallies = rotate_all(engine, config, args.batch)
    finally:
        engine.dispose()
    for tally in tallies:
        print(
            f"{tally.column}: {tally.rotated} re-encrypted, {tally.current + tally.changed} "
            f"already under the current key, {tally.unreadable} unreadable"
        )
    unreadable = sum(t.unreadable for t in tallies)
    if unreadable:
        raise ConfigError(
            f"{unreadable} stored secret(s) cannot be decrypted with DEALFLOW_SECRET_KEY nor "
            "any key of DEALFLOW_SECRET_KEY_PREVIOUS: add the key that encrypted them to "
            "DEALFLOW_SECRET_KEY_PREVIOUS and run `dealflow secret rotate` again (the others "
            "were re-encrypted; keep the previous keys until it reports 0 unreadable)"
        )
    print(
        "done: every stored secret is under the current key; DEALFLOW_SECRET_KEY_PREVIOUS "
        "may be removed once every process runs with the new key"
    )
    return 0


def _batch(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be between 1 and 10000")
    return value


def add_commands(commands: Any) -> None:
    """Register the ``secret`` command."""
    secret = commands.add_parser(
        "secret", help="manage the key that encrypts stored secrets"
    ).add_subparsers(dest="secret_command", required=True, metavar="ACTION")
    rotate = secret.add_parser(
        "rotate",
        help="re-encrypt every stored credential and webhook secret under DEALFLOW_SECRET_KEY "
        "(the old key set as DEALFLOW_SECRET_KEY_PREVIOUS)",
    )
    rotate.add_argument(
        "--batch", type=_batch, default=BATCH, help=f"rows per transaction (default {BATCH})"
    )
    rotate.set_defaults(func=cmd_rotate)

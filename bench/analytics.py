"""Analytics reports over 1,000,000 outreach rows and 200,000 deals, on SQLite and PostgreSQL.

    .venv/bin/python bench/analytics.py [--outreach 1000000] [--deals 200000] [--repeats 3]
        [--postgres postgresql://postgres@127.0.0.1/postgres] [--no-sqlite]

Fills a fresh SQLite file and a fresh PostgreSQL database (created here, dropped at the end)
with one measured team holding all the rows counted below, spread over the last 365 days, and
two other teams with a tenth as many outreach rows each; then times every report over the
whole year (median of --repeats runs) through the same service functions the API calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from server.core.db import make_engine, normalize_url
from server.core.scope import Actor, TeamScope
from server.core.services import analytics
from server.core.services.teams import create_team, ensure_user
from server.migrations import upgrade

DAYS = 365
USERS = 20
CHUNK = 20_000
PLATFORMS = ["Upwork", "Guru", "PeoplePerHour", "Freelancer", "Toptal"]
NEXT = {"lead": "mql", "mql": "sal", "sal": "opportunity", "opportunity": "customer"}


class Loader:
    """Bulk rows into a table: COPY on PostgreSQL, the driver's executemany on SQLite."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"

    def __call__(self, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]) -> None:
        with self.engine.begin() as conn:
            raw = conn.connection.driver_connection
            if self.sqlite:
                marks = ", ".join("?" * len(columns))
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                batch: list[tuple[Any, ...]] = []
                for row in rows:
                    batch.append(tuple(self._sqlite(v) for v in row))
                    if len(batch) >= CHUNK:
                        raw.executemany(sql, batch)
                        batch.clear()
                if batch:
                    raw.executemany(sql, batch)
            else:
                sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                with raw.cursor() as cur, cur.copy(sql) as copy:
                    for row in rows:
                        copy.write_row(row)

    @staticmethod
    def _sqlite(value: Any) -> Any:
        # The storage format of SQLAlchemy's SQLite DateTime: naive UTC, microseconds always.
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value)
        return value


def fill(engine: Engine, outreach: int, deals: int) -> tuple[int, int]:
    """Teams, users and rows; the measured team's id and its admin's id."""
    upgrade(engine)
    teams: list[tuple[int, list[int], int]] = []  # team id, user ids, outreach rows
    with Session(engine) as session:
        for n, (name, share) in enumerate([("Bench", 1.0), ("Other A", 0.1), ("Other B", 0.1)]):
            team, admin, _ = create_team(
                session, name, admin_email=f"admin{n}@bench.test", timezone="Europe/Berlin",
                issue_key=False,
            )  # fmt: skip
            team.settings = {
                "outreach_costs": {"platform": 12, "email": 0.5, "call": 3, "social": 2},
                "stage_sla_hours": {"mql": 72, "sal": 24},
            }
            users = [admin.id] + [
                ensure_user(session, team, f"u{i}@{n}.bench.test", name=f"U{i}", role="member").id
                for i in range(USERS - 1)
            ]
            teams.append((team.id, users, int(outreach * share)))
        session.commit()
    load = Loader(engine)
    rng = random.Random(11)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first_outreach = 1
    first_contact = 1
    for team_id, users, count in teams:
        team_deals = deals if team_id == teams[0][0] else deals // 10

        def outreach_rows() -> Iterator[tuple[Any, ...]]:
            for _ in range(count):
                code = rng.randrange(1, 6)
                at = now - dt.timedelta(seconds=rng.randrange(DAYS * 86400))
                cost = Decimal(rng.randrange(0, 3000)) / 100 if rng.random() < 0.3 else None
                value = rng.choice(PLATFORMS) if code == 1 else f"id-{rng.randrange(999)}"
                yield (team_id, code, value, at, rng.choice(users), users[0], cost, now, now)

        load(
            "outreach",
            ["team_id", "type", "value", "occurred_at", "user_id", "created_by_id", "cost",
             "created_at", "updated_at"],
            outreach_rows(),
        )  # fmt: skip
        contacts = count * 3 // 10

        def contact_rows() -> Iterator[tuple[Any, ...]]:
            for n in range(contacts):
                source = first_outreach + rng.randrange(count) if rng.random() < 0.9 else None
                yield (team_id, f"c{n}", source, "{}", users[0], now, now)

        load(
            "contacts",
            ["team_id", "name", "outreach_id", "custom", "created_by_id", "created_at",
             "updated_at"],
            contact_rows(),
        )

        def deal_rows() -> Iterator[tuple[Any, ...]]:
            for n in range(team_deals):
                contact = first_contact + rng.randrange(contacts) if rng.random() < 0.85 else None
                source = None if contact else first_outreach + rng.randrange(count)
                status = rng.choice(["open", "open", "won", "lost", "cancelled"])
                amount = Decimal(rng.randrange(100, 10_000_000)) / 100
                yield (
                    team_id, f"d{n}", contact, source, amount, rng.choice(["EUR", "EUR", "USD"]),
                    "proposal", status, rng.choice(users), "{}", users[0], now, now,
                )  # fmt: skip

        load(
            "deals",
            ["team_id", "title", "contact_id", "outreach_id", "amount", "currency", "stage",
             "status", "owner_id", "custom", "created_by_id", "created_at", "updated_at"],
            deal_rows(),
        )  # fmt: skip
        leads = contacts // 3
        histories: list[list[tuple[str | None, str, dt.datetime, str | None]]] = []

        def lead_rows() -> Iterator[tuple[Any, ...]]:
            for n in range(leads):
                at = now - dt.timedelta(seconds=rng.randrange(DAYS * 86400))
                stage, history = "lead", [(None, "lead", at, None)]
                while stage in NEXT and rng.random() < 0.6:
                    at += dt.timedelta(seconds=rng.randrange(3600, 10 * 86400))
                    if stage in ("sal", "opportunity") and rng.random() < 0.2:
                        history.append((stage, "recycled", at, rng.choice(["budget", "timing"])))
                        stage = "recycled"
                        break
                    history.append((stage, NEXT[stage], at, None))
                    stage = NEXT[stage]
                histories.append(history)
                yield (team_id, first_contact + n, stage, at, 0, "{}", users[0], now, now)

        load(
            "leads",
            ["team_id", "contact_id", "stage", "stage_changed_at", "score", "custom",
             "created_by_id", "created_at", "updated_at"],
            lead_rows(),
        )  # fmt: skip
        with engine.connect() as conn:
            first_lead = conn.execute(
                text("SELECT min(id) FROM leads WHERE team_id = :t"), {"t": team_id}
            ).scalar_one()

        def change_rows() -> Iterator[tuple[Any, ...]]:
            for n, history in enumerate(histories):
                for old, new, at, reason in history:
                    yield (team_id, first_lead + n, old, new, at, reason, now, now)

        load(
            "lead_stage_changes",
            ["team_id", "lead_id", "from_stage", "to_stage", "at", "reason", "created_at",
             "updated_at"],
            change_rows(),
        )  # fmt: skip
        first_outreach += count
        first_contact += contacts
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))  # planner statistics, as a live database would have
        conn.commit()
    return teams[0][0], teams[0][1][0]


def reports(scope: TeamScope, date_from: dt.date, date_to: dt.date) -> dict[str, Callable[[], Any]]:
    span = {"date_from": date_from, "date_to": date_to}
    return {
        "volume by week": lambda: analytics.volume(scope, bucket="week", **span),
        "volume by day and type": lambda: analytics.volume(scope, bucket="day", by="type", **span),
        "volume by month and user": lambda: analytics.volume(
            scope, bucket="month", by="user", **span
        ),
        "channels": lambda: analytics.channels(scope, currency="EUR", **span),
        "users": lambda: analytics.users(scope, currency="EUR", **span),
        "funnel": lambda: analytics.funnel(scope, **span),
    }


def measure(url: str, backend: str, outreach: int, deals: int, repeats: int) -> None:
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        team_id, user_id = fill(engine, outreach, deals)
        print(f"{backend}: filled in {time.perf_counter() - started:.0f} s")
        with Session(engine) as session:
            scope = TeamScope(session, Actor(team_id, user_id))
            today = dt.datetime.now(dt.UTC).date()
            date_from, date_to = today - dt.timedelta(days=DAYS), today + dt.timedelta(days=1)
            for name, run in reports(scope, date_from, date_to).items():
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    result = run()
                    times.append(time.perf_counter() - t0)
                    session.rollback()
                median = statistics.median(times)
                print(f"{backend:<11} {name:<26} {median:8.2f} s   {summary(result)}")
    finally:
        engine.dispose()


def summary(result: Any) -> str:
    if isinstance(result, analytics.VolumeOut):
        return f"{result.total:,} outreach in {len(result.rows):,} rows"
    if isinstance(result, analytics.ChannelsOut):
        t = result.total
        return (
            f"{t.outreach:,} outreach, {t.contacts:,} contacts, {t.deals:,} deals, "
            f"{t.deals_won:,} won"
        )
    if isinstance(result, analytics.UsersOut):
        return f"{len(result.users)} users, {result.total.deals_won:,} won"
    entries = sum(s.entered for s in result.stages)
    return f"{entries:,} stage entries, {len(result.recycles)} recycle rows"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--outreach", type=int, default=1_000_000)
    parser.add_argument("--deals", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    args = parser.parse_args()
    print(f"{args.outreach:,} outreach and {args.deals:,} deals in the measured team; "
          f"median of {args.repeats} runs over {DAYS} days")  # fmt: skip
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            measure(f"sqlite:///{path}", "sqlite", args.outreach, args.deals, args.repeats)
    if args.postgres:
        admin = make_engine(args.postgres).execution_options(isolation_level="AUTOCOMMIT")
        name = f"dealflow_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(normalize_url(args.postgres)).set(database=name)
        try:
            measure(url.render_as_string(hide_password=False), "postgresql", args.outreach,
                    args.deals, args.repeats)  # fmt: skip
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()

"""Recompute throughput: the shipped probability ladder re-run over N open deals.

    .venv/bin/python bench/recompute.py --deals 100000 [--postgres postgresql://postgres@127.0.0.1/postgres]

Deals get random factor values and a wrong stored probability, so every one changes. Prints
deals per second and the peak memory of this process, for SQLite (a temporary file) and,
with --postgres, a temporary database on that server.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from server.core.db import make_engine, normalize_url
from server.core.models import Deal
from server.core.runtime import build_runtime
from server.core.scope import Actor, TeamScope
from server.core.services import all as _services  # noqa: F401 - registers the record types
from server.core.services import groups
from server.core.services.teams import create_team
from server.core.starter import STARTER_DOMAINS, load_starter
from server.migrations import upgrade
from server.settings import Settings


def fill(url: str, deals: int) -> tuple:
    db = make_engine(url)
    upgrade(db)
    runtime = build_runtime(Settings(database_url=url), db)
    with runtime.sessions() as session:
        team, user, _ = create_team(session, "Bench", admin_email="bench@example.com", issue_key=False)
        session.commit()
        scope = TeamScope(session, Actor(team.id, user.id), runtime.engine)
        load_starter(scope)
        team_id, user_id = team.id, user.id
    rng = random.Random(7)
    stages, kinds, relations = (STARTER_DOMAINS[k] for k in STARTER_DOMAINS)
    with db.begin() as conn:
        for start in range(0, deals, 10_000):
            conn.execute(insert(Deal), [
                {"team_id": team_id, "title": f"deal {n}", "amount": rng.randrange(1000, 90000),
                 "currency": "EUR", "stage": rng.choice(stages), "status": "open", "probability": 1,
                 "created_by_id": user_id, "owner_id": user_id,
                 "custom": {"proposal_type": rng.choice(kinds), "relationship": rng.choice(relations)}}
                for n in range(start, min(deals, start + 10_000))
            ])
    return runtime, team_id, user_id


def run(url: str, deals: int) -> tuple[float, int]:
    runtime, team_id, user_id = fill(url, deals)
    try:
        with runtime.sessions() as session:
            scope = TeamScope(session, Actor(team_id, user_id), runtime.engine)
            started = time.perf_counter()
            result = groups.recompute(scope, "deal_probability")
            elapsed = time.perf_counter() - started
        assert result.deals_changed == deals, result
        return deals / elapsed, result.deals_changed
    finally:
        runtime.close()
        runtime.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    args = parser.parse_args()
    print(f"{'backend':<10} {'deals':>9} {'deals/s':>9} {'seconds':>8}")
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            rate, _ = run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.deals)
            print(f"{'sqlite':<10} {args.deals:>9,} {rate:>9,.0f} {args.deals / rate:>8.1f}")
    if args.postgres:
        admin = make_engine(args.postgres).execution_options(isolation_level="AUTOCOMMIT")
        name = f"dealflow_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(normalize_url(args.postgres)).set(database=name).render_as_string(hide_password=False)
            rate, _ = run(url, args.deals)
            print(f"{'postgresql':<10} {args.deals:>9,} {rate:>9,.0f} {args.deals / rate:>8.1f}")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()

"""Console page times: every console page over HTTP with 100,000 runs and 10,000 deals on SQLite.

    .venv/bin/python bench/console.py [--runs 100000] [--deals 10000] [--repeats 20]

Fills a fresh SQLite file: a team with the shipped workflows, 20 deals saved through the API
(so the engine writes real events, runs and evaluations), then copies of those runs up to
``--runs`` spread over the last 7 days, ``--deals`` open and closed deals with close dates
over the next 12 months and 5 owners, and 10,000 outreach rows over the last 90 days, all
with Core bulk inserts. Serves the app with uvicorn on 127.0.0.1 in this process, signs in
to the console with the team's key, and GETs each page ``--repeats`` times; prints the
median and the 95th percentile per page. Charts are kept once drawn (the same data gives the
same picture); their rows marked ``(drawn)`` empty that cache before each request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import statistics
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, insert, select

from server.app import create_app
from server.core import charts
from server.core.db import make_engine
from server.core.models import Deal, Event, Outreach, Run, Team, utcnow
from server.core.scope import Actor, TeamScope
from server.core.services.teams import create_team, ensure_user
from server.core.starter import STARTER_DOMAINS, load_starter, shipped_documents
from server.migrations import upgrade
from server.settings import Settings

BATCH = 10_000
GOAL_MS = 300


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def seed_runs(app: Any, engine: Any, url: str, key: str, team_id: int, runs: int) -> int:
    """Deals saved through the API, then their runs copied until the team has ``runs``."""
    headers = {"Authorization": f"Bearer {key}"}
    rng = random.Random(7)
    kinds, relations = STARTER_DOMAINS["deal.custom.proposal_type"], STARTER_DOMAINS[
        "deal.custom.relationship"]
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for n in range(20):
            resp = client.post("/api/v1/deals", json={
                "title": f"seed {n}", "stage": rng.choice(["proposal", "negotiation"]),
                "amount": 1000 + n, "currency": "EUR",
                "custom": {"proposal_type": rng.choice(kinds),
                           "relationship": rng.choice(relations)},
            })
            resp.raise_for_status()
    assert app.state.runtime.runner.join(30)
    with engine.begin() as conn:
        samples = [dict(r._mapping) for r in conn.execute(
            select(Run).where(Run.team_id == team_id).order_by(Run.id))]
        have = len(samples)
        now = utcnow()
        wanted = runs - have
        for start in range(0, wanted, BATCH):
            rows = []
            for n in range(start, min(wanted, start + BATCH)):
                row = dict(samples[n % have])
                row.pop("id")
                # Oldest first, so the newest sample runs stay the newest rows.
                row["created_at"] = now - dt.timedelta(days=7) + dt.timedelta(
                    seconds=n * 7 * 86400 / max(1, wanted))
                rows.append(row)
            conn.execute(insert(Run), rows)
        total = conn.scalar(select(func.count()).select_from(Run).where(Run.team_id == team_id))
        latest = conn.scalar(select(func.max(Run.id)).where(Run.team_id == team_id))
    assert total == runs, total
    return int(latest)


def seed_deals(engine: Any, team_id: int, owners: list[int], deals: int) -> None:
    rng = random.Random(11)
    today = dt.date.today()
    stages = STARTER_DOMAINS["deal.stage"]
    with engine.begin() as conn:
        for start in range(0, deals, BATCH):
            rows = []
            for n in range(start, min(deals, start + BATCH)):
                amount = Decimal(rng.randrange(100_000, 9_000_000)) / 100
                probability = rng.choice([10, 20, 40, 60, 80, 90])
                rows.append({
                    "team_id": team_id, "title": f"bench {n}", "amount": amount,
                    "currency": "EUR" if rng.random() < 0.8 else "USD",
                    "stage": rng.choice(stages),
                    "status": rng.choice(["open", "open", "open", "won", "lost"]),
                    "probability": probability,
                    "weighted_amount": (amount * probability / 100).quantize(Decimal("0.01")),
                    "expected_close_date": today + dt.timedelta(days=rng.randrange(0, 365)),
                    "created_by_id": owners[0], "owner_id": rng.choice(owners),
                    # The ladder's factors, as a team using it has them on its deals.
                    "custom": {
                        "proposal_type": rng.choice(STARTER_DOMAINS["deal.custom.proposal_type"]),
                        "relationship": rng.choice(STARTER_DOMAINS["deal.custom.relationship"]),
                    },
                })
            conn.execute(insert(Deal), rows)


def seed_outreach(engine: Any, team_id: int, users: list[int], count: int) -> None:
    rng = random.Random(13)
    now = utcnow()
    with engine.begin() as conn:
        for start in range(0, count, BATCH):
            conn.execute(insert(Outreach), [{
                "team_id": team_id, "type": (code := rng.randrange(1, 6)),
                "value": rng.choice(["Upwork", "Guru"]) if code == 1 else None,
                "occurred_at": now - dt.timedelta(seconds=rng.randrange(90 * 86400)),
                "user_id": rng.choice(users), "created_by_id": users[0],
                "cost": Decimal(rng.randrange(0, 2000)) / 100,
            } for _ in range(start, min(count, start + BATCH))])


CSRF: list[str] = [""]
"""The signed-in session's CSRF token, read from the editor page."""


def sign_in(client: httpx.Client, key: str) -> None:
    page = client.get("/console/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page
    resp = client.post("/console/sign-in", data={"csrf_token": token.group(1), "key": key})
    assert resp.status_code == 303, resp.text


def measure(client: httpx.Client, path: str, repeats: int,
            fresh: bool = False, post: Any = None) -> tuple[float, float, int]:
    """Median and p95 in ms of GET ``path`` (or a POST of the JSON text ``post``, with the
    session's CSRF header, as the editor's tools send it), and its size; ``fresh``: with the
    charts' cache emptied before each request, so each one draws its chart."""
    def call() -> httpx.Response:
        if post is None:
            return client.get(path)
        return client.post(path, content=post, headers={"Content-Type": "application/json",
                                                         "X-CSRF-Token": CSRF[0]})

    call()  # warm up (templates compiled, caches filled)
    times = []
    size = 0
    for _ in range(repeats):
        if fresh:
            charts._CACHE.clear()
        start = time.perf_counter()
        resp = call()
        times.append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
        size = len(resp.content)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="dealflow-console-bench-"))
    url = f"sqlite:///{directory / 'dealflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    app = create_app(Settings(database_url=url, secret_key="bench-secret-key",
                              rate_limit_per_second=0), engine=engine)
    sessions = app.state.runtime.sessions
    with sessions() as session:
        team, admin, key = create_team(session, "Bench", admin_email="admin@bench.test",
                                       timezone="Europe/Berlin")
        owners = [admin.id] + [
            ensure_user(session, team, f"rep{n}@bench.test", name=f"Rep {n}", role="member").id
            for n in range(4)
        ]
        session.commit()
        team_id = team.id
        load_starter(TeamScope(session, Actor(team_id, admin.id), app.state.runtime.engine))
    assert key is not None

    started = time.perf_counter()
    server, thread, base = serve(app)
    try:
        latest_run = seed_runs(app, engine, base, key, team_id, args.runs)
        seed_deals(engine, team_id, owners, args.deals)
        seed_outreach(engine, team_id, owners, 10_000)
        with engine.connect() as conn:
            deals = conn.scalar(select(func.count()).select_from(Deal)
                                .where(Deal.team_id == team_id))
            events = conn.scalar(select(func.count()).select_from(Event))
            name = conn.scalar(select(Team.name).where(Team.id == team_id))
        print(f"team {name!r}: {args.runs:,} runs ({events} events), {deals:,} deals, "
              f"10,000 outreach; filled in {time.perf_counter() - started:.0f} s")

        pages = [
            "/console/workflows",
            "/console/workflows/deal-probability-60",
            "/console/runs",
            "/console/runs?workflow=deal-probability-60",
            "/console/runs?status=error",
            "/console/runs?entity=deal&record_id=7",
            f"/console/runs?since={(dt.datetime.now() - dt.timedelta(days=1)).strftime('%Y-%m-%dT%H:%M')}",
            f"/console/runs/{latest_run}",
            "/console/records?entity=deal&q=bench%2012",
            "/console/forecast",
            "/console/forecast?group_by=owner",
            "/console/forecast?group_by=stage",
            "/console/forecast/chart.svg?group_by=owner",
            "/console/analytics",
            "/console/analytics/funnel.svg",
            "/console/analytics/channels.csv",
            "/console/settings",
            # The workflow tools' pages, when they are there.
            "/console/workflows/deal-probability-60/versions",
            "/console/groups/deal_probability",
        ]
        with httpx.Client(base_url=base, timeout=60) as client:
            sign_in(client, key)
            editor = client.get("/console/workflows/deal-probability-60").text
            CSRF[0] = re.search(r'data-csrf="([^"]+)"', editor).group(1)
            first = client.get("/console/runs").text
            later = re.search(r'rel="next" href="([^"]+)"', first)
            if later:  # the second page of the explorer, through its cursor
                pages.insert(4, later.group(1).replace("&amp;", "&"))
            print(f"{'page':<46} {'median':>9} {'p95':>9} {'bytes':>9}")
            for path in pages:
                if client.get(path).status_code == 404:
                    print(f"{path:<46} {'(no such page)':>29}")
                    continue
                for fresh in (False, True) if ".svg" in path else (False,):
                    median, p95, size = measure(client, path, args.repeats, fresh)
                    flag = "" if p95 < GOAL_MS else f"  over {GOAL_MS} ms"
                    shown = path + (" (drawn)" if fresh else "")
                    print(f"{shown:<46} {median:7.1f}ms {p95:7.1f}ms {size:>9,}{flag}")
            # The editor's tools, posted as its script posts them.
            step = json.dumps(next(d for d in shipped_documents()
                                   if d["id"] == "deal-probability-60"))
            tools = [
                ("/console/workflows/deal-probability-60/check", step),
                ("/console/workflows/deal-probability-60/dry-run",
                 json.dumps({"document": step, "record_id": 7})),
                ("/console/groups/deal_probability/preview", json.dumps({"document": step})),
            ]
            for path, body in tools:
                median, p95, size = measure(client, path, args.repeats, post=body)
                flag = "" if p95 < GOAL_MS else f"  over {GOAL_MS} ms"
                print(f"{'POST ' + path:<46} {median:7.1f}ms {p95:7.1f}ms {size:>9,}{flag}")
    finally:
        server.should_exit = True
        thread.join(15)
        engine.dispose()


if __name__ == "__main__":
    main()

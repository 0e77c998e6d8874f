"""Events per second through the engine (no HTTP) with 10 to 10,000 workflows over 100 teams.

The measured team always has the same 10 deal workflows listening to record_saved. Half of
the others belong to the measured team too, on other entities and trigger types (contacts,
lead score thresholds, deal stage changes); the other half are spread over the remaining 99
teams and all four kinds. If matching reads only the index entry of the event's team, entity
and trigger type, the cost per event stays flat as the total grows.

    .venv/bin/python bench/matching.py [--events 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from server.core.change import Change
from server.core.db import make_engine, make_session_factory
from server.core.models import Deal, Team, User, Workflow
from server.core.plugins import load_registry
from server.core.engine import WorkflowEngine
from server.core.scope import Actor, TeamScope
from server.core.services import all as _services  # noqa: F401 - registers record types
from server.core.services.deals import RECORD
from server.migrations import upgrade

TEAMS = 100
OWN = 10  # deal/record_saved workflows of the measured team
OTHER_KINDS = [("contact", "record_saved"), ("lead", "score_threshold"), ("deal", "stage_changed"),
               ("deal", "record_saved")]


def document(key: str, entity: str, trigger: str, n: int) -> dict:
    trig = {"type": trigger}
    if trigger == "score_threshold":
        trig["threshold"] = 50
    return {
        "id": key, "name": key, "entity": entity, "trigger": trig,
        "condition": f"record.status == 'open' && record.amount > `{n * 10}`" if entity == "deal"
        else "record.score > `10`",
        "actions": [{"type": "field_update", "set": {f"custom.f{n % 50}": "x"}}],
    }


def setup(url: str, total: int) -> tuple:
    db = make_engine(url)
    upgrade(db)
    sessions = make_session_factory(db)
    with sessions() as s:
        s.execute(insert(Team), [{"id": i, "name": f"team {i}", "timezone": "UTC", "settings": {}}
                                 for i in range(1, TEAMS + 1)])
        s.execute(insert(User), [{"id": i, "team_id": i, "name": "u", "email": f"u{i}@x.test", "role": "admin"}
                                 for i in range(1, TEAMS + 1)])
        rows = []
        for n in range(OWN):
            rows.append({"team_id": 1, "key": f"own-{n}", "entity": "deal", "trigger_type": "record_saved",
                         "document": document(f"own-{n}", "deal", "record_saved", n)})
        for n in range(max(0, total - OWN)):
            if n % 2 == 0:  # the measured team, never a deal workflow on record_saved
                team = 1
                entity, trigger = OTHER_KINDS[(n // 2) % (len(OTHER_KINDS) - 1)]
            else:
                team = 2 + n % (TEAMS - 1)
                entity, trigger = OTHER_KINDS[n % len(OTHER_KINDS)]
            rows.append({"team_id": team, "key": f"wf-{n}", "entity": entity, "trigger_type": trigger,
                         "document": document(f"wf-{n}", entity, trigger, n)})
        s.execute(insert(Workflow), rows)
        s.add(Deal(team_id=1, title="bench", amount=5000, currency="USD", stage="proposal", status="open",
                   created_by_id=1, custom={}))
        s.commit()
    return db, sessions


def measure(sessions, events: int) -> float:
    engine = WorkflowEngine(load_registry())
    with sessions() as s:
        scope = TeamScope(s, Actor(team_id=1, user_id=1), engine)
        deal = s.get(Deal, 1)
        record = RECORD.document(deal)
        engine.process(scope, Change(1, "deal", "updated", record, record, ["amount"]), deal)  # warm
        started = time.perf_counter()
        for _ in range(events):
            engine.process(scope, Change(1, "deal", "updated", record, record, ["amount"]), deal)
        elapsed = time.perf_counter() - started
        s.rollback()
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'workflows':>10} {'events/s (median)':>18} {'µs/event':>9}  ratio to 10")
    base = None
    for total in (10, 100, 1_000, 10_000):
        with tempfile.TemporaryDirectory() as tmp:
            _, sessions = setup(f"sqlite:///{Path(tmp) / 'bench.db'}", total)
            rates = [measure(sessions, args.events) for _ in range(args.repeats)]
        rate = statistics.median(rates)
        base = base or rate
        print(f"{total:>10} {rate:>18,.0f} {1e6 / rate:>9.0f}  {rate / base:.2f}")


if __name__ == "__main__":
    main()

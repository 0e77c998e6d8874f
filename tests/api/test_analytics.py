"""Analytics through the HTTP API, checked against figures computed here from the generated data.

The data is random but seeded: outreach around both 2026 DST changes of Europe/Berlin and
around local midnight, contacts and deals sourced from it (some through their contact only),
leads walking the lifecycle with recycles. Every expected figure is computed in plain Python
from those lists, never from the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import assert_problem
from sqlalchemy import Engine

from server.core.db import make_session_factory, transaction
from server.core.models import (
    Communication,
    Contact,
    Deal,
    Lead,
    LeadStageChange,
    Outreach,
    Team,
)
from server.core.services.teams import ensure_user

URL = "/api/v1/analytics"
TZ = "Europe/Berlin"
FROM, TO = "2026-03-02", "2026-11-02"  # Mondays; `to` is exclusive
COSTS = {"platform": 10, "email": 1.5, "call": 4.25}  # social and messenger: no team cost
SLA = {"mql": 48, "sal": 24, "opportunity": 72}
TYPES = {1: "platform", 2: "email", 3: "call", 4: "social", 5: "messenger"}
PLATFORMS = ["Upwork", "Guru", "PeoplePerHour"]
NEXT = {"lead": "mql", "mql": "sal", "sal": "opportunity", "opportunity": "customer"}
REASONS = ["no budget", "bad timing", "went silent"]
FUNNEL = ["lead", "mql", "sal", "opportunity", "customer"]
WINDOWS = [dt.datetime(2026, 2, 20, tzinfo=dt.UTC), dt.datetime(2026, 10, 5, tzinfo=dt.UTC)]


@dataclass
class World:
    """What was generated for one team, as plain values (ids filled in after the insert)."""

    team_id: int
    users: dict[int, str] = field(default_factory=dict)
    outreach: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    leads: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    touches: dict[int, list[dt.datetime]] = field(default_factory=dict)
    """Per contact: the times of its logged communications and its hand-set last contact."""


def _instant(rng: random.Random) -> dt.datetime:
    """A UTC instant in one of two windows around the DST changes (29 March, 25 October 2026);
    half of them within two hours of local midnight."""
    start = rng.choice(WINDOWS)
    day = start + dt.timedelta(days=rng.randrange(0, 45))
    if rng.random() < 0.5:
        hour = rng.choice([21, 22, 23, 0, 1])
    else:
        hour = rng.randrange(0, 24)
    return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))


def generate(engine: Engine, team_id: int, seed: int, n_outreach: int = 160) -> World:
    """Insert a seeded random world for the team through the ORM and return it as plain data."""
    rng = random.Random(seed)
    world = World(team_id)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        team = session.get(Team, team_id)
        assert team is not None
        team.timezone = TZ
        team.settings = {"outreach_costs": COSTS, "stage_sla_hours": SLA}
        for n in range(3):
            email = f"rep{n}@t{team_id}.test"
            user = ensure_user(session, team, email, name=f"Rep {n}", role="member")
            world.users[user.id] = user.name
        user_ids = sorted(world.users)
        creator = user_ids[0]

        rows: list[tuple[dict[str, Any], Any]] = []
        for _ in range(n_outreach):
            code = rng.randrange(1, 6)
            item = {
                "type": code,
                "value": rng.choice(PLATFORMS) if code == 1 else f"handle-{rng.randrange(5)}",
                "email": "x@example.com",
                "phone": "+1 555 0100",
                "occurred_at": _instant(rng),
                "user_id": rng.choice(user_ids),
                "cost": None if rng.random() < 0.6 else Decimal(rng.randrange(0, 5000)) / 100,
            }
            if code == 5 and rng.random() < 0.3:
                item["value"] = None
            row = Outreach(team_id=team_id, created_by_id=creator, description=None, **item)
            session.add(row)
            rows.append((item, row))
        session.flush()
        for item, row in rows:
            item["id"] = row.id
            world.outreach.append(item)

        contact_rows = []
        for n in range(len(world.outreach) + 30):
            if n >= len(world.outreach):
                source = rng.choice(world.outreach)["id"]  # a second contact from one outreach
            else:
                source = world.outreach[n]["id"] if rng.random() < 0.7 else None
            item = {"outreach_id": source}
            row = Contact(team_id=team_id, name=f"c{n}", created_by_id=creator, **item)
            session.add(row)
            contact_rows.append((item, row))
        session.flush()
        for item, row in contact_rows:
            item["id"] = row.id
            world.contacts.append(item)

        deal_rows = []
        for n in range(220):
            contact = rng.choice(world.contacts) if rng.random() < 0.85 else None
            if contact is None:
                outreach_id = rng.choice(world.outreach)["id"] if rng.random() < 0.7 else None
            elif rng.random() < 0.5:
                outreach_id = contact["outreach_id"]  # inherited, as the service does
            else:
                outreach_id = None  # attributed through the contact
            if contact is not None and rng.random() < 0.1:
                outreach_id = rng.choice(world.outreach)["id"]  # its own source wins
            item = {
                "contact_id": contact["id"] if contact else None,
                "outreach_id": outreach_id,
                "amount": Decimal(rng.randrange(1, 10_000_000)) / 100,
                "currency": "EUR" if rng.random() < 0.8 else "USD",
                "status": rng.choice(["open", "won", "won", "lost", "cancelled"]),
            }
            row = Deal(
                team_id=team_id, title=f"d{n}", stage="proposal", created_by_id=creator, **item
            )
            session.add(row)
            deal_rows.append(item)
        session.flush()
        world.deals = deal_rows

        for n in range(70):
            contact = world.contacts[n]
            at = _instant(rng)
            stage = rng.choice(["lead", "lead", "mql"])
            history = [(None, stage, at, None)]
            while rng.random() < 0.8:
                at += dt.timedelta(hours=rng.randrange(1, 90), seconds=rng.randrange(3600))
                options = [NEXT[stage]] if stage in NEXT else []
                if stage in ("sal", "opportunity"):
                    options.append("recycled")
                if stage == "recycled":
                    options = ["lead", "mql"]
                if not options:
                    break
                new = rng.choice(options)
                reason = rng.choice(REASONS) if new == "recycled" else None
                history.append((stage, new, at, reason))
                stage = new
            lead = Lead(
                team_id=team_id,
                contact_id=contact["id"],
                stage=stage,
                stage_changed_at=at,
                created_by_id=creator,
            )
            session.add(lead)
            session.flush()
            world.leads.append({"id": lead.id, "stage": stage, "contact_id": contact["id"]})
            for old, new, when, reason in history:
                change = {"lead_id": lead.id, "from": old, "to": new, "at": when, "reason": reason}
                session.add(
                    LeadStageChange(
                        team_id=team_id,
                        lead_id=lead.id,
                        from_stage=old,
                        to_stage=new,
                        at=when,
                        reason=reason,
                    )
                )
                world.changes.append(change)
            session.flush()
        _touch(session, world, random.Random(seed + 1), creator)
    return world


def _touch(session: Any, world: World, rng: random.Random, creator: int) -> None:
    """Contact the leads' contacts around their stage entries: within the SLA window, at its
    very end, a second after it, or much later (after the lead left, often); for some, the
    last touch is only a hand-set last contact time. A generator of its own keeps the rest of
    the data as it was."""
    for lead in world.leads:
        times: list[dt.datetime] = []
        for change in (c for c in world.changes if c["lead_id"] == lead["id"]):
            hours = SLA.get(change["to"], 24)
            offset = rng.choice(
                [
                    None,
                    dt.timedelta(minutes=rng.randrange(1, 60 * hours)),
                    dt.timedelta(hours=hours),
                    dt.timedelta(hours=hours, seconds=1),
                    dt.timedelta(hours=rng.randrange(hours, 100)),
                ]
            )
            if offset is not None:
                times.append(change["at"] + offset)
        if not times:
            continue
        by_hand = rng.random() < 0.2
        for at in times[:-1] if by_hand else times:
            session.add(
                Communication(
                    team_id=world.team_id,
                    contact_id=lead["contact_id"],
                    channel="call",
                    at=at,
                    created_by_id=creator,
                )
            )
        contact = session.get(Contact, lead["contact_id"])
        # Set by hand, the time is taken as given; logged, it is the latest communication.
        contact.last_contacted_at = times[-1] if by_hand else max(times)
        world.touches[lead["contact_id"]] = times
    session.flush()


# --- the expected figures ---------------------------------------------------------------------

ZONE = ZoneInfo(TZ)


def bounds(date_from: str = FROM, date_to: str = TO) -> tuple[dt.datetime, dt.datetime]:
    def midnight(day: str) -> dt.datetime:
        local = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(0), tzinfo=ZONE)
        return local.astimezone(dt.UTC)

    return midnight(date_from), midnight(date_to)


def in_range(instant: dt.datetime, date_from: str = FROM, date_to: str = TO) -> bool:
    start, end = bounds(date_from, date_to)
    return start <= instant < end


def bucket_of(instant: dt.datetime, bucket: str) -> str:
    day = instant.astimezone(ZONE).date()
    if bucket == "week":
        day -= dt.timedelta(days=day.weekday())
    elif bucket == "month":
        day = day.replace(day=1)
    return day.isoformat()


def expected_volume(world: World, bucket: str, by: str | None) -> list[dict[str, Any]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for o in world.outreach:
        if in_range(o["occurred_at"]):
            key = {"type": o["type"], "user": o["user_id"], None: 0}[by]
            counts[(bucket_of(o["occurred_at"], bucket), key)] += 1
    rows = []
    for (label, key), n in sorted(counts.items()):
        row: dict[str, Any] = {
            "bucket": label, "outreach": n, "type": None, "user_id": None, "user": None
        }  # fmt: skip
        if by == "type":
            row["type"] = TYPES[key]
        elif by == "user":
            row["user_id"], row["user"] = key, world.users[key]
        rows.append(row)
    return rows


def ratio(a: float, b: float) -> float | None:
    return None if not b else round(a / b, 4)


def effect(acc: dict[str, Any]) -> dict[str, Any]:
    revenue, cost = acc["revenue"], acc["cost"]
    return {
        "outreach": acc["outreach"],
        "contacts": acc["contacts"],
        "deals": acc["deals"],
        "deals_won": acc["won"],
        "revenue_won": float(revenue),
        "cost": float(cost),
        "contact_rate": ratio(acc["contacts"], acc["outreach"]),
        "deal_rate": ratio(acc["deals"], acc["contacts"]),
        "win_rate": ratio(acc["won"], acc["deals"]),
        "outreach_to_won": ratio(acc["won"], acc["outreach"]),
        "roi": None if not cost else round(float((revenue - cost) / cost), 4),
    }


def expected_effects(world: World, key_of: Any, currency: str = "EUR") -> dict[Any, dict[str, Any]]:
    """Measures per key of the outreach (``key_of(outreach)``; None leaves it out)."""
    outreach = {
        o["id"]: o for o in world.outreach if in_range(o["occurred_at"]) and key_of(o) is not ...
    }
    contacts = {c["id"]: c for c in world.contacts}
    acc: dict[Any, dict[str, Any]] = defaultdict(zero)
    for o in outreach.values():
        entry = acc[key_of(o)]
        entry["outreach"] += 1
        default = Decimal(str(COSTS.get(TYPES[o["type"]], 0)))
        entry["cost"] += o["cost"] if o["cost"] is not None else default
    for c in world.contacts:
        if c["outreach_id"] in outreach:
            acc[key_of(outreach[c["outreach_id"]])]["contacts"] += 1
    for d in world.deals:
        source = d["outreach_id"]
        if source is None and d["contact_id"] is not None:
            source = contacts[d["contact_id"]]["outreach_id"]
        if source not in outreach:
            continue
        entry = acc[key_of(outreach[source])]
        entry["deals"] += 1
        if d["status"] == "won":
            entry["won"] += 1
            if d["currency"] == currency:
                entry["revenue"] += d["amount"]
    return {k: effect(v) for k, v in acc.items()}


def zero() -> dict[str, Any]:
    return dict(outreach=0, contacts=0, deals=0, won=0, revenue=Decimal(0), cost=Decimal(0))


def total_of(effects: list[dict[str, Any]]) -> dict[str, Any]:
    acc = zero()
    for e in effects:
        for name in ("outreach", "contacts", "deals"):
            acc[name] += e[name]
        acc["won"] += e["deals_won"]
        acc["revenue"] += Decimal(str(e["revenue_won"]))
        acc["cost"] += Decimal(str(e["cost"]))
    return effect(acc)


def strip(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in names}


def sla_verdict(
    world: World,
    lead_id: int,
    entered: dt.datetime,
    stage: str,
    left: dt.datetime | None,
    now: dt.datetime,
) -> bool | None:
    """Whether one stay met its SLA (True), missed it (False) or neither (None), as the
    scheduler judges a breach: the deadline is the entry plus the SLA's hours; in sal and
    opportunity the expected action is a contact during the stay up to the deadline, in the
    other stages leaving by the deadline. Missed: still in the stage after the deadline
    without it. Neither: not decided yet, or a sales stay left in time without contact."""
    deadline = entered + dt.timedelta(hours=SLA[stage])
    left_in_time = left is not None and left <= deadline
    if stage in ("sal", "opportunity"):
        contact_id = next(lead["contact_id"] for lead in world.leads if lead["id"] == lead_id)
        until = left if left_in_time else deadline
        acted = any(entered <= t <= until for t in world.touches.get(contact_id, []))
    else:
        acted = left_in_time
    if acted:
        return True
    stayed_past = (left is not None and left > deadline) or (left is None and now >= deadline)
    return False if stayed_past else None


def expected_funnel(world: World, now: dt.datetime) -> dict[str, Any]:
    start, end = bounds()
    current = Counter(lead["stage"] for lead in world.leads)
    by_lead: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in world.changes:
        by_lead[c["lead_id"]].append(c)
    entered: dict[str, set[int]] = defaultdict(set)
    converted: dict[str, set[int]] = defaultdict(set)
    stays: dict[str, list[int]] = defaultdict(list)
    sla_count: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lead_id, history in by_lead.items():
        history.sort(key=lambda c: c["at"])
        for i, c in enumerate(history):
            if not start <= c["at"] < end:
                continue
            stage = c["to"]
            entered[stage].add(lead_id)
            if stage in NEXT and any(
                later["to"] == NEXT[stage] and c["at"] <= later["at"] < end for later in history
            ):
                converted[stage].add(lead_id)
            following = history[i + 1]["at"] if i + 1 < len(history) else None
            if following is not None:
                seconds = int((following - c["at"]).total_seconds())
                stays[stage].append(seconds)
            if stage in SLA:
                verdict = sla_verdict(world, lead_id, c["at"], stage, following, now)
                if verdict is not None:
                    sla_count[stage][0 if verdict else 1] += 1
    rows = []
    for stage in ("lead", "mql", "sal", "opportunity", "customer", "recycled"):
        n, m = len(entered[stage]), len(converted[stage])
        met, missed = sla_count[stage] if stage in SLA else (None, None)
        rows.append(
            {
                "stage": stage,
                "current": current[stage],
                "entered": n,
                "converted": m if stage in NEXT else None,
                "conversion_rate": ratio(m, n) if stage in NEXT else None,
                "median_hours": (
                    round(statistics.median(stays[stage]) / 3600, 2) if stays[stage] else None
                ),
                "sla_hours": SLA.get(stage),
                "sla_met": met,
                "sla_missed": missed,
                "sla_compliance": ratio(met, met + missed) if stage in SLA else None,
            }
        )
    recycles = Counter(
        (c["from"], c["reason"])
        for c in world.changes
        if c["to"] == "recycled" and start <= c["at"] < end
    )
    return {
        "stages": rows,
        "recycles": [
            {"from_stage": f, "reason": r, "count": n}
            for (f, r), n in sorted(recycles.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
        ],
    }


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def world(engine, team, make_team) -> World:  # type: ignore[no-untyped-def]
    """Team A's world, and another team's world on the same days that must never count."""
    other = make_team("Globex")
    generate(engine, other.team_id, seed=99)
    return generate(engine, team.team_id, seed=7)


def get(api: Any, path: str, **params: str) -> dict[str, Any]:
    resp = api.get(f"{URL}/{path}", params={"from": FROM, "to": TO, **params})
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- outreach volume --------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", ["day", "week", "month"])
@pytest.mark.parametrize("by", [None, "type", "user"])
def test_volume_matches_an_independent_count_in_the_teams_timezone(api, world, bucket, by) -> None:
    # When
    body = get(api, "outreach-volume", bucket=bucket, **({"by": by} if by else {}))
    # Then
    want = expected_volume(world, bucket, by)
    assert body["rows"] == want
    assert body["total"] == sum(r["outreach"] for r in want) > 0
    assert (body["timezone"], body["bucket"], body["by"]) == (TZ, bucket, by)
    assert (body["date_from"], body["date_to"]) == (FROM, TO)
    assert set(r["bucket"] for r in want) <= set(body["buckets"])
    assert body["buckets"] == sorted(body["buckets"])


def test_a_day_bucket_follows_the_local_date_across_daylight_saving(api, team, engine) -> None:
    """22:30 UTC is 23:30 in Berlin in winter (same day) and 00:30 in summer (next day)."""
    # Given
    factory = make_session_factory(engine)
    moments = [
        "2026-03-28T22:30:00+00:00",  # Sat 23:30 CET -> 2026-03-28
        "2026-03-29T22:30:00+00:00",  # Sun 00:30 CEST -> 2026-03-30 (Monday: a new week)
        "2026-03-29T00:59:59+00:00",  # 01:59:59 CET, a second before the change -> 2026-03-29
        "2026-03-29T01:00:00+00:00",  # 03:00 CEST -> 2026-03-29
        "2026-10-24T22:30:00+00:00",  # Sun 00:30 CEST -> 2026-10-25
        "2026-10-25T22:30:00+00:00",  # Sun 23:30 CET -> 2026-10-25
        "2026-10-31T23:30:00+00:00",  # Sun 00:30 CET, 1 November -> November
    ]
    with transaction(factory) as session:
        session.get(Team, team.team_id).timezone = TZ  # type: ignore[union-attr]
        for moment in moments:
            session.add(
                Outreach(
                    team_id=team.team_id, type=2, email="a@b.test", user_id=team.user_id,
                    created_by_id=team.user_id, occurred_at=dt.datetime.fromisoformat(moment),
                )
            )
    # When
    days = get(api, "outreach-volume", bucket="day")["rows"]
    weeks = get(api, "outreach-volume", bucket="week")["rows"]
    months = get(api, "outreach-volume", bucket="month")["rows"]
    # Then
    assert [(r["bucket"], r["outreach"]) for r in days] == [
        ("2026-03-28", 1),
        ("2026-03-29", 2),
        ("2026-03-30", 1),
        ("2026-10-25", 2),
        ("2026-11-01", 1),
    ]
    assert [(r["bucket"], r["outreach"]) for r in weeks] == [
        ("2026-03-23", 3), ("2026-03-30", 1), ("2026-10-19", 2), ("2026-10-26", 1)
    ]
    assert [(r["bucket"], r["outreach"]) for r in months] == [
        ("2026-03-01", 4), ("2026-10-01", 2), ("2026-11-01", 1)
    ]


# --- channels and users -----------------------------------------------------------------------


def test_channels_match_an_independent_computation(api, world) -> None:
    # When
    body = get(api, "channels", currency="EUR")
    # Then
    by_type = expected_effects(world, lambda o: o["type"])
    assert [strip(r, "type", "value", "user_id", "user") for r in body["types"]] == [
        by_type[code] for code in sorted(by_type)
    ]
    assert [r["type"] for r in body["types"]] == [TYPES[code] for code in sorted(by_type)]
    by_value = expected_effects(world, lambda o: o["value"] if o["type"] == 1 else ...)
    by_value.pop(..., None)
    assert [r["value"] for r in body["platforms"]] == sorted(by_value)
    assert [strip(r, "type", "value", "user_id", "user") for r in body["platforms"]] == [
        by_value[v] for v in sorted(by_value)
    ]
    assert strip(body["total"], "type", "value", "user_id", "user") == total_of(
        [by_type[c] for c in by_type]
    )
    assert body["currency"] == "EUR"
    # The generator made every measure non-trivial.
    assert all(r["contacts"] and r["deals"] and r["deals_won"] for r in body["types"])


def test_revenue_counts_only_the_reports_currency(api, world) -> None:
    eur = get(api, "channels", currency="EUR")["total"]
    usd = get(api, "channels", currency="usd")
    assert usd["currency"] == "USD"
    by_type = expected_effects(world, lambda o: o["type"], currency="USD")
    assert usd["total"]["revenue_won"] == total_of(list(by_type.values()))["revenue_won"]
    assert usd["total"]["deals_won"] == eur["deals_won"]
    assert usd["total"]["revenue_won"] != eur["revenue_won"]
    # Without a currency: the one most won deals are in.
    assert get(api, "channels")["currency"] == "EUR"


def test_users_match_an_independent_computation(api, world) -> None:
    body = get(api, "users", currency="EUR")
    want = expected_effects(world, lambda o: o["user_id"])
    assert [r["user_id"] for r in body["users"]] == sorted(want)
    assert [r["user"] for r in body["users"]] == [world.users[u] for u in sorted(want)]
    assert [strip(r, "type", "value", "user_id", "user") for r in body["users"]] == [
        want[u] for u in sorted(want)
    ]


# --- the funnel -------------------------------------------------------------------------------


def test_funnel_matches_an_independent_computation(api, world) -> None:
    from server.core.models import utcnow

    body = get(api, "funnel")
    want = expected_funnel(world, utcnow())
    assert body["stages"] == want["stages"]
    assert body["recycles"] == want["recycles"]
    assert body["recycles"] and all(r["count"] for r in body["recycles"])
    assert [s["stage"] for s in body["stages"]] == [*FUNNEL, "recycled"]
    # The generator made every SLA figure non-trivial.
    assert all(s["sla_met"] and s["sla_missed"] for s in body["stages"] if s["stage"] in SLA)


def test_median_of_an_even_number_of_stays_is_the_mean_of_the_middle_two(api, team, engine) -> None:
    # Given four leads that stayed 1, 2, 4 and 10 hours in mql
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        acme = session.get(Team, team.team_id)
        assert acme is not None
        acme.settings = {"stage_sla_hours": {"mql": 3}}
        start = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)
        for n, hours in enumerate([1, 2, 4, 10]):
            contact = Contact(team_id=team.team_id, name=f"c{n}", created_by_id=team.user_id)
            session.add(contact)
            session.flush()
            lead = Lead(
                team_id=team.team_id,
                contact_id=contact.id,
                stage="sal",
                stage_changed_at=start,
                created_by_id=team.user_id,
            )
            session.add(lead)
            session.flush()
            for old, new, at in [
                (None, "mql", start),
                ("mql", "sal", start + dt.timedelta(hours=hours)),
            ]:
                session.add(
                    LeadStageChange(
                        team_id=team.team_id, lead_id=lead.id, from_stage=old, to_stage=new, at=at
                    )
                )
    # When
    stages = {s["stage"]: s for s in get(api, "funnel")["stages"]}
    # Then
    mql = stages["mql"]
    assert mql["median_hours"] == 3.0
    assert (mql["entered"], mql["converted"], mql["conversion_rate"]) == (4, 4, 1.0)
    sla = (mql["sla_hours"], mql["sla_met"], mql["sla_missed"], mql["sla_compliance"])
    assert sla == (3, 2, 2, 0.5)
    assert stages["sal"]["current"] == 4
    assert stages["sal"]["sla_hours"] is None


# --- CSV --------------------------------------------------------------------------------------


def read_csv(api: Any, path: str, **params: str) -> list[list[str]]:
    resp = api.get(
        f"{URL}/{path}", params={"from": FROM, "to": TO, **params}, headers={"Accept": "text/csv"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(resp.text)))


def cell(value: Any) -> str:
    return "" if value is None else str(value)


def test_volume_as_csv(api, world) -> None:
    table = read_csv(api, "outreach-volume", bucket="week", by="user")
    assert table[0] == ["bucket", "user_id", "user", "outreach"]
    want = expected_volume(world, "week", "user")
    assert table[1:] == [
        [r["bucket"], str(r["user_id"]), r["user"], str(r["outreach"])] for r in want
    ]


def test_channels_users_and_funnel_as_csv(api, world) -> None:
    columns = ["outreach", "contacts", "deals", "deals_won", "revenue_won", "cost",
               "contact_rate", "deal_rate", "win_rate", "outreach_to_won", "roi"]  # fmt: skip
    body = get(api, "channels", currency="EUR")
    table = read_csv(api, "channels", currency="EUR")
    assert table[0] == ["type", "value", *columns]
    assert table[1:] == [
        [cell(r[name]) for name in ["type", "value", *columns]]
        for r in body["types"] + body["platforms"]
    ]
    body = get(api, "users")
    table = read_csv(api, "users")
    assert table[0] == ["user_id", "user", *columns]
    assert table[1:] == [
        [cell(r[name]) for name in ["user_id", "user", *columns]] for r in body["users"]
    ]
    body = get(api, "funnel")
    table = read_csv(api, "funnel")
    assert table[0][:4] == ["stage", "from_stage", "reason", "current"]
    assert table[0][-1] == "recycles"
    assert [row[0] for row in table[1:7]] == [*FUNNEL, "recycled"]
    assert [row[3] for row in table[1:7]] == [str(s["current"]) for s in body["stages"]]
    recycles = table[7:]
    assert [(row[0], row[1], row[2], row[-1]) for row in recycles] == [
        ("recycled", r["from_stage"], r["reason"], str(r["count"])) for r in body["recycles"]
    ]


def test_json_stays_the_default_for_any_accept(api, world) -> None:
    for accept in ("*/*", "application/json", "text/html"):
        resp = api.get(f"{URL}/funnel", headers={"Accept": accept})
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/json")


# --- parameters and isolation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field_"),
    [
        ("outreach-volume", {"bucket": "year"}, "bucket"),
        ("outreach-volume", {"by": "stage"}, "by"),
        ("outreach-volume", {"from": "2026-05-01", "to": "2026-04-01"}, "to"),
        ("channels", {"from": "2026-05-01", "to": "2026-05-01"}, "to"),
        ("users", {"from": "2016-01-01", "to": "2026-01-01"}, "to"),
        ("funnel", {"from": "yesterday"}, "from"),
        ("funnel", {"from": "9999-12-01"}, "from"),
        ("funnel", {"to": "0001-01-02"}, "to"),
        ("channels", {"currency": "euro"}, "currency"),
    ],
)
def test_bad_parameters_are_problems_naming_them(api, path, params, field_) -> None:
    resp = api.get(f"{URL}/{path}", params=params)
    body = assert_problem(resp, resp.status_code, field_)
    assert resp.status_code in (400, 422)
    assert field_ in body["detail"]


def test_another_teams_data_never_counts(api, client, world, make_team) -> None:
    # Given a third team with nothing of its own
    empty = make_team("Initech")
    client.headers.update(empty.headers)
    # When
    volume = get(client, "outreach-volume")
    channels = get(client, "channels")
    users = get(client, "users")
    funnel = get(client, "funnel")
    # Then
    assert volume["rows"] == [] and volume["total"] == 0
    assert channels["types"] == [] and channels["platforms"] == []
    assert channels["total"]["outreach"] == 0
    assert users["users"] == []
    assert all(s["current"] == 0 and s["entered"] == 0 for s in funnel["stages"])
    assert funnel["recycles"] == []


def test_default_range_is_the_last_90_days(api, team) -> None:
    resp = api.get(f"{URL}/outreach-volume")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    date_from = dt.date.fromisoformat(body["date_from"])
    date_to = dt.date.fromisoformat(body["date_to"])
    assert (date_to - date_from).days == 90
    assert body["bucket"] == "week" and body["timezone"] == "UTC"


# --- the team's UTC offsets (what SQLite's CASE is built from) ------------------------------


@pytest.mark.parametrize(
    ("zone", "want"),
    [
        ("UTC", [("2027-01-01T00:00:00+00:00", 0)]),
        ("Asia/Kolkata", [("2027-01-01T00:00:00+00:00", 19800)]),
        (
            "Europe/Berlin",
            [
                ("2026-03-29T01:00:00+00:00", 3600),
                ("2026-10-25T01:00:00+00:00", 7200),
                ("2027-01-01T00:00:00+00:00", 3600),
            ],
        ),
        (
            "Australia/Lord_Howe",  # half an hour of daylight saving, southern summer
            [
                ("2026-04-04T15:00:00+00:00", 39600),
                ("2026-10-03T15:30:00+00:00", 37800),
                ("2027-01-01T00:00:00+00:00", 39600),
            ],
        ),
    ],
)
def test_offset_segments_find_each_transition_to_the_second(zone, want) -> None:
    from server.core.services.analytics import offset_segments

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    found = offset_segments(ZoneInfo(zone), start, end)
    assert [(until.isoformat(), seconds) for until, seconds in found] == want


def test_csv_cells_a_spreadsheet_would_run_as_formulas_stay_text(api) -> None:
    # Given a lead recycled with a reason typed like a spreadsheet formula
    contact = api.post("/api/v1/contacts", json={"name": "Ann"}).json()
    lead = api.post("/api/v1/leads", json={"contact_id": contact["id"], "stage": "sal"}).json()
    reason = "=HYPERLINK(\"http://evil.example\",\"click\")"
    resp = api.patch(f"/api/v1/leads/{lead['id']}", json={"stage": "recycled", "stage_reason": reason})
    assert resp.status_code == 200, resp.text
    # When the funnel of the last 90 days is read as CSV
    resp = api.get(f"{URL}/funnel", headers={"Accept": "text/csv"})
    assert resp.status_code == 200, resp.text
    table = list(csv.reader(io.StringIO(resp.text)))
    # Then the reason is there as text, not as a formula; the JSON keeps it as typed
    reasons = [row[2] for row in table[1:] if row[0] == "recycled" and row[2]]
    assert reasons == ["'" + reason]
    assert [r["reason"] for r in api.get(f"{URL}/funnel").json()["recycles"]] == [reason]

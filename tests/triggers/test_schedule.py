"""The ``schedule`` trigger: each kind fires once per occurrence and again only on a new one,
also across a restart and with two scanners at once, on SQLite and PostgreSQL. Time moves
with an injected clock."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import pytest
from helpers import DEALFLOW
from sqlalchemy import Engine, select

from server.core.db import make_engine, make_session_factory
from server.core.definitions import validate
from server.core.engine import WorkflowEngine, hand_over_after_commit
from server.core.models import ActionExecution, Event, Lead, Run, ScheduleOccurrence, Team, utcnow
from server.core.plugins import load_registry
from server.core.runtime import build_runtime
from server.core.scope import Actor, TeamScope
from server.core.services import communications, contacts, deals, leads, workflows
from server.core.services.analytics.funnel import funnel
from server.settings import Settings
from server.triggers.schedule import scan


@dataclass
class Clock:
    """The time a scan sees: set and moved by the test."""

    moment: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.moment


def flagging(key: str, entity: str, trigger: dict[str, Any]) -> dict[str, Any]:
    """A workflow that flags the record (``custom.<key>``) when its occurrence is due."""
    return {
        "id": key,
        "name": key,
        "entity": entity,
        "trigger": {"type": "schedule", **trigger},
        "condition": f"event.kind == '{trigger['kind']}'",
        "actions": [{"type": "field_update", "set": {f"custom.{key.replace('-', '_')}": True}}],
    }


class World:
    """A team's records, saved through the services, and scans over them."""

    def __init__(self, engine: Engine, team_id: int, user_id: int) -> None:
        self.db = engine
        self.team_id = team_id
        self.user_id = user_id
        self.registry = load_registry()
        self.sessions = make_session_factory(engine)
        self.engine = WorkflowEngine(self.registry)

    def scope(self, session: Any) -> TeamScope:
        return TeamScope(session, Actor(self.team_id, self.user_id), self.engine)

    def do(self, fn: Any, *args: Any) -> Any:
        with self.sessions() as session:
            return fn(self.scope(session), *args)

    def workflow(self, document: dict[str, Any]) -> None:
        self.do(workflows.save, document)

    def team_settings(self, **values: Any) -> None:
        with self.sessions() as session:
            team = session.get(Team, self.team_id)
            assert team is not None
            team.settings = {**(team.settings or {}), **values}
            session.commit()

    def contact(self, name: str = "Milton Waddams", **fields: Any) -> Any:
        return self.do(contacts.create, contacts.ContactIn(name=name, **fields))

    def talk(self, contact_id: int, at: dt.datetime) -> None:
        self.do(communications.create, contact_id, communications.CommunicationIn("call", at=at))

    def lead(self, contact_id: int, stage: str) -> Any:
        return self.do(leads.create, leads.LeadIn(contact_id=contact_id, stage=stage))

    def move(self, lead_id: int, stage: str, reason: str | None = None) -> Any:
        patch = leads.LeadPatch(stage=stage, **({"stage_reason": reason} if reason else {}))
        return self.do(leads.update, lead_id, patch)

    def deal(self, close: dt.date, **fields: Any) -> Any:
        data = deals.DealIn(title="Initech", expected_close_date=close, **fields)
        return self.do(deals.create, data)

    def close_on(self, deal_id: int, close: dt.date) -> None:
        self.do(deals.update, deal_id, deals.DealPatch(expected_close_date=close))

    def scan(self, clock: Clock, sessions: Any = None, engine: Any = None) -> int:
        return scan(sessions or self.sessions, engine or self.engine, clock)

    def fired(self, workflow: str) -> list[tuple[int, dict[str, Any]]]:
        """(record id, occurrence) of each scheduled event on which ``workflow`` matched."""
        with self.sessions() as session:
            rows = session.execute(
                select(Event.record_id, Event.payload)
                .join(Run, Run.event_id == Event.id)
                .where(Event.source == "schedule", Run.matched.contains(f",{workflow},"))
                .order_by(Event.id)
            ).all()
        return [(record_id, payload["schedule"]) for record_id, payload in rows]

    def occurrences(self) -> int:
        with self.sessions() as session:
            return len(session.scalars(select(ScheduleOccurrence.id)).all())


@pytest.fixture
def world(engine: Engine, make_team: Any) -> World:
    team = make_team("Acme", timezone="Pacific/Auckland")
    return World(engine, team.team_id, team.user_id)


def entered(world: World, lead_id: int) -> dt.datetime:
    with world.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return lead.stage_changed_at


# --- sla_breached ----------------------------------------------------------------------------


def test_sla_breached_fires_once_per_stage_entry_without_contact(world: World) -> None:
    # Given a 24-hour SLA for sal in the team's settings, and a workflow watching it
    world.team_settings(stage_sla_hours={"sal": 24})
    world.workflow(flagging("sal-sla", "lead", {"kind": "sla_breached", "stage": "sal"}))
    silent = world.lead(world.contact("Silent").id, "sal")
    called = world.lead(world.contact("Called").id, "sal")
    since = entered(world, silent.id)
    world.talk(called.contact_id, entered(world, called.id) + dt.timedelta(hours=2))
    clock = Clock(since + dt.timedelta(hours=24) - dt.timedelta(microseconds=1))

    # When a scan runs a moment before the SLA runs out, nothing fires
    assert world.scan(clock) == 0
    # When it runs as the SLA runs out
    clock.moment = since + dt.timedelta(hours=24)
    assert world.scan(clock) == 1
    # Then the silent lead's workflow fired once, with the occurrence in its event and record
    ((record_id, occurrence),) = world.fired("sal-sla")
    assert record_id == silent.id
    assert occurrence["kind"] == "sla_breached"
    assert (occurrence["stage"], occurrence["hours"]) == ("sal", 24)
    assert dt.datetime.fromisoformat(occurrence["due_at"]) == since + dt.timedelta(hours=24)
    assert world.do(leads.get, silent.id).custom == {"sal_sla": True}
    assert world.do(leads.get, called.id).custom == {}

    # When scans run again, later: nothing more (the called lead met its SLA)
    clock.moment += dt.timedelta(days=3)
    assert world.scan(clock) == 0
    assert len(world.fired("sal-sla")) == 1

    # When the silent lead is recycled and comes back to sal: a new stage entry
    world.move(silent.id, "recycled", "no budget yet")
    world.move(silent.id, "mql")
    world.move(silent.id, "sal")
    again = entered(world, silent.id)
    clock.moment = again + dt.timedelta(hours=23)
    assert world.scan(clock) == 0
    clock.moment = again + dt.timedelta(hours=25)
    # Then it fires again, once, for the new entry
    assert world.scan(clock) == 1
    assert world.scan(clock) == 0
    assert [r for r, _ in world.fired("sal-sla")] == [silent.id, silent.id]
    assert world.fired("sal-sla")[1][1]["since"] == again.isoformat()


def test_a_contact_after_the_sla_ran_out_does_not_hide_the_breach(world: World) -> None:
    # Given a 24-hour sal SLA and leads reached: only after the SLA ran out (the scanner was
    # down then), in time (and again later), by a last contact set by hand after the SLA,
    # exactly at the deadline, and a microsecond after it
    world.team_settings(stage_sla_hours={"sal": 24})
    world.workflow(flagging("sal-sla", "lead", {"kind": "sla_breached", "stage": "sal"}))
    late, on_time, by_hand, at_deadline, just_after = (
        world.lead(world.contact(name).id, "sal")
        for name in ("Late", "On time", "By hand", "At the deadline", "Just after")
    )

    def deadline(lead: Any) -> dt.datetime:
        return entered(world, lead.id) + dt.timedelta(hours=24)

    world.talk(late.contact_id, deadline(late) + dt.timedelta(hours=2))
    world.talk(on_time.contact_id, deadline(on_time) - dt.timedelta(hours=1))
    world.talk(on_time.contact_id, deadline(on_time) + dt.timedelta(hours=3))
    world.do(
        contacts.update,
        by_hand.contact_id,
        contacts.ContactPatch(last_contacted_at=deadline(by_hand) + dt.timedelta(hours=1)),
    )
    world.talk(at_deadline.contact_id, deadline(at_deadline))
    world.talk(just_after.contact_id, deadline(just_after) + dt.timedelta(microseconds=1))
    # When the first scan after the deadlines runs, after the late contacts
    clock = Clock(deadline(just_after) + dt.timedelta(hours=5))
    # Then the leads not reached within the window breached; those reached in time did not
    assert world.scan(clock) == 3
    assert [r for r, _ in world.fired("sal-sla")] == [late.id, by_hand.id, just_after.id]
    assert world.scan(clock) == 0


def test_the_funnel_and_the_scheduler_agree_on_which_stays_missed_the_sla(world: World) -> None:
    # Given a 24-hour sal SLA and a 48-hour mql SLA, each watched by a workflow
    world.team_settings(stage_sla_hours={"sal": 24, "mql": 48})
    world.workflow(flagging("sal-sla", "lead", {"kind": "sla_breached", "stage": "sal"}))
    world.workflow(flagging("mql-sla", "lead", {"kind": "sla_breached", "stage": "mql"}))
    # sal leads: called in the first hour and kept in sal (both definitions used to
    # disagree on it), called only after the SLA ran out, never called, recycled at once
    kept, late, silent, dropped = (
        world.lead(world.contact(name).id, "sal") for name in ("Kept", "Late", "Silent", "Dropped")
    )
    world.talk(kept.contact_id, entered(world, kept.id) + dt.timedelta(hours=1))
    world.talk(late.contact_id, entered(world, late.id) + dt.timedelta(hours=30))
    world.move(dropped.id, "recycled", "not a buyer")
    # mql leads: one stuck, one moved on at once to sal and called there within the hour
    stuck = world.lead(world.contact("Stuck").id, "mql")
    moved = world.lead(world.contact("Moved").id, "mql")
    world.move(moved.id, "sal")
    world.talk(moved.contact_id, entered(world, moved.id) + dt.timedelta(minutes=30))
    clock = Clock(entered(world, moved.id) + dt.timedelta(days=3))

    # When the scheduler scans three days on, and the funnel is asked as of then
    fired = world.scan(clock)
    stages = {s.stage: s for s in world.do(lambda scope: funnel(scope, now=clock.moment)).stages}

    # Then the kept lead met its SLA in both: not breached, counted as met
    assert fired == 3
    assert [r for r, _ in world.fired("sal-sla")] == [late.id, silent.id]
    assert [r for r, _ in world.fired("mql-sla")] == [stuck.id]
    sal, mql = stages["sal"], stages["mql"]
    # sal: kept and moved met; late and silent missed (the breaches); dropped left the stage
    # before its deadline without contact, which the scheduler never breaches: neither
    assert (sal.entered, sal.sla_met, sal.sla_missed, sal.sla_compliance) == (5, 2, 2, 0.5)
    assert (mql.entered, mql.sla_met, mql.sla_missed) == (2, 1, 1)


def test_sla_hours_in_the_trigger_win_and_leaving_the_stage_meets_a_marketing_sla(
    world: World,
) -> None:
    # Given an mql SLA of 48 hours given in the trigger (the team's says 1)
    world.team_settings(stage_sla_hours={"mql": 1})
    world.workflow(
        flagging("mql-sla", "lead", {"kind": "sla_breached", "stage": "mql", "hours": 48})
    )
    stuck = world.lead(world.contact("Stuck").id, "mql")
    moved = world.lead(world.contact("Moved").id, "mql")
    world.talk(stuck.contact_id, entered(world, stuck.id) + dt.timedelta(hours=1))
    world.move(moved.id, "sal")
    clock = Clock(entered(world, stuck.id) + dt.timedelta(hours=47))
    # When 47 hours pass, nothing; after 48, the lead still in mql fires (talking to it is
    # not what marketing owes: moving it on is), the one that moved on does not
    assert world.scan(clock) == 0
    clock.moment += dt.timedelta(hours=1)
    assert world.scan(clock) == 1
    assert [r for r, _ in world.fired("mql-sla")] == [stuck.id]


def test_the_shipped_sal_sla_workflow_queues_a_slack_message(world: World) -> None:
    # Given the shipped workflow, a team with a 24-hour sal SLA that chose Slack
    document = json.loads((files("workflows") / "lead-sla-sal.json").read_text())
    world.workflow(document)
    world.team_settings(stage_sla_hours={"sal": 24}, notification_channels=["slack"])
    lead = world.lead(world.contact().id, "sal")
    # When the SLA has run out
    assert world.scan(Clock(entered(world, lead.id) + dt.timedelta(hours=25))) == 1
    # Then one Slack message waits to be sent, naming the lead and its SLA
    with world.sessions() as session:
        (execution,) = session.scalars(select(ActionExecution))
    assert (execution.action_type, execution.status) == ("notify_slack", "pending")
    assert execution.document["event"]["hours"] == 24
    assert execution.document["record"]["id"] == lead.id


def test_without_an_sla_for_the_stage_nothing_fires(world: World) -> None:
    world.workflow(flagging("sal-sla", "lead", {"kind": "sla_breached", "stage": "sal"}))
    world.lead(world.contact().id, "sal")
    assert world.scan(Clock(utcnow() + dt.timedelta(days=365))) == 0


# --- not_contacted ---------------------------------------------------------------------------


def test_not_contacted_fires_once_per_silence_and_again_after_a_new_contact(world: World) -> None:
    # Given a 14-day reminder and a contact never contacted
    world.workflow(flagging("quiet-14", "contact", {"kind": "not_contacted", "days": 14}))
    quiet = world.contact("Quiet")
    created = quiet.created_at
    clock = Clock(created + dt.timedelta(days=14) - dt.timedelta(seconds=1))
    # When 14 days less a second pass, nothing; at 14 days (14 × 24 hours) it fires, once
    assert world.scan(clock) == 0
    clock.moment += dt.timedelta(seconds=1)
    assert world.scan(clock) == 1
    clock.moment += dt.timedelta(days=5)
    assert world.scan(clock) == 0
    ((record_id, occurrence),) = world.fired("quiet-14")
    assert record_id == quiet.id
    assert (occurrence["kind"], occurrence["days"]) == ("not_contacted", 14)
    assert occurrence["since"] == created.isoformat()
    assert world.do(contacts.get, quiet.id).custom == {"quiet_14": True}

    # When the contact is called (day 19), then silence again for 14 days
    called = clock.moment
    world.talk(quiet.id, called)
    clock.moment = called + dt.timedelta(days=13)
    assert world.scan(clock) == 0
    clock.moment = called + dt.timedelta(days=14)
    # Then it fires again, once, counting from the call
    assert world.scan(clock) == 1
    assert world.scan(clock) == 0
    assert [o["since"] for _, o in world.fired("quiet-14")] == [
        created.isoformat(),
        called.isoformat(),
    ]


# --- before_close ----------------------------------------------------------------------------


def test_before_close_fires_n_days_before_in_the_teams_timezone(world: World) -> None:
    # Given a team in Auckland (UTC+13 in December) and a reminder 7 days before close
    world.workflow(flagging("close-7", "deal", {"kind": "before_close", "days": 7}))
    deal = world.deal(dt.date(2026, 12, 10))
    world.deal(dt.date(2026, 12, 10), status="won")  # closed deals are not reminded of
    # Auckland's 3 December starts at 11:00 UTC on 2 December
    clock = Clock(dt.datetime(2026, 12, 2, 10, 59, 59, tzinfo=dt.UTC))
    assert world.scan(clock) == 0
    clock.moment = dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC)
    assert world.scan(clock) == 1
    clock.moment += dt.timedelta(days=3)
    assert world.scan(clock) == 0
    ((record_id, occurrence),) = world.fired("close-7")
    assert record_id == deal.id
    assert (occurrence["close_date"], occurrence["days"]) == ("2026-12-10", 7)
    assert dt.datetime.fromisoformat(occurrence["due_at"]) == dt.datetime(
        2026, 12, 2, 11, 0, tzinfo=dt.UTC
    )
    assert world.do(deals.get, deal.id).custom == {"close_7": True}

    # When the close date moves out to 20 December
    world.close_on(deal.id, dt.date(2026, 12, 20))
    assert world.scan(clock) == 0
    clock.moment = dt.datetime(2026, 12, 12, 11, 0, tzinfo=dt.UTC)  # 13 Dec in Auckland
    # Then it fires again for the new date, once
    assert world.scan(clock) == 1
    assert world.scan(clock) == 0
    assert [o["close_date"] for _, o in world.fired("close-7")] == ["2026-12-10", "2026-12-20"]


def test_a_deal_created_inside_the_window_fires_at_once_and_a_past_date_never(
    world: World,
) -> None:
    world.workflow(flagging("close-7", "deal", {"kind": "before_close", "days": 7}))
    soon = world.deal(dt.date(2026, 12, 5))
    world.deal(dt.date(2026, 11, 30))
    clock = Clock(dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC))
    assert world.scan(clock) == 1
    assert [r for r, _ in world.fired("close-7")] == [soon.id]


# --- restarts, races, the running server -----------------------------------------------------


def test_a_restarted_process_does_not_fire_again(world: World, db_url: str) -> None:
    # Given one occurrence of each kind fired by a process
    world.team_settings(stage_sla_hours={"sal": 24})
    world.workflow(flagging("sal-sla", "lead", {"kind": "sla_breached", "stage": "sal"}))
    world.workflow(flagging("quiet-14", "contact", {"kind": "not_contacted", "days": 14}))
    world.workflow(flagging("close-7", "deal", {"kind": "before_close", "days": 7}))
    contact = world.contact()
    world.lead(contact.id, "sal")
    world.deal((contact.created_at + dt.timedelta(days=20)).date())
    clock = Clock(contact.created_at + dt.timedelta(days=15))
    assert world.scan(clock) == 3
    # When a new process (its own engine, sessions and workflow cache) scans the same database
    db = make_engine(db_url)
    try:
        sessions = make_session_factory(db)
        fresh = WorkflowEngine(load_registry())
        for _ in range(2):
            clock.moment += dt.timedelta(hours=1)
            assert world.scan(clock, sessions, fresh) == 0
    finally:
        db.dispose()
    # Then nothing fired again
    assert world.occurrences() == 3
    assert len(world.fired("sal-sla") + world.fired("quiet-14") + world.fired("close-7")) == 3


def test_two_scanners_at_once_fire_each_occurrence_once(world: World, db_url: str) -> None:
    # Given five silent contacts, and two processes that scan at the same moment
    world.workflow(flagging("quiet-14", "contact", {"kind": "not_contacted", "days": 14}))
    people = [world.contact(f"Person {n}") for n in range(5)]
    clock = Clock(people[-1].created_at + dt.timedelta(days=14))
    engines = [make_engine(db_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def process(db: Engine) -> None:
        sessions = make_session_factory(db)
        engine = WorkflowEngine(load_registry())
        barrier.wait()
        try:
            counts.append(scan(sessions, engine, clock))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=process, args=(db,)) for db in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for db in engines:
            db.dispose()
    # Then each contact's occurrence fired once in all
    assert errors == []
    assert sum(counts) == 5
    assert sorted(r for r, _ in world.fired("quiet-14")) == [p.id for p in people]
    assert world.occurrences() == 5


def test_losing_the_race_for_one_occurrence_keeps_what_the_others_hand_over(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a workflow with a side effect, and a scan that meets one occurrence twice (as
    # when another process fires it between this scan's query and its insert)
    document = json.loads((files("workflows") / "lead-sla-sal.json").read_text())
    world.workflow(document)
    world.team_settings(stage_sla_hours={"sal": 24}, notification_channels=["slack"])
    lead = world.lead(world.contact().id, "sal")
    kinds = importlib.import_module("server.triggers.schedule.kinds")
    real = kinds.DUE["sla_breached"]
    monkeypatch.setitem(kinds.DUE, "sla_breached", lambda *args: [*real(*args), *real(*args)])
    submitted: list[int] = []
    sessions = make_session_factory(world.db)
    hand_over_after_commit(sessions, submitted.extend)
    # When it scans
    fired = world.scan(Clock(entered(world, lead.id) + dt.timedelta(hours=25)), sessions)
    # Then the first fired, the repeat lost cleanly, and the first's execution is still
    # handed over after the commit (not dropped with the savepoint of the repeat)
    assert fired == 1
    with world.sessions() as session:
        (execution,) = session.scalars(select(ActionExecution))
    assert submitted == [execution.id]


def test_a_scan_fires_at_most_a_batch_per_workflow_and_the_next_scan_the_rest(
    world: World,
) -> None:
    world.workflow(flagging("quiet-14", "contact", {"kind": "not_contacted", "days": 14}))
    people = [world.contact(f"Person {n}") for n in range(5)]
    clock = Clock(people[-1].created_at + dt.timedelta(days=14))
    assert [scan(world.sessions, world.engine, clock, batch=2) for _ in range(4)] == [2, 2, 1, 0]
    assert [r for r, _ in world.fired("quiet-14")] == [p.id for p in people]


def test_the_runtime_scans_by_itself_every_schedule_interval(
    world: World, db_url: str, engine: Engine
) -> None:
    # Given a silent contact and a server runtime scanning every 50 ms with a clock at day 15
    world.workflow(flagging("quiet-14", "contact", {"kind": "not_contacted", "days": 14}))
    quiet = world.contact("Quiet")
    clock = Clock(quiet.created_at + dt.timedelta(days=15))
    runtime = build_runtime(
        Settings(database_url=db_url, schedule_interval=0.05), engine, clock=clock
    )
    runtime.start()
    try:
        # When the scanner has run a few times (no scan called here)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and runtime.scheduler.scans < 3:
            time.sleep(0.02)
    finally:
        runtime.close()
    # Then the workflow fired, once
    assert runtime.scheduler.scans >= 3
    assert [r for r, _ in world.fired("quiet-14")] == [quiet.id]


def test_a_zero_interval_turns_the_scanner_off(world: World, db_url: str, engine: Engine) -> None:
    world.workflow(flagging("quiet-14", "contact", {"kind": "not_contacted", "days": 14}))
    world.contact("Quiet")
    runtime = build_runtime(Settings(database_url=db_url, schedule_interval=0), engine)
    runtime.start()
    runtime.close()
    assert runtime.scheduler.scans == 0
    assert world.fired("quiet-14") == []


def test_the_cli_scans_once_as_of_a_given_time(world: World, db_url: str) -> None:
    # Given a contact silent for 14 days as of 1 December
    world.workflow(flagging("quiet-14", "contact", {"kind": "not_contacted", "days": 14}))
    quiet = world.contact("Quiet", last_contacted_at=dt.datetime(2026, 11, 17, tzinfo=dt.UTC))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALFLOW_")}
    env["DATABASE_URL"] = db_url

    def run_once(now: str) -> str:
        result = subprocess.run(
            [str(DEALFLOW), "schedule", "run-once", "--now", now],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    # When an operator scans as of a day before, then twice as of 1 December
    assert run_once("2026-11-30T00:00:00+00:00").startswith("0 occurrence(s) fired")
    assert run_once("2026-12-01T00:00:00Z").startswith("1 occurrence(s) fired")
    assert run_once("2026-12-01T00:00:00").startswith("0 occurrence(s) fired")
    # Then it fired once
    assert [r for r, _ in world.fired("quiet-14")] == [quiet.id]


# --- definitions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "trigger", "problems"),
    [
        ("lead", {"kind": "sla_breached", "stage": "sal", "hours": 24}, []),
        ("contact", {"kind": "not_contacted", "days": 30}, []),
        ("deal", {"kind": "before_close", "days": 0}, []),
        ("lead", {"kind": "sla_breached"}, ["$.trigger.stage: is required for sla_breached"]),
        (
            "deal",
            {"kind": "not_contacted", "days": 3},
            [
                "$.trigger.kind: not_contacted watches contact records: the workflow's entity "
                "is deal"
            ],
        ),
        (
            "contact",
            {"kind": "not_contacted", "days": 0},
            ["$.trigger.days: not_contacted needs at least 1 day"],
        ),
        (
            "deal",
            {"kind": "before_close", "days": 7, "stage": "sal"},
            ["$.trigger.stage: is not a field of before_close"],
        ),
        (
            "lead",
            {"kind": "sla_breached", "stage": "customer"},
            ["$.trigger.stage: 'customer' is not one of 'lead', 'mql', 'sal', 'opportunity', "
             "'recycled'"],
        ),
        (
            "outreach",
            {"kind": "whenever"},
            [
                "$.entity: a schedule trigger watches lead or contact or deal records, "
                "not outreach",
                "$.trigger.kind: 'whenever' is not one of 'sla_breached', 'not_contacted', "
                "'before_close'",
            ],
        ),
    ],
)
def test_schedule_triggers_are_checked_when_saved(
    entity: str, trigger: dict[str, Any], problems: list[str]
) -> None:
    document = {
        "id": "t",
        "name": "t",
        "entity": entity,
        "trigger": {"type": "schedule", **trigger},
        "actions": [],
    }
    assert sorted(str(p) for p in validate(document, load_registry())) == sorted(problems)


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    before = {t.name for t in threading.enumerate()}
    yield
    left = {t.name for t in threading.enumerate()} - before
    assert "dealflow-schedule" not in left

"""Durable ``dealflow_event`` delivery: an event committed by a process that died is delivered
later by a relay, once; racing relays deliver once; with no listener nothing is owed."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest
from sqlalchemy import Engine, event, select, update

import server.core.fastsql as fastsql
from processes import wait_until
from server.core.broker import make_broker
from server.core.db import make_session_factory
from server.core.engine import WorkflowEngine, hand_over_after_commit
from server.core.models import Event, utcnow
from server.core.notifications import Notifier
from server.core.plugins import Registry, build_registry, get_plugin_manager
from server.core.runner import Runner
from server.core.scope import Actor, TeamScope
from server.core.services import deals, workflows
from server.settings import Settings

hookimpl = pluggy.HookimplMarker("dealflow")
LEASE = 30.0
SETTINGS = Settings(event_hook_lease_seconds=LEASE, relay_interval=0.05)


class Listener:
    """A plugin that records every event it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[int, dict[str, Any]]] = []
        self.lock = threading.Lock()

    @hookimpl
    def dealflow_event(self, event, team_id):  # type: ignore[no-untyped-def]
        with self.lock:
            self.heard.append((team_id, event))

    def counts(self) -> Counter[int]:
        with self.lock:
            return Counter(document["event"]["id"] for _, document in self.heard)


def registry_with(*plugins: object) -> Registry:
    pm = get_plugin_manager()
    for n, plugin in enumerate(plugins):
        pm.register(plugin, name=f"listener{n}")
    return build_registry(pm)


def later(seconds: float) -> Any:
    """A clock ``seconds`` ahead of the real one."""
    return lambda: utcnow() + dt.timedelta(seconds=seconds)


class World:
    """A team, its sessions, and a save path whose after-commit hand-over is chosen per test."""

    def __init__(self, engine: Engine, team: Any) -> None:
        self.engine = engine
        self.team = team
        self.runners: list[Runner] = []

    def sessions(self, notify: Any = None) -> Any:
        """A session factory; ``notify`` None is a process whose after-commit hook calls are
        lost (it died right after the commit)."""
        factory = make_session_factory(self.engine)
        hand_over_after_commit(factory, lambda ids: None, notify)
        return factory

    def runner(self, registry: Registry) -> Runner:
        runner = Runner(make_session_factory(self.engine), registry, SETTINGS, make_broker(None))
        self.runners.append(runner)
        return runner

    def save(self, factory: Any, registry: Registry, title: str, amount: int = 100) -> list[int]:
        """Create a deal, then raise its amount (its workflow follows up); return the event ids."""
        engine = WorkflowEngine(registry, SETTINGS)
        with factory() as session:
            scope = TeamScope(session, Actor(self.team.team_id, self.team.user_id), engine)
            if workflows.find(scope, "big") is None:
                workflows.save(scope, BIG)
                session.commit()
            before = self.event_ids()
            deal = deals.create(scope, deals.DealIn(title=title, amount=amount))
        with factory() as session:
            scope = TeamScope(session, Actor(self.team.team_id, self.team.user_id), engine)
            deals.update(scope, deal.id, deals.DealPatch(amount=amount * 100))
        return [i for i in self.event_ids() if i not in before]

    def event_ids(self) -> list[int]:
        with make_session_factory(self.engine)() as session:
            return list(session.scalars(select(Event.id).order_by(Event.id)))

    def owed(self) -> list[int]:
        with make_session_factory(self.engine)() as session:
            return list(
                session.scalars(select(Event.id).where(Event.notify_at.is_not(None)).order_by(Event.id))
            )


BIG = {
    "id": "big",
    "name": "Flag big deals",
    "entity": "deal",
    "trigger": {"type": "record_saved", "on": ["updated"]},
    "condition": "record.amount >= `1000`",
    "actions": [{"type": "field_update", "set": {"probability": 90}}],
}


@pytest.fixture
def world(engine: Engine, make_team: Any) -> Iterator[World]:
    w = World(engine, make_team("Acme"))
    yield w
    for runner in w.runners:
        runner.close()


def test_events_of_a_process_that_died_after_commit_are_delivered_by_a_relay_once(world: World) -> None:
    # Given a listening plugin, and deals saved by a process that dies right after each
    # commit (its after-commit hook calls never run)
    listener = Listener()
    registry = registry_with(listener)
    ids = world.save(world.sessions(notify=None), registry, "Website")
    assert len(ids) == 3  # created, updated, and the workflow's follow-up change
    assert world.owed() == ids
    # When a relay looks before the saving process's lease ran out
    relay = world.runner(registry)
    # Then it leaves them alone (that process may still be delivering them)
    assert relay.notifier.sweep() == 0
    assert listener.counts() == Counter()
    # When the lease has run out and a relay runs its rounds
    relay.notifier.clock = later(LEASE + 1)
    relay.start()
    wait_until(lambda: len(listener.counts()) == len(ids), 10, "the relay to deliver the events")
    assert relay.join(10)
    # Then each event reached the plugin exactly once, in order, and none is owed any more
    assert relay.notifier.sweep() == 0
    assert listener.counts() == Counter({i: 1 for i in ids})
    assert [doc["event"]["id"] for _, doc in listener.heard] == ids
    assert world.owed() == []
    team_id, document = listener.heard[0]
    assert team_id == world.team.team_id
    assert document["record"]["title"] == "Website"


def test_a_relay_hands_the_plugin_what_the_saving_process_would_have(world: World) -> None:
    # Given events delivered after commit by the process that saved them
    listener = Listener()
    registry = registry_with(listener)
    runner = world.runner(registry)
    runner.start()
    ids = world.save(world.sessions(notify=runner.notify), registry, "Website")
    assert runner.join(10)
    assert listener.counts() == Counter({i: 1 for i in ids})
    assert world.owed() == []
    in_process = {doc["event"]["id"]: (team_id, doc) for team_id, doc in listener.heard}
    runner.close()  # its own relay would take the events owed again below
    # When the same events are owed again and a relay delivers them
    with make_session_factory(world.engine)() as session:
        session.execute(update(Event).values(notify_at=utcnow()))
        session.commit()
    listener.heard.clear()
    relay = Notifier(make_session_factory(world.engine), registry, SETTINGS, clock=later(1))
    assert relay.sweep() == len(ids)
    # Then the plugin got the very same documents
    assert {doc["event"]["id"]: (team_id, doc) for team_id, doc in listener.heard} == in_process


def test_two_relays_racing_deliver_each_event_once(world: World) -> None:
    # Given twenty events owed by a process that died
    listener = Listener()
    registry = registry_with(listener)
    factory = world.sessions(notify=None)
    ids = [i for n in range(7) for i in world.save(factory, registry, f"Deal {n}")]
    assert len(world.owed()) == len(ids) == 21
    # When two relays (each with its own connections) sweep at the same moment
    relays = [
        Notifier(make_session_factory(world.engine), registry, SETTINGS, clock=later(LEASE + 1))
        for _ in range(2)
    ]
    start = threading.Barrier(2)
    delivered: list[int] = []
    errors: list[BaseException] = []

    def sweep(relay: Notifier) -> None:
        try:
            start.wait(5)
            delivered.append(relay.sweep())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then every event reached the plugin exactly once, whichever relay claimed it
    assert errors == []
    assert sum(delivered) == len(ids)
    assert listener.counts() == Counter({i: 1 for i in ids})
    assert world.owed() == []


def test_a_relay_does_not_take_an_event_its_saving_process_is_delivering(world: World) -> None:
    # Given an event whose saving process claimed it after commit (and is still calling)
    listener = Listener()
    registry = registry_with(listener)
    ids = world.save(world.sessions(notify=None), registry, "Website")
    saving = Notifier(make_session_factory(world.engine), registry, SETTINGS)
    claimed = saving._claim(ids, Event.notify_at <= utcnow() + saving.lease, saving.lease)
    assert claimed == set(ids)
    # When a relay sweeps before that claim's lease ran out
    relay = Notifier(make_session_factory(world.engine), registry, SETTINGS, clock=later(LEASE / 2))
    # Then it takes nothing; and once a relay holds an event, the saving process cannot take it
    assert relay.sweep() == 0
    assert listener.counts() == Counter()
    relay.clock = later(LEASE + 1)
    held = relay._claim(ids, Event.notify_at <= relay.clock(), 2 * relay.lease)
    assert held == set(ids)
    assert saving.deliver([(world.team.team_id, {"event": {"id": i}}) for i in ids], utcnow()) == 0
    assert listener.counts() == Counter()


class Statements:
    """Every SQL statement the database is sent, the save path's prepared ones included."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sql: list[str] = []
        self.engine = engine
        self.on = False
        event.listen(engine, "before_cursor_execute", self._orm)
        original = fastsql.dbapi
        statements = self

        class Cursor:
            def __init__(self, cursor: Any) -> None:
                self.cursor = cursor

            def execute(self, sql: str, params: Any = None) -> Any:
                if statements.on:
                    statements.sql.append(sql)
                return self.cursor.execute(sql, params)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.cursor, name)

        class Connection:
            def __init__(self, connection: Any) -> None:
                self.connection = connection

            def cursor(self) -> Cursor:
                return Cursor(self.connection.cursor())

        monkeypatch.setattr(fastsql, "dbapi", lambda session: Connection(original(session)))

    def _orm(self, conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if self.on:
            self.sql.append(sql)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._orm)


@pytest.fixture
def statements(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    recorded = Statements(engine, monkeypatch)
    yield recorded
    recorded.close()


def test_with_no_listener_nothing_is_owed_and_nothing_extra_is_written(
    world: World, statements: Statements
) -> None:
    # Given no plugin implementing dealflow_event
    quiet = registry_with()
    assert not quiet.pm.hook.dealflow_event.get_hookimpls()
    factory = world.sessions(notify=None)
    world.save(factory, quiet, "Warm-up")
    # When a deal is created and updated (its workflow following up)
    statements.on = True
    ids = world.save(factory, quiet, "Website")
    statements.on = False
    quiet_save = list(statements.sql)
    # Then no event is owed, and no statement of the save wrote the mark
    assert len(ids) == 3
    assert world.owed() == []
    assert quiet_save
    assert not [sql for sql in quiet_save if "notify_at" in sql]
    # When a relay goes round several times, late enough to see any lease run out
    relay = world.runner(quiet)
    relay.notifier.clock = later(LEASE + 1)
    statements.sql.clear()
    statements.on = True
    relay.start()
    wait_until(
        lambda: sum("action_executions" in sql for sql in list(statements.sql)) >= 3,
        10,
        "three relay rounds",
    )
    statements.on = False
    relay.close()
    # Then it never looked at the events
    assert not [sql for sql in statements.sql if "notify_at" in sql]
    # And with a listener, the mark rides on each event's INSERT: not one statement more
    loud = registry_with(Listener())
    world.save(factory, loud, "Warm-up 2")
    statements.sql.clear()
    statements.on = True
    world.save(factory, loud, "Website 2")
    statements.on = False
    assert len(statements.sql) == len(quiet_save)
    inserts = [sql for sql in statements.sql if sql.lstrip().upper().startswith("INSERT INTO EVENTS")]
    assert len(inserts) == 3 and all("notify_at" in sql for sql in inserts)


def test_a_closing_relay_stops_between_batches_and_leaves_the_rest_owed(world: World) -> None:
    # Given 21 events owed by a process that died (two batches' worth)
    listener = Listener()
    registry = registry_with(listener)
    factory = world.sessions(notify=None)
    ids = [i for n in range(7) for i in world.save(factory, registry, f"Deal {n}")]
    relay = Notifier(make_session_factory(world.engine), registry, SETTINGS, clock=later(LEASE + 1))
    # When the relay's process starts closing after the first batch
    calls: list[int] = []

    def stopping() -> bool:
        calls.append(1)
        return len(calls) > 1

    delivered = relay.sweep(stopping=stopping)
    # Then one batch was delivered and the rest is still owed, for the next relay
    assert 0 < delivered < len(ids) and len(listener.heard) == delivered
    assert len(world.owed()) == len(ids) - delivered

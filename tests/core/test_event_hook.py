"""The ``dealflow_event`` hook: plugins hear about committed events, and a broken one harms nothing."""

from __future__ import annotations

import threading

import pluggy

from server.core.db import make_session_factory
from server.core.engine import WorkflowEngine, hand_over_after_commit
from server.core.plugins import build_registry, get_plugin_manager
from server.core.broker import make_broker
from server.core.runner import Runner
from server.core.scope import Actor, TeamScope
from server.core.services import deals

hookimpl = pluggy.HookimplMarker("dealflow")


class Broken:
    @hookimpl
    def dealflow_event(self, event, team_id):  # type: ignore[no-untyped-def]
        raise RuntimeError("this plugin is broken")


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple[int, dict]] = []
        self.lock = threading.Lock()

    @hookimpl
    def dealflow_event(self, event, team_id):  # type: ignore[no-untyped-def]
        with self.lock:
            self.heard.append((team_id, event))


def test_plugins_hear_committed_events_and_a_broken_one_stops_nothing(engine, make_team) -> None:
    # Given a broken plugin registered before a listening one
    team = make_team("Acme")
    pm = get_plugin_manager()
    listener = Listener()
    pm.register(Broken(), name="broken")
    pm.register(listener, name="listener")
    registry = build_registry(pm)
    sessions = make_session_factory(engine)
    runner = Runner(sessions, registry, None, make_broker(None))
    runner.start()
    hand_over_after_commit(sessions, runner.submit, runner.notify)
    workflow_engine = WorkflowEngine(registry)
    try:
        # When a deal is saved and another save is rolled back
        with sessions() as session:
            scope = TeamScope(session, Actor(team.team_id, team.user_id), workflow_engine)
            created = deals.create(scope, deals.DealIn(title="Website", amount=100))
        with sessions() as session:
            scope = TeamScope(session, Actor(team.team_id, team.user_id), workflow_engine)
            workflow_engine.record_saved(scope, "deal", session.get(deals.Deal, created.id), None, "created")
            session.rollback()
        assert runner.join(10)
    finally:
        runner.close()
    # Then the listener heard the committed event only, with the record and the team
    assert len(listener.heard) == 1
    team_id, document = listener.heard[0]
    assert team_id == team.team_id
    assert document["record"]["title"] == "Website"
    assert document["event"]["op"] == "created"
    assert document["team"]["id"] == team.team_id

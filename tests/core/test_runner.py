"""The in-process runner: executions another process wrote, or left behind, are taken up."""

from __future__ import annotations

import time
from typing import Any

from server.core.db import make_session_factory
from server.core.engine import WorkflowEngine
from server.core.models import ActionExecution
from server.core.plugins import load_registry
from server.core.runner import InProcessRunner
from server.core.scope import Actor, TeamScope
from server.core.services import deals, workflows
from server.settings import Settings

ALERT = {
    "id": "alert", "name": "Alert", "entity": "deal", "trigger": {"type": "record_saved"},
    "actions": [{"type": "email", "to": "lead@example.com", "subject": "{{ record.title }}", "body": "x"}],
}


def test_the_sweep_performs_executions_written_without_a_hand_over(engine: Any, make_team: Any,
                                                                     smtp_server: Any) -> None:
    # Given a deal saved by a process with no runner (as the CLI does): its email stays pending
    team = make_team("Acme")
    settings = Settings(smtp_url=smtp_server.url)
    registry = load_registry()
    sessions = make_session_factory(engine)
    with sessions() as session:
        scope = TeamScope(session, Actor(team.team_id, team.user_id), WorkflowEngine(registry, settings))
        workflows.save(scope, dict(ALERT))
        deals.create(scope, deals.DealIn(title="Initech"))
    with sessions() as session:
        assert [e.status for e in session.query(ActionExecution)] == ["pending"]
    # When a runner that sweeps every 0.1 s starts (it is not told about the execution)
    runner = InProcessRunner(sessions, registry, settings)
    runner.close()
    runner.start(sweep_seconds=0.1)
    try:
        deadline = time.monotonic() + 10
        while not smtp_server.envelopes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.join(10)
    finally:
        runner.close()
    # Then the email was sent once and the execution succeeded
    assert len(smtp_server.envelopes) == 1
    with sessions() as session:
        assert [(e.status, e.attempts) for e in session.query(ActionExecution)] == [("succeeded", 1)]

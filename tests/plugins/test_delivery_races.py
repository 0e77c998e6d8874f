"""Exactly one delivery per execution when workers race, for each shipped HTTP plugin.

Two workers are handed the same execution at the same moment — as when the relay re-sends a
retry that came due while the broker still held its message — and perform it over real HTTP
against the recording server. The claim lets one of them act; the receiving server counts
what it got.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import make_due
from sqlalchemy import select

from server.core.db import make_session_factory
from server.core.engine import WorkflowEngine
from server.core.execution import Attempt, perform
from server.core.models import ActionExecution
from server.core.plugins import load_registry
from server.core.scope import Actor, TeamScope
from server.core.services import contacts, credentials, deals, workflows
from server.settings import Settings

WORKERS = 2
TOKEN = "123456:ABC-race-token"
EMAIL = "ada@example.com"
MEMBER = f"/lists/L1/members/{hashlib.md5(EMAIL.encode()).hexdigest()}"  # noqa: S324


@dataclass(frozen=True)
class Plugin:
    """How one shipped plugin is set up, and where its request lands."""

    action: dict[str, Any]
    credentials: Callable[[str], dict[str, str]]
    entity: str
    path: str
    method: str = "POST"
    accepted: bytes = b"{}"

    @property
    def name(self) -> str:
        return str(self.action["type"])


PLUGINS = [
    Plugin(
        action={"type": "erp_export", "projection": "{id: record.id, title: record.title}"},
        credentials=lambda base: {"url": base + "/erp", "secret": "erp-race-secret"},
        entity="deal",
        path="/erp",
    ),
    Plugin(
        action={"type": "email_marketing", "list_id": "L1", "operation": "subscribe"},
        credentials=lambda base: {"api_key": "mc-race-key", "base_url": base},
        entity="contact",
        path=MEMBER,
        method="PUT",
    ),
    Plugin(
        action={"type": "notify_slack", "text": "New deal {{ record.title }}"},
        credentials=lambda base: {"webhook_url": base + "/slack"},
        entity="deal",
        path="/slack",
    ),
    Plugin(
        action={"type": "notify_telegram", "text": "New deal {{ record.title }}"},
        credentials=lambda base: {"bot_token": TOKEN, "chat_id": "42"},
        entity="deal",
        path=f"/bot{TOKEN}/sendMessage",
        accepted=json.dumps({"ok": True, "result": {"message_id": 7}}).encode(),
    ),
]


@pytest.fixture
def stage(engine: Any, make_team: Any, receiver: Any) -> Iterator[Any]:
    team = make_team("Acme")
    sessions = make_session_factory(engine)  # no runner listens: the test's threads are the workers
    registry = load_registry()
    settings = Settings(
        secret_key="test-secret-key",
        outbound_allow=("127.0.0.1",),
        extra={"telegram_api_base": receiver.url},
    )

    class Stage:
        def execution_for(self, plugin: Plugin) -> int:
            """The team's credentials, a workflow running the plugin, a record: the pending
            execution's id."""
            with sessions() as session:
                scope = TeamScope(
                    session, Actor(team.team_id, team.user_id), WorkflowEngine(registry, settings)
                )
                credentials.put(scope, plugin.name, plugin.credentials(receiver.url), settings)
                workflows.save(scope, {
                    "id": f"race-{plugin.name}", "name": "Deliver once", "entity": plugin.entity,
                    "trigger": {"type": "record_saved", "on": ["created"]},
                    "actions": [plugin.action],
                })
                if plugin.entity == "contact":
                    contacts.create(scope, contacts.ContactIn(name="Ada", email=EMAIL))
                else:
                    deals.create(scope, deals.DealIn(title="Initech"))
            with sessions() as session:
                (execution_id,) = session.scalars(select(ActionExecution.id))
            return execution_id

        def perform(self, execution_id: int) -> Attempt | None:
            return perform(sessions, registry, settings, execution_id)

        def race(self, execution_id: int) -> list[Attempt | None]:
            """``WORKERS`` workers handed the execution's message at the same moment."""
            barrier = threading.Barrier(WORKERS)
            outcomes: list[Attempt | None] = []

            def work() -> None:
                barrier.wait()
                outcomes.append(self.perform(execution_id))

            threads = [threading.Thread(target=work) for _ in range(WORKERS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert len(outcomes) == WORKERS, "a worker did not finish in 30 s"
            return outcomes

        def make_due(self, execution_id: int) -> None:
            make_due(sessions, execution_id)

        def status(self, execution_id: int) -> tuple[str, int]:
            with sessions() as session:
                row = session.get(ActionExecution, execution_id)
                assert row is not None
                return row.status, row.attempts

    yield Stage()


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_a_retry_raced_by_two_workers_is_delivered_once(
    stage: Any, receiver: Any, plugin: Plugin
) -> None:
    # Given an execution whose first attempt met a 503 and whose retry is now due
    receiver.respond(plugin.path, 503, b"busy")
    execution_id = stage.execution_for(plugin)
    first = stage.perform(execution_id)
    assert first is not None and first.status == "failed"
    assert len(receiver.received(plugin.path, method=plugin.method)) == 1
    stage.make_due(execution_id)
    receiver.respond(plugin.path, 200, plugin.accepted)
    # When two workers are handed the retry at the same moment
    outcomes = stage.race(execution_id)
    # Then one performed it and the other did nothing
    assert [o.status for o in outcomes if o is not None] == ["succeeded"]
    # and the receiving server got the failed attempt and exactly one delivery
    got = receiver.received(method=plugin.method)
    assert [r.path for r in got] == [plugin.path, plugin.path]
    assert len({r.body for r in got}) == 1
    assert stage.status(execution_id) == ("succeeded", 2)
    # When the message is delivered once more, late
    assert stage.perform(execution_id) is None
    # Then nothing more reached the server
    assert len(receiver.received(method=plugin.method)) == 2


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_a_first_attempt_raced_by_two_workers_is_delivered_once(
    stage: Any, receiver: Any, plugin: Plugin
) -> None:
    # Given a pending execution, the service accepting
    receiver.respond(plugin.path, 200, plugin.accepted)
    execution_id = stage.execution_for(plugin)
    # When two workers are handed its message at the same moment
    outcomes = stage.race(execution_id)
    # Then exactly one request reached the server and the execution succeeded once
    assert [o.status for o in outcomes if o is not None] == ["succeeded"]
    assert [r.path for r in receiver.received(method=plugin.method)] == [plugin.path]
    assert stage.status(execution_id) == ("succeeded", 1)

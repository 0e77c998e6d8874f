"""The runner: an outbox relay onto a dramatiq broker and the worker that performs executions.

These run the embedded default (in-memory broker, in-process worker); tests/faults runs the
same code across processes with Redis.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select, update

from server.core.broker import make_broker
from server.core.db import make_session_factory
from server.core.engine import WorkflowEngine
from server.core.models import ActionExecution, utcnow
from server.core.plugins import load_registry
from server.core.runner import Runner
from server.core.scope import Actor, TeamScope
from server.core.services import deals, workflows
from server.settings import Settings


def hook(url: str) -> dict[str, Any]:
    return {
        "id": "to-erp", "name": "Post new deals", "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": [{"type": "post_to", "url": url}],
    }


class FlakyBroker(StubBroker):
    """An in-memory broker that can be taken down, as Redis can."""

    down = False
    refused = 0

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        if self.down:
            self.refused += 1
            raise ConnectionError("broker down")
        return super().enqueue(message, delay=delay)


@pytest.fixture
def setup(engine: Any, make_team: Any) -> Iterator[Any]:
    team = make_team("Acme")
    sessions = make_session_factory(engine)
    registry = load_registry()
    settings = Settings(relay_interval=0.05)
    runners: list[Runner] = []

    class Setup:
        def runner(self, broker: Any = None, **kwargs: Any) -> Runner:
            runner = Runner(sessions, registry, settings, broker or make_broker(None), **kwargs)
            runners.append(runner)
            return runner

        def save_deals(self, url: str, count: int = 1) -> None:
            """Save deals as the CLI does: in a process with no runner listening."""
            with sessions() as session:
                scope = TeamScope(session, Actor(team.team_id, team.user_id), WorkflowEngine(registry))
                if workflows.find(scope, "to-erp") is None:
                    workflows.save(scope, hook(url))
                for n in range(count):
                    deals.create(scope, deals.DealIn(title=f"Deal {n}"))

        def executions(self) -> list[tuple[str, int]]:
            with sessions() as session:
                rows = session.query(ActionExecution).order_by(ActionExecution.id)
                return [(e.status, e.attempts) for e in rows]

        def ids(self) -> list[int]:
            with sessions() as session:
                return list(session.scalars(select(ActionExecution.id).order_by(ActionExecution.id)))

        def set(self, **values: Any) -> None:
            with sessions() as session:
                session.execute(update(ActionExecution).values(**values))
                session.commit()

    yield Setup()
    for runner in runners:
        runner.close()


def test_a_relay_sends_executions_written_without_a_hand_over(setup: Any, receiver: Any) -> None:
    # Given three deals saved by a process with no runner: their executions stay pending
    setup.save_deals(receiver.url + "/erp", count=3)
    assert setup.executions() == [("pending", 0)] * 3
    # When a runner starts (it is told about none of them)
    runner = setup.runner()
    runner.start()
    # Then each was posted once and succeeded
    assert runner.join(10)
    assert len(receiver.received("/erp")) == 3
    keys = {r.headers["idempotency-key"] for r in receiver.received("/erp")}
    assert len(keys) == 3
    assert setup.executions() == [("succeeded", 1)] * 3


def test_a_message_delivered_twice_acts_once(setup: Any, receiver: Any) -> None:
    # Given a pending execution and a running worker
    setup.save_deals(receiver.url + "/erp")
    runner = setup.runner()
    runner.start()
    assert runner.join(10)
    assert len(receiver.received("/erp")) == 1
    # When its message is delivered twice more
    (execution_id,) = setup.ids()
    runner.actor.send(execution_id)
    runner.actor.send(execution_id)
    assert runner.join(10)
    time.sleep(0.2)
    # Then the side effect happened once
    assert len(receiver.received("/erp")) == 1
    assert setup.executions() == [("succeeded", 1)]


def test_a_broker_outage_keeps_executions_until_the_broker_is_back(setup: Any, receiver: Any) -> None:
    # Given a worker whose broker is down
    broker = FlakyBroker()
    broker.fail_fast_default = False
    broker.down = True
    runner = setup.runner(broker)
    runner.start()
    # When deals are saved and handed over
    setup.save_deals(receiver.url + "/erp", count=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        broker.refused >= 2 and setup.executions() == [("pending", 0)] * 5
    ):
        time.sleep(0.02)
    # Then the relay tried (and tries again), nothing was sent and nothing is lost
    assert broker.refused >= 2
    assert receiver.received("/erp") == []
    assert setup.executions() == [("pending", 0)] * 5
    # When the broker is back, the relay's next round sends them, each once
    broker.down = False
    assert runner.join(10)
    assert len(receiver.received("/erp")) == 5
    assert setup.executions() == [("succeeded", 1)] * 5


def test_a_failed_attempt_is_retried_when_due_and_a_4xx_is_dead_at_once(
    setup: Any, receiver: Any
) -> None:
    # Given an ERP that answers 503 once, then 200
    receiver.respond("/erp", 503)
    setup.save_deals(receiver.url + "/erp")
    runner = setup.runner(backoff_base=0.05)
    runner.start()
    assert runner.join(10)
    # Then the second attempt succeeded, and the log shows both
    assert [r.path for r in receiver.received()] == ["/erp", "/erp"]
    assert setup.executions() == [("succeeded", 2)]
    # When another deal meets a 422 (permanent), it is dead after one attempt
    receiver.respond("/erp", 422)
    setup.save_deals(receiver.url + "/erp")
    assert runner.join(10)
    assert setup.executions()[-1] == ("dead", 1)


def test_an_expired_lease_is_taken_over(setup: Any, receiver: Any) -> None:
    # Given an execution a worker claimed, then died holding (its lease ran out)
    setup.save_deals(receiver.url + "/erp")
    setup.set(status="running", attempts=1, next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    # When a runner starts
    runner = setup.runner()
    runner.start()
    # Then the execution is performed again, as attempt 2
    assert runner.join(10)
    assert len(receiver.received("/erp")) == 1
    assert setup.executions() == [("succeeded", 2)]


def test_a_live_lease_is_left_alone(setup: Any, receiver: Any) -> None:
    # Given an execution another worker holds for another minute
    setup.save_deals(receiver.url + "/erp")
    setup.set(status="running", attempts=1, next_attempt_at=utcnow() + dt.timedelta(minutes=1))
    runner = setup.runner()
    runner.start()
    # When its message arrives anyway
    (execution_id,) = setup.ids()
    runner.actor.send(execution_id)
    time.sleep(0.5)
    # Then this worker does not perform it
    assert receiver.received("/erp") == []
    assert setup.executions() == [("running", 1)]


def test_queued_executions_of_a_dead_in_memory_broker_are_sent_again(
    setup: Any, receiver: Any
) -> None:
    # Given executions a crashed embedded server had queued in its in-memory broker
    setup.save_deals(receiver.url + "/erp", count=2)
    setup.set(status="queued", dispatched_at=utcnow())
    # When the next embedded server starts
    runner = setup.runner()
    runner.start()
    # Then they are performed, each once
    assert runner.join(10)
    assert len(receiver.received("/erp")) == 2
    assert setup.executions() == [("succeeded", 1)] * 2


def test_an_execution_whose_workers_keep_dying_is_dead_not_run_again(
    setup: Any, receiver: Any
) -> None:
    # Given an execution claimed as often as post_to allows (3), each worker lost mid-action
    setup.save_deals(receiver.url + "/erp")
    setup.set(status="running", attempts=3, next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    # When its last lease has run out and a runner takes it up
    runner = setup.runner()
    runner.start()
    assert runner.join(10)
    # Then it is dead, with the reason, and the action was not performed a fourth time
    assert receiver.received("/erp") == []
    assert setup.executions() == [("dead", 4)]
    with make_session_factory(runner.factory.kw["bind"])() as session:
        (execution,) = session.scalars(select(ActionExecution))
        assert "worker performing it was lost 3 times" in (execution.last_error or "")


def test_workers_racing_for_one_execution_deliver_it_once(setup: Any, receiver: Any) -> None:
    import threading

    from server.core.execution import perform

    # Given one pending execution, and eight workers handed its message at the same moment
    setup.save_deals(receiver.url + "/erp")
    (execution_id,) = setup.ids()
    runner = setup.runner()  # not started: the threads below are the workers
    barrier = threading.Barrier(8)
    outcomes: list[Any] = []

    def work() -> None:
        barrier.wait()
        outcomes.append(perform(runner.factory, runner.registry, runner.settings, execution_id))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then exactly one claimed and performed it; the others did nothing
    assert [o.status for o in outcomes if o is not None] == ["succeeded"]
    assert len(receiver.received("/erp")) == 1
    assert setup.executions() == [("succeeded", 1)]

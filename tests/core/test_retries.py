"""Retries of side-effect executions: exponential backoff with full jitter, up to the action
type's limit of attempts; then the execution is ``dead``, with its last error.

The failing peer is the recording HTTP server; the action types are the sample plugin's
``post_to`` (3 attempts) and the shipped ``erp_export`` (8), so the limit is seen to be the
type's own. Time is moved by making a failed execution due (its ``next_attempt_at``), never
by sleeping through the backoff.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import make_due
from sqlalchemy import select

from server.core import execution
from server.core.broker import make_broker
from server.core.db import make_session_factory
from server.core.engine import WorkflowEngine
from server.core.execution import backoff, perform
from server.core.models import ActionExecution
from server.core.plugins import load_registry
from server.core.runner import Runner
from server.core.scope import Actor, TeamScope
from server.core.services import credentials, deals, workflows
from server.settings import Settings

ERP_SECRET = "erp-hmac-secret-retries"


class Ceiling:
    """Stands in for the ``random`` module: ``uniform(a, b)`` records its bounds and returns
    ``b``, the longest wait the jitter allows."""

    def __init__(self) -> None:
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.bounds.append((low, high))
        return high


# --- backoff() --------------------------------------------------------------------------------


def test_backoff_doubles_from_its_base_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    ceiling = Ceiling()
    monkeypatch.setattr(execution, "random", ceiling)
    assert [backoff(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert [backoff(n, base=0.5, cap=3.0) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]
    # Full jitter: every wait is drawn from zero up to the bound
    assert {low for low, _ in ceiling.bounds} == {0}


def test_backoff_stays_at_the_cap_however_many_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    # An action type may allow many attempts: the bound must not overflow past the cap
    monkeypatch.setattr(execution, "random", Ceiling())
    assert backoff(1025) == 300.0
    assert backoff(100_000, base=0.05, cap=60.0) == 60.0


@pytest.mark.parametrize(("attempt", "bound"), [(1, 1.0), (3, 4.0), (6, 32.0), (12, 300.0)])
def test_backoff_jitter_spreads_evenly_below_the_bound(
    monkeypatch: pytest.MonkeyPatch, attempt: int, bound: float
) -> None:
    # Given a seeded random source (the same draws on every run)
    monkeypatch.setattr(execution, "random", random.Random(20251125 + attempt))
    # When many retries of the same attempt are scheduled
    delays = [backoff(attempt) for _ in range(2000)]
    # Then each waits between nothing and the bound, no two alike, spread over the whole range
    assert all(0 <= d <= bound for d in delays)
    assert len(set(delays)) == len(delays)
    assert min(delays) < 0.01 * bound and max(delays) > 0.99 * bound
    assert 0.45 * bound < statistics.fmean(delays) < 0.55 * bound
    # and the draws are the seeded source's: uniform over [0, bound]
    replay = random.Random(20251125 + attempt)
    assert delays[:5] == [replay.uniform(0, bound) for _ in range(5)]


# --- retries up to the type's limit -----------------------------------------------------------


LIMITS = {"post_to": 3, "erp_export": 8}


def action(kind: str, url: str) -> dict[str, Any]:
    if kind == "post_to":
        return {"type": "post_to", "url": url}
    return {"type": "erp_export", "projection": "{id: record.id, title: record.title}"}


@pytest.fixture
def setup(engine: Any, make_team: Any) -> Iterator[Any]:
    team = make_team("Acme")
    sessions = make_session_factory(engine)  # no runner listens to these sessions
    registry = load_registry()
    settings = Settings(
        relay_interval=0.05, secret_key="test-secret-key", outbound_allow=("127.0.0.1",)
    )
    runners: list[Runner] = []

    class Setup:
        def __init__(self) -> None:
            self.sessions = sessions
            self.registry = registry
            self.settings = settings

        def save_deal(self, kind: str, url: str) -> int:
            """A workflow running ``kind`` on new deals, a deal; the execution's id."""
            with sessions() as session:
                scope = TeamScope(
                    session, Actor(team.team_id, team.user_id), WorkflowEngine(registry, settings)
                )
                if kind == "erp_export":
                    values = {"url": url, "secret": ERP_SECRET}
                    credentials.put(scope, "erp_export", values, settings)
                workflows.save(scope, {
                    "id": f"retry-{kind}", "name": "Push new deals", "entity": "deal",
                    "trigger": {"type": "record_saved", "on": ["created"]},
                    "actions": [action(kind, url)],
                })
                deals.create(scope, deals.DealIn(title="Initech"))
            (execution_id,) = self.ids()
            return execution_id

        def ids(self) -> list[int]:
            with sessions() as session:
                return list(session.scalars(select(ActionExecution.id)))

        def execution(self, execution_id: int) -> ActionExecution:
            with sessions() as session:
                row = session.get(ActionExecution, execution_id)
                assert row is not None
                session.expunge(row)
                return row

        def perform(self, execution_id: int) -> Any:
            return perform(sessions, registry, settings, execution_id)

        def make_due(self, execution_id: int) -> None:
            make_due(sessions, execution_id)

        def runner(self, **kwargs: Any) -> Runner:
            runner = Runner(sessions, registry, settings, make_broker(None), **kwargs)
            runners.append(runner)
            return runner

    yield Setup()
    for runner in runners:
        runner.close()


def outage(receiver: Any, path: str, attempts: int) -> None:
    """The peer fails every one of ``attempts`` requests (and one more), each differently, so
    that the last error can be told from the earlier ones."""
    for n in range(1, attempts + 2):
        receiver.respond(path, 499 + n, f"outage {n}".encode())


def aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_a_failure_is_retried_with_growing_delays_until_the_limit_then_dead(
    setup: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # Given a peer failing every request, and the jitter at its longest (waits are exact)
    limit = LIMITS[kind]
    outage(receiver, "/erp", limit)
    monkeypatch.setattr(execution, "random", Ceiling())
    execution_id = setup.save_deal(kind, receiver.url + "/erp")

    for n in range(1, limit):
        # When a worker performs attempt n
        outcome = setup.perform(execution_id)
        # Then it failed and is scheduled base * 2**(n-1) seconds later (base 1 s)
        assert outcome is not None and outcome.status == "failed"
        assert outcome.retry_in == 2 ** (n - 1)
        row = setup.execution(execution_id)
        assert (row.status, row.attempts) == ("failed", n)
        entry = row.attempt_log[-1]
        assert entry["attempt"] == n and entry["retry_in_s"] == 2 ** (n - 1)
        assert f"HTTP {499 + n}" in (row.last_error or "")
        assert row.next_attempt_at is not None
        waits = aware(row.next_attempt_at) - dt.datetime.fromisoformat(entry["at"])
        slack = dt.timedelta(milliseconds=entry["duration_ms"] + 500)
        scheduled = dt.timedelta(seconds=2 ** (n - 1))
        assert scheduled <= waits <= scheduled + slack
        # and a worker handed it before that time leaves it alone
        assert setup.perform(execution_id) is None
        assert len(receiver.received("/erp")) == n
        # When the time comes
        setup.make_due(execution_id)

    # When the last attempt the type allows fails too
    outcome = setup.perform(execution_id)
    # Then the execution is dead after exactly `limit` requests, with the last error
    assert outcome is not None and (outcome.status, outcome.retry_in) == ("dead", None)
    requests = receiver.received("/erp")
    assert len(requests) == limit
    assert len({r.headers["idempotency-key"] for r in requests}) == 1
    row = setup.execution(execution_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("dead", limit, None)
    assert f"HTTP {499 + limit}" in (row.last_error or "")
    if kind == "erp_export":
        assert row.last_error.endswith(f"outage {limit}")
    # and every attempt is in its log, the last one marked dead
    assert [e["attempt"] for e in row.attempt_log] == list(range(1, limit + 1))
    assert all(e["status"] == "error" for e in row.attempt_log)
    assert row.attempt_log[-1]["error"] == row.last_error
    assert row.attempt_log[-1]["outcome"] == "dead" and "retry_in_s" not in row.attempt_log[-1]
    assert [e["retry_in_s"] for e in row.attempt_log[:-1]] == [2**i for i in range(limit - 1)]
    # When its message comes again, or it would be due again, nothing more is sent
    setup.make_due(execution_id)
    assert setup.perform(execution_id) is None
    assert len(receiver.received("/erp")) == limit
    assert setup.execution(execution_id).status == "dead"


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_a_runner_retries_a_failing_execution_until_it_is_dead(
    setup: Any, receiver: Any, kind: str
) -> None:
    # Given a peer failing every request and a runner with a short backoff base (real jitter)
    limit = LIMITS[kind]
    outage(receiver, "/erp", limit)
    execution_id = setup.save_deal(kind, receiver.url + "/erp")
    runner = setup.runner(backoff_base=0.01)
    # When the runner takes it up and is left to retry
    runner.start()
    assert runner.join(15)
    # Then the peer got exactly `limit` requests and the execution is dead with the last error
    assert len(receiver.received("/erp")) == limit
    row = setup.execution(execution_id)
    assert (row.status, row.attempts) == ("dead", limit)
    assert f"HTTP {499 + limit}" in (row.last_error or "")
    assert [e["attempt"] for e in row.attempt_log] == list(range(1, limit + 1))
    # and each wait was jittered below its doubling bound (base 0.01 s)
    for n, entry in enumerate(row.attempt_log[:-1], start=1):
        assert 0 <= entry["retry_in_s"] <= 0.01 * 2 ** (n - 1) + 0.001
    # and, in time, each attempt came no sooner than its scheduled wait
    for before, after in zip(row.attempt_log, row.attempt_log[1:], strict=False):
        gap = dt.datetime.fromisoformat(after["at"]) - dt.datetime.fromisoformat(before["at"])
        assert gap >= dt.timedelta(seconds=before["retry_in_s"] - 0.001)

"""The ``dealflow_event`` hook survives a crash: a server killed right after a commit, while
calling the hook, leaves the event to a worker's relay, which calls it to the end once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from faults.conftest import Cluster, wait_until
from faults.test_durability import make_key, post
from server.core.models import Event


def owed(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return list(session.scalars(select(Event.id).where(Event.notify_at.is_not(None))))


def test_a_server_killed_while_calling_the_event_hook_has_it_called_again_by_a_worker(
    cluster: Cluster, pg_engine: Engine, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server whose plugin's dealflow_event hook blocks half-way until released
    # (In the processes' environment only: this process's plugins stay without the hook.)
    hooked = {"DEALFLOW_PLUGIN_SAMPLE_EVENT_URL": receiver.url + "/ev",
              "DEALFLOW_EVENT_HOOK_LEASE_SECONDS": "3"}
    monkeypatch.setattr(cluster, "env", lambda **extra: Cluster.env(cluster, **hooked, **extra))
    headers = make_key(pg_engine)
    server = cluster.server()
    post(cluster, headers, "/api/v1/deals", {"title": "Initech"})
    wait_until(lambda: receiver.received("/ev/started"), 20, "the hook to start", *cluster.processes)
    (event_id,) = owed(pg_engine)

    # When the server is killed in the middle of the call, the gate opens and a worker starts
    server.kill()
    receiver.release()
    cluster.worker()

    # Then, once the dead server's lease ran out, the worker's relay called the hook again,
    # to the end, exactly once, and the event is no longer owed
    wait_until(lambda: receiver.received("/ev/done"), 30, "the hook to complete", *cluster.processes)
    wait_until(lambda: not owed(pg_engine), 10, "the event to be recorded", *cluster.processes)
    done = Counter(r.json()["event_id"] for r in receiver.received("/ev/done"))
    assert done == Counter({event_id: 1}), cluster.logs()
    assert [r.json()["event_id"] for r in receiver.received("/ev/started")] == [event_id, event_id]

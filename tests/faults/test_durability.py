"""Durability with real processes: workers, servers and Redis killed mid-way lose nothing and
do nothing twice. Every assertion counts what the receiving HTTP server got."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import dramatiq
import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from faults.conftest import DEALFLOW, Cluster, Process, wait_until
from server.core.broker import ACTOR, QUEUE, make_broker
from server.core.db import make_engine, make_session_factory, transaction
from server.core.models import ActionExecution
from server.core.services.teams import create_team
from server.migrations import upgrade


def workflow(action: str, url: str) -> dict[str, Any]:
    return {
        "id": "push-deal", "name": "Push new deals", "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": [{"type": action, "url": url}],
    }


def make_key(engine: Engine) -> dict[str, str]:
    with transaction(make_session_factory(engine)) as session:
        _, _, key = create_team(session, "Acme", admin_email="admin@acme.test")
    return {"Authorization": f"Bearer {key}"}


def statuses(engine: Engine) -> Counter[tuple[str, int]]:
    with Session(engine) as session:
        rows = session.execute(select(ActionExecution.status, ActionExecution.attempts))
        return Counter((status, attempts) for status, attempts in rows)


def post(cluster: Cluster, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    resp = httpx.post(f"{cluster.base}{path}", json=body, headers=headers, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def keys(requests: list[Any]) -> Counter[str]:
    return Counter(r.headers["idempotency-key"] for r in requests)


def test_a_worker_killed_mid_action_is_replaced_and_the_action_completes_once(
    cluster: Cluster, pg_engine: Engine, receiver: Any
) -> None:
    # Given a server, a worker, and a workflow whose action blocks half-way until released
    headers = make_key(pg_engine)
    cluster.server()
    first = cluster.worker()
    post(cluster, headers, "/api/v1/workflows", workflow("gated_post", receiver.url + "/g"))
    post(cluster, headers, "/api/v1/deals", {"title": "Initech"})
    wait_until(lambda: receiver.received("/g/started"), 20, "the action to start", *cluster.processes)

    # When the worker is killed in the middle of the action, the gate opens and a new worker starts
    first.kill()
    receiver.release()
    cluster.worker()

    # Then, once the dead worker's lease ran out, the action ran again and completed exactly once
    wait_until(lambda: receiver.received("/g/done"), 30, "the action to complete", *cluster.processes)
    wait_until(lambda: statuses(pg_engine) == Counter({("succeeded", 2): 1}), 10,
               "the execution to be recorded", *cluster.processes)
    done = receiver.received("/g/done")
    assert len(done) == 1, cluster.logs()
    assert len(receiver.received("/g/started")) == 2  # the killed attempt and the one that finished


def test_a_redis_outage_delays_side_effects_and_loses_none(
    cluster: Cluster, pg_engine: Engine, receiver: Any
) -> None:
    # Given a server and a worker, and a workflow posting each new deal to the ERP
    headers = make_key(pg_engine)
    cluster.server()
    cluster.worker()
    post(cluster, headers, "/api/v1/workflows", workflow("post_to", receiver.url + "/erp"))

    # When Redis goes down and 200 deals are saved, the API keeps answering
    assert cluster.redis is not None
    cluster.redis.kill()
    with httpx.Client(base_url=cluster.base, headers=headers, timeout=10) as api:
        for n in range(200):
            resp = api.post("/api/v1/deals", json={"title": f"Deal {n}", "amount": n})
            assert resp.status_code == 201, resp.text
    assert receiver.received("/erp") == []

    # When Redis is back (empty: it kept nothing)
    cluster.redis.start()

    # Then each of the 200 side effects reached the ERP exactly once
    wait_until(lambda: len(receiver.received("/erp")) >= 200, 60,
               "200 deliveries", *cluster.processes)
    wait_until(lambda: statuses(pg_engine) == Counter({("succeeded", 1): 200}), 20,
               "200 executions to succeed", *cluster.processes)
    delivered = keys(receiver.received("/erp"))
    assert len(delivered) == 200 and set(delivered.values()) == {1}, cluster.logs()

    # When the same messages are delivered again (a broker may deliver twice)
    broker = make_broker(cluster.redis.url)
    actor: dramatiq.Actor[[int], None] = dramatiq.Actor(
        lambda execution_id: None, broker=broker, actor_name=ACTOR, queue_name=QUEUE,
        priority=0, options={},
    )
    with Session(pg_engine) as session:
        ids = list(session.scalars(select(ActionExecution.id).limit(20)))
    for execution_id in ids:
        actor.send(execution_id)
        actor.send(execution_id)
    # Then the workers took them (the queue drained) and nothing was sent twice
    wait_until(lambda: broker.client.llen(f"dealflow:{QUEUE}") == 0
               and not broker.client.hlen(f"dealflow:{QUEUE}.msgs"), 20,
               "the repeated messages to be consumed", *cluster.processes)
    assert len(receiver.received("/erp")) == 200


def test_a_server_killed_between_commit_and_dispatch_delivers_after_restart(
    cluster: Cluster, pg_engine: Engine, receiver: Any
) -> None:
    # Given a server whose broker is unreachable, so nothing committed can be dispatched
    headers = make_key(pg_engine)
    assert cluster.redis is not None
    cluster.redis.kill()
    server = cluster.server()
    post(cluster, headers, "/api/v1/workflows", workflow("post_to", receiver.url + "/erp"))
    for n in range(20):
        post(cluster, headers, "/api/v1/deals", {"title": f"Deal {n}"})

    # When the server is killed with its executions committed but not dispatched
    server.kill()
    assert statuses(pg_engine) == Counter({("pending", 0): 20})

    # And Redis, a new server and a worker start
    cluster.redis.start()
    cluster.server()
    cluster.worker()

    # Then the relay of the new server delivers everything, once
    wait_until(lambda: statuses(pg_engine) == Counter({("succeeded", 1): 20}), 30,
               "20 executions to succeed", *cluster.processes)
    delivered = keys(receiver.received("/erp"))
    assert len(delivered) == 20 and set(delivered.values()) == {1}, cluster.logs()


def test_a_server_killed_while_handing_over_to_a_live_broker_delivers_each_once(
    cluster: Cluster, pg_engine: Engine, receiver: Any
) -> None:
    # Given a server connected to Redis, and Redis frozen (SIGSTOP): it accepts what the
    # server writes into its socket but answers nothing, so the hand-over is under way, not
    # refused, when the server dies
    headers = make_key(pg_engine)
    assert cluster.redis is not None
    server = cluster.server()
    cluster.worker()
    post(cluster, headers, "/api/v1/workflows", workflow("post_to", receiver.url + "/erp"))
    post(cluster, headers, "/api/v1/deals", {"title": "Warm-up"})
    wait_until(lambda: len(receiver.received("/erp")) == 1, 20, "the warm-up delivery",
               *cluster.processes)
    os.kill(cluster.redis.proc.pid, signal.SIGSTOP)
    try:
        for n in range(20):
            post(cluster, headers, "/api/v1/deals", {"title": f"Deal {n}"})

        # When the server is killed mid hand-over: all 20 committed, none marked as sent
        server.kill()
        assert statuses(pg_engine)[("pending", 0)] == 20
    finally:
        # and Redis resumes (it may enqueue what the dead server had written)
        os.kill(cluster.redis.proc.pid, signal.SIGCONT)

    # And a new server starts (the worker is still there)
    cluster.server()

    # Then each of the 21 side effects reached the receiver exactly once
    wait_until(lambda: statuses(pg_engine) == Counter({("succeeded", 1): 21}), 30,
               "21 executions to succeed", *cluster.processes)
    delivered = keys(receiver.received("/erp"))
    assert len(delivered) == 21 and set(delivered.values()) == {1}, cluster.logs()


def test_the_embedded_server_killed_mid_action_completes_it_once_after_restart(
    tmp_path: Path, receiver: Any
) -> None:
    # Given the embedded default: a SQLite file, no Redis, the worker inside the server
    url = f"sqlite:///{tmp_path / 'dealflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    headers = make_key(engine)
    cluster = Cluster(tmp_path, url, None)
    try:
        server = cluster.server()
        post(cluster, headers, "/api/v1/workflows", workflow("gated_post", receiver.url + "/g"))
        post(cluster, headers, "/api/v1/deals", {"title": "Initech"})
        wait_until(lambda: receiver.received("/g/started"), 20, "the action to start", server)

        # When the server is killed mid-action, and restarted once the gate is open
        server.kill()
        receiver.release()
        cluster.server()

        # Then the action completes exactly once
        wait_until(lambda: statuses(engine) == Counter({("succeeded", 2): 1}), 30,
                   "the execution to succeed", *cluster.processes)
        assert len(receiver.received("/g/done")) == 1, cluster.logs()
    finally:
        cluster.close()
        engine.dispose()


def test_a_message_repeated_while_its_execution_runs_elsewhere_acts_once(
    cluster: Cluster, pg_engine: Engine, receiver: Any
) -> None:
    # Given two workers, one of them in the middle of an action that blocks until released
    headers = make_key(pg_engine)
    cluster.server()
    cluster.worker()
    cluster.worker()
    post(cluster, headers, "/api/v1/workflows", workflow("gated_post", receiver.url + "/g"))
    post(cluster, headers, "/api/v1/deals", {"title": "Initech"})
    wait_until(lambda: receiver.received("/g/started"), 20, "the action to start", *cluster.processes)

    # When the broker delivers the same message twice more meanwhile (as a redelivery would)
    assert cluster.redis is not None
    broker = make_broker(cluster.redis.url)
    actor: dramatiq.Actor[[int], None] = dramatiq.Actor(
        lambda execution_id: None, broker=broker, actor_name=ACTOR, queue_name=QUEUE,
        priority=0, options={},
    )
    with Session(pg_engine) as session:
        (execution_id,) = session.scalars(select(ActionExecution.id)).all()
    actor.send(execution_id)
    actor.send(execution_id)
    # and the copies were taken and acknowledged (only the running original is unacked)
    wait_until(lambda: broker.client.llen(f"dealflow:{QUEUE}") == 0
               and broker.client.hlen(f"dealflow:{QUEUE}.msgs") <= 1, 20,
               "the repeated messages to be consumed", *cluster.processes)
    receiver.release()

    # Then the action ran once: one start, one completion, one attempt recorded
    wait_until(lambda: statuses(pg_engine) == Counter({("succeeded", 1): 1}), 20,
               "the execution to succeed", *cluster.processes)
    assert len(receiver.received("/g/started")) == 1, cluster.logs()
    assert len(receiver.received("/g/done")) == 1


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(p) for p in listing.read().split()]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A child that exited but is not reaped yet is as good as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"


def test_a_supervised_worker_killed_is_replaced_and_sigterm_stops_them_all(
    cluster: Cluster, pg_engine: Engine, receiver: Any
) -> None:
    # Given `dealflow worker --processes 2`: a supervisor and its two workers
    headers = make_key(pg_engine)
    cluster.server()
    supervisor = Process("workers", [*DEALFLOW, "worker", "--processes", "2"], cluster.env(),
                         cluster.tmp / "workers.log").start()
    cluster.processes.append(supervisor)
    assert supervisor.proc is not None
    wait_until(lambda: supervisor.output().count("threads on") == 2, 30, "two workers",
               supervisor)
    first, second = _children(supervisor.proc.pid)

    # When one of them is killed
    os.kill(first, signal.SIGKILL)

    # Then the supervisor starts another, and the workers still perform side effects
    wait_until(lambda: supervisor.output().count("threads on") == 3, 30, "a new worker",
               supervisor)
    assert f"Dealflow worker {first} exited" in supervisor.output()
    children = _children(supervisor.proc.pid)
    assert len(children) == 2 and second in children and first not in children
    post(cluster, headers, "/api/v1/workflows", workflow("post_to", receiver.url + "/erp"))
    post(cluster, headers, "/api/v1/deals", {"title": "Initech"})
    wait_until(lambda: statuses(pg_engine) == Counter({("succeeded", 1): 1}), 20,
               "the side effect", *cluster.processes)

    # When the supervisor alone is sent SIGTERM, then it and both workers stop
    os.kill(supervisor.proc.pid, signal.SIGTERM)
    supervisor.proc.wait(20)
    wait_until(lambda: all(_gone(pid) for pid in children), 20, "the workers to stop",
               supervisor)


def test_a_worker_without_redis_says_what_it_needs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'dealflow.db'}"
    done = subprocess.run([*DEALFLOW, "worker"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert "dealflow worker needs REDIS_URL" in done.stdout + done.stderr

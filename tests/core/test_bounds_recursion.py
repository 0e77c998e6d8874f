"""Loop and fan-out limits under a deliberately recursive workflow set: self-loops, ping-pong,
a wide fan-out, a chain fed past the event limit, a webhook whose side effect posts back to
its own hook, each played against a real server on 127.0.0.1. Each must end within a bound, record where it stopped in the run log, answer the
save that started it, and leave the server serving."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pluggy
import pytest
import uvicorn
from sqlalchemy import Engine

from server.app import create_app
from server.core import runtime as runtime_module
from server.core.action import Action, ActionContext, ActionError
from server.core.outbound import http_client
from server.core.plugins import build_registry, get_plugin_manager
from server.core.signatures import sign
from server.settings import Settings
from processes import free_port

hookimpl = pluggy.HookimplMarker("dealflow")
SETTLED = 30.0
"""Seconds an attack may take, from the save that starts it to the last side effect done."""


class Effects:
    """A plugin with two side effects, whose calls it counts: ``count`` does nothing more;
    ``echo`` posts the event's payload back to a hook (``url``), signed with ``secret`` as
    Standard Webhooks are, through the shared outbound client, as a plugin should."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    @hookimpl
    def dealflow_register_actions(self) -> list[Action]:
        def count(config: Any, context: ActionContext) -> dict[str, Any]:
            with self.lock:
                self.calls += 1
            return {"counted": True}

        def echo(config: Any, context: ActionContext) -> dict[str, Any]:
            count(config, context)
            body = json.dumps({"echo": context.document.get("payload")}).encode()
            webhook_id, timestamp = context.idempotency_key, int(time.time())
            headers = {
                "webhook-id": webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(config["secret"], webhook_id, timestamp, body),
                "content-type": "application/json",
            }
            response = http_client(context.settings).post(
                config["url"], content=body, headers=headers
            )
            if response.status_code != 202:
                raise ActionError(f"echo: HTTP {response.status_code}", permanent=True)
            return {"runs": response.json()["runs"]}

        strings = {"type": "string", "minLength": 1}
        return [
            Action(
                name="count",
                kind="side_effect",
                config_schema={"type": "object", "additionalProperties": False},
                execute=count,
            ),
            Action(
                name="echo",
                kind="side_effect",
                config_schema={
                    "type": "object",
                    "properties": {"url": strings, "secret": strings},
                    "required": ["url", "secret"],
                    "additionalProperties": False,
                },
                execute=echo,
            ),
        ]


@dataclass
class Served:
    """The app served by uvicorn on 127.0.0.1, and a client with team A's key."""

    app: Any
    server: uvicorn.Server
    thread: threading.Thread
    client: httpx.Client
    team_id: int
    effects: Effects

    @property
    def url(self) -> str:
        return str(self.client.base_url).rstrip("/")

    def settle(self, timeout: float = SETTLED) -> None:
        assert self.app.state.runtime.runner.join(timeout), "side effects still running"

    def runs(self, **params: Any) -> list[dict[str, Any]]:
        params.setdefault("limit", 200)
        answer = self.client.get("/api/v1/runs", params=params)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])


@pytest.fixture
def serve(
    engine: Engine, db_url: str, team: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Served]]:
    """``serve(**settings)``: the real app, with the ``count`` side effect, on a free port."""
    started: list[Served] = []

    def make(**overrides: Any) -> Served:
        effects = Effects()
        pm = get_plugin_manager()
        pm.register(effects, name="count-effects")
        registry = build_registry(pm)
        monkeypatch.setattr(runtime_module, "load_registry", lambda disabled=(): registry)
        settings = Settings(
            database_url=db_url,
            secret_key="test-secret-key",
            outbound_allow=("127.0.0.1",),
            rate_limit_per_second=0,
            **overrides,
        )
        app = create_app(settings, engine=engine)
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start in 10 s"
            assert thread.is_alive(), "the server stopped at start"
            time.sleep(0.02)
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=team.headers, timeout=10.0
        )
        served = Served(app, server, thread, client, team.team_id, effects)
        started.append(served)
        return served

    yield make
    for served in started:
        served.settle(10)
        served.client.close()
        served.server.should_exit = True
        served.thread.join(10)


# --- the workflow sets -----------------------------------------------------------------------


def formula(key: str, field: str, expression: str, listens: list[str] | None) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "record_saved", "on": ["updated"]}
    if listens:
        trigger["fields"] = listens
    return {
        "id": key,
        "name": key,
        "entity": "deal",
        "trigger": trigger,
        "actions": [{"type": "formula", "field": field, "expression": expression}],
    }


def effects(key: str, count: int) -> dict[str, Any]:
    return {
        "id": key,
        "name": key,
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "count"}] * count,
    }


def post(served: Served, path: str, json: Any) -> httpx.Response:
    answer = served.client.request("PATCH" if "/deals/" in path else "POST", path, json=json)
    assert answer.is_success, answer.text
    return answer


def deal_with(served: Served, workflows: list[dict[str, Any]], **custom: Any) -> int:
    for workflow in workflows:
        post(served, "/api/v1/workflows", workflow)
    return int(post(served, "/api/v1/deals", {"title": "Initech", "custom": custom}).json()["id"])


def deal_runs(served: Served, deal_id: int) -> list[dict[str, Any]]:
    return [
        r for r in served.runs(entity="deal", record_id=deal_id) if r["op"] == "updated"
    ]


def self_loop(served: Served) -> list[dict[str, Any]]:
    # n + 1 whenever n changes
    deal_id = deal_with(served, [formula("self", "custom.n", "custom.n + 1", ["custom.n"])])
    post(served, f"/api/v1/deals/{deal_id}", {"custom": {"n": 0}})
    return deal_runs(served, deal_id)


def ping_pong(served: Served) -> list[dict[str, Any]]:
    # ping follows pong, pong follows ping
    deal_id = deal_with(
        served,
        [
            formula("ping", "custom.ping", "custom.pong + 1", ["custom.pong"]),
            formula("pong", "custom.pong", "custom.ping + 1", ["custom.ping"]),
        ],
        ping=0,
        pong=0,
    )
    post(served, f"/api/v1/deals/{deal_id}", {"custom": {"ping": 1}})
    return deal_runs(served, deal_id)


def every_change(served: Served) -> list[dict[str, Any]]:
    # a, b and c each bump their own counter on any change: never a loop, only limits stop it
    workflows = [formula(k, f"custom.{k}", f"custom.{k} + 1", None) for k in "abc"]
    deal_id = deal_with(served, workflows, a=0, b=0, c=0)
    post(served, f"/api/v1/deals/{deal_id}", {"title": "Initech TPS"})
    return deal_runs(served, deal_id)


def wide_fan_out(served: Served) -> list[dict[str, Any]]:
    # 25 workflows on any save of a deal, each with 5 side effects: 125 for one save
    for i in range(25):
        post(served, "/api/v1/workflows", effects(f"fan-{i:02}", 5))
    deal_id = post(served, "/api/v1/deals", {"title": "Initech"}).json()["id"]
    return served.runs(entity="deal", record_id=deal_id)


def signed(secret: str, body: bytes, webhook_id: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def addressed_records(served: Served) -> list[dict[str, Any]]:
    # four workflows on one hook, each addressing another deal of the payload
    secret = post(served, "/api/v1/team/hook-secrets", None).json()["secret"]
    ids = [post(served, "/api/v1/deals", {"title": f"d{i}"}).json()["id"] for i in range(4)]
    for i in range(4):
        workflow = {
            "id": f"batch-{i}",
            "name": f"batch-{i}",
            "entity": "deal",
            "trigger": {"type": "webhook", "name": "batch", "record": {"id": f"payload.d{i}"}},
            "actions": [{"type": "count"}],
        }
        post(served, "/api/v1/workflows", workflow)
    body = json.dumps({f"d{i}": deal_id for i, deal_id in enumerate(ids)}).encode()
    path = f"/api/v1/hooks/{served.team_id}/batch"
    answer = served.client.post(path, content=body, headers=signed(secret, body, "msg_batch"))
    assert answer.status_code == 202, answer.text
    runs = [r for r in served.runs() if r["op"] == "received"]
    # The hook's own run, which records what was refused, last.
    return runs[1:] + runs[:1]


def webhook_echo(served: Served) -> list[dict[str, Any]]:
    # a webhook workflow whose side effect posts the payload back to the same hook
    secret = post(served, "/api/v1/team/hook-secrets", None).json()["secret"]
    path = f"/api/v1/hooks/{served.team_id}/echo"
    action = {"type": "echo", "url": served.url + path, "secret": secret}
    workflow = {
        "id": "echo",
        "name": "echo",
        "trigger": {"type": "webhook", "name": "echo"},
        "actions": [action],
    }
    post(served, "/api/v1/workflows", workflow)
    body = json.dumps({"hello": "again"}).encode()
    answer = served.client.post(path, content=body, headers=signed(secret, body, "msg_first"))
    assert answer.status_code == 202, answer.text
    served.settle()
    return [r for r in served.runs() if r["op"] == "received"]


@dataclass
class Attack:
    play: Callable[[Served], list[dict[str, Any]]]
    settings: dict[str, Any]
    runs: list[tuple[int, str]]
    """``(depth, status)`` of each run the attack leaves, in order."""
    stop: dict[str, Any]
    """The note of the last run that says where it stopped."""
    actions: dict[str, int] = field(default_factory=dict)
    """How many action entries of the runs ended in each status, when it matters."""
    calls: int = 0
    """How many side effects were performed."""


ATTACKS = {
    "self-loop": Attack(
        self_loop, {}, [(0, "ok"), (1, "loop")], {"loop": ["self set custom.n", "self"]}
    ),
    "ping-pong": Attack(
        ping_pong,
        {},
        [(0, "ok"), (1, "ok"), (2, "loop")],
        {"loop": ["pong set custom.pong", "ping set custom.ping", "pong"]},
    ),
    "every-change-to-the-depth-limit": Attack(
        every_change,
        {"max_depth": 3},
        [(0, "ok"), (1, "ok"), (2, "ok"), (3, "ok")],
        {"depth_limit": 3, "not_followed": ["custom.a", "custom.b", "custom.c"]},
    ),
    "every-change-to-the-event-limit": Attack(
        every_change,
        {"max_depth": 1000, "max_events_per_change": 8},
        [(d, "ok") for d in range(9)],
        {"event_limit": 8, "not_followed": ["custom.a", "custom.b", "custom.c"]},
    ),
    "wide-fan-out": Attack(
        wide_fan_out,
        {},
        [(0, "limit")],
        {"execution_limit": 100, "refused": 25},
        actions={"queued": 100, "refused": 25},
        calls=100,
    ),
    "wide-fan-out-under-a-lower-limit": Attack(
        wide_fan_out,
        {"max_executions_per_change": 7},
        [(0, "limit")],
        {"execution_limit": 7, "refused": 118},
        actions={"queued": 7, "refused": 118},
        calls=7,
    ),
    "webhook-addressing-records-past-the-event-limit": Attack(
        addressed_records,
        {"max_events_per_change": 2},
        [(0, "ok"), (0, "ok"), (0, "limit")],
        {"event_limit": 2, "not_run": ["batch-2"], "entity": "deal", "record_id": 3},
        calls=2,
    ),
    "webhook-echo": Attack(
        webhook_echo,
        {},
        [(d, "ok") for d in range(6)] + [(6, "limit")],
        {"depth_limit": 5, "refused": "event at depth 6"},
        calls=6,
    ),
    "webhook-echo-under-a-lower-depth-limit": Attack(
        webhook_echo,
        {"max_depth": 2},
        [(0, "ok"), (1, "ok"), (2, "ok"), (3, "limit")],
        {"depth_limit": 2, "refused": "event at depth 3"},
        calls=3,
    ),
}


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_deliberately_recursive_workflow_set_stops_at_a_limit_and_the_server_serves_on(
    serve: Callable[..., Served], attack: Attack
) -> None:
    # Given a real server with the attack's limits
    served = serve(**attack.settings)

    # When the attack's change is saved (the saves themselves assert they succeeded)
    started = time.monotonic()
    runs = attack.play(served)
    served.settle()

    # Then it ended within the bound, with the runs and the stop it should have
    assert time.monotonic() - started < SETTLED
    assert [(r["depth"], r["status"]) for r in runs] == attack.runs
    assert attack.stop in runs[-1]["notes"]
    if attack.actions:
        statuses = Counter(
            a["status"] for r in runs for e in r["evaluations"] for a in e["actions"]
        )
        assert dict(statuses) == attack.actions
        refused = [
            a for r in runs for e in r["evaluations"] for a in e["actions"]
            if a["status"] == "refused"
        ]
        assert {a["error"] for a in refused} == {
            f"refused: this change already queued {attack.stop['execution_limit']} side-effect "
            "executions, the limit (DEALFLOW_MAX_EXECUTIONS_PER_CHANGE)"
        }
    assert served.effects.calls == attack.calls

    # And the server still serves
    assert served.client.get("/healthz").status_code == 200
    other = post(served, "/api/v1/deals", {"title": "Globex"}).json()
    assert other["title"] == "Globex"

"""Outbound targets end to end: a URL reaching this machine or its network is refused when
an admin saves it and again when a plugin sends to it; a redirect is never followed; a team
without credentials gets "not configured", never another team's set or the process's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import assert_problem
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from server.app import create_app
from server.settings import Settings
from receiver import start_receiver

CREDENTIALS = "/api/v1/team/credentials"
SECRET = "erp-hmac-secret-5f4e3d2c1b0a"
ERP = {
    "id": "erp-deals",
    "name": "Export new deals to the ERP",
    "entity": "deal",
    "trigger": {"type": "record_saved", "on": ["created"]},
    "actions": [{"type": "erp_export", "projection": "{id: record.id, title: record.title}"}],
}


@pytest.fixture
def make_client(engine: Engine, db_url: str) -> Iterator[Callable[..., Any]]:
    """``make_client(team, allow)``: a client of an app whose outbound allow-list is
    ``allow`` (none by default), with ``team``'s key; apps are stopped, their side effects
    done, before the test ends."""
    apps: list[Litestar] = []

    @contextmanager
    def make(team: Any, allow: tuple[str, ...] = ()) -> Iterator[TestClient[Litestar]]:
        settings = Settings(
            database_url=db_url, secret_key="test-secret-key", outbound_allow=allow
        )
        app = create_app(settings, engine=engine)
        apps.append(app)
        with TestClient(app) as client:
            client.headers.update(team.headers)
            yield client
            assert app.state.runtime.runner.join(10), "side effects still running after 10 s"

    yield make
    for app in apps:
        assert app.state.runtime.runner.join(10)


def only_execution(client: TestClient[Litestar]) -> dict[str, Any]:
    (execution,) = client.get("/api/v1/executions").json()["items"]
    return execution


def create_deal(client: TestClient[Litestar], title: str = "Initech") -> None:
    resp = client.post("/api/v1/deals", json={"title": title, "amount": 24000})
    assert resp.status_code == 201, resp.text


# --- at save ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plugin", "values", "field", "said"),
    [
        ("notify_slack", {"webhook_url": "{receiver}/services/T0/B0/s3cr3t"}, "webhook_url",
         "'127.0.0.1' is a loopback address"),
        ("erp_export", {"url": "http://169.254.169.254/latest/meta-data/", "secret": SECRET},
         "url", "'169.254.169.254' is a link-local address"),
        ("email_marketing", {"api_key": "k" * 20, "base_url": "http://localhost:9/3.0"},
         "base_url", "'localhost' resolves to"),
        ("erp_export", {"url": "http://10.0.0.7/erp", "secret": SECRET}, "url",
         "'10.0.0.7' is a private address"),
        ("erp_export", {"url": "http://metadata.google.internal/erp", "secret": SECRET}, "url",
         "cloud metadata service"),
    ],
)
def test_a_credential_url_reaching_local_addresses_is_refused_at_save(
    make_client: Any, team: Any, receiver: Any, plugin: str, values: dict[str, str],
    field: str, said: str,
) -> None:
    values = {k: v.replace("{receiver}", receiver.url) for k, v in values.items()}
    with make_client(team) as client:
        # When an admin stores the set on a server with no allow-list
        resp = client.put(f"{CREDENTIALS}/{plugin}", json=values)
        # Then it is refused, naming the key, the host's address and the setting
        problem = assert_problem(resp, 422, field)
        assert said in problem["detail"]
        assert "DEALFLOW_OUTBOUND_ALLOW" in problem["detail"]
        # and no secret is echoed, and nothing was stored
        assert "s3cr3t" not in resp.text and SECRET not in resp.text
        assert client.get(f"{CREDENTIALS}/{plugin}").status_code == 404


def test_the_allow_list_admits_the_same_url_at_save(
    make_client: Any, team: Any, receiver: Any
) -> None:
    with make_client(team, allow=("127.0.0.1",)) as client:
        resp = client.put(
            f"{CREDENTIALS}/notify_slack", json={"webhook_url": receiver.url + "/slack"}
        )
        assert resp.status_code == 200, resp.text


def test_a_public_url_and_values_that_are_no_urls_are_stored(make_client: Any, team: Any) -> None:
    with make_client(team) as client:
        resp = client.put(
            f"{CREDENTIALS}/erp_export",
            json={"url": "https://93.184.215.14/api/dealflow", "secret": "127.0.0.1"},
        )
        assert resp.status_code == 200, resp.text


def checked_post(url: str) -> dict[str, Any]:
    """A workflow whose third-party action takes its URL from its config (a marked property)."""
    return {
        "id": "ping", "name": "Ping", "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": [{"type": "field_update", "set": {"custom.x": 1}},
                    {"type": "checked_post", "url": url}],
    }


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest",
                                 "http://[::1]/x", "http://10.1.2.3/x"])
def test_an_action_config_url_reaching_local_addresses_is_refused_at_save(
    make_client: Any, team: Any, url: str
) -> None:
    with make_client(team) as client:
        resp = client.post("/api/v1/workflows", json=checked_post(url))
        body = assert_problem(resp, 422, field="$.actions[1].url")
        assert "DEALFLOW_OUTBOUND_ALLOW" in body["detail"]
        assert client.get("/api/v1/workflows").json() == []
        # and a dry run refuses it the same way
        tried = client.post("/api/v1/workflows/test",
                            json={"workflow": checked_post(url), "record": {"title": "T"}})
        assert_problem(tried, 422, field="$.actions[1].url")


def test_an_action_config_url_is_sent_to_when_admitted_and_refused_at_send_once_not(
    make_client: Any, team: Any, receiver: Any
) -> None:
    # Given the workflow saved while the allow-list admitted the receiver, and one deal sent
    with make_client(team, allow=("127.0.0.1",)) as client:
        assert client.post("/api/v1/workflows", json=checked_post(receiver.url)).status_code == 201
        create_deal(client, "First")
    assert len(receiver.requests) == 1
    # When the server runs without the allow-list, the next deal's request is refused at send
    with make_client(team) as client:
        create_deal(client, "Second")
        client.app.state.runtime.runner.join(10)
        dead = client.get("/api/v1/executions", params={"status": "dead"}).json()["items"]
    assert len(receiver.requests) == 1
    assert [e["attempts"] for e in dead] == [1]
    assert "loopback" in dead[0]["last_error"]


# --- at send ---------------------------------------------------------------------------------


def test_a_url_saved_under_an_allow_list_is_refused_at_send_once_it_is_gone(
    make_client: Any, team: Any, receiver: Any
) -> None:
    # Given credentials pointing at the receiver, saved while the allow-list admitted it
    with make_client(team, allow=("127.0.0.1",)) as client:
        resp = client.put(
            f"{CREDENTIALS}/erp_export", json={"url": receiver.url + "/erp", "secret": SECRET}
        )
        assert resp.status_code == 200, resp.text
        assert client.post("/api/v1/workflows", json=ERP).status_code == 201
    # When the server runs without the allow-list and a deal is created
    with make_client(team) as client:
        create_deal(client)
        client.app.state.runtime.runner.join(10)
        # Then nothing reached the receiver, and the execution is dead at once with the reason
        execution = only_execution(client)
    assert receiver.requests == []
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert execution["last_error"].startswith("erp_export: outbound request: host '127.0.0.1'")
    assert "loopback" in execution["last_error"]
    assert "DEALFLOW_OUTBOUND_ALLOW" in execution["last_error"]


def test_a_redirect_is_a_permanent_failure_and_not_followed(
    make_client: Any, team: Any, receiver: Any
) -> None:
    # Given an ERP that answers with a redirect to another server
    other = start_receiver()
    try:
        receiver.respond("/erp", 302, Location=other.url + "/internal/admin")
        with make_client(team, allow=("127.0.0.1",)) as client:
            resp = client.put(
                f"{CREDENTIALS}/erp_export",
                json={"url": receiver.url + "/erp", "secret": SECRET},
            )
            assert resp.status_code == 200, resp.text
            assert client.post("/api/v1/workflows", json=ERP).status_code == 201
            # When a deal is created
            create_deal(client)
            client.app.state.runtime.runner.join(10)
            execution = only_execution(client)
        # Then the ERP was asked once, the redirect's target never
        assert len(receiver.received("/erp")) == 1
        assert other.requests == []
        # and the execution is dead at once, naming the status and the Location
        assert (execution["status"], execution["attempts"]) == ("dead", 1)
        assert "HTTP 302" in execution["last_error"]
        assert other.url + "/internal/admin" in execution["last_error"]
    finally:
        other.close()


def test_a_slack_redirect_names_only_its_host(
    make_client: Any, team: Any, receiver: Any
) -> None:
    # Given a Slack webhook answering with a redirect whose path carries a secret
    other = start_receiver()
    try:
        receiver.respond("/slack", 301, Location=other.url + "/services/T0/B0/other-s3cr3t")
        with make_client(team, allow=("127.0.0.1",)) as client:
            resp = client.put(
                f"{CREDENTIALS}/notify_slack", json={"webhook_url": receiver.url + "/slack"}
            )
            assert resp.status_code == 200, resp.text
            workflow = {**ERP, "id": "tell-slack",
                        "actions": [{"type": "notify_slack", "text": "{{ record.title }}"}]}
            assert client.post("/api/v1/workflows", json=workflow).status_code == 201
            create_deal(client)
            client.app.state.runtime.runner.join(10)
            execution = only_execution(client)
        assert other.requests == []
        assert (execution["status"], execution["attempts"]) == ("dead", 1)
        assert "HTTP 301, a redirect to 127.0.0.1" in execution["last_error"]
        assert "other-s3cr3t" not in execution["last_error"]
    finally:
        other.close()


# --- not configured --------------------------------------------------------------------------


def test_a_team_without_credentials_is_not_configured_whatever_others_have(
    make_client: Any, make_team: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given team B with erp_export credentials, team A with none, both with the workflow,
    # and the process's environment holding an ERP URL and secret of its own
    team_a, team_b = make_team("Acme"), make_team("Globex")
    for name in ("ERP_EXPORT_URL", "DEALFLOW_PLUGIN_ERP_EXPORT_URL", "URL"):
        monkeypatch.setenv(name, receiver.url + "/from-env")
    monkeypatch.setenv("DEALFLOW_PLUGIN_ERP_EXPORT_SECRET", SECRET)
    with make_client(team_b, allow=("127.0.0.1",)) as b:
        resp = b.put(
            f"{CREDENTIALS}/erp_export", json={"url": receiver.url + "/b", "secret": SECRET}
        )
        assert resp.status_code == 200, resp.text
        assert b.post("/api/v1/workflows", json=ERP).status_code == 201
    with make_client(team_a, allow=("127.0.0.1",)) as a:
        assert a.post("/api/v1/workflows", json=ERP).status_code == 201
        # When team A creates a deal
        create_deal(a, "Acme's deal")
        a.app.state.runtime.runner.join(10)
        # Then its execution is dead at once: not configured, naming the plugin and the fix
        execution = only_execution(a)
        assert (execution["status"], execution["attempts"]) == ("dead", 1)
        assert execution["last_error"] == (
            "'erp_export' is not configured for this team: no credentials for 'erp_export'; "
            "PUT /api/v1/team/credentials/erp_export"
        )
    # and nothing was sent: not to team B's ERP, not to the environment's
    assert receiver.requests == []
    # while team B's own deal goes to team B's ERP only
    with make_client(team_b, allow=("127.0.0.1",)) as b:
        create_deal(b, "Globex's deal")
        b.app.state.runtime.runner.join(10)
    (sent,) = receiver.received()
    assert sent.path == "/b" and sent.json()["title"] == "Globex's deal"

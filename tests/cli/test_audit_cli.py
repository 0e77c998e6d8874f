"""``dealflow audit``, run as a real process on a SQLite file: the CLI's own changes (workflow
imports, hook secrets, retries) are recorded as made from the CLI, next to the API's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY_RE, Cli, api

HOOK = "/hook"
SECRET_RE = re.compile(r"\bwhsec_[A-Za-z0-9+/]{43}=")


class KeyedCli(Cli):
    """The ``dealflow`` command with a secret key set (hook secrets are stored encrypted)."""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "DEALFLOW_SECRET_KEY": "cli-audit-secret-key"}


@pytest.fixture
def cli(tmp_path: Path) -> KeyedCli:
    cli = KeyedCli(tmp_path)
    cli.ok("migrate")
    return cli


@pytest.fixture
def keys(cli: KeyedCli) -> dict[str, str]:
    """Teams Acme and Beta; their admins' API keys."""
    return {name: KEY_RE.findall(cli.ok("team", "create", name))[0] for name in ("Acme", "Beta")}


def auth(key: str, request_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    return headers | ({"X-Request-ID": request_id} if request_id else {})


def logged(cli: Cli, *args: str) -> list[dict[str, Any]]:
    entries = json.loads(cli.ok("audit", "--json", *args))
    assert isinstance(entries, list)
    return entries


def workflow(url: str = "http://127.0.0.1:9/none") -> dict[str, Any]:
    return {
        "id": "post-deals",
        "name": "Tell the partner about deals",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "post_to", "url": url}],
    }


def test_cli_changes_are_logged_as_made_from_the_cli_next_to_api_changes(
    cli: KeyedCli, keys: dict[str, str], tmp_path: Path
) -> None:
    # Given a change through the API
    with api(cli.url) as client:
        resp = client.put(
            "/api/v1/team", json={"timezone": "Europe/Berlin"}, headers=auth(keys["Acme"], "r-1")
        )
        assert resp.status_code == 200, resp.text
    # When the CLI imports a workflow and creates, then rotates, the hook secret
    path = tmp_path / "post-deals.json"
    path.write_text(json.dumps(workflow()))
    cli.ok("workflows", "import", "--team", "Acme", path)
    created = cli.ok("hooks", "secret", "create", "--team", "Acme")
    rotated = cli.ok("hooks", "secret", "rotate", "--team", "Acme")
    # Then the log has all four, newest first, the CLI's without key or request id
    entries = logged(cli, "--team", "Acme")
    assert [(e["action"], e["via"]) for e in entries] == [
        ("hook_secret.rotate", "cli"),
        ("hook_secret.create", "cli"),
        ("workflow.save", "cli"),
        ("team.settings", "api"),
    ]
    assert all(e["key_id"] is None and e["request_id"] is None for e in entries[:3])
    assert (entries[3]["request_id"], entries[3]["key_id"]) == ("r-1", 1)
    assert entries[2]["target"] == "post-deals"
    assert entries[2]["user_id"] == 1  # the import acts as the team's first admin
    # and the secrets shown once are nowhere in it
    printed = json.dumps(entries)
    for shown in (created, rotated):
        (secret,) = SECRET_RE.findall(shown)
        assert secret not in printed
    # and the other team's log is its own
    assert logged(cli, "--team", "Beta") == []


def test_the_table_filters_and_limits(cli: KeyedCli, keys: dict[str, str]) -> None:
    # Given three changes
    with api(cli.url) as client:
        headers = auth(keys["Acme"], "r-2")
        assert client.post("/api/v1/workflows", json=workflow(), headers=headers).status_code == 201
        for state in ("disable", "enable"):
            resp = client.post(f"/api/v1/workflows/post-deals/{state}", headers=headers)
            assert resp.status_code == 200, resp.text
    # When
    table = cli.ok("audit", "--team", "Acme").strip().splitlines()
    only_saves = logged(cli, "--team", "Acme", "--action", "workflow.save")
    last = logged(cli, "--team", "Acme", "--limit", "1")
    # Then the table has a header and one line per entry, newest first
    assert table[0].split()[:4] == ["ID", "AT", "VIA", "USER"]
    assert [line.split()[0] for line in table[1:]] == ["3", "2", "1"]
    assert "workflow.enable" in table[1] and "r-2" in table[1]
    assert [e["action"] for e in only_saves] == ["workflow.save"]
    assert [e["action"] for e in last] == ["workflow.enable"]


def test_a_retry_from_the_cli_is_logged(cli: KeyedCli, keys: dict[str, str], receiver: Any) -> None:
    # Given a dead execution: the partner refused its one POST
    receiver.respond(HOOK, 400)
    with api(cli.url) as client:
        headers = auth(keys["Acme"])
        resp = client.post("/api/v1/workflows", json=workflow(receiver.url + HOOK), headers=headers)
        assert resp.status_code == 201, resp.text
        resp = client.post("/api/v1/deals", json={"title": "Initech"}, headers=headers)
        assert resp.status_code == 201, resp.text
        assert client.app.state.runtime.runner.join(10)
        (execution,) = client.get("/api/v1/executions", headers=headers).json()["items"]
    assert execution["status"] == "dead"
    # When the CLI retries it
    cli.ok("executions", "retry", "--team", "Acme", str(execution["id"]))
    # Then
    (entry,) = logged(cli, "--team", "Acme", "--action", "execution.retry")
    assert (entry["via"], entry["target"], entry["key_id"]) == ("cli", str(execution["id"]), None)
    assert entry["summary"]["after"]["status"] == "pending"


def test_an_unknown_team_or_action_is_refused(cli: KeyedCli) -> None:
    assert "team Nobody not found" in cli.fails("audit", "--team", "Nobody")
    result = cli("audit", "--team", "Acme", "--action", "workflow.explode")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr

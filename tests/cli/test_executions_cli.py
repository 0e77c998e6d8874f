"""``dealflow executions``, run as a real process against a SQLite file a real app wrote."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY_RE, Cli, api

HOOK = "/hook"
QUEUED = "queued for retry; a running server or worker will perform it"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def rows(output: str) -> list[dict[str, str]]:
    """The printed table as one dict per row, keyed by lower-case header."""
    header, *lines = output.strip().splitlines()
    names = [h.lower() for h in re.split(r"\s{2,}", header)]
    return [dict(zip(names, re.split(r"\s{2,}", line), strict=True)) for line in lines]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def performed(cli: Cli, key: str) -> list[dict[str, Any]]:
    """Run the app (a "running server") until its runner is idle; the team's executions."""
    with api(cli.url) as client:
        assert client.app.state.runtime.runner.join(10)
        resp = client.get("/api/v1/executions", headers=auth(key))
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


@pytest.fixture
def dead(cli: Cli, receiver: Any) -> dict[str, Any]:
    """Two dead executions of team Acme and one of team Beta, refused by the partner with 400s;
    the teams' keys and the Acme execution ids."""
    cli.ok("migrate")
    keys = {
        name: KEY_RE.findall(cli.ok("team", "create", name))[0] for name in ("Acme", "Beta")
    }
    workflow = {
        "id": "post-deals",
        "name": "Tell the partner about deals",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "post_to", "url": receiver.url + HOOK}],
    }
    for _ in range(3):
        receiver.respond(HOOK, 400)
    with api(cli.url) as client:
        for name, titles in (("Acme", ["Initech", "Globex"]), ("Beta", ["Hooli"])):
            headers = auth(keys[name])
            resp = client.post("/api/v1/workflows", json=workflow, headers=headers)
            assert resp.status_code == 201, resp.text
            for title in titles:
                resp = client.post("/api/v1/deals", json={"title": title}, headers=headers)
                assert resp.status_code == 201, resp.text
        assert client.app.state.runtime.runner.join(10)
    assert len(receiver.received(HOOK)) == 3
    acme = [int(r["id"]) for r in rows(cli.ok("executions", "list", "--team", "Acme"))]
    return {"keys": keys, "acme": sorted(acme)}


def test_list_shows_dead_executions_with_their_error(cli: Cli, dead: dict[str, Any]) -> None:
    # When
    listed = rows(cli.ok("executions", "list", "--status", "dead"))
    # Then every team's dead execution is there, last updated first, with why it died
    assert sorted(r["team"] for r in listed) == ["Acme", "Acme", "Beta"]
    assert [r["updated"] for r in listed] == sorted((r["updated"] for r in listed), reverse=True)
    for row in listed:
        assert (row["workflow"], row["action"], row["status"], row["attempts"]) == (
            "post-deals",
            "post_to",
            "dead",
            "1",
        )
        assert row["last error"].endswith(f"{HOOK}: HTTP 400")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["updated"])
    # and the filters narrow it
    assert [r["team"] for r in rows(cli.ok("executions", "list", "--team", "Beta"))] == ["Beta"]
    assert rows(cli.ok("executions", "list", "--status", "succeeded")) == []
    assert rows(cli.ok("executions", "list", "--workflow", "other")) == []
    assert len(rows(cli.ok("executions", "list", "--status", "dead", "--limit", "1"))) == 1


def test_retry_by_id_requeues_for_a_server_to_perform(
    cli: Cli, dead: dict[str, Any], receiver: Any
) -> None:
    first, second = dead["acme"]
    # When one execution is retried by id
    out = cli.ok("executions", "retry", "--team", "Acme", str(first))
    # Then the CLI says what it requeued and who performs it, and performs nothing itself
    assert f"execution {first} " in out and f"execution {second} " not in out
    assert QUEUED in out
    statuses = {int(r["id"]): r["status"] for r in rows(cli.ok("executions", "list"))}
    assert (statuses[first], statuses[second]) == ("pending", "dead")
    assert len(receiver.received(HOOK)) == 3

    # When a server runs on the database, then it performs the retry once, with the same key
    executions = {e["id"]: e for e in performed(cli, dead["keys"]["Acme"])}
    assert (executions[first]["status"], executions[second]["status"]) == ("succeeded", "dead")
    sent = receiver.received(HOOK)
    assert len(sent) == 4
    assert sent[-1].headers["idempotency-key"] == executions[first]["idempotency_key"]
    assert [a.get("retry", False) for a in executions[first]["attempt_log"]] == [False, True, False]


def test_retry_all_dead_requeues_only_that_teams(cli: Cli, dead: dict[str, Any]) -> None:
    # When
    out = cli.ok("executions", "retry", "--team", "Acme", "--all-dead")
    # Then both of Acme's are pending, Beta's stays dead
    assert QUEUED in out
    assert all(f"execution {i} " in out for i in dead["acme"])
    listed = rows(cli.ok("executions", "list"))
    assert {int(r["id"]): r["status"] for r in listed if r["team"] == "Acme"} == {
        i: "pending" for i in dead["acme"]
    }
    assert [r["status"] for r in listed if r["team"] == "Beta"] == ["dead"]
    # and a second time there is nothing left to requeue
    assert "no dead executions in team Acme" in cli.ok(
        "executions", "retry", "--team", "Acme", "--all-dead"
    )


def test_retry_refuses_what_is_not_a_dead_execution_of_the_team(
    cli: Cli, dead: dict[str, Any]
) -> None:
    first, second = dead["acme"]
    beta = next(int(r["id"]) for r in rows(cli.ok("executions", "list", "--team", "Beta")))
    cli.ok("executions", "retry", "--team", "Acme", str(first))
    # When a pending one is retried (with a dead one): refused, and neither is requeued
    err = cli.fails("executions", "retry", "--team", "Acme", str(second), str(first))
    assert f"execution {first} is pending" in err
    statuses = {int(r["id"]): r["status"] for r in rows(cli.ok("executions", "list"))}
    assert (statuses[first], statuses[second], statuses[beta]) == ("pending", "dead", "dead")
    # When another team's is retried: not found
    assert f"execution {beta} not found" in cli.fails(
        "executions", "retry", "--team", "Acme", str(beta)
    )
    # When neither ids nor --all-dead are given, or both: a usage error
    assert cli("executions", "retry", "--team", "Acme").returncode == 2
    assert cli("executions", "retry", "--team", "Acme", "--all-dead", str(second)).returncode == 2

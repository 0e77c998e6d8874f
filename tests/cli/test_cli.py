"""The ``dealflow`` console script, run as a real process against a SQLite file."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from helpers import DEALFLOW, KEY_RE, Cli, api
from litestar.testing import TestClient


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def migrated(cli: Cli) -> Cli:
    cli.ok("migrate")
    return cli


def key_in(output: str) -> str:
    keys = KEY_RE.findall(output)
    assert len(keys) == 1, output
    return keys[0]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def items(client: TestClient, path: str, key: str) -> list[dict]:
    resp = client.get(path, headers=auth(key), params={"limit": 200})
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


# --- migrate and teams -----------------------------------------------------------------------


def test_migrate_creates_the_database(cli: Cli) -> None:
    # When
    result = cli("migrate")
    # Then
    assert result.returncode == 0, result.stderr
    assert (cli.cwd / "x.db").exists()
    assert cli("migrate").returncode == 0


def test_team_create_prints_a_key_that_authenticates(migrated: Cli) -> None:
    # When
    out = migrated.ok("team", "create", "Acme", "--timezone", "Europe/Berlin")
    # Then
    key = key_in(out)
    with api(migrated.url) as client:
        resp = client.get("/api/v1/team", headers=auth(key))
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "Acme"
    assert resp.json()["timezone"] == "Europe/Berlin"


def test_creating_the_same_team_twice_fails(migrated: Cli) -> None:
    # Given
    migrated.ok("team", "create", "Acme")
    # When
    result = migrated("team", "create", "Acme")
    # Then
    assert result.returncode == 1
    assert "Acme" in result.stderr
    assert "already exists" in result.stderr
    assert "Traceback" not in result.stderr
    assert not KEY_RE.search(result.stdout)


def test_team_create_refuses_an_unknown_timezone(migrated: Cli) -> None:
    # When
    result = migrated("team", "create", "X", "--timezone", "Nowhere/Bogus")
    # Then
    assert result.returncode == 1
    assert "timezone" in result.stderr
    assert "Nowhere/Bogus" in result.stderr
    assert "X" not in migrated.ok("team", "list").split()


def test_team_list_shows_every_team(migrated: Cli) -> None:
    # Given
    migrated.ok("team", "create", "Acme", "--timezone", "Europe/Berlin")
    migrated.ok("team", "create", "Initech")
    # When
    out = migrated.ok("team", "list")
    # Then
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [row[1:] for row in rows] == [["Acme", "Europe/Berlin"], ["Initech", "UTC"]]
    assert not KEY_RE.search(out)


def test_commands_before_migrate_fail_with_a_hint(cli: Cli) -> None:
    result = cli("team", "list")
    assert result.returncode == 1
    assert "migrate" in result.stderr
    assert "Traceback" not in result.stderr


# --- keys ------------------------------------------------------------------------------------


@pytest.fixture
def acme(migrated: Cli) -> str:
    """Team Acme; its admin's key."""
    return key_in(migrated.ok("team", "create", "Acme"))


def test_key_create_prints_a_working_member_key(migrated: Cli, acme: str) -> None:
    # When
    out = migrated.ok(
        "key", "create", "--team", "Acme", "--email", "bob@acme.test", "--role", "member"
    )
    # Then: the key works, in team Acme, and acts as Bob rather than the admin
    key = key_in(out)
    assert key != acme
    assert "member" in out
    call = {"type": "call", "phone": "+49 30 1234567"}
    with api(migrated.url) as client:
        team = client.get("/api/v1/team", headers=auth(key))
        by_bob = client.post("/api/v1/outreach", json=call, headers=auth(key))
        by_admin = client.post("/api/v1/outreach", json=call, headers=auth(acme))
    assert team.status_code == 200
    assert team.json()["name"] == "Acme"
    assert by_bob.status_code == 201, by_bob.text
    assert by_bob.json()["created_by_id"] != by_admin.json()["created_by_id"]


def test_key_create_for_an_unknown_team_fails(migrated: Cli) -> None:
    result = migrated("key", "create", "--team", "Nope", "--email", "bob@acme.test")
    assert result.returncode == 1
    assert "Nope" in result.stderr
    assert not KEY_RE.search(result.stdout)


def test_key_revoke_stops_the_key(migrated: Cli, acme: str) -> None:
    # Given
    bob = key_in(migrated.ok("key", "create", "--team", "Acme", "--email", "bob@acme.test"))
    # When
    migrated.ok("key", "revoke", bob)
    # Then
    with api(migrated.url) as client:
        assert client.get("/api/v1/team", headers=auth(bob)).status_code == 401
        assert client.get("/api/v1/team", headers=auth(acme)).status_code == 200


def test_key_revoke_by_prefix_stops_the_key(migrated: Cli, acme: str) -> None:
    # When
    migrated.ok("key", "revoke", acme[:10])
    # Then
    with api(migrated.url) as client:
        assert client.get("/api/v1/team", headers=auth(acme)).status_code == 401


def test_key_revoke_of_an_unknown_key_fails(migrated: Cli, acme: str) -> None:
    result = migrated("key", "revoke", "nope")
    assert result.returncode == 1
    assert "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_key_list_shows_prefixes_and_status_never_keys(migrated: Cli, acme: str) -> None:
    # Given
    bob = key_in(migrated.ok("key", "create", "--team", "Acme", "--email", "bob@acme.test"))
    migrated.ok("key", "revoke", bob)
    # When
    out = migrated.ok("key", "list", "--team", "Acme")
    # Then
    assert acme not in out and bob not in out
    assert not KEY_RE.search(out)
    lines = out.splitlines()[1:]
    assert len(lines) == 2
    admin_line = next(line for line in lines if line.startswith(acme[:10]))
    bob_line = next(line for line in lines if line.startswith(bob[:10]))
    assert admin_line.split()[-1] == "active"
    assert bob_line.split()[-1] == "revoked"
    assert "bob@acme.test" in bob_line


# --- the demo team ---------------------------------------------------------------------------


def demo_key(out: str) -> str:
    match = re.search(r"demo API key: (\S+)", out)
    assert match, out
    return match.group(1)


def test_demo_creates_a_populated_team(migrated: Cli) -> None:
    # When
    out = migrated.ok("demo")
    # Then
    key = demo_key(out)
    urls = re.findall(r"https?://\S+", out)
    assert any(u.endswith("/schema") for u in urls), out
    with api(migrated.url) as client:
        team = client.get("/api/v1/team", headers=auth(key)).json()
        counts = {
            name: len(items(client, f"/api/v1/{name}", key))
            for name in ("outreach", "contacts", "deals", "leads")
        }
        deals = items(client, "/api/v1/deals", key)
    assert team["name"] == "Demo"
    assert all(counts.values()), counts
    for name, count in counts.items():
        assert f"{count} {name}" in out, (name, count, out)
    weighted = [d for d in deals if d["probability"] is not None and d["weighted_amount"]]
    assert weighted, deals
    for deal in weighted:
        assert deal["weighted_amount"] == pytest.approx(deal["amount"] * deal["probability"] / 100)


def test_demo_urls_follow_host_and_port(migrated: Cli) -> None:
    out = migrated.ok("demo", "--host", "0.0.0.0", "--port", "9123")
    assert "http://0.0.0.0:9123/schema" in out


def test_demo_twice_keeps_one_team_and_only_the_newest_key(migrated: Cli) -> None:
    # Given
    first = demo_key(migrated.ok("demo"))
    # When
    second = demo_key(migrated.ok("demo"))
    # Then
    assert first != second
    teams = [line.split()[1] for line in migrated.ok("team", "list").splitlines()[1:]]
    assert teams.count("Demo") == 1
    with api(migrated.url) as client:
        assert client.get("/api/v1/team", headers=auth(first)).status_code == 401
        assert client.get("/api/v1/team", headers=auth(second)).status_code == 200
        deals = items(client, "/api/v1/deals", second)
    titles = [d["title"] for d in deals]
    assert len(titles) == len(set(titles)), "the second run must not load the sample data again"


def test_demo_leaves_other_teams_keys_alone(migrated: Cli, acme: str) -> None:
    # When
    migrated.ok("demo")
    migrated.ok("demo")
    # Then
    with api(migrated.url) as client:
        assert client.get("/api/v1/team", headers=auth(acme)).status_code == 200
        assert items(client, "/api/v1/deals", acme) == []


# --- usage errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("team",),
        ("key",),
        ("key", "create"),
        ("key", "create", "--email", "bob@acme.test"),
        ("key", "create", "--team", "Acme", "--email", "bob@acme.test", "--role", "owner"),
        ("nonsense",),
        ("serve", "--port", "eighty"),
        (),
    ],
    ids=lambda a: " ".join(a) or "nothing",
)
def test_bad_arguments_print_usage(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.returncode != 0
    assert "usage: dealflow" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (cli.cwd / "x.db").exists()


def test_help_lists_the_commands(cli: Cli) -> None:
    out = cli.ok("--help")
    for command in ("serve", "migrate", "team", "key", "demo"):
        assert command in out


# --- serve -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_http(migrated: Cli, acme: str, tmp_path: Path) -> None:
    # Given
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [str(DEALFLOW), "serve", "--port", str(port)],
        cwd=migrated.cwd,
        env=migrated.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # When
        deadline = time.monotonic() + 15
        health = None
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None, "the server did not answer within 15 s"
        # Then
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        team = httpx.get(f"{base}/api/v1/team", headers=auth(acme), timeout=5)
        assert team.status_code == 200, team.text
        assert team.json()["name"] == "Acme"
        assert httpx.get(f"{base}/api/v1/team", timeout=5).status_code == 401
        schema = httpx.get(f"{base}/schema/openapi.json", timeout=5)
        assert schema.status_code == 200
        assert schema.json()["openapi"].startswith("3.1")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()

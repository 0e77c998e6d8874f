"""``dealflow hooks secret create|rotate|list`` run as real processes on a SQLite file; the
secrets they print are checked by posting signed webhooks to the real app on that file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import KEY_RE, Cli
from litestar import Litestar
from litestar.testing import TestClient

from server.app import create_app
from server.core.db import make_engine
from server.settings import Settings

SECRET_KEY = "cli-test-secret-key"
SECRET_RE = re.compile(r"\bwhsec_[A-Za-z0-9+/]{43}=")
KEY_ID_RE = re.compile(r"\bwhk_[0-9a-f]{12}\b")
HOOK = "web-form"


@dataclass
class KeyedCli(Cli):
    """The ``dealflow`` command with ``DEALFLOW_SECRET_KEY`` set (unless ``secret_key`` is None)."""

    secret_key: str | None = SECRET_KEY

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        if self.secret_key:
            env["DEALFLOW_SECRET_KEY"] = self.secret_key
        return env


@pytest.fixture
def cli(tmp_path: Path) -> KeyedCli:
    cli = KeyedCli(tmp_path)
    cli.ok("migrate")
    return cli


@pytest.fixture
def acme(cli: KeyedCli) -> str:
    """Team Acme (id 1); its admin's API key."""
    (key,) = KEY_RE.findall(cli.ok("team", "create", "Acme"))
    return key


@contextmanager
def app_on(cli: Cli, api_key: str) -> Iterator[TestClient[Litestar]]:
    """The real app on the CLI's database, with the CLI's secret key and a webhook workflow."""
    engine = make_engine(cli.url)
    try:
        app = create_app(Settings(database_url=cli.url, secret_key=SECRET_KEY), engine=engine)
        with TestClient(app) as client:
            workflow = {
                "id": "form-posts",
                "name": "Web form posts",
                "trigger": {"type": "webhook", "name": HOOK},
                "actions": [],
            }
            resp = client.post(
                "/api/v1/workflows", json=workflow, headers={"Authorization": f"Bearer {api_key}"}
            )
            assert resp.status_code in (200, 201), resp.text
            yield client
    finally:
        engine.dispose()


def post(client: TestClient[Litestar], path: str, secret: str) -> int:
    """POST a webhook signed with ``secret`` (stdlib HMAC) to ``path``; the status code."""
    body = json.dumps({"kind": "demo"}).encode()
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    return client.post(path, content=body, headers=headers).status_code


def listed(cli: Cli, team: str = "Acme") -> list[list[str]]:
    """The rows (key id and status) ``hooks secret list`` prints."""
    out = cli.ok("hooks", "secret", "list", "--team", team)
    lines = out.splitlines()
    assert lines[0].split() == ["KEY_ID", "STATUS", "CREATED_AT", "EXPIRES_AT"]
    return [line.split()[:2] for line in lines[1:]]


def test_create_prints_the_secret_once_and_it_signs_webhooks(cli: KeyedCli, acme: str) -> None:
    # When a secret is created
    out = cli.ok("hooks", "secret", "create", "--team", "Acme")
    # Then its key id, the secret with a shown-once warning, and the path are printed
    (secret,) = SECRET_RE.findall(out)
    (key_id,) = set(KEY_ID_RE.findall(out))
    assert "will not be shown again" in out
    assert "/api/v1/hooks/1/<hook name>" in out
    # and the secret signs webhooks the app accepts, on both routes
    with app_on(cli, acme) as client:
        assert post(client, f"/api/v1/hooks/1/{HOOK}", secret) == 202
        client.headers["Authorization"] = f"Bearer {acme}"
        assert post(client, f"/api/v1/hooks/{HOOK}", secret) == 202
    # and listing names it, without the value
    out = cli.ok("hooks", "secret", "list", "--team", "1")
    assert key_id in out and "current" in out
    assert "whsec_" not in out


def test_the_database_file_never_holds_the_secret(cli: KeyedCli, acme: str) -> None:
    out = cli.ok("hooks", "secret", "create", "--team", "Acme")
    (secret,) = SECRET_RE.findall(out)
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    files = [p for p in cli.cwd.iterdir() if p.name.startswith("x.db")]
    data = b"".join(p.read_bytes() for p in files)
    for spelling in (secret.encode(), secret.removeprefix("whsec_").encode(), raw):
        assert spelling not in data
    with sqlite3.connect(cli.db) as conn:
        (stored,) = conn.execute("SELECT secret_encrypted FROM hook_secrets").fetchone()
    assert stored and secret not in stored


def test_a_second_create_fails_and_says_to_rotate(cli: KeyedCli, acme: str) -> None:
    cli.ok("hooks", "secret", "create", "--team", "Acme")
    err = cli.fails("hooks", "secret", "create", "--team", "Acme")
    assert err.startswith("dealflow: error: ")
    assert "dealflow hooks secret rotate" in err
    assert len(listed(cli)) == 1


def test_rotate_keeps_the_previous_secret_for_the_grace_period_and_drops_older_ones(
    cli: KeyedCli, acme: str
) -> None:
    first_out = cli.ok("hooks", "secret", "create", "--team", "Acme")
    (first,) = SECRET_RE.findall(first_out)
    (first_id,) = set(KEY_ID_RE.findall(first_out))

    # When the secret is rotated
    out = cli.ok("hooks", "secret", "rotate", "--team", "Acme")
    (second,) = SECRET_RE.findall(out)
    assert second != first
    assert "will not be shown again" in out
    assert f"the previous secret {first_id} is still accepted until" in out
    # Then both are listed and both sign accepted webhooks
    assert [status for _, status in listed(cli)] == ["current", "previous"]
    with app_on(cli, acme) as client:
        assert post(client, f"/api/v1/hooks/1/{HOOK}", first) == 202
        assert post(client, f"/api/v1/hooks/1/{HOOK}", second) == 202

        # When it is rotated again without a grace period
        out = cli.ok("hooks", "secret", "rotate", "--team", "1", "--grace-hours", "0")
        (third,) = SECRET_RE.findall(out)
        # Then the first is gone, the second already expired, the third current
        rows = listed(cli)
        assert first_id not in {key_id for key_id, _ in rows}
        assert [status for _, status in rows] == ["current", "expired"]
        assert post(client, f"/api/v1/hooks/1/{HOOK}", first) == 401
        assert post(client, f"/api/v1/hooks/1/{HOOK}", second) == 401
        assert post(client, f"/api/v1/hooks/1/{HOOK}", third) == 202


def test_rotate_without_a_secret_creates_the_first(cli: KeyedCli, acme: str) -> None:
    out = cli.ok("hooks", "secret", "rotate", "--team", "Acme")
    assert len(SECRET_RE.findall(out)) == 1
    assert "had none to rotate" in out
    assert [status for _, status in listed(cli)] == ["current"]


def test_without_a_server_secret_key_nothing_is_stored(tmp_path: Path, acme: str) -> None:
    unkeyed = KeyedCli(tmp_path, secret_key=None)
    err = unkeyed.fails("hooks", "secret", "create", "--team", "Acme")
    assert "DEALFLOW_SECRET_KEY is not set" in err
    assert "whsec_" not in err
    assert "no webhook secret" in unkeyed.ok("hooks", "secret", "list", "--team", "Acme")


def test_an_unknown_team_fails_cleanly(cli: KeyedCli, acme: str) -> None:
    for action in ("create", "rotate", "list"):
        err = cli.fails("hooks", "secret", action, "--team", "Globex")
        assert err == "dealflow: error: team Globex not found\n"


@pytest.mark.parametrize("hours", ["-1", "soon", "9000"])
def test_a_bad_grace_period_is_a_usage_error(cli: KeyedCli, acme: str, hours: str) -> None:
    result = cli("hooks", "secret", "rotate", "--team", "Acme", "--grace-hours", hours)
    assert result.returncode == 2
    assert "--grace-hours" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_hooks_commands(cli: KeyedCli) -> None:
    out = cli.ok("hooks", "secret", "--help")
    for action in ("create", "rotate", "list"):
        assert action in out

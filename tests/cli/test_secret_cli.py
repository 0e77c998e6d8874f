"""``dealflow secret rotate`` as a real process on a SQLite file, and the rotation itself on
both databases: what key A encrypted is read under B while A is previous, and by B alone
after the rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY_RE, Cli
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine, select, text, update

from server.app import create_app
from server.cli import secret as secret_cli
from server.cli.secret import rotate_all
from server.core import crypto
from server.core.db import make_engine, make_session_factory, transaction
from server.core.errors import ConfigError
from server.core.models import HookSecret, TeamCredential
from server.core.services import hooks
from server.settings import Settings

KEY_A, KEY_B = "old-key-aaaaaaaaaaaaaaaa", "new-key-bbbbbbbbbbbbbbbb"
SECRET_RE = re.compile(r"\bwhsec_[A-Za-z0-9+/]{43}=")
HOOK = "web-form"
SLACK = {"webhook_url": "https://hooks.slack.example/T000/B000/XXXXsecretXXXX"}
TELEGRAM = {"bot_token": "123456:telegram-bot-token-zzzz", "chat_id": "-1001"}


@dataclass
class KeyedCli(Cli):
    """The ``dealflow`` command with the current key and the previous ones it is given."""

    key: str | None = KEY_A
    previous: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        if self.key:
            env["DEALFLOW_SECRET_KEY"] = self.key
        if self.previous:
            env["DEALFLOW_SECRET_KEY_PREVIOUS"] = ",".join(self.previous)
        return env


@contextmanager
def app_on(cli: Cli, key: str, *previous: str) -> Iterator[TestClient[Litestar]]:
    """The real app on the CLI's database with these keys."""
    engine = make_engine(cli.url)
    try:
        settings = Settings(database_url=cli.url, secret_key=key, secret_key_previous=previous)
        with TestClient(create_app(settings, engine=engine)) as client:
            yield client
    finally:
        engine.dispose()


def signed_post(client: TestClient[Litestar], secret: str) -> int:
    """POST a webhook to team 1 signed with ``secret``; the status code."""
    body = json.dumps({"kind": "demo"}).encode()
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    return client.post(f"/api/v1/hooks/1/{HOOK}", content=body, headers=headers).status_code


def reads_everything(cli: Cli, api_key: str, secret: str, key: str, *previous: str) -> bool:
    """Whether an app with these keys shows both credential sets and accepts the webhook."""
    with app_on(cli, key, *previous) as client:
        if signed_post(client, secret) != 202:
            return False
        resp = client.get(
            "/api/v1/team/credentials", headers={"Authorization": f"Bearer {api_key}"}
        )
        if resp.status_code != 200:
            return False
        shown = {item["plugin"]: item["values"] for item in resp.json()}
    return shown == {
        "slack": {"webhook_url": "••••XXXX"},
        "telegram": {"bot_token": "••••zzzz", "chat_id": "••••"},
    }


def tokens(cli: Cli) -> list[str]:
    engine = make_engine(cli.url)
    try:
        with engine.connect() as conn:
            return [
                *conn.scalars(text("SELECT values_encrypted FROM team_credentials")),
                *conn.scalars(text("SELECT secret_encrypted FROM hook_secrets")),
            ]
    finally:
        engine.dispose()


@pytest.fixture
def stored(tmp_path: Path) -> tuple[KeyedCli, str, str]:
    """Team Acme with two credential sets, a webhook workflow and a webhook secret, all
    written under key A; the CLI, the team's API key and the webhook secret."""
    cli = KeyedCli(tmp_path)
    cli.ok("migrate")
    (api_key,) = KEY_RE.findall(cli.ok("team", "create", "Acme"))
    (secret,) = SECRET_RE.findall(cli.ok("hooks", "secret", "create", "--team", "Acme"))
    with app_on(cli, KEY_A) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        for plugin, values in (("slack", SLACK), ("telegram", TELEGRAM)):
            assert client.put(f"/api/v1/team/credentials/{plugin}", json=values).status_code == 200
        workflow = {
            "id": "form-posts",
            "name": "Web form posts",
            "trigger": {"type": "webhook", "name": HOOK},
            "actions": [],
        }
        assert client.post("/api/v1/workflows", json=workflow).status_code == 201
    return cli, api_key, secret


def test_rotate_moves_every_secret_to_the_new_key_without_downtime(
    stored: tuple[KeyedCli, str, str],
) -> None:
    cli, api_key, secret = stored
    before = tokens(cli)
    assert len(before) == 3
    # Given B is the current key and A the previous one: everything is still read
    cli.key, cli.previous = KEY_B, [KEY_A]
    assert reads_everything(cli, api_key, secret, KEY_B, KEY_A)
    # but B alone reads nothing yet
    assert not reads_everything(cli, api_key, secret, KEY_B)

    # When the secrets are rotated
    out = cli.ok("secret", "rotate")

    # Then each encrypted column was re-encrypted and counted
    assert "team_credentials.values_encrypted: 2 re-encrypted, 0 already" in out
    assert "hook_secrets.secret_encrypted: 1 re-encrypted, 0 already" in out
    assert "0 unreadable" in out
    # and everything is read with A still previous, and with B alone
    assert reads_everything(cli, api_key, secret, KEY_B, KEY_A)
    assert reads_everything(cli, api_key, secret, KEY_B)
    # while A no longer reads any of it
    after = tokens(cli)
    assert set(after).isdisjoint(before)
    for token in after:
        with pytest.raises(ConfigError, match="cannot be decrypted"):
            crypto.decrypt(KEY_A, token)
    # and a second rotation has nothing to do (idempotent)
    again = cli.ok("secret", "rotate")
    assert "team_credentials.values_encrypted: 0 re-encrypted, 2 already" in again
    assert tokens(cli) == after


def test_keys_that_never_encrypted_anything_fail_clearly_and_change_nothing(
    stored: tuple[KeyedCli, str, str],
) -> None:
    cli, api_key, secret = stored
    before = tokens(cli)
    # Given neither the current nor the previous key is A
    cli.key, cli.previous = "some-other-key", ["yet-another-key"]

    # When the secrets are rotated
    result = cli("secret", "rotate")

    # Then it fails, saying which secrets and what to do, without a traceback
    assert result.returncode == 1
    assert "3 stored secret(s) cannot be decrypted" in result.stderr
    assert "DEALFLOW_SECRET_KEY_PREVIOUS" in result.stderr
    assert "Traceback" not in result.stderr
    assert "3 unreadable" not in result.stdout  # per column: 2 and 1
    assert "2 unreadable" in result.stdout
    # and nothing was rewritten: A still reads everything
    assert tokens(cli) == before
    assert reads_everything(cli, api_key, secret, KEY_A)


def test_rotate_without_a_key_says_to_set_it(stored: tuple[KeyedCli, str, str]) -> None:
    cli, _, _ = stored
    cli.key = None

    result = cli("secret", "rotate")

    assert result.returncode == 1
    assert "DEALFLOW_SECRET_KEY is not set" in result.stderr


def test_rotation_in_small_batches_covers_every_row(engine: Engine, make_team: Any) -> None:
    # Given three teams, each with a credential set and two webhook secrets under key A
    old = Settings(secret_key=KEY_A)
    factory = make_session_factory(engine)
    plain: dict[str, str] = {}
    for name in ("Acme", "Globex", "Initech"):
        team = make_team(name)
        with transaction(factory) as session:
            session.add(
                TeamCredential(
                    team_id=team.team_id,
                    plugin="slack",
                    values_encrypted=crypto.encrypt(old, json.dumps(SLACK)),
                )
            )
            hooks.create_secret(session, team.team_id, old)
            hooks.rotate_secret(session, team.team_id, old)
    with engine.connect() as conn:
        for token in conn.scalars(select(TeamCredential.values_encrypted)):
            plain[token] = crypto.decrypt(old, token)
        for token in conn.scalars(select(HookSecret.secret_encrypted)):
            plain[token] = crypto.decrypt(old, token)
    assert len(plain) == 9

    # When they are rotated to B two rows at a time
    tallies = rotate_all(engine, Settings(secret_key=KEY_B, secret_key_previous=(KEY_A,)), 2)

    # Then every row was re-encrypted, and B alone reads the same values
    assert {t.column: (t.rotated, t.current, t.unreadable) for t in tallies} == {
        "team_credentials.values_encrypted": (3, 0, 0),
        "hook_secrets.secret_encrypted": (6, 0, 0),
    }
    with engine.connect() as conn:
        fresh = [
            *conn.scalars(select(TeamCredential.values_encrypted)),
            *conn.scalars(select(HookSecret.secret_encrypted)),
        ]
    assert sorted(crypto.decrypt(KEY_B, t) for t in fresh) == sorted(plain.values())
    assert set(fresh).isdisjoint(plain)


def test_a_secret_saved_during_the_rotation_is_kept(
    engine: Engine, make_team: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a credential set under key A
    team = make_team("Acme")
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        session.add(
            TeamCredential(
                team_id=team.team_id,
                plugin="slack",
                values_encrypted=crypto.encrypt(KEY_A, json.dumps(SLACK)),
            )
        )
    keys = Settings(secret_key=KEY_B, secret_key_previous=(KEY_A,))
    saved = crypto.encrypt(keys, json.dumps({"webhook_url": "https://hooks.example/new"}))
    real = secret_cli.reencrypt

    def meanwhile(settings: Any, token: str) -> str:
        # a server (already on key B) saves the set anew while the rotation is at this row
        with engine.begin() as conn:
            conn.execute(update(TeamCredential).values(values_encrypted=saved))
        return real(settings, token)

    monkeypatch.setattr(secret_cli, "reencrypt", meanwhile)

    # When the rotation reaches that row
    tallies = {t.column: t for t in rotate_all(engine, keys)}
    tally = tallies["team_credentials.values_encrypted"]

    # Then the row keeps what the server saved, counted as changed meanwhile
    assert (tally.rotated, tally.changed) == (0, 1)
    with engine.connect() as conn:
        (stored,) = conn.scalars(select(TeamCredential.values_encrypted))
    assert stored == saved

"""``dealflow key create --scope``: the operator issues keys narrowed to ingest or read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import KEY_RE, Cli, api


@pytest.fixture
def acme(tmp_path: Path) -> Cli:
    """A migrated database with team Acme."""
    cli = Cli(tmp_path)
    cli.ok("migrate")
    cli.ok("team", "create", "Acme")
    return cli


def key_in(output: str) -> str:
    keys = KEY_RE.findall(output)
    assert len(keys) == 1, output
    return keys[0]


def test_key_create_with_a_scope_issues_a_narrowed_key(acme: Cli) -> None:
    # When the operator issues an ingest key and a read key for an admin
    args = ("key", "create", "--team", "Acme", "--email", "ops@acme.test", "--role", "admin")
    ingest_out = acme.ok(*args, "--scope", "ingest", "--label", "crm sync")
    read_out = acme.ok(*args, "--scope", "read")
    ingest, read = key_in(ingest_out), key_in(read_out)
    # Then each says its scope, and does only what its scope allows
    assert "ingest scope" in ingest_out and "read scope" in read_out
    with api(acme.url) as client:
        by_ingest = client.post(
            "/api/v1/contacts", json={"name": "Ann"}, headers={"Authorization": f"Bearer {ingest}"}
        )
        ingest_reads = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {ingest}"})
        by_read = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {read}"})
        read_writes = client.post(
            "/api/v1/contacts", json={"name": "Bob"}, headers={"Authorization": f"Bearer {read}"}
        )
    assert by_ingest.status_code == 201, by_ingest.text
    assert ingest_reads.status_code == 403 and ingest_reads.json()["required_scope"] == "read"
    assert by_read.status_code == 200 and len(by_read.json()["items"]) == 1
    assert read_writes.status_code == 403 and read_writes.json()["required_scope"] == "ingest"
    # And the listing shows the scopes
    lines = acme.ok("key", "list", "--team", "Acme").splitlines()
    assert "SCOPE" in lines[0]
    scopes = {line.split()[0]: line.split()[-2] for line in lines[1:]}
    assert scopes[ingest[:10]] == "ingest" and scopes[read[:10]] == "read"


def test_key_create_refuses_an_unknown_scope(acme: Cli) -> None:
    result = acme("key", "create", "--team", "Acme", "--email", "x@acme.test", "--scope", "admin")
    assert result.returncode == 2
    assert "--scope" in result.stderr and "ingest" in result.stderr
    assert not KEY_RE.search(result.stdout)


def test_key_create_and_revoke_are_in_the_audit_log(acme: Cli) -> None:
    # When the operator issues a key and revokes it twice
    key = key_in(acme.ok("key", "create", "--team", "Acme", "--email", "bot@acme.test",
                         "--scope", "read", "--label", "bi"))
    acme.ok("key", "revoke", key)
    acme.ok("key", "revoke", key)
    # Then the log holds one issue and one revocation, made from the CLI, without the key
    log = acme.ok("audit", "--team", "Acme", "--json")
    assert key not in log
    found = [e for e in json.loads(log) if e["action"].startswith("key.")]
    assert sorted(e["action"] for e in found) == ["key.create", "key.revoke"], log
    assert all(e["via"] == "cli" and e["summary"]["after"]["prefix"] == key[:10] for e in found)

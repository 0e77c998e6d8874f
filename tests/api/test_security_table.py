"""docs/security.md's access table is the truth: every operation of the OpenAPI document and
every ``dealflow`` command is in it, and each kind of key gets exactly the answers it says."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from server.cli import build_parser
from server.core.db import make_session_factory, transaction
from server.core.models import Team, User
from server.core.services.teams import create_key, ensure_user

SECURITY_MD = Path(__file__).resolve().parents[2] / "docs" / "security.md"
KINDS = ("admin", "member", "read", "ingest")
METHODS = {"get", "post", "put", "patch", "delete"}
DUMMY_ID = 987654
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def table(heading: str) -> dict[str, list[str]]:
    """The rows of the table under ``### heading``: first cell (without backticks) → cells."""
    section = SECURITY_MD.read_text().split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is in the table twice"
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    assert rows, f"no table under '### {heading}' in {SECURITY_MD}"
    return rows


def endpoint_table() -> dict[str, set[str]]:
    """``"GET /api/v1/deals"`` → the kinds of key the table lets in."""
    allowed = {}
    for endpoint, cells in table("HTTP endpoints").items():
        assert len(cells) == len(KINDS), (endpoint, cells)
        assert set(cells) <= {"yes", "—"}, (endpoint, cells)
        allowed[endpoint] = {kind for kind, cell in zip(KINDS, cells) if cell == "yes"}
    return allowed


@pytest.fixture
def doc(client: TestClient[Litestar]) -> dict[str, Any]:
    return client.get("/schema/openapi.json").json()


def operations(doc: dict[str, Any]) -> list[str]:
    """Every operation as ``"GET /api/v1/deals"``, deletions last (the others find the rows)."""
    found = [
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        for method in ops
        if method in METHODS
    ]
    return sorted(found, key=lambda endpoint: endpoint.startswith("DELETE "))


def test_every_operation_is_in_the_table_and_every_row_is_an_operation(doc: dict[str, Any]) -> None:
    documented, served = set(endpoint_table()), set(operations(doc))
    assert not served - documented, f"missing from docs/security.md: {sorted(served - documented)}"
    assert not documented - served, f"not in the API: {sorted(documented - served)}"


@pytest.fixture
def keys(engine: Any, team: Any) -> dict[str, str]:
    """A key of each kind in team A: the admin's, a member's, and the admin's narrowed to
    read and to ingest (a scope narrows even an admin)."""
    with transaction(make_session_factory(engine)) as session:
        admin = session.get(User, team.user_id)
        member = ensure_user(
            session, session.get(Team, team.team_id), "rep@acme.test", name="Rep", role="member"
        )
        made = {
            "member": create_key(session, member, name="member"),
            "read": create_key(session, admin, name="dashboard", scope="read"),
            "ingest": create_key(session, admin, name="crm sync", scope="ingest"),
        }
    return {"admin": team.key, **made}


@pytest.fixture
def path_values(api: TestClient[Litestar], team: Any, keys: dict[str, str]) -> dict[str, Any]:
    """A value for each path parameter: ids of real rows where there are some."""

    def made(path: str, body: dict[str, Any]) -> Any:
        resp = api.post(path, json=body)
        assert resp.status_code == 201, (path, resp.text)
        return resp.json()["id"]

    made("/api/v1/workflows", {
        "id": "tag-big", "name": "Tag big", "entity": "deal", "trigger": {"type": "record_saved"},
        "condition": "record.amount > `1000`",
        "actions": [{"type": "field_update", "set": {"custom.big": True}}],
    })  # fmt: skip
    contact = made("/api/v1/contacts", {"name": "Ann"})
    values = {
        "contact_id": contact,
        "communication_id": made(
            f"/api/v1/contacts/{contact}/communications",
            {"channel": "call", "direction": "outbound"},
        ),
        "deal_id": made("/api/v1/deals", {"title": "Big", "amount": 5000}),
        "lead_id": made("/api/v1/leads", {"contact_id": contact}),
        "outreach_id": made("/api/v1/outreach", {"type": "call", "phone": "+49 30 1234567"}),
        "key_id": made("/api/v1/team/keys", {"name": "spare"}),
        "execution_id": DUMMY_ID,
        "team_id": team.team_id,
        "key": "tag-big",
        "number": 1,
        "external_id": "ext-1",
        "group": "grade",
        "plugin": "sample",
        "name": "crm",
    }
    runs = api.get("/api/v1/runs").json()["items"]
    assert runs, "saving the deal ran the workflow"
    return {**values, "run_id": runs[0]["id"]}


def test_each_kind_of_key_gets_what_the_table_says(
    client: TestClient[Litestar],
    doc: dict[str, Any],
    keys: dict[str, str],
    path_values: dict[str, Any],
) -> None:
    # Given the table, a key of each kind and a value for every path parameter
    allowed = endpoint_table()
    client.headers.pop("Authorization", None)
    wrong = []
    for endpoint in operations(doc):
        if endpoint not in allowed:
            wrong.append(f"{endpoint}: not in docs/security.md")
            continue
        method, template = endpoint.split(" ", 1)
        names = re.findall(r"{(\w+)}", template)
        missing = [n for n in names if n not in path_values]
        assert not missing, f"{endpoint}: give the path parameters {missing} a value"
        path = template.format(**{n: path_values[n] for n in names})
        for kind in KINDS:
            # When a key of this kind calls the operation (with an empty body for writes)
            body = {} if method in ("POST", "PUT", "PATCH") else None
            resp = client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {keys[kind]}"}
            )
            # Then: refused with 403 problem details exactly when the table says so
            if kind in allowed[endpoint]:
                # Allowed: the call gets past the guard (a 404 or 422 for the made-up ids and
                # the empty body is fine), and is never a server error, nor a 401 other than
                # a webhook's for its missing signature
                unsigned = resp.status_code == 401 and "webhook-" in resp.text
                if resp.status_code in (401, 403) and not unsigned or resp.status_code >= 500:
                    wrong.append(f"{endpoint}: {kind} got {resp.status_code} ({resp.text[:120]})")
                continue
            if resp.status_code != 403:
                wrong.append(f"{endpoint}: {kind} got {resp.status_code}, not 403")
                continue
            problem = resp.json()
            if not resp.headers["content-type"].startswith("application/problem+json") or not (
                problem.get("required_role") or problem.get("required_scope")
            ):
                wrong.append(f"{endpoint}: {kind}'s 403 names no role or scope: {problem}")
    assert not wrong, "\n".join(wrong)


def test_a_refusal_names_what_is_needed_and_what_the_key_has(
    client: TestClient[Litestar], keys: dict[str, str]
) -> None:
    def call(method: str, path: str, kind: str) -> dict[str, Any]:
        resp = client.request(
            method, path, json={}, headers={"Authorization": f"Bearer {keys[kind]}"}
        )
        assert resp.status_code == 403, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        return resp.json()

    member = call("PUT", "/api/v1/team", "member")
    assert {k: member[k] for k in ("type", "title", "status", "required_role")} == {
        "type": "urn:dealflow:problem:forbidden", "title": "Forbidden", "status": 403,
        "required_role": "admin",
    }  # fmt: skip
    assert (member["key_role"], member["key_scope"]) == ("member", None)
    assert "admin" in member["detail"] and "member" in member["detail"]
    read = call("PATCH", "/api/v1/deals/1", "read")
    assert (read["required_role"], read["key_role"], read["key_scope"]) == (
        "member", "admin", "read"
    )
    assert "read scope" in read["detail"]
    ingest = call("GET", "/api/v1/deals", "ingest")
    assert (ingest["required_scope"], ingest["key_scope"]) == ("read", "ingest")
    read_post = call("POST", "/api/v1/deals", "read")
    assert (read_post["required_scope"], read_post["key_scope"]) == ("ingest", "read")


# --- the command line ---------------------------------------------------------------------


def commands(parser: argparse.ArgumentParser, prefix: str = "dealflow") -> list[str]:
    """Every leaf command of ``parser``, as typed (``dealflow key create``)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands(sub, f"{prefix} {name}") or [f"{prefix} {name}"]
    return found


def test_every_command_is_in_the_table_and_every_row_is_a_command() -> None:
    documented, offered = set(table("Command line")), set(commands(build_parser()))
    assert not offered - documented, f"not in docs/security.md: {sorted(offered - documented)}"
    assert not documented - offered, f"not a command: {sorted(documented - offered)}"
    assert {cells[0] for cells in table("Command line").values()} == {"operator"}

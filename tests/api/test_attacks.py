"""The attack corpus: payloads a hostile admin, a leaked key or a broken client would send.

Each is answered within a bound with a 4xx problem details, or rendered inert (a dry run whose
output holds nothing of the server's internals); the server keeps serving, and team B's rows are
untouched."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY_RE, Cli

BOUND_SECONDS = 2.0
"""Every attack is answered within this (generously: most take milliseconds)."""

LEAKS = ("<class '", "<built-in", "<module", "<function", "test-secret-key", "root:x:0:0", "uid=0")
"""What a rendered template or an error must never show: Python internals, the server's secret
key, a file's or a command's output."""

B_MARK = "bravo-untouched"


@dataclass(frozen=True)
class Attack:
    name: str
    send: Callable[[Any], Any]
    inert_ok: bool = False
    """A 200 is acceptable when its body leaks nothing (a dry run renders hostile text inert)."""


def dry_run_email(subject: str) -> Callable[[Any], Any]:
    workflow = {
        "id": "ssti", "name": "SSTI", "entity": "deal", "trigger": {"type": "record_saved"},
        "actions": [{"type": "email", "to": "ops@example.com", "subject": subject, "body": subject}],
    }
    return lambda api: api.post("/api/v1/workflows/test",
                                json={"workflow": workflow, "record": {"title": "T", "amount": 5}})


def save_formula(expression: str) -> Callable[[Any], Any]:
    workflow = {
        "id": "formula-attack", "name": "Formula", "entity": "deal", "trigger": {"type": "record_saved"},
        "actions": [{"type": "formula", "field": "custom.x", "expression": expression}],
    }
    return lambda api: api.post("/api/v1/workflows", json=workflow)


def dry_run_formula(expression: str) -> Callable[[Any], Any]:
    workflow = {
        "id": "formula-attack", "name": "Formula", "entity": "deal", "trigger": {"type": "record_saved"},
        "actions": [{"type": "formula", "field": "custom.x", "expression": expression}],
    }
    return lambda api: api.post("/api/v1/workflows/test",
                                json={"workflow": workflow, "record": {"title": "T", "amount": 5}})


def save_condition(condition: str) -> Callable[[Any], Any]:
    workflow = {
        "id": "jmes-attack", "name": "JMESPath", "entity": "deal", "trigger": {"type": "record_saved"},
        "condition": condition, "actions": [{"type": "field_update", "set": {"custom.x": 1}}],
    }
    return lambda api: api.post("/api/v1/workflows", json=workflow)


def dry_run_condition(condition: str, record: dict[str, Any]) -> Callable[[Any], Any]:
    workflow = {
        "id": "jmes-attack", "name": "JMESPath", "entity": "deal", "trigger": {"type": "record_saved"},
        "condition": condition, "actions": [{"type": "field_update", "set": {"custom.x": 1}}],
    }
    return lambda api: api.post("/api/v1/workflows/test", json={"workflow": workflow, "record": record})


def raw(method: str, path: str, body: bytes, content_type: str = "application/json") -> Callable[[Any], Any]:
    return lambda api: api.request(method, path, content=body, headers={"content-type": content_type})


def post_json(path: str, body: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda api: api.post(path, json=body)


def nested(depth: int) -> bytes:
    return b'{"name": "n", "custom": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


SSTI = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ request.application.__globals__.__builtins__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ record.__class__.__init__.__globals__ }}",
    "{{ ''['__cl' ~ 'ass__'] }}",
    "{{ record|attr('__class__') }}",
    "{{ 'x' * 1000000000 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{{ '%s' % ('x' * 10) * 100000000 }}",
    "{{ '{0:>999999999}'.format(1) }}",
    "{% set x = namespace() %}{{ x.__class__ }}",
    "{{ environment }}",
]

FORMULAS = [
    "9**9**9",
    "10**100000",
    "(" * 1000 + "1" + ")" * 1000,
    "__import__('os').system('id')",
    "().__class__.__bases__[0].__subclasses__()",
    "[x for x in (1, 2)]",
    "(lambda: 1)()",
    "open('/etc/passwd').read()",
    "amount.__class__",
    "'a' * 10**9",
    "amount ** 99999999",
    "-" * 5000 + "1",
]

JMESPATH = [
    ("record." + "a." * 3000 + "b", None),
    ("[" * 1000 + "]" * 1000, None),
    ("length(" * 400 + "@" + ")" * 400, None),
    ("record.custom.*[*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*][*]",
     {"title": "T", "amount": 5, "custom": {f"k{i}": "v" for i in range(60)}}),
    ("join('', [record.title, record.title, record.title, record.title])",
     {"title": "x" * 50_000, "amount": 5}),
    ("sort_by(record.custom.*, &to_string(@))", {"title": "T", "custom": {f"k{i}": i for i in range(60)}}),
]

CONTENT = [
    ("oversized body", raw("POST", "/api/v1/contacts", b'{"name": "' + b"x" * 200_000 + b'"}'), 413),
    ("deeply nested JSON 10000", raw("POST", "/api/v1/contacts", nested(10_000)), 422),
    ("deeply nested JSON 100", raw("POST", "/api/v1/contacts", nested(100)), 422),
    ("invalid UTF-8", raw("POST", "/api/v1/contacts", b'{"name": "\xff\xfe\xfd"}'), 400),
    ("overlong UTF-8 slash", raw("POST", "/api/v1/contacts", b'{"name": "\xc0\xaf"}'), 400),
    ("lone surrogate", raw("POST", "/api/v1/contacts", b'{"name": "\\ud800"}'), None),
    ("NUL in a string", raw("POST", "/api/v1/contacts", b'{"name": "a\\u0000b"}'), 422),
    ("huge number", raw("POST", "/api/v1/deals", b'{"title": "T", "amount": 1e999999}'), 400),
    ("too many digits", post_json("/api/v1/deals", {"title": "T", "amount": 10**30}), 422),
    ("text/plain", raw("POST", "/api/v1/contacts", b'{"name": "x"}', "text/plain"), 415),
    ("form encoded", raw("POST", "/api/v1/contacts", b"name=x", "application/x-www-form-urlencoded"), 415),
    ("XML", raw("POST", "/api/v1/contacts", b"<contact><name>x</name></contact>", "application/xml"), 415),
    ("multipart", raw("POST", "/api/v1/contacts", b"--x\r\n\r\nx\r\n--x--",
                      "multipart/form-data; boundary=x"), 415),
    ("not JSON at all", raw("POST", "/api/v1/contacts", b"{name: x"), 400),
    ("JSON array body", raw("POST", "/api/v1/contacts", b"[1, 2, 3]"), 422),
    ("workflow id traversal", post_json("/api/v1/workflows", {
        "id": "../../etc/passwd", "name": "x", "entity": "deal", "trigger": {"type": "record_saved"},
        "actions": [{"type": "field_update", "set": {"custom.x": 1}}]}), 422),
]

ATTACKS = (
    [Attack(f"template {i}: {s[:40]}", dry_run_email(s), inert_ok=True) for i, s in enumerate(SSTI)]
    + [Attack(f"formula save {i}: {f[:40]}", save_formula(f)) for i, f in enumerate(FORMULAS)]
    + [Attack(f"formula dry run {i}: {f[:40]}", dry_run_formula(f)) for i, f in enumerate(FORMULAS)]
    + [Attack(f"jmespath save {i}: {c[:40]}", save_condition(c)) for i, (c, r) in enumerate(JMESPATH)
       if r is None]
    + [Attack(f"jmespath dry run {i}: {c[:40]}", dry_run_condition(c, r), inert_ok=True)
       for i, (c, r) in enumerate(JMESPATH) if r is not None]
    + [Attack(name, send) for name, send, _ in CONTENT]
)
EXPECTED_STATUS = {name: status for name, _, status in CONTENT}

SQL = [
    "' OR '1'='1",
    "1; DROP TABLE contacts; --",
    "%' UNION SELECT key_hash, 1, 1 FROM api_keys --",
    "\\'; SELECT pg_sleep(10); --",
    "1) OR (1=1 */ OR 1=1 /*",
]


def test_the_corpus_is_large() -> None:
    assert len(ATTACKS) + len(SQL) >= 40


@pytest.fixture
def team_b(make_team: Any, client: Any) -> Any:
    """Team B with a contact and a deal that no attack of team A may touch."""
    b = make_team("Bravo")
    contact = client.post("/api/v1/contacts", json={"name": B_MARK, "email": "b@bravo.test"},
                          headers=b.headers)
    assert contact.status_code == 201
    assert client.post("/api/v1/deals", json={"title": B_MARK, "amount": 7},
                       headers=b.headers).status_code == 201
    return b


def untouched(client: Any, b: Any) -> None:
    contacts = client.get("/api/v1/contacts", headers=b.headers).json()
    deals = client.get("/api/v1/deals", headers=b.headers).json()
    rows = [*contacts["items"], *deals["items"]]
    assert [r.get("name") or r.get("title") for r in rows] == [B_MARK, B_MARK]
    assert deals["items"][0]["amount"] in (7, "7", "7.00", 7.0)


def answered(resp: Any, attack: Attack, elapsed: float) -> None:
    label = f"{attack.name}: {resp.status_code} {resp.text[:300]}"
    assert elapsed < BOUND_SECONDS, f"{label} took {elapsed:.2f} s"
    assert resp.status_code < 500, label
    for leak in LEAKS:
        assert leak not in resp.text, f"{label} leaks {leak!r}"
    expected = EXPECTED_STATUS.get(attack.name)
    if expected is not None:
        assert resp.status_code == expected, label
    if resp.status_code >= 400:
        assert resp.headers["content-type"].startswith("application/problem+json"), label
        assert resp.json()["status"] == resp.status_code, label
    else:
        assert attack.inert_ok or expected is None, f"{label}: accepted"
        if attack.name == "lone surrogate":
            # Accepted only as text the database can store and give back unchanged
            assert resp.status_code == 201, label


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_an_attack_is_refused_or_inert_and_the_server_keeps_serving(
    api: Any, team_b: Any, attack: Attack
) -> None:
    started = time.perf_counter()
    resp = attack.send(api)
    answered(resp, attack, time.perf_counter() - started)
    # The server still serves, and team B is as it was
    assert api.get("/healthz").status_code == 200
    assert api.get("/api/v1/contacts").status_code == 200
    untouched(api, team_b)


def list_filters(api: Any) -> list[tuple[str, str]]:
    """Every (GET path, query parameter) in the OpenAPI document, paging parameters aside;
    a path's own parameters are filled with a record of team A (or its first one)."""
    spec = api.get("/schema/openapi.json").json()
    contact = api.post("/api/v1/contacts", json={"name": "Filtered"}).json()["id"]
    lead = api.post("/api/v1/leads", json={"contact_id": contact}).json()["id"]
    deal = api.post("/api/v1/deals", json={"title": "Filtered"}).json()["id"]
    values = {"contact_id": contact, "lead_id": lead, "deal_id": deal, "id": deal}
    found = []
    for path, item in spec["paths"].items():
        operation = item.get("get")
        if not operation:
            continue
        for param in operation.get("parameters", []):
            if param["in"] == "path":
                path = path.replace("{%s}" % param["name"], str(values.get(param["name"], 1)))
        for param in operation.get("parameters", []):
            if param["in"] == "query" and param["name"] not in ("limit", "cursor", "page"):
                found.append((path, param["name"]))
    return found


@pytest.mark.parametrize("payload", SQL)
def test_sql_looking_strings_in_every_filter_are_plain_values(api: Any, team_b: Any, payload: str) -> None:
    filters = list_filters(api)
    assert len(filters) >= 10, filters
    for path, name in filters:
        started = time.perf_counter()
        resp = api.get(path, params={name: payload})
        label = f"{path}?{name}={payload}: {resp.status_code} {resp.text[:300]}"
        assert time.perf_counter() - started < BOUND_SECONDS, label
        assert resp.status_code in (200, 400, 404, 422), label
        assert B_MARK not in resp.text, label
        if resp.status_code != 200:
            assert resp.headers["content-type"].startswith("application/problem+json"), label
        elif isinstance(resp.json(), dict) and "items" in resp.json():
            # A filter on a value no row has matches nothing: the string was a value, not SQL
            assert resp.json()["items"] == [], label
    untouched(api, team_b)


def test_workflow_import_refuses_path_traversal(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("migrate")
    assert KEY_RE.findall(cli.ok("team", "create", "Acme"))
    outside = tmp_path / "outside.json"
    outside.write_text('{"id": "../outside", "name": "x", "entity": "deal", '
                       '"trigger": {"type": "record_saved"}, '
                       '"actions": [{"type": "field_update", "set": {"custom.x": 1}}]}')
    inside = tmp_path / "flows"
    inside.mkdir()
    (inside / "evil.json").write_text(outside.read_text().replace("../outside", "../../evil"))
    # An id that is a path is refused with the file, the JSON path and the reason
    refused = cli("workflows", "import", "--team", "Acme", str(inside))
    assert refused.returncode == 1
    assert "evil.json" in refused.stdout + refused.stderr and "$.id" in refused.stdout + refused.stderr
    # and an export writes only inside the directory it was given
    export = tmp_path / "export"
    cli.ok("workflows", "export", "--team", "Acme", str(export))
    assert not (tmp_path / "evil.json").exists() and not (tmp_path.parent / "evil.json").exists()
    assert all(p.resolve().is_relative_to(export.resolve()) for p in export.rglob("*"))

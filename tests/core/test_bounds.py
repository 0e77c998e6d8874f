"""Bounded evaluation: every expression, formula and template a workflow holds stops with a
clear error, fast, whatever it is given; a failing template is its action's recorded error;
a recursive set of workflows ends the save with the limit in its runs."""

from __future__ import annotations

import time
from typing import Any

import pluggy
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine, select

from server.app import create_app
from server.core import expressions
from server.core.action import Action, ActionContext
from server.core.conditions import evaluate
from server.core.db import make_session_factory
from server.core.engine import WorkflowEngine
from server.core.expressions import LimitError, compile_expression
from server.core.formula import FormulaError, compile_formula
from server.core.models import Run
from server.core.plugins import build_registry, get_plugin_manager
from server.core.rendering import TemplateError, render
from server.core.scope import Actor, TeamScope
from server.core.services import deals, workflows
from server.settings import Settings

hookimpl = pluggy.HookimplMarker("dealflow")
DOCUMENT: dict[str, Any] = {
    "record": {"title": "Initech", "amount": 1000, "items": [1, 2, 3], "note": "x" * 1000},
    "payload": {"rows": [{"sku": f"s{i}", "qty": i % 7} for i in range(5000)]},
}


def quickly(run: Any) -> Any:
    """``run()``'s error, asserting it came in well under a second."""
    started = time.perf_counter()
    with pytest.raises(Exception) as caught:
        run()
    assert time.perf_counter() - started < 1.0
    return caught.value


# --- JMESPath ------------------------------------------------------------------------------


def test_a_condition_over_the_length_limit_is_a_422_naming_its_path_and_the_limit(api) -> None:
    document = {
        "id": "long",
        "name": "Long",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "condition": "record.amount > `1` || " * 100 + "true",
        "actions": [{"type": "field_update", "set_from": {"title": "record.title" + " " * 2000}}],
    }
    resp = api.post("/api/v1/workflows", json=document)

    assert resp.status_code == 422, resp.text
    messages = {e["field"]: e["message"] for e in resp.json()["errors"]}
    assert messages == {
        "$.condition": "is longer than 2000 characters (the limit)",
        "$.actions[0].set_from.title": "is longer than 2000 characters (the limit)",
    }


def test_the_length_limit_holds_for_expressions_compiled_elsewhere() -> None:
    with pytest.raises(expressions.ExpressionError, match="longer than 2000 characters"):
        compile_expression("a" * (expressions.MAX_LENGTH + 1))


DOUBLE = "[@, @] | "
EIGHT = "[@, @, @, @, @, @, @, @]"
STEPS = f"more than {expressions.MAX_STEPS} steps"
SIZE = f"value of over {expressions.MAX_VALUE_SIZE} characters"


@pytest.mark.parametrize(
    ("expression", "limit"),
    [
        # flattening a value doubled 40 times: 2**40 items
        (DOUBLE * 40 + "[] | " * 40 + "length(@)", STEPS),
        # serialising or returning it
        ("record.note | " + DOUBLE * 40 + "to_string(@)", SIZE),
        ("record | " + DOUBLE * 60 + "@", SIZE),
        # joining a string to itself, stage after stage
        ("record.note | " + "[@, @, @, @] | join('', @) | " * 12 + "length(@)", SIZE),
        # comparing two separately doubled values walks both
        ("(record | " + DOUBLE * 60 + "@) == (record | " + DOUBLE * 60 + "@)", SIZE),
        ("contains(record | " + DOUBLE * 40 + "[@], record)", SIZE),
        # projections nested over a large array
        (f"payload.rows | {EIGHT} | {EIGHT} | [*][*][*].sku", STEPS),
        (f"payload.rows | {EIGHT} | {EIGHT} | [*][*][?qty > `3`]", STEPS),
    ],
    ids=["flatten", "to_string", "result", "join", "equality", "contains", "map", "filter"],
)
def test_expressions_that_would_blow_up_stop_fast_naming_the_limit(
    expression: str, limit: str
) -> None:
    assert len(expression) <= expressions.MAX_LENGTH

    error = quickly(lambda: expressions.search(expression, DOCUMENT))

    assert isinstance(error, LimitError)
    assert limit in error.message
    assert "evaluation stopped" in error.message


def test_a_condition_past_a_limit_is_an_error_not_a_non_match() -> None:
    outcome = evaluate("length(" + "record | " + DOUBLE * 60 + "[] | " * 60 + "@) > `1`", DOCUMENT)

    assert (outcome.matched, outcome.failed_part) == (False, None)
    assert outcome.error is not None and STEPS in outcome.error


def test_ordinary_expressions_over_a_webhook_sized_document_are_well_within_the_limits() -> None:
    # Given a payload of 5000 rows (about the largest webhook body accepted)
    # When conditions filter, project and sort it
    started = time.perf_counter()
    busy = expressions.search("length(payload.rows[?qty > `3`])", DOCUMENT)
    top = expressions.search("sort_by(payload.rows, &qty)[-1].qty", DOCUMENT)
    skus = expressions.search("payload.rows[*].sku", DOCUMENT)

    # Then they compute as plain JMESPath would
    assert (busy, top, len(skus)) == (2142, 6, 5000)
    assert time.perf_counter() - started < 1.0


def test_a_limit_reached_in_one_part_of_a_condition_is_its_error() -> None:
    part = "(record | " + DOUBLE * 60 + "@) == `1`"
    outcome = evaluate(f"record.amount > `1` && {part}", DOCUMENT)

    assert outcome.error is not None and "evaluation stopped" in outcome.error


# --- formulas ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("9**9**9", "the exponent of ** must be between -100 and 100, got 387420489"),
        ("10**100000", "the exponent of ** must be between -100 and 100, got 100000"),
        ("(10**12)**100 * 10**12", "the result is too large"),
        ("(" * 1000 + "1" + ")" * 1000, "longer than 1000 characters"),
        ("(" * 499 + "1" + ")" * 499, "nested too deeply"),
        ("-" * 60 + "1", "nested too deeply (over 50 levels)"),
        ("amount + " * 200 + "1", "longer than 1000 characters"),
        ("'x' * 1000000000", "strings are not allowed"),
        ("round(amount, -10**9)", "round() digits must be a whole number from -15 to 15"),
        ("1e308 * 10", "not a finite number"),
    ],
    ids=["9**9**9", "10**100000", "too-large", "parens-1000", "parens-499", "unary-60",
         "long", "string", "round", "infinite"],
)
def test_formulas_past_a_limit_fail_fast_saying_which(expression: str, message: str) -> None:
    error = quickly(lambda: compile_formula(expression).evaluate({"amount": 5}))

    assert isinstance(error, FormulaError)
    assert message in error.message


# --- templates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'x' * 10**9 }}", "output too large"),
        ("{% for i in range(10**7) %}x{% endfor %}", "range() of more than"),
        ("{% for i in range(10000) %}{{ record.note }}{% endfor %}", "output too large"),
        ("{{ [record] * 10**7 }}", "output too large"),
        ("{{ 9 ** (9 ** 9) }}", "** is limited"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion too deep"),
        ("{{ record.note|indent(10**9) }}", "output too large"),
    ],
)
def test_templates_past_a_limit_fail_fast_saying_which(source: str, message: str) -> None:
    error = quickly(lambda: render(source, DOCUMENT))

    assert isinstance(error, TemplateError)
    assert message in error.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ config }}",
        "{{ self }}",
        "{{ cycler }}",
        "{{ joiner }}",
        "{{ lipsum }}",
        "{{ namespace }}",
        "{{ record.__class__ }}",
        "{{ range.__globals__ }}",
        "{{ record.items.__self__ }}",
        "{% for i in range(1) %}{{ loop.__class__ }}{% endfor %}",
        "{{ '{0.__class__}'.format(record) }}",
        "{{ record|attr('__class__') }}",
    ],
)
def test_templates_reach_no_internals(source: str) -> None:
    with pytest.raises(TemplateError, match="not available|not allowed"):
        render(source, DOCUMENT)


@pytest.mark.parametrize("name", ["environment", "request", "__globals__", "settings", "os"])
def test_names_outside_the_document_are_undefined_and_render_empty(name: str) -> None:
    assert render(f"[{{{{ {name} }}}}]", DOCUMENT) == "[]"


# --- a failing template is its action's error ----------------------------------------------

HUGE = "{{ 'x' * 10**9 }}"


def email_workflow(body: str) -> dict[str, Any]:
    return {
        "id": "big-mail",
        "name": "Big mail",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "email", "to": "lead@example.com", "subject": "Hi", "body": body}],
    }


def test_a_template_error_is_the_executions_recorded_error_not_a_500(
    engine: Engine, db_url: str, team: Any, smtp_server: Any
) -> None:
    app = create_app(Settings(database_url=db_url, smtp_url=smtp_server.url), engine=engine)
    with TestClient(app) as api:
        api.headers.update(team.headers)
        # Given a workflow whose email body builds a huge string
        assert api.post("/api/v1/workflows", json=email_workflow(HUGE)).status_code == 201

        # When a deal is created
        resp = api.post("/api/v1/deals", json={"title": "Initech"})

        # Then the save succeeds, and the email's execution ends dead with the template's error
        assert resp.status_code == 201, resp.text
        assert app.state.runtime.runner.join(10)
        run = api.get("/api/v1/runs", params={"workflow": "big-mail"}).json()["items"][0]
        (execution,) = api.get(f"/api/v1/runs/{run['id']}").json()["executions"]
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert "email: body: template: output too large" in execution["last_error"]
    assert smtp_server.envelopes == []


def test_a_template_error_in_a_dry_run_is_the_actions_error_not_a_500(
    api: TestClient[Litestar],
) -> None:
    resp = api.post(
        "/api/v1/workflows/test",
        json={"workflow": email_workflow(HUGE), "record": {"title": "Initech"}},
    )

    assert resp.status_code == 200, resp.text
    assert "output too large" in str(resp.json())


# --- recursive workflow sets ---------------------------------------------------------------


def counter(key: str, field: str, listens: list[str] | None = None) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "record_saved", "on": ["updated"]}
    if listens:
        trigger["fields"] = listens
    return {
        "id": key,
        "name": key,
        "entity": "deal",
        "trigger": trigger,
        "actions": [{"type": "formula", "field": field, "expression": f"{field} + 1"}],
    }


def updated_runs(api: TestClient[Litestar], deal_id: int) -> list[dict[str, Any]]:
    runs = api.get("/api/v1/runs", params={"entity": "deal", "record_id": deal_id}).json()
    return [r for r in runs["items"] if r["op"] == "updated"]


def test_a_workflow_updating_the_field_it_listens_on_runs_once(api: TestClient[Litestar]) -> None:
    # Given a workflow that increments custom.n whenever custom.n changes
    assert api.post("/api/v1/workflows", json=counter("self", "custom.n", ["custom.n"])).is_success
    deal = api.post("/api/v1/deals", json={"title": "Initech"}).json()

    # When n is set
    resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"custom": {"n": 0}})

    # Then the save answers once the loop is refused, with the loop in the run
    assert resp.status_code == 200, resp.text
    assert resp.json()["custom"] == {"n": 1}
    runs = updated_runs(api, deal["id"])
    assert [(r["depth"], r["status"]) for r in runs] == [(0, "ok"), (1, "loop")]
    assert runs[-1]["notes"] == [{"loop": ["self set custom.n", "self"]}]


def test_workflows_feeding_each_other_on_every_change_stop_at_the_depth_limit(
    api: TestClient[Litestar],
) -> None:
    # Given three workflows that each bump their own counter on any change of the deal
    for key in ("a", "b", "c"):
        assert api.post("/api/v1/workflows", json=counter(key, f"custom.{key}")).is_success
    deal = api.post("/api/v1/deals", json={"title": "Initech", "custom": {"a": 0, "b": 0, "c": 0}})
    deal_id = deal.json()["id"]

    # When the deal is updated
    started = time.perf_counter()
    resp = api.patch(f"/api/v1/deals/{deal_id}", json={"title": "Initech TPS"})

    # Then the save answers promptly, after depth 0..5, with the limit in the last run
    assert resp.status_code == 200, resp.text
    assert time.perf_counter() - started < 10
    assert resp.json()["custom"] == {"a": 6, "b": 6, "c": 6}
    runs = updated_runs(api, deal_id)
    assert [r["depth"] for r in runs] == [0, 1, 2, 3, 4, 5]
    assert runs[-1]["notes"] == [
        {"depth_limit": 5, "not_followed": ["custom.a", "custom.b", "custom.c"]}
    ]


@pytest.fixture
def app_with(engine: Engine, db_url: str, team: Any):  # type: ignore[no-untyped-def]
    """``app_with(**settings)``: a client of an app built with those settings, on team A's key."""
    clients: list[TestClient[Litestar]] = []

    def make(**overrides: Any) -> TestClient[Litestar]:
        settings = Settings(database_url=db_url, outbound_allow=("127.0.0.1",), **overrides)
        client = TestClient(create_app(settings, engine=engine))
        client.__enter__()
        client.headers.update(team.headers)
        clients.append(client)
        return client

    yield make
    for client in clients:
        assert client.app.state.runtime.runner.join(10)
        client.__exit__(None, None, None)


def chain(length: int) -> list[dict[str, Any]]:
    """Workflows c1..c<length>: each sets its field when the previous one's changed."""
    made = []
    for i in range(1, length + 1):
        listens = ["title"] if i == 1 else [f"custom.c{i - 1}"]
        made.append(
            {
                "id": f"c{i}",
                "name": f"c{i}",
                "entity": "deal",
                "trigger": {"type": "record_saved", "on": ["updated"], "fields": listens},
                "actions": [{"type": "field_update", "set": {f"custom.c{i}": True}}],
            }
        )
    return made


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_chain_deeper_than_a_configured_depth_limit_stops_there_and_the_save_succeeds(
    app_with: Any, depth: int
) -> None:
    # Given DEALFLOW_MAX_DEPTH set low, and a chain of workflows longer than it
    api = app_with(max_depth=depth)
    for workflow in chain(depth + 3):
        assert api.post("/api/v1/workflows", json=workflow).is_success
    deal = api.post("/api/v1/deals", json={"title": "Initech"}).json()

    # When the first link fires
    resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"title": "Initech TPS"})

    # Then the save succeeds with the changes of depths 0..depth, and the last run names the
    # configured limit and the field it did not follow
    assert resp.status_code == 200, resp.text
    assert resp.json()["custom"] == {f"c{i}": True for i in range(1, depth + 2)}
    runs = updated_runs(api, deal["id"])
    assert [r["depth"] for r in runs] == list(range(depth + 1))
    assert runs[-1]["notes"] == [{"depth_limit": depth, "not_followed": [f"custom.c{depth + 1}"]}]


def test_the_depth_limit_is_5_by_default() -> None:
    assert Settings().max_depth == 5
    assert WorkflowEngine(build_registry(get_plugin_manager())).max_depth == 5


class TitleFromTemplate:
    """A plugin whose record action sets the title from a template, as a plugin may."""

    @hookimpl
    def dealflow_register_actions(self) -> list[Action]:
        def execute(config: Any, context: ActionContext) -> dict[str, Any]:
            return {"title": render(config["template"], context.document)}

        return [
            Action(
                name="title_from_template",
                kind="record",
                config_schema={"type": "object", "properties": {"template": {"type": "string"}}},
                execute=execute,
            )
        ]


def test_a_template_error_in_a_record_action_is_the_runs_recorded_error(
    engine: Engine, make_team: Any
) -> None:
    # Given a record action rendering a template that builds a huge string
    team = make_team("Acme")
    pm = get_plugin_manager()
    pm.register(TitleFromTemplate(), name="title-from-template")
    workflow_engine = WorkflowEngine(build_registry(pm))
    sessions = make_session_factory(engine)
    with sessions() as session:
        scope = TeamScope(session, Actor(team.team_id, team.user_id, role="admin"), workflow_engine)
        document = {
            "id": "retitle",
            "name": "Retitle",
            "entity": "deal",
            "trigger": {"type": "record_saved"},
            "actions": [{"type": "title_from_template", "template": HUGE}],
        }
        workflows.save(scope, document)

        # When a deal is saved
        created = deals.create(scope, deals.DealIn(title="Initech"))

        # Then it is saved unchanged, and its run records the action's template error
        assert created.title == "Initech"
        run = session.scalars(select(Run)).one()
    assert run.status == "error"
    (action,) = run.evaluations[0]["actions"]
    assert action["status"] == "error"
    assert "template: output too large" in action["error"]

"""Dead letters over HTTP: list and read side-effect executions, retry a dead one."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import assert_problem

from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.services.teams import create_key, ensure_user

URL = "/api/v1/executions"
HOOK = "/hook"


def hook_workflow(url: str, key: str = "post-deals") -> dict[str, Any]:
    """A workflow that POSTs every saved deal to ``url`` with the sample plugin's ``post_to``."""
    return {
        "id": key,
        "name": "Tell the partner about deals",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "post_to", "url": url}],
    }


def listed(api: Any, **params: Any) -> list[dict[str, Any]]:
    resp = api.get(URL, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


@pytest.fixture
def join(app: Any) -> Any:
    """``join()`` waits until the app's runner has nothing running or scheduled."""

    def wait() -> None:
        assert app.state.runtime.runner.join(10), "executions still running after 10 s"

    return wait


@pytest.fixture
def dead(api: Any, receiver: Any, join: Any) -> dict[str, Any]:
    """A dead execution: the partner refused its one POST with a 400, a permanent failure."""
    receiver.respond(HOOK, 400)
    assert api.post("/api/v1/workflows", json=hook_workflow(receiver.url + HOOK)).status_code == 201
    assert api.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    join()
    (execution,) = listed(api)
    assert execution["status"] == "dead", execution
    return execution


@pytest.fixture
def member(engine: Any, team: Any) -> dict[str, str]:
    """The headers of a member (not an admin) of team A."""
    with transaction(make_session_factory(engine)) as session:
        user = ensure_user(
            session, session.get(Team, team.team_id), "rep@acme.test", name="Rep", role="member"
        )
        key = create_key(session, user, name="member key")
    return {"Authorization": f"Bearer {key}"}


def test_a_dead_execution_is_listed_with_its_failed_attempt(
    api: Any, dead: dict[str, Any], receiver: Any
) -> None:
    # Given the execution the partner refused (the fixture)
    # When it is listed by status and read
    (row,) = listed(api, status="dead")
    resp = api.get(f"{URL}/{dead['id']}")
    # Then both show one failed attempt and why
    assert resp.status_code == 200, resp.text
    execution = resp.json()
    assert row == execution
    assert (execution["workflow"], execution["action_type"]) == ("post-deals", "post_to")
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert execution["last_error"] == f"POST {receiver.url}{HOOK}: HTTP 400"
    (attempt,) = execution["attempt_log"]
    assert (attempt["attempt"], attempt["status"]) == (1, "error")
    assert attempt["error"] == execution["last_error"]
    assert execution["next_attempt_at"] is None
    assert execution["idempotency_key"] and execution["event_id"] and execution["run_id"]
    # and the action's config and document are not exposed (they may carry secrets)
    assert not {"config", "document"} & set(execution)
    assert listed(api, status="succeeded") == []
    assert len(receiver.received(HOOK)) == 1


def test_a_retried_execution_is_performed_once_more_with_the_same_key(
    api: Any, team: Any, dead: dict[str, Any], receiver: Any, join: Any
) -> None:
    # Given the dead execution, and a partner that now answers 200
    first = receiver.received(HOOK)
    # When an admin retries it
    resp = api.post(f"{URL}/{dead['id']}/retry")
    # Then it is pending again, with its history and a retry marker
    assert resp.status_code == 200, resp.text
    requeued = resp.json()
    assert (requeued["status"], requeued["attempts"]) == ("pending", 0)
    assert requeued["last_error"] == dead["last_error"]
    assert requeued["attempt_log"][:-1] == dead["attempt_log"]
    marker = requeued["attempt_log"][-1]
    assert (marker["retry"], marker["user_id"]) == (True, team.user_id)
    assert marker["at"]
    # and once the runner is done, it succeeded with exactly one more request, same key
    join()
    done = api.get(f"{URL}/{dead['id']}").json()
    assert (done["status"], done["attempts"]) == ("succeeded", 1)
    assert done["result"] == {"status": 200}
    failed, retried, succeeded = done["attempt_log"]
    assert (failed["status"], failed["error"]) == ("error", dead["last_error"])
    assert retried == marker
    assert (succeeded["attempt"], succeeded["status"]) == (1, "succeeded")
    sent = receiver.received(HOOK)
    assert len(sent) == len(first) + 1 == 2
    assert sent[1].headers["idempotency-key"] == sent[0].headers["idempotency-key"]
    assert sent[1].headers["idempotency-key"] == dead["idempotency_key"]
    assert listed(api, status="dead") == []


def test_only_a_dead_execution_can_be_retried(
    api: Any, dead: dict[str, Any], receiver: Any, join: Any
) -> None:
    # Given the dead execution retried once and succeeded
    assert api.post(f"{URL}/{dead['id']}/retry").status_code == 200
    join()
    # When it is retried again
    resp = api.post(f"{URL}/{dead['id']}/retry")
    # Then it is a conflict naming its status, and nothing more is sent
    body = assert_problem(resp, 409, "status")
    assert "succeeded" in body["detail"]
    join()
    assert len(receiver.received(HOOK)) == 2


def test_a_member_reads_executions_but_only_an_admin_retries(
    api: Any, dead: dict[str, Any], member: dict[str, str], receiver: Any
) -> None:
    # When a member lists, reads and tries to retry
    assert api.get(URL, headers=member).status_code == 200
    assert api.get(f"{URL}/{dead['id']}", headers=member).status_code == 200
    resp = api.post(f"{URL}/{dead['id']}/retry", headers=member)
    # Then the retry is refused, naming the role it needs, and the execution stays dead
    assert_problem(resp, 403)
    assert resp.json()["required_role"] == "admin"
    assert api.get(f"{URL}/{dead['id']}").json()["status"] == "dead"
    assert len(receiver.received(HOOK)) == 1


def test_another_teams_execution_is_not_found(
    api: Any, dead: dict[str, Any], make_team: Any, receiver: Any
) -> None:
    # Given team B's admin
    other = make_team("Beta").headers
    # When B lists, reads and retries A's dead execution
    assert api.get(URL, headers=other).json()["items"] == []
    read = api.get(f"{URL}/{dead['id']}", headers=other)
    retry = api.post(f"{URL}/{dead['id']}/retry", headers=other)
    # Then B sees nothing, exactly as for an id that does not exist
    for resp in (read, retry, api.post(f"{URL}/987654321/retry"), api.get(f"{URL}/{2**63}")):
        body = assert_problem(resp, 404)
        assert "execution" in body["detail"]
    assert api.get(f"{URL}/{dead['id']}").json()["status"] == "dead"
    assert len(receiver.received(HOOK)) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "broken"}, "status"),
        ({"status": "DEAD"}, "status"),
        ({"run_id": 0}, "run_id"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(api: Any, params: dict[str, Any], field: str) -> None:
    body = assert_problem(api.get(URL, params=params), 422, field)
    if field == "status":
        assert "dead" in body["detail"]  # the message lists the statuses there are


def test_executions_are_filtered_and_paged(api: Any, receiver: Any, join: Any) -> None:
    # Given two workflows posting every deal, and two deals: four executions, the first
    # workflow's refused (dead), the second's accepted
    receiver.respond("/a", 400)
    receiver.respond("/a", 400)
    for key, path in (("post-a", "/a"), ("post-b", "/b")):
        document = hook_workflow(receiver.url + path, key)
        assert api.post("/api/v1/workflows", json=document).status_code == 201
    for title in ("Initech", "Globex"):
        assert api.post("/api/v1/deals", json={"title": title}).status_code == 201
    join()
    everything = listed(api)
    assert len(everything) == 4
    assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)
    # When filtered, then each filter keeps only its own
    dead = listed(api, status="dead")
    assert {e["workflow"] for e in dead} == {"post-a"} and len(dead) == 2
    assert {e["status"] for e in listed(api, workflow="post-b")} == {"succeeded"}
    assert len(listed(api, action_type="post_to")) == 4
    assert listed(api, action_type="email") == []
    run_id = everything[0]["run_id"]
    assert {e["run_id"] for e in listed(api, run_id=run_id)} == {run_id}
    assert listed(api, status="dead", workflow="post-b") == []
    # and pages of one follow the cursor through every execution
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = api.get(URL, params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


def test_the_run_lists_its_execution_with_every_attempt(
    api: Any, dead: dict[str, Any], join: Any
) -> None:
    # Given the dead execution, retried and then performed
    assert api.post(f"{URL}/{dead['id']}/retry").status_code == 200
    join()
    # When its run is read
    resp = api.get(f"/api/v1/runs/{dead['run_id']}")
    # Then the run shows the execution with each attempt and the retry between them
    assert resp.status_code == 200, resp.text
    (execution,) = resp.json()["executions"]
    assert execution == api.get(f"{URL}/{dead['id']}").json()
    assert (execution["status"], execution["attempts"]) == ("succeeded", 1)
    assert [a.get("status", "retry") for a in execution["attempt_log"]] == [
        "error",
        "retry",
        "succeeded",
    ]

"""The console's pages: sign-in, workflows (list, editor, live check, save) and runs."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import anyio
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from server.console.auth import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SIGN_IN_COOKIE,
    Refused,
    check_csrf,
    cookie_args,
    current_session,
    draw_token,
    require_admin,
    require_member,
    require_session,
)
from server.core.definitions import validate
from server.core.errors import Conflict, DealflowError, GroupConflict, NotFound, Unauthorized
from server.core.scope import TeamScope
from server.core.services import console_sessions
from server.core.services import executions as executions_service
from server.core.services import runs as runs_service
from server.core.services import workflows as workflows_service
from server.core.services.activity import workflow_activity
from server.core.services.console_sessions import LIFETIME, Current
from server.core.services.runs import RunOut

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
PAGE_SIZE = 25
RUN_STATUSES = ("ok", "no_match", "error", "conflict", "loop", "limit")


@contextmanager
def team_scope(request: Request[Any, Any, Any], current: Current) -> Iterator[TeamScope]:
    """The signed-in user's team, seen through the same layer the API uses."""
    runtime = request.app.state.runtime
    with runtime.sessions() as session:
        yield TeamScope(session, current.actor, runtime.engine)


def page(request: Request[Any, Any, Any], name: str, current: Current | None,
         status: int = 200, **context: Any) -> Template:
    return Template(
        template_name=name,
        context={"current": current, "csrf_field": CSRF_FIELD, "path": request.url.path,
                 **context},
        status_code=status,
    )


# --- sign-in ------------------------------------------------------------------------------


def _sign_in_page(request: Request[Any, Any, Any], status: int = 200,
                  error: str | None = None, email: str = "") -> Template:
    token = secrets.token_urlsafe(24)
    response = page(request, "sign_in.html", None, status, sign_in_token=token, error=error,
                    email=email)
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, **cookie_args(request))
    return response


@get("/", sync_to_thread=False)
def home() -> Redirect:
    return Redirect("/console/workflows", status_code=303)


@get("/sign-in", sync_to_thread=True)
def sign_in_form(request: Request[Any, Any, Any]) -> Template | Redirect:
    if current_session(request) is not None:
        return Redirect("/console/workflows", status_code=303)
    return _sign_in_page(request)


@post("/sign-in", sync_to_thread=True, status_code=303)
def sign_in(request: Request[Any, Any, Any], data: Form) -> Template | Redirect:
    sent, expected = data.get(CSRF_FIELD, ""), request.cookies.get(SIGN_IN_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Refused(403, "The sign-in form is out of date: reload it and sign in again.")
    client = request.client.host if request.client else "unknown"
    email = data.get("email", "").strip()
    limiter = request.app.state.console_sign_in_limiter
    if not limiter.allowed(client, email):
        return _sign_in_page(request, 429, "Too many failed sign-ins: wait a minute.", email)
    factory = request.app.state.session_factory
    try:
        with factory() as session:
            if data.get("key", "").strip():
                opened = console_sessions.open_with_key(session, data["key"])
            else:
                opened = console_sessions.open_with_password(
                    session, email, data.get("password", "")
                )
    except Unauthorized as exc:
        limiter.failed(client, email)
        return _sign_in_page(request, 401, exc.message, email)
    response = Redirect("/console/workflows", status_code=303)
    response.set_cookie(COOKIE, opened.token, max_age=int(LIFETIME.total_seconds()),
                        **cookie_args(request))
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")
    return response


@post("/sign-out", sync_to_thread=True, status_code=303)
def sign_out(request: Request[Any, Any, Any], data: Form) -> Redirect:
    current = require_session(request)
    check_csrf(current, data.get(CSRF_FIELD))
    with request.app.state.session_factory() as session:
        console_sessions.end(session, request.cookies[COOKIE])
    response = Redirect("/console/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


# --- workflows ----------------------------------------------------------------------------


@get("/workflows", sync_to_thread=True)
def workflows(request: Request[Any, Any, Any]) -> Template:
    current = require_session(request)
    with team_scope(request, current) as scope:
        rows = workflows_service.list_(scope)
        activity = workflow_activity(scope)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.group or "", []).append(
            {"workflow": row, "activity": activity.get(row.id)}
        )
    ordered = sorted(groups.items(), key=lambda item: (item[0] == "", item[0]))
    return page(request, "workflows.html", current, groups=ordered)


def _check(scope: TeamScope, key: str, text: str) -> dict[str, Any]:
    """What the editor shows for ``text``: the API validator's problems (JSON paths, JMESPath
    positions, action configs) and, for an exclusive group, its report with this draft in
    place of the stored version."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return {"valid": False, "errors": [{
            "field": "$", "message": f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        }], "group": None}
    if isinstance(document, dict):
        document.setdefault("id", key)
    problems = validate(document, scope.engine.registry,
                        max_actions=workflows_service.max_actions(scope))
    errors = [{"field": p.path, "message": p.message} for p in problems]
    if isinstance(document, dict) and document.get("id") != key:
        errors.append({"field": "$.id", "message": f"must stay {key!r}"})
    group = None
    if not errors and document.get("exclusive") and document.get("group"):
        report = workflows_service.check_group(scope, str(document["group"]), replacing=document)
        group = report.as_dict()
    valid = not errors and (group is None or not (group["overlap_count"] or group["errors"]))
    return {"valid": valid, "errors": errors, "group": group}


def _editor(request: Request[Any, Any, Any], current: Current, key: str, *,
            text: str | None = None, status: int = 200, **context: Any) -> Template:
    with team_scope(request, current) as scope:
        try:
            workflow = workflows_service.get(scope, key)
        except NotFound:
            raise Refused(404, f"There is no workflow {key!r} in your team.") from None
        activity = workflow_activity(scope).get(key)
        if text is None:
            text = json.dumps(workflow.document, indent=2, ensure_ascii=False)
        check = _check(scope, key, text)
    return page(request, "workflow.html", current, status, workflow=workflow, text=text,
                check=check, activity=activity, can_save=current.kind == "admin",
                can_try=current.kind in ("admin", "member"), csrf_header=CSRF_HEADER, **context)


@get("/workflows/{key:str}", sync_to_thread=True)
def workflow(request: Request[Any, Any, Any], key: FromPath[str],
             saved: FromQuery[int | None] = None) -> Template:
    return _editor(request, require_session(request), key, saved=saved)


@post("/workflows/{key:str}/check", status_code=200)
async def check(request: Request[Any, Any, Any], key: FromPath[str]) -> Response[dict[str, Any]]:
    current = await anyio.to_thread.run_sync(require_session, request)
    check_csrf(current, request.headers.get(CSRF_HEADER))
    require_member(current)  # as POST /api/v1/workflows/validate
    await draw_token(request, current)
    text = (await request.body()).decode("utf-8", "replace")

    def run() -> dict[str, Any]:
        with team_scope(request, current) as scope:
            return _check(scope, key, text)

    return Response(await anyio.to_thread.run_sync(run))


@post("/workflows/{key:str}", sync_to_thread=True, status_code=303)
def save(request: Request[Any, Any, Any], key: FromPath[str], data: Form) -> Template | Redirect:
    current = require_session(request)
    check_csrf(current, data.get(CSRF_FIELD))
    require_admin(current)
    text = data.get("document", "")
    try:
        document = json.loads(text)
        with team_scope(request, current) as scope:
            saved, _ = workflows_service.save(scope, document, key=key)
    except json.JSONDecodeError:
        return _editor(request, current, key, text=text, status=422, failed="not saved")
    except GroupConflict as exc:
        return _editor(request, current, key, text=text, status=409,
                       failed="not saved: the group would overlap", conflict=exc.report)
    except NotFound:
        raise Refused(404, f"There is no workflow {key!r} in your team.") from None
    except DealflowError as exc:
        return _editor(request, current, key, text=text, status=exc.status,
                       failed=f"not saved: {exc.message}")
    return Redirect(f"/console/workflows/{key}?saved={saved.version}", status_code=303)


# --- runs -------------------------------------------------------------------------------


def _moment(field: str, value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise Refused(
            400, f"{field}: {value!r} is not a date and time (2026-11-25T09:00)"
        ) from None


@get("/runs", sync_to_thread=True)
def runs(
    request: Request[Any, Any, Any],
    entity: FromQuery[str | None] = None,
    record_id: FromQuery[str | None] = None,
    workflow: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Template:
    """The team's runs, newest first, filtered as ``GET /api/v1/runs`` filters them."""
    current = require_session(request)
    filters = {"entity": entity or "", "record_id": record_id or "", "workflow": workflow or "",
               "status": status or "", "since": since or "", "until": until or ""}
    if record_id and not record_id.isdigit():
        raise Refused(400, f"record id: {record_id!r} is not a number")
    with team_scope(request, current) as scope:
        try:
            found, next_cursor = runs_service.list_(
                scope, limit=PAGE_SIZE, cursor=cursor or None, entity=entity or None,
                record_id=int(record_id) if record_id else None, workflow=workflow or None,
                status=status or None, since=_moment("since", since),
                until=_moment("until", until), newest_first=True,
            )
        except DealflowError as exc:
            raise Refused(exc.status, exc.message) from None
        keys = [w.id for w in workflows_service.list_(scope)]
    query = {k: v for k, v in filters.items() if v}
    return page(request, "runs.html", current, runs=found, next_cursor=next_cursor,
                filters=filters, query=query, workflows=keys, statuses=RUN_STATUSES)


def _run(scope: TeamScope, run_id: int) -> RunOut:
    try:
        return runs_service.get(scope, run_id)
    except NotFound:
        raise Refused(404, f"There is no run {run_id} in your team.") from None


@get("/runs/{run_id:int}", sync_to_thread=True)
def run(request: Request[Any, Any, Any], run_id: FromPath[int],
        retried: FromQuery[int | None] = None) -> Template:
    current = require_session(request)
    with team_scope(request, current) as scope:
        found = _run(scope, run_id)
    return page(request, "run.html", current, run=found, can_save=current.kind == "admin",
                retried=retried)


@post("/executions/{execution_id:int}/retry", sync_to_thread=True, status_code=303)
def retry(request: Request[Any, Any, Any], execution_id: FromPath[int], data: Form) -> Redirect:
    current = require_session(request)
    check_csrf(current, data.get(CSRF_FIELD))
    require_admin(current)
    with team_scope(request, current) as scope:
        try:
            done = executions_service.retry(scope, execution_id)
        except NotFound:
            raise Refused(404, f"There is no execution {execution_id} in your team.") from None
        except Conflict as exc:
            raise Refused(409, exc.message) from None
    return Redirect(f"/console/runs/{done.run_id}?retried={done.id}", status_code=303)


HANDLERS = [home, sign_in_form, sign_in, sign_out, workflows, workflow, check, save, runs, run,
            retry]

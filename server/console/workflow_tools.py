"""The editor's tools: dry run on a stored or pasted record, version history with diffs and
restore, and an exclusive group's probability matrix with the impact preview of a draft.

Each calls the same service as its API endpoint (``server/core/services``)."""

from __future__ import annotations

import copy
import difflib
import json
from typing import Any

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import func

from server.console.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    Refused,
    check_csrf,
    draw_token,
    require_admin,
    require_member,
    require_session,
)
from server.console.pages import Form, page, team_scope
from server.core.errors import DealflowError, GroupConflict, NotFound
from server.core.models import Contact, Deal, Lead, User
from server.core.scope import TeamScope
from server.core.services import contacts as contacts_service
from server.core.services import groups as groups_service
from server.core.services import workflows as workflows_service
from server.core.services.console_sessions import Current
from server.core.services.dryrun import DryRunIn, dry_run

SEARCH_LIMIT = 10


def _problem(exc: DealflowError) -> Response[dict[str, Any]]:
    """A service's refusal as the JSON the panels show: the message and each problem."""
    errors = exc.errors or ([{"field": exc.field, "message": exc.message}] if exc.field else [])
    return Response({"message": exc.message, "errors": errors}, status_code=exc.status)


def _invalid(field: str, message: str) -> Response[dict[str, Any]]:
    return Response({"message": f"{field}: {message}",
                     "errors": [{"field": field, "message": message}]}, status_code=422)


async def _json_post(request: Request[Any, Any, Any]) -> tuple[Current, Any]:
    """The session (a POST without one is refused), its CSRF header checked, a member's or
    an admin's (as the API's dry run and preview ask), and the body."""
    current = await anyio.to_thread.run_sync(require_session, request)
    check_csrf(current, request.headers.get(CSRF_HEADER))
    require_member(current)
    await draw_token(request, current)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return current, body


def _parse(text: Any, field: str) -> Any:
    if not isinstance(text, str):
        raise ValueError(f"{field}: expected the JSON text")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{field}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


# --- dry run ------------------------------------------------------------------------------


@post("/workflows/{key:str}/dry-run", status_code=200)
async def dry_run_draft(request: Request[Any, Any, Any],
                        key: FromPath[str]) -> Response[dict[str, Any]]:
    """The draft in the editor dry-run on a stored record (``record_id``) or a pasted one
    (``record``, JSON text), as ``POST /api/v1/workflows/test`` does."""
    current, body = await _json_post(request)
    if not isinstance(body, dict):
        return _invalid("$", "expected {document, record_id | record}")
    try:
        document = _parse(body.get("document"), "document")
        record = _parse(body["record"], "record") if body.get("record") else None
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return _invalid(field, message)
    if isinstance(document, dict):
        document.setdefault("id", key)
    record_id = body.get("record_id")
    if record_id in ("", None):
        record_id = None
    elif not (isinstance(record_id, int) or (isinstance(record_id, str) and record_id.isdigit())):
        return _invalid("record_id", f"{record_id!r} is not a record id")
    if (record_id is None) == (record is None):
        return _invalid("record", "pick a record or paste one (not both)")
    if record is not None and not isinstance(record, dict):
        return _invalid("record", "a record is a JSON object")

    def run() -> Response[dict[str, Any]]:
        with team_scope(request, current) as scope:
            try:
                out = dry_run(scope, DryRunIn(
                    workflow=document, record=record,
                    record_id=int(record_id) if record_id is not None else None,
                ))
            except DealflowError as exc:
                return _problem(exc)
            return Response(msgspec.to_builtins(out))

    return await anyio.to_thread.run_sync(run)


def _like(text: str) -> str:
    literal = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{literal}%"


def search_records(scope: TeamScope, entity: str, q: str) -> list[dict[str, Any]]:
    """Up to 10 of the team's records whose title (deals), name (contacts) or contact's name
    (leads) contains ``q``, newest first."""
    if entity == "contact":
        found, _ = contacts_service.list_(scope, limit=SEARCH_LIMIT, q=q or None)
        return [{"id": c.id, "label": f"{c.name}" + (f" ({c.email})" if c.email else "")}
                for c in found]
    if entity == "deal":
        stmt = scope.select(Deal).order_by(Deal.id.desc()).limit(SEARCH_LIMIT)
        if q:
            stmt = stmt.where(func.lower(Deal.title).like(_like(q), escape="\\"))
        return [{"id": d.id, "label": f"{d.title} ({d.stage}, {d.status})"}
                for d in scope.session.scalars(stmt)]
    if entity == "lead":
        stmt = (scope.select(Lead).join(Contact, Contact.id == Lead.contact_id)
                .order_by(Lead.id.desc()).limit(SEARCH_LIMIT))
        if q:
            stmt = stmt.where(func.lower(Contact.name).like(_like(q), escape="\\"))
        names: dict[int, str] = {}
        rows = list(scope.session.scalars(stmt))
        if rows:
            names = dict(scope.session.execute(
                scope.select(Contact, Contact.id, Contact.name)
                .where(Contact.id.in_([r.contact_id for r in rows]))
            ).all())
        return [{"id": r.id, "label": f"{names.get(r.contact_id, '?')} ({r.stage})"}
                for r in rows]
    raise Refused(400, f"entity: records of {entity!r} cannot be searched")


@get("/records", sync_to_thread=True)
def records(request: Request[Any, Any, Any], entity: FromQuery[str],
            q: FromQuery[str] = "") -> Response[list[dict[str, Any]]]:
    current = require_session(request)
    with team_scope(request, current) as scope:
        return Response(search_records(scope, entity, q.strip()))


# --- versions -----------------------------------------------------------------------------


def side_by_side(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of a side-by-side diff of two documents pretty-printed as JSON: each row has the
    old line and the new one (either may be missing) and ``kind`` equal/removed/added/changed."""
    left = json.dumps(old, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    right = json.dumps(new, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    rows: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for offset in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + offset, j1 + offset
            old_line = (i + 1, left[i]) if i < i2 else None
            new_line = (j + 1, right[j]) if j < j2 else None
            if tag == "equal":
                kind = "equal"
            elif old_line and new_line:
                kind = "changed"
            else:
                kind = "removed" if old_line else "added"
            rows.append({"kind": kind, "old": old_line, "new": new_line})
    return rows


def _versions_page(request: Request[Any, Any, Any], current: Current, key: str,
                   a: int | None, b: int | None, status: int = 200,
                   **context: Any) -> Template:
    with team_scope(request, current) as scope:
        try:
            workflow = workflows_service.get(scope, key)
            versions = workflows_service.versions(scope, key)
        except NotFound:
            raise Refused(404, f"There is no workflow {key!r} in your team.") from None
        ids = {v.created_by_id for v in versions if v.created_by_id is not None}
        people = dict(scope.session.execute(
            scope.select(User, User.id, User.email).where(User.id.in_(ids))
        ).all()) if ids else {}
    numbers = [v.version for v in versions]
    b = b if b in numbers else numbers[-1]
    a = a if a in numbers else (numbers[-2] if len(numbers) > 1 else numbers[-1])
    by_number = {v.version: v for v in versions}
    diff = side_by_side(by_number[a].document, by_number[b].document)
    return page(request, "versions.html", current, status, workflow=workflow,
                versions=list(reversed(versions)), people=people, a=a, b=b, diff=diff,
                can_save=current.kind == "admin", **context)


@get("/workflows/{key:str}/versions", sync_to_thread=True)
def versions_page(request: Request[Any, Any, Any], key: FromPath[str],
                  a: FromQuery[int | None] = None, b: FromQuery[int | None] = None,
                  restored: FromQuery[int | None] = None) -> Template:
    return _versions_page(request, require_session(request), key, a, b, restored=restored)


@post("/workflows/{key:str}/versions/{number:int}/restore", sync_to_thread=True,
      status_code=303)
def restore(request: Request[Any, Any, Any], key: FromPath[str], number: FromPath[int],
            data: Form) -> Template | Redirect:
    """Save version ``number``'s document as the next version, through the API's save."""
    current = require_session(request)
    check_csrf(current, data.get(CSRF_FIELD))
    require_admin(current)
    try:
        with team_scope(request, current) as scope:
            old = workflows_service.version(scope, key, number)
            saved, _ = workflows_service.save(scope, copy.deepcopy(old.document), key=key)
    except NotFound:
        raise Refused(404, f"There is no version {number} of {key!r} in your team.") from None
    except GroupConflict as exc:
        return _versions_page(request, current, key, number, None, status=409,
                              failed=f"version {number} not restored: the group would overlap",
                              conflict=exc.report)
    except DealflowError as exc:
        return _versions_page(request, current, key, number, None, status=exc.status,
                              failed=f"version {number} not restored: {exc.message}")
    return Redirect(f"/console/workflows/{key}/versions?restored={saved.version}",
                    status_code=303)


# --- exclusive groups ---------------------------------------------------------------------


def band(value: Any) -> int | None:
    """The 10 % band (0-10) a probability falls in, for the heatmap's CSS class."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0, min(10, int(value // 10)))


def grid(factors: list[str], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The matrix's rows laid out as a two-dimensional heatmap: one line per value of the
    factor with the most values, one column per combination of the others. Layout only:
    every cell is one of the matrix's rows, as the API returns it. None for one factor."""
    if len(factors) < 2 or not rows:
        return None

    def values_of(factor: str) -> list[Any]:
        # dict keys: each value once, in the order the rows give them (no list scans)
        return list(dict.fromkeys(item["row"].values.get(factor) for item in rows))

    across = max(factors, key=lambda f: len(values_of(f)))
    others = [f for f in factors if f != across]
    columns: dict[tuple[Any, ...], None] = {}
    cells: dict[tuple[Any, tuple[Any, ...]], dict[str, Any]] = {}
    for item in rows:
        values = item["row"].values
        column = tuple(values.get(f) for f in others)
        columns.setdefault(column)
        cells[(values.get(across), column)] = item
    lines = [{"value": v, "cells": [cells.get((v, c)) for c in columns]}
             for v in values_of(across)]
    return {"across": across, "others": others, "columns": list(columns), "lines": lines}


@get("/groups/{group:str}", sync_to_thread=True)
def group_page(request: Request[Any, Any, Any], group: FromPath[str]) -> Template:
    current = require_session(request)
    with team_scope(request, current) as scope:
        try:
            report = workflows_service.check_group(scope, group)
        except NotFound:
            raise Refused(404, f"There is no exclusive group {group!r} in your team.") from None
        matrix = groups_service.matrix(scope, group)
    rows = [{"row": r, "band": band(r.sets.get("probability"))} for r in matrix.rows]
    return page(request, "group.html", current, matrix=matrix, rows=rows,
                grid=grid(list(matrix.factors), rows), report=report.as_dict())


@post("/groups/{group:str}/preview", status_code=200)
async def preview(request: Request[Any, Any, Any],
                  group: FromPath[str]) -> Response[dict[str, Any]]:
    """The impact of the draft in the editor on the group's open deals, as
    ``POST /api/v1/groups/{group}/preview`` computes it (nothing is written)."""
    current, body = await _json_post(request)
    if not isinstance(body, dict):
        return _invalid("$", "expected {document}")
    try:
        document = _parse(body.get("document"), "document")
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return _invalid(field, message)
    if not isinstance(document, dict):
        return _invalid("document", "a workflow is a JSON object")

    def run() -> Response[dict[str, Any]]:
        with team_scope(request, current) as scope:
            try:
                out = groups_service.preview(scope, group, [document])
            except DealflowError as exc:
                return _problem(exc)
            return Response(msgspec.to_builtins(out))

    return await anyio.to_thread.run_sync(run)


HANDLERS = [dry_run_draft, records, versions_page, restore, group_page, preview]

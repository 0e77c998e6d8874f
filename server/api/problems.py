"""The one place that turns errors into RFC 9457 problem details naming the bad field."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException

from server.api.inputs import UnknownParameter
from server.core.errors import DealflowError, Forbidden, GroupConflict, Unauthorized

log = logging.getLogger("dealflow.api")

PROBLEM_BASE = "urn:dealflow:problem:"
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]+)`")


def _problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemDetailsException:
    extra: dict[str, Any] = {}
    if errors:
        extra["field"] = errors[0]["field"]
        extra["errors"] = errors
    return ProblemDetailsException(
        status_code=status,
        type_=PROBLEM_BASE + slug,
        title=title,
        detail=detail,
        extra=extra or None,
        headers=headers,
    )


def _field_of(item: dict[str, Any]) -> str:
    """The field a Litestar/msgspec validation error is about, spelled as the client sent it."""
    message = str(item.get("message", ""))
    named = _NAMED_FIELD.search(message)
    key = str(item.get("key") or "")
    if named and key in ("", "data"):
        return named.group(1)
    if named:
        return f"{key}.{named.group(1)}"
    if key == "data" and item.get("source") == "body":
        return "body"
    return key.replace("[...]", "")


def from_validation(exc: ValidationException) -> ProblemDetailsException:
    """Body, query and path validation errors: 422 for well-formed JSON with bad fields,
    400 for a body that is not JSON at all."""
    items = exc.extra if isinstance(exc.extra, list) else []
    if any(
        i.get("key") == "data" and i.get("message") == "'data'"
        for i in items
        if isinstance(i, dict)
    ):
        # Litestar's way of saying the body was missing altogether.
        return _problem(400, "malformed", "Malformed request", "the request needs a JSON body")
    errors = [
        {
            "field": _field_of(item),
            "message": str(item.get("message")),
            "source": item.get("source"),
        }
        for item in items
        if isinstance(item, dict)
    ]
    if not errors:
        return _problem(400, "malformed", "Malformed request", str(exc.detail))
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return _problem(422, "invalid-field", "Invalid field", detail, errors)


def from_domain(exc: DealflowError) -> ProblemDetailsException:
    slug = re.sub(r"(?<!^)(?=[A-Z])", "-", type(exc).__name__).lower()
    if isinstance(exc, Forbidden):
        problem = _problem(exc.status, "forbidden", exc.title, exc.message)
        problem.extra = {"required_role": exc.role}
        return problem
    if isinstance(exc, GroupConflict):
        problem = _problem(exc.status, "group-overlap", exc.title, exc.message)
        problem.extra = {**(problem.extra or {}), "report": exc.report}  # type: ignore[dict-item]
        return problem
    errors = exc.errors or (
        [{"field": exc.field, "message": exc.message.removeprefix(f"{exc.field}: ")}]
        if exc.field
        else None
    )
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    problem = _problem(exc.status, slug, exc.title, exc.message, errors, headers)
    if isinstance(exc, UnknownParameter):
        extra = {**(problem.extra or {}), "accepted": exc.accepted}
        problem.extra = extra  # type: ignore[assignment]
    return problem


def from_http(exc: HTTPException) -> ProblemDetailsException:
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", "Bearer")
    title = {413: "Request body too large", 404: "Not found", 405: "Method not allowed"}.get(
        exc.status_code, "Request failed"
    )
    return ProblemDetailsException(
        status_code=exc.status_code,
        type_="about:blank",
        title=title,
        detail=str(exc.detail),
        headers=headers or None,
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """An unexpected error: logged with its traceback, answered without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _problem(
        500, "internal", "Internal server error", "The server failed; the error was logged."
    ).to_response(request)


def problem_details_config() -> ProblemDetailsConfig:
    return ProblemDetailsConfig(
        enable_for_all_http_exceptions=True,
        exception_to_problem_detail_map={
            ValidationException: from_validation,
            DealflowError: from_domain,
            HTTPException: from_http,
        },
    )

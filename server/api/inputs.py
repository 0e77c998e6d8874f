"""Request bodies and parameters checked at the door, before any handler reads them.

- A body sent with a content type other than JSON is refused (415), not parsed as JSON anyway
  (only the admin console's HTML forms, under ``/console``, may be URL-encoded).
- A body that is not UTF-8 is a 400; one nested deeper than any record or workflow needs, a 422.
- A NUL character in the path, a query parameter or a JSON string is a 422: PostgreSQL's text
  type cannot store one (SQLite stores it), so both databases refuse it alike.
- Under ``/api/``, a query parameter the handler does not declare is a 400 naming it and
  listing those it takes: a misspelt filter must not answer the unfiltered list.
- A JSON body is decoded strictly into the handler's body type: a wrong type (``"12"`` for a
  number) is a 422 naming the field, never converted. Litestar's own parsing converts loosely,
  as query strings need; it then gets the decoded body as is."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.utils.scope.state import ScopeState

from server.api.expected import expected
from server.core.errors import DealflowError, InvalidInput

MAX_NESTING = 64
"""Deepest nesting of JSON arrays and objects a body may have; a workflow needs about ten."""

_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
"""``\\u0000`` escaped in a JSON text, not preceded by an odd number of backslashes."""

_AT = re.compile(r" - at (?:`key` in )?`\$\.?([^`]*)`$")
"""Where in the body a msgspec validation error is: ``- at `$.custom[...]` `` (or, for a bad
key of a mapping, ``- at `key` in `$.settings.outreach_costs` ``)."""


class UnsupportedMediaType(DealflowError):
    status = 415
    title = "Unsupported media type"


class MalformedBody(DealflowError):
    status = 400
    title = "Malformed request"


class UnknownParameter(DealflowError):
    """Raised when a request sends query parameters its endpoint does not take; ``accepted``
    lists those it does."""

    status = 400
    title = "Unknown query parameter"

    def __init__(self, unknown: list[str], accepted: frozenset[str]) -> None:
        takes = ", ".join(sorted(accepted)) or "none"
        message = f"not a query parameter of this endpoint (it takes: {takes})"
        errors = [{"field": name, "message": message, "source": "query"} for name in unknown]
        super().__init__(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            field=unknown[0],
            errors=errors,
        )
        self.accepted = sorted(accepted)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or (
        media.startswith("application/") and media.endswith("+json")
    )


def _is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _too_deep(body: bytes) -> bool:
    """Whether the JSON in ``body`` nests deeper than :data:`MAX_NESTING` (only bodies with that
    many brackets at all are looked at closely)."""
    if body.count(b"[") + body.count(b"{") <= MAX_NESTING:
        return False
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_NESTING:
                    return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _check_query(request: Request[Any, Any, Any], names: list[str]) -> None:
    """Refuse query parameters the API handler does not declare."""
    if not names or request.method == "OPTIONS" or not request.url.path.startswith("/api/"):
        return
    accepted = expected(request.route_handler, request.path_params).query
    if accepted is None:
        return
    unknown = [name for name in dict.fromkeys(names) if name not in accepted]
    if unknown:
        raise UnknownParameter(unknown, accepted)


def _decode_strictly(request: Request[Any, Any, Any], body: bytes) -> None:
    """Decode ``body`` into the handler's body type, refusing wrong types by name, and hand the
    result to Litestar's parsing (which would convert ``"12"`` into 12.0)."""
    decoder = expected(request.route_handler, request.path_params).body
    if decoder is None:
        return
    try:
        data = decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if message.startswith("Number out of range"):
            # 1e999999: no JSON decoder reads it, whatever the type; a malformed body (400).
            return
        at = _AT.search(message)
        key = at.group(1) if at and at.group(1) else "data"
        # The shape of Litestar's own validation errors, which problems.py turns into problem
        # details naming the field.
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": message[: at.start()] if at else message, "key": key,
                    "source": "body"}],
        ) from None
    except msgspec.DecodeError:
        return  # not JSON at all: Litestar answers that as before
    ScopeState.from_scope(request.scope).json = data


async def check_input(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook applying the checks in this module's docstring."""
    if "\x00" in request.url.path:
        raise InvalidInput("path: contains a NUL character", field="path")
    names: list[str] = []
    for name, value in parse_qsl(request.url.query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            raise InvalidInput(f"{name}: contains a NUL character", field=name)
        names.append(name)
    _check_query(request, names)
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if request.route_handler.request_max_body_size is None:
        # A route that lifts the app's body limit reads its body itself, under its own limit
        # and with its own checks (the webhook routes): reading it here would read it whole.
        return
    body = await request.body()
    if not body:
        return
    content_type = request.headers.get("content-type", "")
    if request.route_handler.opt.get("console") and _is_form(content_type):
        # The admin console's HTML forms: URL-encoded, checked by the console's handlers.
        if b"\x00" in body or b"%00" in body:
            raise InvalidInput("body: a field contains a NUL character", field="body")
        return
    if not _is_json(content_type):
        raise UnsupportedMediaType(
            f"content-type: the API takes JSON bodies (application/json), not {content_type!r}",
            field="content-type",
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(
            f"body: not valid UTF-8 (byte {exc.start})", field="body"
        ) from None
    if _too_deep(body):
        raise InvalidInput(f"body: JSON nested deeper than {MAX_NESTING} levels", field="body")
    if b"\x00" in body or _JSON_NUL.search(body):
        raise InvalidInput("body: a string contains a NUL character (\\u0000)", field="body")
    _decode_strictly(request, body)


"""The ``email_marketing`` action: add or update a contact in a list of an email-marketing
service, or tag it, over a Mailchimp-compatible members API.

Members are keyed by the contact's email: the member path carries the *subscriber hash*,
the MD5 of the lower-cased email, so saving the same contact again updates its member
instead of adding a duplicate.

Requests, relative to the team's ``base_url`` (credential set ``email_marketing``:
``api_key`` and ``base_url``), with ``Authorization: Bearer <api_key>`` and
``Idempotency-Key: <the execution's key>``:

- ``subscribe``: ``PUT /lists/{list_id}/members/{hash}`` with ``email_address``,
  ``status_if_new: subscribed`` and ``merge_fields``. An existing member's status is left
  alone, so a contact who unsubscribed in the service is not subscribed again by a save in
  Dealflow. With ``tags``, then ``POST /lists/{list_id}/members/{hash}/tags``.
- ``unsubscribe``: ``PUT /lists/{list_id}/members/{hash}`` with ``status`` and
  ``status_if_new`` both ``unsubscribed`` (and ``merge_fields``).
- ``tag``: ``POST /lists/{list_id}/members/{hash}/tags`` with
  ``{"tags": [{"name": …, "status": "active"}, …]}``; the member must exist already.

2xx is success; 429, 5xx and connection failures are retried (no sooner than
``Retry-After``); any other answer is permanent, with up to 500 characters of its body (a
redirect is not followed). A ``base_url`` whose host is loopback, private, link-local or a
metadata service is refused when it is saved and when a request is sent, unless the
operator's ``DEALFLOW_OUTBOUND_ALLOW`` admits it (see ``server.core.outbound``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import httpx

from server.core.expressions import ExpressionError, compile_expression
from server.plugin import (
    Action,
    ActionContext,
    ActionError,
    OutboundRefused,
    RedirectRefused,
    hookimpl,
    http_client,
    retry_after,
)

NAME = "email_marketing"
CREDENTIALS = "email_marketing"
DEFAULT_EMAIL = "record.email"
EXCERPT = 500
"""Characters of a refusing answer's body kept in the error."""

TIMEOUT = 10.0
"""Seconds to wait on the service before the attempt fails and is retried."""

MERGE_FIELD = r"^[A-Za-z][A-Za-z0-9_]{0,49}$"
EXPRESSION = {"type": "string", "minLength": 1, "maxLength": 2000}

CONFIG_SCHEMA = {
    "type": "object",
    "description": "Subscribe, unsubscribe or tag the record's email in a list of a "
    "Mailchimp-compatible email-marketing service (credentials: email_marketing).",
    "properties": {
        "list_id": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]{1,100}$",
            "description": "The list (audience) id.",
        },
        "operation": {"enum": ["subscribe", "unsubscribe", "tag"]},
        "email": {
            **EXPRESSION,
            "description": "JMESPath to the email address (default record.email).",
        },
        "merge_fields": {
            "type": "object",
            "propertyNames": {"pattern": MERGE_FIELD},
            "additionalProperties": EXPRESSION,
            "maxProperties": 30,
            "description": "Merge field name to a JMESPath expression giving its value.",
        },
        "tags": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 100},
            "minItems": 1,
            "maxItems": 50,
            "uniqueItems": True,
            "description": "Tags to add (operation tag, or with subscribe).",
        },
    },
    "required": ["list_id", "operation"],
    "additionalProperties": False,
}


# --- save time -------------------------------------------------------------------------------


def check(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Save-time problems as ``(config path, message)``: expressions that do not compile,
    and options the operation does not use."""
    problems: list[tuple[str, str]] = []
    if "email" in config:
        try:
            compile_expression(config["email"])
        except ExpressionError as exc:
            problems.append(("email", exc.message))
    for name, expression in (config.get("merge_fields") or {}).items():
        try:
            compile_expression(expression)
        except ExpressionError as exc:
            problems.append((f"merge_fields.{name}", exc.message))
    operation = config.get("operation")
    if operation == "tag" and not config.get("tags"):
        problems.append(("tags", "operation tag needs at least one tag"))
    if operation == "tag" and "merge_fields" in config:
        problems.append(
            ("merge_fields", "operation tag only tags: use subscribe to set merge fields")
        )
    if operation == "unsubscribe" and "tags" in config:
        problems.append(("tags", "tags are for operations subscribe and tag"))
    return problems


# --- what is sent ----------------------------------------------------------------------------


def subscriber_hash(address: str) -> str:
    """The member key: MD5 (hex) of the lower-cased email address."""
    return hashlib.md5(address.lower().encode()).hexdigest()  # noqa: S324 - an id, not security


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email_of(config: Mapping[str, Any], context: ActionContext) -> str:
    """The contact's email from the context; a permanent error naming the expression when it
    is missing or not an address (a retry would read the same document)."""
    expression = config.get("email", DEFAULT_EMAIL)
    try:
        value = compile_expression(expression).search(context.document)
    except Exception as exc:  # noqa: BLE001 - JMESPath runtime errors vary
        raise ActionError(f"{NAME}: email ({expression}): {exc}", permanent=True) from exc
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ActionError(f"{NAME}: email ({expression}) is missing", permanent=True)
    if not isinstance(value, str) or len(value.strip()) > 320 or not EMAIL.match(value.strip()):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ActionError(
            f"{NAME}: email ({expression}) is not an email address: {shown}", permanent=True
        )
    return value.strip()


def merge_fields(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """Each merge field's value; fields whose expression gives null are left out, so a blank
    in Dealflow never clears what the service holds."""
    out: dict[str, Any] = {}
    for name, expression in (config.get("merge_fields") or {}).items():
        try:
            value = compile_expression(expression).search(context.document)
        except Exception as exc:  # noqa: BLE001 - JMESPath runtime errors vary
            raise ActionError(f"{NAME}: merge_fields.{name}: {exc}", permanent=True) from exc
        if value is not None:
            out[name] = value
    return out


def requests_for(
    config: Mapping[str, Any], context: ActionContext
) -> tuple[str, list[dict[str, Any]]]:
    """The subscriber hash, and the requests the action makes in order: ``method``,
    ``path`` (relative to the base URL) and ``body``."""
    address = email_of(config, context)
    key = subscriber_hash(address)
    member = f"/lists/{config['list_id']}/members/{key}"
    operation = config["operation"]
    out: list[dict[str, Any]] = []
    if operation == "subscribe":
        body = {
            "email_address": address,
            "status_if_new": "subscribed",
            "merge_fields": merge_fields(config, context),
        }
        out.append({"method": "PUT", "path": member, "body": body})
    elif operation == "unsubscribe":
        body = {
            "email_address": address,
            "status_if_new": "unsubscribed",
            "status": "unsubscribed",
            "merge_fields": merge_fields(config, context),
        }
        out.append({"method": "PUT", "path": member, "body": body})
    if operation in ("subscribe", "tag") and config.get("tags"):
        tags = [{"name": tag, "status": "active"} for tag in config["tags"]]
        out.append({"method": "POST", "path": f"{member}/tags", "body": {"tags": tags}})
    return key, out


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """The first request (``method``, ``path`` with the subscriber hash, ``body``, headers
    with the key masked); for subscribe with tags, the tags request under ``then``. No
    connection is made and no credential is shown."""
    _, (first, *rest) = requests_for(config, context)
    shown = {**first, "headers": {"Authorization": "Bearer ••••"}}
    if rest:
        shown["then"] = rest[0]
    return shown


# --- sending ---------------------------------------------------------------------------------


def excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 3] + "..."


def credentials(context: ActionContext) -> tuple[str, str]:
    """``(base_url, api_key)`` from the team's set; permanent errors say which is wrong."""
    fix = f"PUT /api/v1/team/credentials/{CREDENTIALS}"
    api_key = context.credentials.get("api_key", "")
    base_url = context.credentials.get("base_url", "").rstrip("/")
    if not api_key:
        raise ActionError(f"{NAME}: the credential set has no api_key; {fix}", permanent=True)
    if not base_url.startswith(("http://", "https://")):
        raise ActionError(
            f"{NAME}: the credential set has no http(s) base_url; {fix}", permanent=True
        )
    return base_url, api_key


def send(
    request: Mapping[str, Any],
    base_url: str,
    api_key: str,
    idempotency_key: str,
    settings: Any = None,
) -> httpx.Response:
    what = f"{request['method']} {request['path']}"
    try:
        # The process's shared client (one per allow-list): connections are reused, every
        # one to a checked address; redirects are refused.
        response = http_client(settings, timeout=TIMEOUT).request(
            request["method"],
            base_url + request["path"],
            json=request["body"],
            headers={
                "Authorization": f"Bearer {api_key}",
                "Idempotency-Key": idempotency_key,
                "Accept": "application/json",
            },
        )
    except RedirectRefused as exc:
        location = exc.location if len(exc.location) <= 200 else exc.location[:197] + "..."
        raise ActionError(
            f"{NAME}: {what}: HTTP {exc.status}, a redirect to {location} (redirects are not "
            f"followed: store the final base_url in the credentials)",
            permanent=True,
        ) from None
    except OutboundRefused as exc:
        raise ActionError(f"{NAME}: {what}: {exc.message}", permanent=True) from None
    except httpx.HTTPError as exc:
        raise ActionError(f"{NAME}: {what}: {type(exc).__name__}") from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    message = f"{NAME}: {what}: HTTP {status}"
    body = excerpt(response)
    if body:
        message += f": {body}"
    if status == 429 or status >= 500:
        raise ActionError(message, retry_after=retry_after(response.headers.get("Retry-After")))
    raise ActionError(message, permanent=True)


def execute(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """Make the requests; the result names the operation, the member and the answers."""
    base_url, api_key = credentials(context)
    key, planned = requests_for(config, context)
    result: dict[str, Any] = {"operation": config["operation"], "subscriber_hash": key}
    for n, request in enumerate(planned):
        # A second request gets a key of its own: one key names one request.
        idempotency = context.idempotency_key if n == 0 else f"{context.idempotency_key}:tags"
        status = send(request, base_url, api_key, idempotency, context.settings).status_code
        result["status" if n == 0 else "tags_status"] = status
    return result


EMAIL_MARKETING = Action(
    name=NAME,
    kind="side_effect",
    config_schema=CONFIG_SCHEMA,
    execute=execute,
    preview=preview,
    check=check,
    description="Subscribe, unsubscribe or tag a contact in a list of a Mailchimp-compatible "
    "email-marketing service, keyed by email.",
    credentials=CREDENTIALS,
)


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [EMAIL_MARKETING]

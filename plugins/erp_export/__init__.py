"""The ``erp_export`` action: POST a JMESPath projection of the context document to the
team's ERP endpoint, signed with HMAC-SHA256.

For workflow authors
--------------------
A side-effect action. Its config has one key, ``projection``: a JMESPath expression
evaluated over the execution's context document (``record``, ``previous``, ``changed``,
``event``, ``team``, ``payload``; see ``docs/workflows.md``). Its value is the JSON body
sent to the ERP::

    {"type": "erp_export",
     "projection": "{id: record.id, amount: record.amount, customer: record.contact.company}"}

A deal's ``record.contact`` is its contact as the API returns it (``null`` for a deal without
one): the engine reads it because the projection names it. The execution keeps the document
it was queued with, so the body carries the contact as it was when the deal was saved, on
every attempt and retry.

A projection that does not compile (or calls an unknown function) is refused when the
workflow is saved, with the path ``$.actions[N].projection``. A projection that evaluates
to ``null`` for a record, or fails on it (a JMESPath type error), makes the execution
``dead`` at once: the document does not change between attempts, so a retry would fail too.
Dry runs (``POST /api/v1/workflows/test``) show the projected body, the headers that would
be sent and a placeholder for the URL; they never read the team's credentials.

For admins
----------
The action reads the team credential set ``erp_export``::

    PUT /api/v1/team/credentials/erp_export
    {"url": "https://erp.example/api/dealflow", "secret": "<HMAC key>"}

``url`` is the ERP endpoint (``http`` or ``https``; redirects are not followed), ``secret``
the key the requests are signed with. A ``url`` whose host is loopback, private, link-local
or a metadata service is refused when it is saved and again when a request is sent (see
``server.core.outbound``), unless the operator's ``DEALFLOW_OUTBOUND_ALLOW`` admits it. A set without either key makes executions ``dead``
naming the missing key; fix the set, then retry them
(``POST /api/v1/executions/{id}/retry``).

The request
-----------
``POST <url>`` with the body ``json.dumps(projection, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` encoded as UTF-8 (keys in the projection's order),
and the headers:

- ``Content-Type: application/json``
- ``Idempotency-Key: <key>``: the same on every attempt of one execution (and on an admin's
  retry of it); the ERP should answer a repeated key with the first answer and not book
  twice.
- ``X-Dealflow-Signature: sha256=<hex>``: HMAC-SHA256, keyed with ``secret`` (UTF-8), of the
  exact body bytes as received, and nothing else (no timestamp, no headers). Verify it on the
  raw body before parsing it, with a constant-time comparison::

      expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
      hmac.compare_digest(expected, request.headers["X-Dealflow-Signature"])

  A captured request replayed later carries a valid signature: the ``Idempotency-Key`` is
  what lets the ERP recognise it as one it already processed.

Outcomes
--------
- ``2xx``: succeeded; the result is ``{"status": <code>, "response": <the first 500
  characters of the response body>}``.
- ``408``, ``429``, ``5xx``, connection errors and timeouts (10 s): retried with exponential
  backoff, and no sooner than the response's ``Retry-After`` (seconds or an HTTP date), up to
  8 attempts.
- Any other status (``4xx``, and ``3xx`` since redirects are not followed): ``dead`` at once,
  with the status and the first 500 characters of the response body (for a redirect, its
  ``Location``) in ``last_error``.
- A ``url`` refused as an outbound target: ``dead`` at once, naming the host and why.

Credential values are never put into results or messages by this action (and the engine
masks them as ``••••`` anywhere they would appear, e.g. echoed in a response body).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import httpx

from server.core.expressions import MAX_LENGTH, ExpressionError, compile_expression
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

NAME = "erp_export"
CREDENTIALS = "erp_export"
REQUIRED_KEYS = ("url", "secret")
TIMEOUT = 10.0
EXCERPT = 500
"""The most characters of a response body kept in a result or an error message."""
MAX_ATTEMPTS = 8
RETRYABLE = frozenset({408, 429})
"""4xx statuses that are worth another attempt; every 5xx is too."""
SIGNATURE_HEADER = "X-Dealflow-Signature"
URL_PLACEHOLDER = "<erp_export url>"

CONFIG_SCHEMA = {
    "type": "object",
    "description": "POST the value of `projection` (a JMESPath expression over the context "
    "document) as signed JSON to the team's ERP endpoint (credentials `erp_export`: url, "
    "secret).",
    "properties": {
        "projection": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
    },
    "required": ["projection"],
    "additionalProperties": False,
}

# --- the body --------------------------------------------------------------------------------


def check(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Save-time problems as ``(config path, message)``, for :attr:`Action.check`."""
    try:
        compile_expression(config["projection"])
    except ExpressionError as exc:
        return [("projection", exc.message)]
    return []


def project(config: Mapping[str, Any], context: ActionContext) -> Any:
    """The projection's value on the context document; a permanent error when it cannot be
    computed or is null (the document is the same on every attempt)."""
    try:
        value = compile_expression(config["projection"]).search(dict(context.document))
    except ExpressionError as exc:
        raise ActionError(f"{NAME}: bad projection: {exc.message}", permanent=True) from None
    except Exception as exc:  # noqa: BLE001 - jmespath raises type errors of its own kinds
        raise ActionError(
            f"{NAME}: the projection failed on this document: {exc}", permanent=True
        ) from None
    if value is None:
        raise ActionError(
            f"{NAME}: the projection is null for this document; nothing to export",
            permanent=True,
        )
    return value


def encode(value: Any) -> bytes:
    """The exact bytes sent and signed: compact JSON, UTF-8."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ActionError(f"{NAME}: the projection is not JSON: {exc}", permanent=True) from None
    return text.encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    """The ``X-Dealflow-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """At most ``limit`` characters of ``text`` (an ellipsis marks a cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"



# --- the action ------------------------------------------------------------------------------


def _credentials(context: ActionContext) -> tuple[str, str]:
    missing = [key for key in REQUIRED_KEYS if not context.credentials.get(key)]
    if missing:
        names = " and ".join(repr(key) for key in missing)
        raise ActionError(
            f"{NAME}: the team's {CREDENTIALS} credentials have no {names}; "
            f"PUT /api/v1/team/credentials/{CREDENTIALS} with url and secret",
            permanent=True,
        )
    url, secret = context.credentials["url"], context.credentials["secret"]
    try:
        scheme = httpx.URL(url).scheme
    except (httpx.InvalidURL, TypeError, ValueError):
        scheme = ""
    if scheme not in ("http", "https"):
        # The value itself stays out of the message: it is a credential.
        raise ActionError(
            f"{NAME}: the {CREDENTIALS} credential 'url' is not an http(s) URL", permanent=True
        )
    return url, secret


def export(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """POST the signed projection; see the module docstring for the outcomes."""
    url, secret = _credentials(context)
    body = encode(project(config, context))
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": context.idempotency_key,
        SIGNATURE_HEADER: sign(secret, body),
    }
    try:
        # The shared client of the process (one per allow-list): connections are reused,
        # every one to a checked address; redirects are refused.
        response = http_client(context.settings, timeout=TIMEOUT).post(
            url, content=body, headers=headers
        )
    except RedirectRefused as exc:
        raise ActionError(
            f"{NAME}: the ERP answered HTTP {exc.status}, a redirect to "
            f"{excerpt(exc.location, 200)} (redirects are not followed: store the final URL "
            "in the credentials)",
            permanent=True,
        ) from None
    except OutboundRefused as exc:
        raise ActionError(f"{NAME}: {exc.message}", permanent=True) from None
    except httpx.TimeoutException as exc:
        raise ActionError(f"{NAME}: the ERP did not answer in time ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise ActionError(
            f"{NAME}: cannot reach the ERP: {type(exc).__name__}: {excerpt(str(exc), 200)}"
        ) from None
    status = response.status_code
    text = excerpt(response.content.decode("utf-8", errors="replace"))
    if 200 <= status < 300:
        return {"status": status, "response": text}
    message = f"{NAME}: the ERP answered HTTP {status}: {text}" if text else (
        f"{NAME}: the ERP answered HTTP {status}"
    )
    if status >= 500 or status in RETRYABLE:
        raise ActionError(message, retry_after=retry_after(response.headers.get("Retry-After")))
    if 300 <= status < 400:
        message += " (redirects are not followed: store the final URL in the credentials)"
    raise ActionError(message, permanent=True)


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """What would be sent, for dry runs: the body, and placeholders where credentials go (a
    preview never gets them)."""
    return {
        "method": "POST",
        "url": URL_PLACEHOLDER,
        "headers": {
            "Content-Type": "application/json",
            "Idempotency-Key": context.idempotency_key or "<idempotency key>",
            SIGNATURE_HEADER: "sha256=<HMAC-SHA256 of the body with the erp_export secret>",
        },
        "body": project(config, context),
    }


ERP_EXPORT = Action(
    name=NAME,
    kind="side_effect",
    config_schema=CONFIG_SCHEMA,
    execute=export,
    preview=preview,
    check=check,
    description="POST a JMESPath projection of the record as signed JSON to the team's ERP "
    "(credentials: erp_export url, secret).",
    max_attempts=MAX_ATTEMPTS,
    credentials=CREDENTIALS,
)


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [ERP_EXPORT]

"""A sample third-party plugin: a ``tag_record`` action, a buggy ``explode`` action, two
HTTP side effects (``post_to`` and ``gated_post``), ``post_with_token`` (reads the team's
``sample`` credentials and leaks them on purpose) and a ``shout`` template filter; and, in a
process started with ``DEALFLOW_PLUGIN_SAMPLE_EVENT_URL``, a gated ``dealflow_event`` hook."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import os

import httpx

from server.plugin import Action, ActionContext, ActionError, hookimpl, http_client

CONFIG_SCHEMA = {
    "type": "object",
    "properties": {"tag": {"type": "string", "minLength": 1}},
    "required": ["tag"],
    "additionalProperties": False,
}


def tag(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """Set the record's ``custom.tag``."""
    if context.document.get("record") is None:
        raise ActionError("tag_record: there is no record to tag", permanent=True)
    return {"custom.tag": config["tag"]}


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    return {"changes": tag(config, context)}


def explode(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """A bug, as a plugin might have one: not an ActionError."""
    raise ZeroDivisionError("the plugin divided by zero")


URL_SCHEMA = {
    "type": "object",
    "properties": {"url": {"type": "string", "minLength": 1}},
    "required": ["url"],
    "additionalProperties": False,
}


HTTP = httpx.Client(timeout=10.0)
"""One client for every call: a new one per call costs its TLS set-up each time (~50 ms)."""


def _post(url: str, context: ActionContext, timeout: float = 10.0) -> httpx.Response:
    body = {
        "idempotency_key": context.idempotency_key,
        "workflow": context.workflow_id,
        "record_id": (context.document.get("record") or {}).get("id"),
        "payload": context.document.get("payload"),
    }
    try:
        response = HTTP.post(
            url, json=body, headers={"Idempotency-Key": context.idempotency_key}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise ActionError(f"POST {url}: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise ActionError(f"POST {url}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise ActionError(f"POST {url}: HTTP {response.status_code}", permanent=True)
    return response


def post_to(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """POST the record id, payload and idempotency key to ``url``."""
    return {"status": _post(config["url"], context).status_code}


def gated_post(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """POST ``url``/started, wait on GET ``url``/gate until the server releases it, then
    POST ``url``/done: an action that can be caught (and killed) in the middle."""
    base = config["url"].rstrip("/")
    _post(f"{base}/started", context)
    try:
        HTTP.get(f"{base}/gate", timeout=120)
    except httpx.HTTPError as exc:
        raise ActionError(f"GET {base}/gate: {type(exc).__name__}") from exc
    return {"status": _post(f"{base}/done", context).status_code}


def post_with_token(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """POST to ``url`` with the team's ``sample`` token as a bearer token. Careless on
    purpose: it echoes the token in its result and in its error, which the engine scrubs."""
    token = context.credentials["token"]
    try:
        response = HTTP.post(
            config["url"],
            json={"idempotency_key": context.idempotency_key},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        raise ActionError(f"POST {config['url']} with token {token}: {type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise ActionError(f"rejected token {token}: HTTP {response.status_code}", permanent=True)
    return {"status": response.status_code, "echo": token}


def preview_with_token(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """What would be sent, with whatever credentials the preview was given (none)."""
    return {"url": config["url"], "credentials": dict(context.credentials)}


CHECKED_URL_SCHEMA = {
    "type": "object",
    "properties": {"url": {"type": "string", "format": "uri", "x-dealflow-outbound": True}},
    "required": ["url"],
    "additionalProperties": False,
}


def checked_post(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """POST the record id through the shared checked client (the way plugins should)."""
    record = context.document.get("record") or {}
    response = http_client(context.settings).post(config["url"], json={"id": record.get("id")})
    return {"status": response.status_code}


def shout(value: Any) -> str:
    return f"{value}".upper() + "!"


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [
        Action(
            name="tag_record",
            kind="record",
            config_schema=CONFIG_SCHEMA,
            execute=tag,
            preview=preview,
            description="Tag the record (custom.tag).",
        ),
        Action(
            name="explode",
            kind="record",
            config_schema={"type": "object", "additionalProperties": False},
            execute=explode,
            preview=explode,
            description="Fail with an unexpected exception (a plugin bug).",
        ),
        Action(
            name="post_to",
            kind="side_effect",
            config_schema=URL_SCHEMA,
            execute=post_to,
            description="POST the record id and payload to a URL (5xx retried, 4xx permanent).",
            max_attempts=3,
        ),
        Action(
            name="gated_post",
            kind="side_effect",
            config_schema=URL_SCHEMA,
            execute=gated_post,
            description="POST url/started, wait for url/gate, POST url/done.",
            max_attempts=3,
        ),
        Action(
            name="post_with_token",
            kind="side_effect",
            config_schema=URL_SCHEMA,
            execute=post_with_token,
            preview=preview_with_token,
            description="POST to a URL with the team's sample token (echoed, to be scrubbed).",
            max_attempts=3,
            credentials="sample",
        ),
        Action(
            name="checked_post",
            kind="side_effect",
            config_schema=CHECKED_URL_SCHEMA,
            execute=checked_post,
            description="POST the record id to a URL checked at save and at send.",
            max_attempts=3,
        ),
    ]


@hookimpl
def dealflow_template_filters() -> Mapping[str, Callable[..., Any]]:
    return {"shout": shout}


EVENT_URL = os.environ.get("DEALFLOW_PLUGIN_SAMPLE_EVENT_URL")
"""Where the ``dealflow_event`` hook reports, in a process started with it set (read at
import: a plugin without the hook is the common case, and the other tests' processes keep it)."""

if EVENT_URL:

    @hookimpl
    def dealflow_event(event: Mapping[str, Any], team_id: int) -> None:
        """POST ``url``/started, wait on GET ``url``/gate, POST ``url``/done, each with the
        event's id: a hook call that can be caught (and killed) in the middle."""
        base = EVENT_URL.rstrip("/")  # type: ignore[union-attr]
        body = {"event_id": event["event"]["id"], "team_id": team_id}
        HTTP.post(f"{base}/started", json=body)
        HTTP.get(f"{base}/gate", timeout=120)
        HTTP.post(f"{base}/done", json=body)

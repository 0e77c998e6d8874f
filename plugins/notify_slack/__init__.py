"""The ``notify_slack`` action: post a templated message to a Slack incoming webhook.

A workflow writes::

    {"type": "notify_slack",
     "text": "{{ record.title }} is now {{ record.stage }} ({{ record.amount }})",
     "blocks": [{"type": "section",
                 "text": {"type": "mrkdwn", "text": "*{{ record.title }}*"}}]}

``text`` is a Jinja2 template and every string value inside ``blocks`` is one too; they are
rendered in the message sandbox (:mod:`server.core.rendering`) with the execution's context
document (``record``, ``previous``, ``changed``, ``event``, ``team``, ``payload``) and the
plugins' template filters, then POSTed as ``{"text": ..., "blocks": [...]}`` to the team's
webhook URL. The URL is a secret (whoever has it can post to the channel), so it is read
from the team's ``notify_slack`` credential set (``webhook_url``), never from the config,
and never written into a result or an error.

Outcomes: 2xx succeeds; 429 and 5xx are retried (no sooner than ``Retry-After``); a
connection failure or timeout (10 s) is retried; any other 4xx (``invalid_payload``,
``no_service``, ``channel_is_archived``...) makes the execution dead at once with an
excerpt of Slack's answer. Templates are checked when the workflow is saved, each problem
named by its config path (``text``, ``blocks[0].text.text``). A redirect is not followed
(dead at once, naming only the redirect's host: its path may carry a secret too), and a
``webhook_url`` whose host is loopback, private, link-local or a metadata service is
refused when it is saved and when a message is sent, unless ``DEALFLOW_OUTBOUND_ALLOW``
admits it (see ``server.core.outbound``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from server.core.rendering import TemplateError, check_template, render
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

NAME = "notify_slack"
CREDENTIALS = "notify_slack"
TIMEOUT = 10.0
"""Seconds to wait on Slack before the attempt fails and is retried."""
EXCERPT = 200
"""Characters of Slack's answer kept in an error message."""
MAX_BLOCKS = 50
"""Slack accepts at most 50 blocks in a message."""

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Post a message to the team's Slack incoming webhook (credential set "
    "notify_slack: webhook_url). `text` and every string inside `blocks` are Jinja2 templates "
    "over the context (record, previous, changed, event, team, payload).",
    "properties": {
        "text": {
            "type": "string",
            "minLength": 1,
            "maxLength": 20000,
            "description": "The message (and the notification text when blocks are given).",
        },
        "blocks": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BLOCKS,
            "items": {
                "type": "object",
                "properties": {"type": {"type": "string", "minLength": 1}},
                "required": ["type"],
            },
            "description": "Slack Block Kit blocks; their string values are templates.",
        },
    },
    "required": ["text"],
    "additionalProperties": False,
}


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` with its config path (``blocks[0].text.text``)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _templates(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    yield from _strings(config.get("text"), "text")
    if isinstance(config.get("blocks"), list):
        yield from _strings(config["blocks"], "blocks")


def check(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Save-time problems as ``(config path, message)``: every template must compile."""
    found = []
    for path, source in _templates(config):
        try:
            check_template(source)
        except TemplateError as exc:
            found.append((path, exc.message))
    return found


def payload(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """The rendered JSON body. A template that fails is permanent: a retry fails the same way."""

    def text(path: str, source: str) -> str:
        try:
            return render(source, context.document, context.template_filters)
        except TemplateError as exc:
            raise ActionError(f"{NAME}: {path}: {exc.message}", permanent=True) from None

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return text(path, value)
        if isinstance(value, Mapping):
            return {key: walk(item, f"{path}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return value

    body: dict[str, Any] = {"text": text("text", config["text"])}
    if config.get("blocks"):
        body["blocks"] = walk(config["blocks"], "blocks")
    if not body["text"].strip() and not body.get("blocks"):
        raise ActionError(f"{NAME}: text: empty after rendering", permanent=True)
    return body


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """What would be posted, without connecting: the webhook URL is a credential, so ``••••``."""
    return {"webhook_url": "••••", "body": payload(config, context)}


def _webhook_url(context: ActionContext) -> str:
    url = context.credentials.get("webhook_url", "")
    hint = f"PUT /api/v1/team/credentials/{CREDENTIALS} with webhook_url"
    if not url:
        raise ActionError(f"{NAME}: the credential set has no webhook_url; {hint}", permanent=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        # Not echoed: the URL is the secret.
        raise ActionError(f"{NAME}: webhook_url is not an http(s) URL; {hint}", permanent=True)
    return url


def _excerpt(response: httpx.Response, url: str) -> str:
    text = " ".join(response.text.split())
    text = text.replace(url, "••••")  # in case a proxy echoes the request line
    return text[:EXCERPT] + ("…" if len(text) > EXCERPT else "")


def send(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """Render and POST to the webhook; see the module docstring for the outcomes."""
    url = _webhook_url(context)
    body = payload(config, context)
    try:
        # The process's shared client (one per allow-list): connections are reused, every
        # one to a checked address; redirects are refused.
        response = http_client(context.settings, timeout=TIMEOUT).post(url, json=body)
    except RedirectRefused as exc:
        # Only the redirect's host: a path may hold a secret, as the webhook URL's does.
        where = urlsplit(exc.location).hostname or "a relative URL"
        raise ActionError(
            f"{NAME}: Slack answered HTTP {exc.status}, a redirect to {where} (redirects are "
            "not followed: store the final webhook_url in the credentials)",
            permanent=True,
        ) from None
    except OutboundRefused as exc:
        raise ActionError(f"{NAME}: {exc.message}", permanent=True) from None
    except httpx.TimeoutException as exc:
        raise ActionError(
            f"{NAME}: Slack did not answer within {TIMEOUT:g} s ({type(exc).__name__})"
        ) from None
    except httpx.HTTPError as exc:
        # Only the exception's type: its text may carry the URL.
        raise ActionError(f"{NAME}: cannot reach Slack: {type(exc).__name__}") from None
    status = response.status_code
    if 200 <= status < 300:
        return {"status": status, "text": body["text"], "blocks": len(body.get("blocks", []))}
    detail = _excerpt(response, url)
    message = f"{NAME}: Slack answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        raise ActionError(message, retry_after=retry_after(response.headers.get("Retry-After")))
    raise ActionError(message, permanent=True)


NOTIFY_SLACK = Action(
    name=NAME,
    kind="side_effect",
    config_schema=CONFIG_SCHEMA,
    execute=send,
    preview=preview,
    check=check,
    description="Post a templated message (text and optional blocks) to the team's Slack "
    "incoming webhook.",
    credentials=CREDENTIALS,
)


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [NOTIFY_SLACK]

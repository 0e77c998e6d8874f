"""The ``notify_telegram`` action: send a templated message through a Telegram bot.

A workflow writes::

    {"type": "notify_telegram",
     "text": "<b>{{ record.title | e }}</b> is now {{ record.stage }}",
     "parse_mode": "HTML",
     "chat_id": "-1001234567890"}

``text`` is a Jinja2 template rendered in the message sandbox (:mod:`server.core.rendering`)
with the execution's context document (``record``, ``previous``, ``changed``, ``event``,
``team``, ``payload``) and the plugins' template filters. The message goes to the Bot API,
``POST {base}/bot{token}/sendMessage`` with ``{"chat_id", "text", "parse_mode"}``, where
``base`` is ``settings.extra["telegram_api_base"]`` (``DEALFLOW_PLUGIN_TELEGRAM_API_BASE``;
``https://api.telegram.org`` by default). The bot token comes from the team's
``notify_telegram`` credential set (``bot_token``, and a default ``chat_id``).

The token is part of the URL, so the URL is never put into a message, a result or a log
line here (the execution layer's scrubbing is only the safety net), and exceptions are
raised ``from None`` so no chained traceback carries it.

Outcomes: ``"ok": true`` succeeds with the message id; a rate limit (429) is retried no
sooner than Telegram's ``parameters.retry_after``; 5xx, timeouts (10 s) and connection
failures are retried; any other error (a bad token, an unknown chat, text the parse mode
cannot parse) makes the execution dead at once with Telegram's ``description``. A redirect
is not followed (dead at once). The API base is operator configuration, but its requests go
through the same outbound check as every plugin's: a base on a loopback, private or
link-local host (a local Bot API server, a test double) must be admitted with
``DEALFLOW_OUTBOUND_ALLOW`` (see ``server.core.outbound``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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

NAME = "notify_telegram"
CREDENTIALS = "notify_telegram"
DEFAULT_API_BASE = "https://api.telegram.org"
TIMEOUT = 10.0
"""Seconds to wait on Telegram before the attempt fails and is retried."""
EXCERPT = 200
"""Characters of Telegram's answer kept in an error message."""
MASK = "••••"

_TOKEN = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")
"""What a bot token looks like; anything else could change the URL's path."""

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Send a message through the team's Telegram bot (credential set "
    "notify_telegram: bot_token, optional chat_id). `text` is a Jinja2 template over the "
    "context (record, previous, changed, event, team, payload).",
    "properties": {
        "chat_id": {
            "oneOf": [
                {"type": "string", "minLength": 1, "maxLength": 100},
                {"type": "integer"},
            ],
            "description": "Chat id or @channelusername; the credential set's chat_id if absent.",
        },
        "text": {"type": "string", "minLength": 1, "maxLength": 20000},
        "parse_mode": {"enum": ["HTML", "MarkdownV2"]},
    },
    "required": ["text"],
    "additionalProperties": False,
}


def check(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Save-time problems as ``(config path, message)``: the text template must compile."""
    source = config.get("text")
    if not isinstance(source, str):
        return []
    try:
        check_template(source)
    except TemplateError as exc:
        return [("text", exc.message)]
    return []


def _text(config: Mapping[str, Any], context: ActionContext) -> str:
    try:
        text = render(config["text"], context.document, context.template_filters)
    except TemplateError as exc:
        raise ActionError(f"{NAME}: text: {exc.message}", permanent=True) from None
    if not text.strip():
        raise ActionError(f"{NAME}: text: empty after rendering", permanent=True)
    return text


def _body(chat_id: Any, text: str, config: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if config.get("parse_mode"):
        body["parse_mode"] = config["parse_mode"]
    return body


def _api_base(context: ActionContext) -> str:
    extra = getattr(context.settings, "extra", None) or {}
    return str(extra.get("telegram_api_base") or DEFAULT_API_BASE).rstrip("/")


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """What would be sent, without connecting; the token (and a chat id that only the
    credential set holds) shown as ``••••``."""
    chat_id = config.get("chat_id", MASK)
    return {
        "url": f"{_api_base(context)}/bot{MASK}/sendMessage",
        "body": _body(chat_id, _text(config, context), config),
    }


def _describe(response: httpx.Response, answer: Any, token: str) -> str:
    """Telegram's ``description`` (else an excerpt of the body), the token masked."""
    description = answer.get("description") if isinstance(answer, dict) else None
    text = str(description) if description else " ".join(response.text.split())
    text = text.replace(token, MASK)
    return text[:EXCERPT] + ("…" if len(text) > EXCERPT else "")


def _retry_after(response: httpx.Response, answer: Any) -> float | None:
    parameters = answer.get("parameters") if isinstance(answer, dict) else None
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if value is None:
        return retry_after(response.headers.get("Retry-After"))
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def send(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """Render and call sendMessage; see the module docstring for the outcomes."""
    hint = f"PUT /api/v1/team/credentials/{CREDENTIALS}"
    token = context.credentials.get("bot_token", "")
    if not token:
        raise ActionError(f"{NAME}: the credential set has no bot_token; {hint}", permanent=True)
    if not _TOKEN.match(token):
        raise ActionError(
            f"{NAME}: bot_token does not look like a Telegram bot token (123456:ABC…); {hint}",
            permanent=True,
        )
    chat_id = config.get("chat_id") or context.credentials.get("chat_id")
    if chat_id in (None, ""):
        raise ActionError(
            f"{NAME}: no chat_id: give one in the action or in the credential set ({hint})",
            permanent=True,
        )
    base = _api_base(context)
    if urlsplit(base).scheme not in ("http", "https"):
        raise ActionError(
            f"{NAME}: telegram_api_base must be an http(s) URL, not {base!r}", permanent=True
        )
    body = _body(chat_id, _text(config, context), config)
    try:
        # The URL holds the token: it is built here and never formatted into a message.
        # The process's shared client (one per allow-list): connections are reused, every
        # one to a checked address; redirects are refused.
        client = http_client(context.settings, timeout=TIMEOUT)
        response = client.post(f"{base}/bot{token}/sendMessage", json=body)
    except RedirectRefused as exc:
        # Only the redirect's host: its path may carry the token.
        where = urlsplit(exc.location).hostname or "a relative URL"
        raise ActionError(
            f"{NAME}: Telegram answered HTTP {exc.status}, a redirect to {where} (redirects "
            "are not followed)",
            permanent=True,
        ) from None
    except OutboundRefused as exc:
        raise ActionError(f"{NAME}: {exc.message}", permanent=True) from None
    except httpx.TimeoutException as exc:
        raise ActionError(
            f"{NAME}: Telegram did not answer within {TIMEOUT:g} s ({type(exc).__name__})"
        ) from None
    except httpx.HTTPError as exc:
        # Only the exception's type: its text may carry the URL, and so the token.
        raise ActionError(f"{NAME}: cannot reach Telegram: {type(exc).__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    refused = isinstance(answer, dict) and answer.get("ok") is False
    if 200 <= response.status_code < 300 and not refused:
        sent = answer.get("result") if isinstance(answer, dict) else None
        message_id = sent.get("message_id") if isinstance(sent, dict) else None
        return {"chat_id": chat_id, "message_id": message_id}
    code = response.status_code
    if isinstance(answer, dict) and isinstance(answer.get("error_code"), int):
        code = answer["error_code"]
    detail = _describe(response, answer, token)
    message = f"{NAME}: Telegram answered {code}" + (f": {detail}" if detail else "")
    if 429 in (code, response.status_code) or max(code, response.status_code) >= 500:
        # A rate limit or Telegram's own trouble: retried, no sooner than retry_after.
        raise ActionError(message, retry_after=_retry_after(response, answer))
    if code in (401, 404) and response.status_code in (401, 404):
        message += f" (check bot_token: {hint})"
    raise ActionError(message, permanent=True)


NOTIFY_TELEGRAM = Action(
    name=NAME,
    kind="side_effect",
    config_schema=CONFIG_SCHEMA,
    execute=send,
    preview=preview,
    check=check,
    description="Send a templated message through the team's Telegram bot (sendMessage).",
    credentials=CREDENTIALS,
)


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [NOTIFY_TELEGRAM]

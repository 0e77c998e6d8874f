"""The ``email`` action: render a templated message in the sandbox and send it over SMTP."""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pluggy

from server.core.action import Action, ActionContext, ActionError
from server.core.rendering import TemplateError, check_template, render

hookimpl = pluggy.HookimplMarker("dealflow")

SMTP_TIMEOUT = 10.0
"""Seconds to wait on the SMTP server before the attempt fails and is retried."""

TEMPLATE_KEYS = ("to", "cc", "reply_to", "subject", "body")

_ADDRESS = {"type": "string", "minLength": 1, "maxLength": 500}
_ADDRESSES = {
    "oneOf": [_ADDRESS, {"type": "array", "items": _ADDRESS, "minItems": 1, "maxItems": 50}]
}

CONFIG_SCHEMA = {
    "type": "object",
    "description": "Send an email. Every field is a Jinja2 template over the context "
    "(record, previous, changed, event, team, payload); `to` and `cc` take one address, a "
    "comma-separated list or an array.",
    "properties": {
        "to": _ADDRESSES,
        "cc": _ADDRESSES,
        "reply_to": _ADDRESS,
        "subject": {"type": "string", "minLength": 1, "maxLength": 1000},
        "body": {"type": "string", "maxLength": 20000},
    },
    "required": ["to", "subject", "body"],
    "additionalProperties": False,
}

# A plain address (no display name): dot-atom local part, hostname labels.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]")


def _templates(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each template in the config with its path: ``to``, ``to[1]``, ``subject``..."""
    out = []
    for key in TEMPLATE_KEYS:
        value = config.get(key)
        if isinstance(value, str):
            out.append((key, value))
        elif isinstance(value, list):
            out += [(f"{key}[{i}]", item) for i, item in enumerate(value)]
    return out


def check(
    config: Mapping[str, Any], filters: Mapping[str, Callable[..., Any]] | None = None
) -> None:
    """Raise :class:`TemplateError` naming the config key of the first template that fails."""
    for path, source in _templates(config):
        try:
            check_template(source, filters)
        except TemplateError as exc:
            raise TemplateError(f"{path}: {exc.reason}", exc.line) from None


def problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Save-time problems as ``(config path, message)``, for :attr:`Action.check`."""
    found = []
    for path, source in _templates(config):
        try:
            check_template(source)
        except TemplateError as exc:
            found.append((path, exc.message))
    return found


@dataclass(frozen=True)
class Message:
    """A rendered email, ready to preview or send."""

    to: list[str]
    cc: list[str]
    reply_to: str | None
    subject: str
    body: str
    message_id: str


def _render(config: Mapping[str, Any], context: ActionContext) -> Message:
    """Render every template; template and address problems are permanent (a retry fails too)."""

    def text(key: str, source: str) -> str:
        try:
            return render(source, context.document, context.template_filters)
        except TemplateError as exc:
            raise ActionError(f"email: {key}: {exc.message}", permanent=True) from exc

    def addresses(key: str) -> list[str]:
        value = config.get(key) or []
        out = []
        for source in [value] if isinstance(value, str) else value:
            # Empty pieces are skipped: a missing optional field renders "" (e.g. no manager).
            for address in (a.strip() for a in text(key, source).split(",")):
                if address and not _EMAIL.match(address):
                    raise ActionError(
                        f"email: {key}: {address!r} is not an email address", permanent=True
                    )
                if address:
                    out.append(address)
        return out

    to = addresses("to")
    if not to:
        raise ActionError("email: to: no recipient after rendering", permanent=True)
    reply_to = addresses("reply_to") if config.get("reply_to") else []
    # Header values cannot hold line breaks; a multi-line subject is folded onto one line.
    subject = " ".join(text("subject", config["subject"]).split())
    key = _NOT_ATEXT.sub("-", context.idempotency_key) or "none"
    return Message(
        to=to,
        cc=addresses("cc"),
        reply_to=reply_to[0] if reply_to else None,
        subject=subject,
        body=text("body", config["body"]),
        message_id=f"<{key}@dealflow>",
    )


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """The rendered message, without connecting to any server."""
    message = _render(config, context)
    out: dict[str, Any] = {
        "to": message.to,
        "subject": message.subject,
        "body": message.body,
        "message_id": message.message_id,
    }
    if message.cc:
        out["cc"] = message.cc
    if message.reply_to:
        out["reply_to"] = message.reply_to
    return out


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to send, read from ``SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    sender: str


def parse_smtp_url(url: str | None) -> SmtpTarget:
    """Read ``smtp://user:pass@host:port?starttls=1&from=addr`` (``smtps://`` for implicit TLS)."""
    if not url:
        raise ActionError("email: SMTP_URL is not set", permanent=True)
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ActionError(
            "email: SMTP_URL must look like smtp://user:pass@host:port (or smtps:// for TLS)",
            permanent=True,
        )
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError as exc:
        raise ActionError(f"email: SMTP_URL has a bad port: {exc}", permanent=True) from None
    query = parse_qs(parts.query)
    username = unquote(parts.username) if parts.username else None
    sender = (query.get("from") or [""])[0]
    if not sender and username:
        sender = username if "@" in username else f"{username}@{parts.hostname}"
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        implicit_tls=parts.scheme == "smtps",
        starttls=(query.get("starttls") or ["0"])[0].lower() in ("1", "true", "yes"),
        username=username,
        password=unquote(parts.password) if parts.password else None,
        sender=sender or "dealflow@localhost",
    )


def _build(message: Message, sender: str, idempotency_key: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(message.to)
    if message.cc:
        mail["Cc"] = ", ".join(message.cc)
    if message.reply_to:
        mail["Reply-To"] = message.reply_to
    mail["Subject"] = message.subject
    # Same id on every retry of this execution, so a receiving system can drop duplicates.
    mail["Message-ID"] = message.message_id
    mail["X-Dealflow-Idempotency-Key"] = idempotency_key
    mail.set_content(message.body)
    return mail


def send(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    """Render and send. Connection failures and 4xx replies retry; 5xx replies are permanent."""
    target = parse_smtp_url(getattr(context.settings, "smtp_url", None))
    message = _render(config, context)
    mail = _build(message, target.sender, context.idempotency_key)
    try:
        refused = _deliver(target, mail, [*message.to, *message.cc])
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{a}: {c} {_text(m)}" for a, (c, m) in exc.recipients.items())
        raise ActionError(
            f"email: recipients refused: {detail}", permanent=all(code >= 500 for code in codes)
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise ActionError(
            f"email: SMTP server replied {exc.smtp_code} {_text(exc.smtp_error)}",
            permanent=exc.smtp_code >= 500,
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ActionError(f"email: {exc} (check ?starttls= in SMTP_URL)", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ActionError(
            f"email: cannot reach {target.host}:{target.port}: {type(exc).__name__}: {exc}"
        ) from None
    out: dict[str, Any] = {"to": message.to, "message_id": message.message_id}
    if message.cc:
        out["cc"] = message.cc
    if refused:
        # Others got the message, so no retry: that would send them a second copy.
        out["refused"] = {a: f"{c} {_text(m)}" for a, (c, m) in refused.items()}
    return out


def _deliver(target: SmtpTarget, mail: EmailMessage, recipients: list[str]) -> dict[str, Any]:
    tls = ssl.create_default_context()
    smtp: smtplib.SMTP
    if target.implicit_tls:
        smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=SMTP_TIMEOUT, context=tls)
    else:
        smtp = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT)
    with smtp:
        if target.starttls:
            smtp.starttls(context=tls)
        if target.username:
            smtp.login(target.username, target.password or "")
        return smtp.send_message(mail, from_addr=target.sender, to_addrs=recipients)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


EMAIL = Action(
    name="email",
    kind="side_effect",
    config_schema=CONFIG_SCHEMA,
    execute=send,
    preview=preview,
    check=problems,
    description="Send a templated email over SMTP (SMTP_URL), e.g. an escalation or approval.",
)


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [EMAIL]

"""The email action against a real SMTP server (aiosmtpd on a local port: ``smtp_server``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.core.action import ActionContext, ActionError
from server.core.builtin import email as email_action
from server.core.rendering import TemplateError
from server.settings import Settings

CONFIG = {
    "to": ["{{ record.owner_email }}", "sales-lead@example.com"],
    "subject": "Deal {{ record.name }} is at risk",
    "body": "Amount: {{ record.amount }}\nStage: {{ record.stage }}\n",
}
SENDER = "?from=deals%40example.com"  # the SMTP_URL query naming the envelope sender
DOCUMENT = {
    "record": {
        "name": "Acme",
        "amount": 5000,
        "stage": "proposal",
        "owner_email": "owner@example.com",
    }
}


def _context(smtp_url: str | None, document: dict[str, Any] = DOCUMENT) -> ActionContext:
    return ActionContext(
        team_id=1,
        workflow_id="wf",
        workflow_version=1,
        action_index=0,
        document=document,
        idempotency_key="k1",
        settings=Settings(smtp_url=smtp_url),
    )


def test_execute_sends_one_rendered_message(smtp_server: Any) -> None:
    recorder, url = smtp_server.recorder, smtp_server.url + SENDER

    # When
    result = email_action.send(CONFIG, _context(url))

    # Then the server got exactly one message, rendered, for both recipients
    assert len(recorder.envelopes) == 1
    envelope, message = recorder.envelopes[0], recorder.message()
    assert envelope.mail_from == "deals@example.com"
    assert envelope.rcpt_tos == ["owner@example.com", "sales-lead@example.com"]
    assert message["Subject"] == "Deal Acme is at risk"
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")  # SMTP line ends
    assert body == "Amount: 5000\nStage: proposal\n"
    assert "k1" in message["Message-ID"]
    assert message["X-Dealflow-Idempotency-Key"] == "k1"
    assert result == {
        "to": ["owner@example.com", "sales-lead@example.com"],
        "message_id": "<k1@dealflow>",
    }


def test_preview_renders_and_sends_nothing(smtp_server: Any) -> None:
    recorder, url = smtp_server.recorder, smtp_server.url + SENDER

    preview = email_action.preview(CONFIG, _context(url))

    assert preview == {
        "to": ["owner@example.com", "sales-lead@example.com"],
        "subject": "Deal Acme is at risk",
        "body": "Amount: 5000\nStage: proposal\n",
        "message_id": "<k1@dealflow>",
    }
    assert recorder.envelopes == []


def test_a_bad_rendered_address_is_a_permanent_error(smtp_server: Any) -> None:
    recorder, url = smtp_server.recorder, smtp_server.url + SENDER
    document = {"record": {**DOCUMENT["record"], "owner_email": "not an address"}}

    with pytest.raises(ActionError) as caught:
        email_action.send(CONFIG, _context(url, document))

    assert caught.value.permanent
    assert "'not an address'" in caught.value.message
    assert recorder.envelopes == []


def test_without_smtp_url_the_error_is_permanent() -> None:
    with pytest.raises(ActionError, match="SMTP_URL is not set") as caught:
        email_action.send(CONFIG, _context(None))

    assert caught.value.permanent


def test_a_server_that_is_not_listening_is_retried(free_port: Callable[[], int]) -> None:
    # Given a port nothing listens on
    url = f"smtp://127.0.0.1:{free_port()}"

    # When
    with pytest.raises(ActionError) as caught:
        email_action.send(CONFIG, _context(url))

    # Then
    assert not caught.value.permanent
    assert "cannot reach" in caught.value.message


@pytest.mark.parametrize(
    ("reply", "permanent"), [("550 no such user", True), ("450 mailbox busy", False)]
)
def test_refused_recipients_are_permanent_only_on_5xx(
    smtp_server: Any, reply: str, permanent: bool
) -> None:
    # Given a server refusing both recipients
    recorder, url = smtp_server.recorder, smtp_server.url + SENDER
    recorder.refuse = {"owner@example.com": reply, "sales-lead@example.com": reply}

    # When
    with pytest.raises(ActionError) as caught:
        email_action.send(CONFIG, _context(url))

    # Then
    assert caught.value.permanent is permanent
    assert reply.split()[0] in caught.value.message
    assert recorder.envelopes == []


def test_check_names_the_config_key_of_a_broken_template() -> None:
    config = {**CONFIG, "to": ["ok@example.com", "{{ record.owner_email"]}

    with pytest.raises(TemplateError, match=r"to\[1\]"):
        email_action.check(config)
    with pytest.raises(TemplateError, match="subject"):
        email_action.check({**CONFIG, "subject": "{% if %}"})
    email_action.check(CONFIG)


def test_action_check_lists_problems_by_key() -> None:
    assert email_action.EMAIL.check is not None
    problems = email_action.EMAIL.check({**CONFIG, "body": "{{ lipsum() }}"})

    assert [path for path, _ in problems] == ["body"]

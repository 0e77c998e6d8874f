"""Qualification: where a lead stands against its team's rule (score threshold, required
profile fields, JMESPath condition)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from server.core.conditions import truthy
from server.core.expressions import compile_expression
from server.core.models import Contact, Team


class ContactBrief(msgspec.Struct):
    """The lead's contact as a workflow's document and the qualification rule see it."""

    id: int
    name: str
    email: str | None
    phone: str | None
    company: str | None
    custom: dict[str, Any]


class QualificationOut(msgspec.Struct):
    """Where the lead stands against the team's qualification rule."""

    rule: bool
    """Whether the team has a rule at all."""
    threshold: int | None
    score_reached: bool
    condition_holds: bool
    missing_fields: list[str]
    qualified: bool
    """All three: score reached, condition holds, no required field missing."""
    error: str | None = None
    """Why the condition could not be evaluated (it then does not hold)."""


@dataclass(frozen=True)
class Standing:
    """The result of checking a lead against a qualification rule."""

    rule: bool
    threshold: int | None = None
    score_reached: bool = False
    condition_holds: bool = False
    missing_fields: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def qualified(self) -> bool:
        return self.rule and self.score_reached and self.condition_holds and not self.missing_fields

    def out(self) -> QualificationOut:
        return QualificationOut(
            rule=self.rule,
            threshold=self.threshold,
            score_reached=self.score_reached,
            condition_holds=self.condition_holds,
            missing_fields=self.missing_fields,
            qualified=self.qualified,
            error=self.error,
        )


def contact_brief(contact: Contact | None) -> ContactBrief | None:
    if contact is None:
        return None
    return ContactBrief(
        id=contact.id,
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        company=contact.company,
        custom=dict(contact.custom or {}),
    )


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def field_value(path: str, lead: dict[str, Any], contact: dict[str, Any] | None) -> Any:
    """The value of a required-field path (``contact.phone``, ``lead.custom.industry``)."""
    head, _, rest = path.partition(".")
    value: Any = lead if head == "lead" else (contact or {})
    for part in rest.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def standing(rule: Any, lead: dict[str, Any], contact: dict[str, Any] | None) -> Standing:
    """Check a lead (its API document) and its contact against ``rule`` (a
    :class:`~server.core.services.teams.Qualification`, or None when the team has none)."""
    if rule is None:
        return Standing(rule=False)
    missing = [p for p in rule.required_fields if _empty(field_value(p, lead, contact))]
    holds, error = True, None
    if rule.condition and rule.condition.strip():
        try:
            context = {"lead": lead, "contact": contact}
            holds = truthy(compile_expression(rule.condition).search(context))
        except Exception as exc:  # noqa: BLE001 - a rule that cannot be evaluated does not hold
            holds, error = False, f"settings.qualification.condition: {exc}"
    return Standing(
        rule=True,
        threshold=rule.score_threshold,
        score_reached=lead.get("score", 0) >= rule.score_threshold,
        condition_holds=holds,
        missing_fields=missing,
        error=error,
    )


def rule_of(session: Session, team_id: int) -> Any:
    """The qualification rule of team ``team_id``, None when it has none."""
    from server.core.services.teams import settings_of

    team = session.get(Team, team_id)
    return settings_of(team).rule() if team is not None else None

"""Related records in a context document: a deal's contact, read only when a workflow names it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from server.core.change import Change
from server.core.scope import TeamScope

CONTACT_ENTITIES = ("deal",)
"""Entities whose ``record`` (and ``previous``) carry ``contact`` on demand. A lead's document
always holds its contact (``server.core.services.leads.document``)."""
_CONTACT = re.compile(r"\bcontact\b")
"""The word ``contact`` on its own: ``record.contact.company``, ``record['contact']``,
``previous.contact``, ``record.{c: contact}``; not ``contact_id`` nor ``contacts``."""


def names_contact(document: Mapping[str, Any]) -> bool:
    """Called when a workflow version is compiled: does its condition or an action's config
    mention ``contact``? Generous on purpose: a word in an email body costs one primary-key
    read, a miss would leave ``record.contact`` silently null."""
    texts = [document.get("condition") or ""]
    for action in document.get("actions", []):
        texts += _strings({k: v for k, v in action.items() if k != "type"})
    return any(_CONTACT.search(text) for text in texts)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _contact_id(value: Any) -> bool:
    """Whether ``value`` can be a contact's id: a dry run's sample may hold anything there."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def contact_documents(scope: TeamScope, ids: Iterable[Any]) -> dict[int, dict[str, Any]]:
    """The team's contacts with these ids, as the API returns them; another team's contact,
    one that is gone, and a value that cannot be an id are left out."""
    from server.core.models import Contact
    from server.core.records import record_type

    out = {}
    session = scope.session
    with session.no_autoflush:
        for contact_id in {i for i in ids if _contact_id(i)}:
            # The identity map first: a deal just created with its contact has it loaded.
            row = session.get(Contact, contact_id)
            if row is not None and row.team_id == scope.team_id:
                out[contact_id] = record_type("contact").document(row)
    return out


def with_contacts(scope: TeamScope, *docs: dict[str, Any] | None) -> list[dict[str, Any] | None]:
    """Copies of ``docs`` with ``contact``: the team's contact named by each one's
    ``contact_id``, or None. A document that already has ``contact`` is kept as it is; each
    contact is read once however many documents name it."""
    wanted = [d for d in docs if d is not None and "contact" not in d]
    found = contact_documents(
        scope, (d["contact_id"] for d in wanted if d.get("contact_id") is not None)
    )
    return [
        d if d is None or "contact" in d
        else {**d, "contact": found.get(d["contact_id"]) if _contact_id(d.get("contact_id")) else None}
        for d in docs
    ]


def attach_contact(scope: TeamScope, change: Change) -> None:
    """Give the change's ``record`` and ``previous`` their ``contact`` (one read per contact)."""
    same = change.record is change.previous
    change.record, previous = with_contacts(scope, change.record, change.previous)
    change.previous = change.record if same else previous


def carry_contact(
    scope: TeamScope, before: Mapping[str, Any] | None, after: dict[str, Any]
) -> dict[str, Any]:
    """``after`` (the record once a workflow changed it) with the ``contact`` ``before`` had:
    the same one while ``contact_id`` is unchanged, read again when it moved."""
    if before is None or "contact" not in before or "contact" in after:
        return after
    if before.get("contact_id") == after.get("contact_id"):
        return {**after, "contact": before["contact"]}
    (after,) = with_contacts(scope, after)
    return after  # type: ignore[return-value]

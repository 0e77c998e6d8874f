"""``lead_acquired``: a deal was created with an outreach source (its own or its contact's).

The event's ``payload`` carries that outreach: ``payload.outreach`` with ``id``, ``type``
(its code), ``type_name``, ``value``, ``email``, ``phone``, ``occurred_at`` and ``user``
(``id``, ``name``, ``email``: who did the outreach), so a notification can name the channel
of origin and the person.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.core.change import Change
from server.triggers.base import Trigger


def outreach_payload(session: Session, team_id: int, outreach_id: int) -> dict[str, Any] | None:
    """The ``payload`` of a deal created from outreach ``outreach_id`` (None if it is gone)."""
    from server.core.models import Outreach, OutreachType, User

    outreach = session.get(Outreach, outreach_id)
    if outreach is None or outreach.team_id != team_id:
        return None
    user = session.get(User, outreach.user_id)
    return {
        "outreach": {
            "id": outreach.id,
            "type": outreach.type,
            "type_name": OutreachType(outreach.type).name,
            "value": outreach.value,
            "email": outreach.email,
            "phone": outreach.phone,
            "occurred_at": outreach.occurred_at.isoformat(),
            "user": {"id": user.id, "name": user.name, "email": user.email} if user else None,
        }
    }


class LeadAcquired(Trigger):
    name = "lead_acquired"
    entities = ("deal",)

    def relevant(self, change: Change) -> bool:
        return (
            change.entity == "deal"
            and change.op == "created"
            and bool((change.record or {}).get("outreach_id"))
        )


TRIGGER = LeadAcquired()

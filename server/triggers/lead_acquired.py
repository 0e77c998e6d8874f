"""``lead_acquired``: a deal was created with an outreach source (its own or its contact's)."""

from __future__ import annotations

from server.core.change import Change
from server.triggers.base import Trigger


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

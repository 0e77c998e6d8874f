"""Lead: a contact moving through the marketing-to-sales lifecycle, with its stage history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned

STAGES = ("lead", "mql", "sal", "opportunity", "customer", "recycled")
# Which stage may follow which; ``recycled`` hands a lead back to marketing and needs a reason.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "lead": ("mql",),
    "mql": ("sal",),
    "sal": ("opportunity", "recycled"),
    "opportunity": ("customer", "recycled"),
    "customer": (),
    "recycled": ("lead", "mql"),
}


class Lead(TeamOwned, Base):
    """A lead: lifecycle stage, score and owner."""

    __tablename__ = "leads"
    __table_args__ = (UniqueConstraint("team_id", "external_id"),)

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(16), default="lead")
    stage_changed_at: Mapped[dt.datetime]
    score: Mapped[int] = mapped_column(default=0)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class LeadStageChange(TeamOwned, Base):
    """One entry of a lead's stage history: from, to, when, by whom and why."""

    __tablename__ = "lead_stage_changes"

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)

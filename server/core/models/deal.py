"""Deal: an opportunity in the team's pipeline, with its probability and weighted amount."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned

STATUSES = ("open", "won", "lost", "cancelled")
CLOSED_PROBABILITY = {"won": 100, "lost": 0, "cancelled": 0}


class Deal(TeamOwned, Base):
    """A deal; its ``outreach_id`` is inherited from the contact when not given."""

    __tablename__ = "deals"
    __table_args__ = (
        UniqueConstraint("team_id", "external_id"),
        Index("ix_deals_team_status_close", "team_id", "status", "expected_close_date"),
        # Walking a team's open deals in id order (recompute) reads this index, not a sort.
        Index("ix_deals_team_status_id", "team_id", "status", "id"),
    )

    title: Mapped[str] = mapped_column(String(300))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    outreach_id: Mapped[int | None] = mapped_column(
        ForeignKey("outreach.id", ondelete="SET NULL"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    stage: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="open")
    expected_close_date: Mapped[dt.date | None]
    closed_at: Mapped[dt.datetime | None]
    probability: Mapped[int | None] = mapped_column(SmallInteger)
    weighted_amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

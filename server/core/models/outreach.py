"""Outreach: one prospecting effort through a channel, the source a contact or deal came from."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class OutreachType(enum.IntEnum):
    """Outreach channels; the integer codes are part of the API."""

    platform = 1
    email = 2
    call = 3
    social = 4
    messenger = 5


class Outreach(TeamOwned, Base):
    """An outreach effort: who reached out, when, through which channel and at what cost."""

    __tablename__ = "outreach"
    __table_args__ = (Index("ix_outreach_team_occurred", "team_id", "occurred_at"),)

    type: Mapped[int] = mapped_column(SmallInteger)
    value: Mapped[str | None] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))

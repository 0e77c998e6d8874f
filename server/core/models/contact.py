"""Contact: a person the team talks to, with the outreach that found them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class Contact(TeamOwned, Base):
    """A contact. ``last_contacted_at`` only moves forward when communications are logged."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("team_id", "external_id"),)

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(64))
    company: Mapped[str | None] = mapped_column(String(200))
    outreach_id: Mapped[int | None] = mapped_column(
        ForeignKey("outreach.id", ondelete="SET NULL"), index=True
    )
    last_contacted_at: Mapped[dt.datetime | None]
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

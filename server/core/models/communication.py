"""Communication: a logged touch with a contact."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned

CHANNELS = ("email", "call", "meeting", "message", "social", "other")
DIRECTIONS = ("inbound", "outbound")


class Communication(TeamOwned, Base):
    """One call, email, meeting or message with a contact."""

    __tablename__ = "communications"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16), default="outbound")
    at: Mapped[dt.datetime]
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

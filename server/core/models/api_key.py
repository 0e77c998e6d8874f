"""ApiKey: a bearer key bound to one team and one user, stored only as a hash."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class ApiKey(TeamOwned, Base):
    """An API key. The key itself is shown once at creation; only its SHA-256 is kept, found
    through the indexed ``prefix`` (the key's first characters, also shown in listings)."""

    __tablename__ = "api_keys"
    __entity__ = "api key"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str | None] = mapped_column(String(16))
    """``ingest`` or ``read`` to narrow the key below its user's role; null for the role."""
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]

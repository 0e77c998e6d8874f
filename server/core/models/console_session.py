"""ConsoleSession: a signed-in admin console, kept server-side so it can be ended."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class ConsoleSession(TeamOwned, Base):
    """One browser's sign-in to the console. The cookie carries a random token; only its
    SHA-256 is kept here. Signing out deletes the row; revoking the key it was opened with
    (``key_id``) ends it too."""

    __tablename__ = "console_sessions"
    __entity__ = "console session"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    """The API key signed in with; null for an email and password sign-in."""
    role: Mapped[str] = mapped_column(String(16))
    """What the session could do when opened (``admin``, ``member`` or ``read``); each request
    works it out again from the user and key as they are then."""
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime]

"""User: a member of one team, with a role."""

from __future__ import annotations

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned

ROLES = ("admin", "member")


class User(TeamOwned, Base):
    """A person working in a team; every record keeps the user who created it."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("team_id", "email"),)

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="member")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """``scrypt$n$r$p$salt$hash`` for signing in to the console; null: no password set."""

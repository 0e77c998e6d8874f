"""Team, the tenant every other row belongs to, and its field domains."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, IdMixin, TimestampMixin


class Team(IdMixin, TimestampMixin, Base):
    """A sales or marketing team: its own users, records, workflows and settings."""

    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    workflows_rev: Mapped[int] = mapped_column(default=0)
    """Bumped on every workflow change, so each process knows when to reload its index."""


class FieldDomain(IdMixin, TimestampMixin, Base):
    """A picklist: the values a field may take, keyed by the path a condition sees (``deal.stage``)."""

    __tablename__ = "field_domains"
    __table_args__ = (UniqueConstraint("team_id", "path"),)

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(200))
    values: Mapped[list[Any]] = mapped_column(default=list)

"""Per-team plugin credentials: the values an action reads (tokens, webhook URLs), encrypted."""

from __future__ import annotations

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class TeamCredential(TeamOwned, Base):
    """One team's credential set for one plugin (``slack``): a JSON object of string values,
    stored only as a Fernet token under ``DEALFLOW_SECRET_KEY`` (see ``server.core.crypto``)."""

    __tablename__ = "team_credentials"
    __table_args__ = (UniqueConstraint("team_id", "plugin"),)

    plugin: Mapped[str] = mapped_column(String(64))
    """The set's name, as an action's ``Action.credentials`` names it."""
    values_encrypted: Mapped[str] = mapped_column(Text)
    """The encrypted JSON object of the values; never stored or returned in plain text."""

"""Hook secrets and webhook deliveries: what signed inbound webhooks are checked against."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class HookSecret(TeamOwned, Base):
    """A team's webhook signing secret, encrypted at rest. A team holds at most two live
    secrets: the current one and, after a rotation, the previous one until it expires."""

    __tablename__ = "hook_secrets"
    __table_args__ = (
        # One current secret per team, even when two creates or rotations race.
        Index(
            "uq_hook_secrets_current",
            "team_id",
            unique=True,
            postgresql_where=text("expires_at IS NULL"),
            sqlite_where=text("expires_at IS NULL"),
        ),
    )

    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None]
    """When a rotated-out secret stops being accepted; None while it is the current one."""


class WebhookDelivery(TeamOwned, Base):
    """One accepted inbound webhook, by its ``webhook-id``: a repeat gets the same answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("team_id", "webhook_id"),)

    webhook_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    status_code: Mapped[int] = mapped_column(default=202)
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)

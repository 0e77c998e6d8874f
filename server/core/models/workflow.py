"""Workflow and its versions: every save of a definition is a new, kept version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.core.models.base import Base, TeamOwned


class Workflow(TeamOwned, Base):
    """A team's workflow: its id (``key``), current version and enabled flag."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("team_id", "key"),)

    key: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(default=1)
    enabled: Mapped[bool] = mapped_column(default=True)
    entity: Mapped[str | None] = mapped_column(String(32))
    trigger_type: Mapped[str] = mapped_column(String(32))
    group: Mapped[str | None] = mapped_column(String(100))
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WorkflowVersion(TeamOwned, Base):
    """One saved version of a workflow definition."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version"),)

    workflow_id: Mapped[int] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

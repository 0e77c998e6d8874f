"""Team scoping: the one layer through which every team-owned row is read or written."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from server.core.errors import NotFound
from server.core.models import Team

if TYPE_CHECKING:
    from server.core.engine import WorkflowEngine

M = TypeVar("M")


@dataclass(frozen=True)
class Actor:
    """Who is acting: the team and user an API key is bound to (or a CLI operator)."""

    team_id: int
    user_id: int
    role: str = "admin"
    key_id: int | None = None
    scope: str | None = None
    via: str | None = None
    """How the actor reached Dealflow when it is not plain from the key: ``console``."""


class TeamScope:
    """A database session seen through one team: reads filter by team, writes stamp it.

    A row of another team is reported exactly like a row that does not exist.
    """

    def __init__(
        self, session: Session, actor: Actor, engine: WorkflowEngine | None = None
    ) -> None:
        self.session = session
        self.actor = actor
        self._engine = engine

    @property
    def engine(self) -> WorkflowEngine:
        """The workflow engine that handles this scope's changes (the process default if none)."""
        if self._engine is None:
            from server.core.runtime import default_engine

            self._engine = default_engine()
        return self._engine

    @property
    def team_id(self) -> int:
        return self.actor.team_id

    @cached_property
    def team(self) -> Team:
        team = self.session.get(Team, self.team_id)
        if team is None:
            raise NotFound("team", self.team_id)
        return team

    def select(self, model: type[M], *columns: Any) -> Select[Any]:
        """A SELECT of ``model`` limited to this team's rows."""
        stmt = select(*columns) if columns else select(model)
        return stmt.where(model.team_id == self.team_id)  # type: ignore[attr-defined]

    def get(self, model: type[M], record_id: int | None, *, field: str | None = None) -> M:
        """The row of this team with ``record_id``, or :class:`NotFound` naming ``field``."""
        entity = getattr(model, "__entity__", model.__name__.lower())
        # An id no 64-bit key column can hold is simply not found (not a driver overflow).
        in_range = record_id is not None and -(2**63) <= record_id < 2**63
        row = self.session.get(model, record_id) if in_range else None
        if row is None or row.team_id != self.team_id:  # type: ignore[attr-defined]
            raise NotFound(entity, record_id, field=field)
        return row

    def add(self, row: M) -> M:
        """Stamp ``row`` with this team and add it to the session."""
        row.team_id = self.team_id  # type: ignore[attr-defined]
        self.session.add(row)
        return row

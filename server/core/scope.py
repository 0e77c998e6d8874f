"""Team scoping: the one layer through which every team-owned row is read or written."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from server.core.errors import NotFound
from server.core.fastsql import reader
from server.core.models import Team

if TYPE_CHECKING:
    from server.core.engine import WorkflowEngine

M = TypeVar("M")
INFO_COLUMNS = ("name", "timezone", "settings", "workflows_rev")


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


@dataclass(frozen=True)
class TeamInfo:
    """What a save needs of its team, read in one short query: the workflow engine's team
    document and the revision its workflow index is cached under."""

    id: int
    name: str
    timezone: str
    settings: dict[str, Any]
    workflows_rev: int


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

    @property
    def info(self) -> TeamInfo:
        """The team's :class:`TeamInfo`, read once per scope (again after :meth:`forget_info`)."""
        found: TeamInfo | None = self.__dict__.get("_info")
        if found is None:
            loaded = self.__dict__.get("team")
            if loaded is not None:
                values: tuple[Any, ...] | None = (
                    loaded.name, loaded.timezone, loaded.settings, loaded.workflows_rev
                )
            else:
                values = reader(
                    self.session, Team.__table__, INFO_COLUMNS, ("id",)
                ).one(self.session, self.team_id)
            if values is None:
                raise NotFound("team", self.team_id)
            name, timezone, settings, rev = values
            found = self.__dict__["_info"] = TeamInfo(
                self.team_id, name, timezone, settings or {}, rev
            )
        return found

    def forget_info(self) -> None:
        """Read :attr:`info` again on next use (the team or its rules changed)."""
        self.__dict__.pop("_info", None)

    def check(self, model: type[Any], record_id: int | None, *, field: str | None = None) -> None:
        """:class:`NotFound` naming ``field`` unless this team has a row of ``model`` with
        ``record_id``; like :meth:`get` without loading the row."""
        if self.session.new or self.session.deleted:
            # Rows added or deleted but not yet flushed: the session knows better.
            self.get(model, record_id, field=field)
            return
        in_range = record_id is not None and -(2**63) <= record_id < 2**63
        found = in_range and reader(
            self.session, model.__table__, ("id",), ("id", "team_id")
        ).one(self.session, record_id, self.team_id)
        if not found:
            entity = getattr(model, "__entity__", model.__name__.lower())
            raise NotFound(entity, record_id, field=field)

    def check_user(self, user_id: int | None, *, field: str) -> None:
        """Like :meth:`check` for a user id, without a look-up for the caller's own user: its
        key (or console session) was verified against that user of this team, and users are
        never deleted."""
        if user_id is not None and user_id > 0 and user_id == self.actor.user_id:
            return
        from server.core.models import User

        self.check(User, user_id, field=field)

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

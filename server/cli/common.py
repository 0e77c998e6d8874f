"""What every command shares: settings, the database, teams and their admin, plain tables."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from server.core.db import make_engine
from server.core.errors import DealflowError, NotFound
from server.settings import Settings, load_settings

if TYPE_CHECKING:
    from server.core.models import Team, User
    from server.core.plugins import Registry
    from server.core.runtime import Runtime
    from server.core.scope import TeamScope

# The engine, the plugins and the services are imported by the commands that use them:
# `dealflow --help` and `team list` should not pay for loading every plugin.


def settings() -> Settings:
    return load_settings()


def offline_registry(config: Settings) -> Registry:
    """The plugins' registry for commands that never open the database (``workflows validate``)."""
    from server.core.plugins import load_registry

    registry = load_registry(tuple(config.plugins_disable))
    registry.pm.hook.dealflow_startup(settings=config)
    return registry


def _sqlite_savepoints(engine: Engine) -> None:
    # pysqlite opens transactions lazily and so breaks SAVEPOINT; the SQLAlchemy recipe lets
    # the driver stay out of it and emits BEGIN itself (see atomic()).
    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN")


@contextmanager
def runtime(config: Settings | None = None) -> Iterator[Runtime]:
    """The registry, workflow engine and database of this process, closed at the end."""
    from server.core.runtime import build_runtime

    config = config or settings()
    engine = make_engine(config.database_url)
    if engine.dialect.name == "sqlite":
        _sqlite_savepoints(engine)
    rt = build_runtime(config, engine)
    try:
        yield rt
    finally:
        rt.close()
        engine.dispose()


@contextmanager
def atomic(rt: Runtime) -> Iterator[Session]:
    """A session for work that must land whole or not at all.

    Services commit after each save; here each of those commits only releases a savepoint of
    one outer transaction, which is committed when the block ends and rolled back if it raises.
    """
    with rt.db.connect() as connection:
        outer = connection.begin()
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
            session.flush()
            outer.commit()
        except BaseException:
            outer.rollback()
            raise
        finally:
            session.close()


def first_admin(session: Session, team: Team) -> User:
    """The team's oldest admin user, the one a CLI operator acts as."""
    from server.core.models import User

    user = session.scalar(
        select(User).where(User.team_id == team.id, User.role == "admin").order_by(User.id)
    )
    if user is None:
        raise DealflowError(
            f"team {team.name!r} has no admin user; add one with `dealflow key create "
            f"--team {team.name} --email EMAIL --role admin`"
        )
    return user


def admin_scope(
    session: Session, team_ref: str | int | None, rt: Runtime | None = None
) -> TeamScope:
    """A scope acting as the first admin of a team: ``team_ref`` is a name or id as typed, an
    ``int`` id, or None for the first team."""
    from server.core.models import Team
    from server.core.scope import Actor, TeamScope
    from server.core.services.teams import find_team

    if team_ref is None:
        team = session.scalar(select(Team).order_by(Team.id))
        if team is None:
            raise DealflowError(
                "there is no team in the database; create one with `dealflow team create NAME`"
            )
    elif isinstance(team_ref, int):
        team = session.get(Team, team_ref)
        if team is None:
            raise NotFound("team", team_ref)
    else:
        team = find_team(session, team_ref)
    user = first_admin(session, team)
    return TeamScope(session, Actor(team.id, user.id), rt.engine if rt else None)


def teams(session: Session, team_ref: str | None) -> list[Team]:
    """The team named by ``team_ref``, or every team when it is None."""
    from server.core.models import Team
    from server.core.services.teams import find_team

    if team_ref is not None:
        return [find_team(session, team_ref)]
    return list(session.scalars(select(Team).order_by(Team.id)))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Rows as left-aligned columns under upper-case headers."""
    cells = [[str(h).upper() for h in headers]]
    cells += [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


__all__ = [
    "admin_scope",
    "atomic",
    "first_admin",
    "offline_registry",
    "runtime",
    "settings",
    "table",
    "teams",
]

"""The Alembic scripts build exactly the schema the models describe, both ways, on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from server.core.db import make_engine
from server.core.models import Base
from server.migrations import alembic_config, upgrade


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def head(engine: Engine) -> str:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head() or ""


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@pytest.fixture
def fresh_sqlite(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An engine on a brand-new, empty SQLite file."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    yield engine
    engine.dispose()


# --- the migrated test databases (SQLite and PostgreSQL) -------------------------------------


def test_migrated_schema_matches_the_models(engine) -> None:
    assert schema_diff(engine) == []


def test_migrated_database_is_at_head(engine) -> None:
    assert current(engine) == head(engine)


def test_every_model_table_exists(engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_upgrading_again_changes_nothing(engine) -> None:
    # When
    upgrade(engine)
    # Then
    assert current(engine) == head(engine)
    assert schema_diff(engine) == []


def test_foreign_keys_are_enforced(engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (team_id, name, email, role, created_at, updated_at) "
                "VALUES (987654321, 'Ghost', 'ghost@nowhere.test', 'member', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )


def test_deleting_a_team_cascades_to_its_rows(engine, make_team) -> None:
    # Given
    acme = make_team("Acme")
    beta = make_team("Beta")
    # When
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM teams WHERE id = :id"), {"id": acme.team_id})
    # Then
    with engine.connect() as conn:
        users = conn.execute(text("SELECT team_id FROM users")).scalars().all()
        keys = conn.execute(text("SELECT team_id FROM api_keys")).scalars().all()
    assert users == [beta.team_id]
    assert keys == [beta.team_id]


# --- a brand-new SQLite file -----------------------------------------------------------------


def test_upgrade_builds_a_fresh_sqlite_file_matching_the_models(fresh_sqlite) -> None:
    # When
    upgrade(fresh_sqlite)
    # Then
    assert current(fresh_sqlite) == head(fresh_sqlite)
    assert schema_diff(fresh_sqlite) == []


def test_downgrade_to_base_leaves_only_the_version_table(fresh_sqlite) -> None:
    # Given
    upgrade(fresh_sqlite)
    # When
    command.downgrade(alembic_config(fresh_sqlite), "base")
    # Then
    assert inspect(fresh_sqlite).get_table_names() == ["alembic_version"]
    assert current(fresh_sqlite) is None


def test_upgrade_after_downgrade_rebuilds_the_schema(fresh_sqlite) -> None:
    # Given
    upgrade(fresh_sqlite)
    command.downgrade(alembic_config(fresh_sqlite), "base")
    # When
    upgrade(fresh_sqlite)
    # Then
    assert current(fresh_sqlite) == head(fresh_sqlite)
    assert schema_diff(fresh_sqlite) == []


def test_sqlite_runs_in_wal_mode(fresh_sqlite, tmp_path: Path) -> None:
    # When
    upgrade(fresh_sqlite)
    # Then: on every connection of the engine, and recorded in the file itself
    with fresh_sqlite.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    raw = sqlite3.connect(tmp_path / "fresh.db")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_sqlite_enforces_foreign_keys_on_every_connection(fresh_sqlite) -> None:
    # Given
    upgrade(fresh_sqlite)
    # When: several connections are open at once
    with fresh_sqlite.connect() as first, fresh_sqlite.connect() as second:
        # Then
        assert first.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert second.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_refuses_a_row_pointing_nowhere(fresh_sqlite) -> None:
    # Given
    upgrade(fresh_sqlite)
    # When / Then
    with pytest.raises(IntegrityError), fresh_sqlite.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO field_domains (team_id, path, "values", created_at, updated_at) '
                "VALUES (987654321, 'deal.stage', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )

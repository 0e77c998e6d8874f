"""SQLite's write-ahead log is copied into the database by a thread, not by a request."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from server.core.db import Checkpointer, make_engine


def autocheckpoint(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())


def test_connections_leave_checkpoints_to_the_thread_which_runs_them(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    engine.dispose()
    checkpointer = Checkpointer(engine, interval=0.05)
    checkpointer.start()
    try:
        # Connections opened while it runs do not checkpoint themselves ...
        assert autocheckpoint(engine) == 0
        with engine.begin() as conn:
            for _ in range(200):
                conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "x" * 2000})
        # ... the thread does: the rows reach the database file itself, not only the log
        # (200 rows of 2 KB: too few pages for SQLite's own checkpoint at 1,000).
        database = tmp_path / "c.db"
        deadline = time.monotonic() + 10
        while database.stat().st_size < 400_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database.stat().st_size >= 400_000
    finally:
        checkpointer.close()
    # Stopped, new connections checkpoint themselves again (SQLite's default).
    engine.dispose()
    assert autocheckpoint(engine) == 1000
    engine.dispose()


def test_postgresql_needs_no_checkpointer() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:5432/postgres")
    checkpointer = Checkpointer(engine)
    checkpointer.start()
    assert checkpointer._thread is None
    checkpointer.close()
    engine.dispose()

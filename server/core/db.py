"""Database engine and session factory for SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import json
import logging
import threading
from typing import Any

import msgspec

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Accept the ``postgres://`` spelling many hosts hand out, and pick psycopg 3 for PostgreSQL."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


log = logging.getLogger("dealflow.db")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets readers go on while one writer commits; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Checkpointer:
    """Copies SQLite's write-ahead log into the database file from a thread of its own.

    By default the commit that fills the log past 1,000 pages does that copy, and its two
    fsyncs, while its request waits: with a save writing a few pages, one request in a few
    hundred pays tens of milliseconds. While a checkpointer runs, the engine's connections
    opened after :meth:`start` leave it to this thread, which runs a passive checkpoint (it
    never blocks readers or writers) every ``interval`` seconds. Connections opened before,
    and processes without a checkpointer (the CLI), keep SQLite's automatic checkpoints.
    """

    def __init__(self, engine: Engine, interval: float = 0.5) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: Any = None

    def start(self) -> None:
        if self.engine.dialect.name != "sqlite" or self._thread is not None:
            return
        self._stop.clear()
        event.listen(self.engine, "connect", self._manual)
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is None:
            return
        event.remove(self.engine, "connect", self._manual)
        self._stop.set()
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            # Still in a checkpoint: it owns the connection; it stops after that one.
            self._thread = None
            return
        self._thread = None
        self.checkpoint()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def checkpoint(self) -> None:
        """One passive checkpoint now, on the thread's own connection (kept out of the pool)."""
        try:
            if self._connection is None:
                self._connection = self.engine.raw_connection()
            self._connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - the next round (or SQLite itself) retries
            log.warning("SQLite checkpoint failed: %s", exc)

    def _manual(self, dbapi_connection: Any, _record: Any) -> None:
        # A listener of this checkpointer's own (several may share an engine in one process).
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.checkpoint()


def _json_dumps(value: Any) -> str:
    return _encoder.encode(value).decode()


_encoder = msgspec.json.Encoder()
def _json_loads(text: str | bytes) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        # Rows written before (NaN and Infinity, which the json module wrote and msgspec
        # refuses to read).
        return json.loads(text)


JSON_CODEC: dict[str, Any] = {
    "json_serializer": _json_dumps,
    "json_deserializer": _json_loads,
}
"""JSON columns (event documents, run logs) through msgspec: several times faster than the
json module on the save path, and NaN or infinity stored as null rather than as text no
JSON reader accepts."""


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` with the settings each backend needs."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False}, **JSON_CODEC)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **JSON_CODEC)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit, so responses can be built from them."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits when the block ends and rolls back if it raises."""
    with factory() as session, session.begin():
        yield session

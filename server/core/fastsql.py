"""Prepared INSERT and UPDATE statements for the save path, run on the session's connection.

A record save writes a handful of rows (the record, an event and a run per event) and must
do so in well under a millisecond. The ORM's unit of work and even a Core statement's
compilation cost far more than the database does, so these few statements are written once
per table and dialect as plain SQL and executed on the DBAPI cursor of the session's own
connection: inside the same transaction as everything else the session does, committed or
rolled back with it.

Values still pass through each column's SQLAlchemy type (its bind processor for the
dialect: JSON serialised, timestamps normalised to UTC, decimals as the driver wants them),
and Python-side column defaults apply to columns left out, exactly as in an ORM insert.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql import sqltypes
from sqlalchemy.engine import BindTyping, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Processor = Callable[[Any], Any] | None


class TableWriter:
    """INSERT and UPDATE of one table for one dialect, with the columns' bind processing."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table
        self.dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        self.qmark = dialect.paramstyle == "qmark"
        self.returning = dialect.name != "sqlite"
        self.columns = {c.name: c for c in table.columns}
        self.processors: dict[str, Processor] = {}
        self.json_columns: set[str] = set()
        self.placeholders: dict[str, str] = {}
        casts = dialect.bind_typing is BindTyping.RENDER_CASTS
        for name, column in self.columns.items():
            impl = column.type.dialect_impl(dialect)
            self.processors[name] = impl.bind_processor(dialect)
            mark = "?" if self.qmark else "%s"
            if casts and getattr(impl, "render_bind_cast", False):
                # A cast to VARCHAR(n) would cut a longer value short without an error (as
                # SQLAlchemy's compiler knows): cast to the unbounded type, let the column refuse.
                bounded = isinstance(impl, sqltypes.String) and impl.length is not None
                mark += "::" + ("VARCHAR" if bounded else dialect.type_compiler_instance.process(impl))
            self.placeholders[name] = mark
            if isinstance(impl, sqltypes.JSON):
                # As the ORM writes it: None is JSON null, not SQL NULL.
                self.json_columns.add(name)
        self.defaults: dict[str, Callable[[], Any]] = {}
        for name, column in self.columns.items():
            default = column.default
            if default is None or name == "id":
                continue
            if default.is_callable:
                arg = default.arg  # type: ignore[attr-defined]
                self.defaults[name] = lambda arg=arg: arg(None)
            elif default.is_scalar:
                value = default.arg  # type: ignore[attr-defined]
                self.defaults[name] = lambda value=value: value
        self.onupdate: dict[str, Callable[[], Any]] = {}
        for name, column in self.columns.items():
            if column.onupdate is not None and column.onupdate.is_callable:
                arg = column.onupdate.arg  # type: ignore[attr-defined]
                self.onupdate[name] = lambda arg=arg: arg(None)
        self._insert_sql: dict[tuple[str, ...], str] = {}
        self._update_sql: dict[tuple[str, ...], str] = {}

    def _bind(self, names: Sequence[str], values: Mapping[str, Any]) -> list[Any]:
        out = []
        for name in names:
            value = values[name]
            processor = self.processors[name]
            if processor is None or (value is None and name not in self.json_columns):
                out.append(value)
            else:
                out.append(processor(value))
        return out

    def complete(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with the Python-side defaults of the columns they leave out."""
        row = dict(values)
        for name, default in self.defaults.items():
            if name not in row:
                row[name] = default()
        return row

    def insert(self, session: Session, values: Mapping[str, Any]) -> int:
        """Insert one row (defaults filled in) and return its id."""
        row = self.complete(values)
        names = tuple(row)
        sql = self._insert_sql.get(names)
        if sql is None:
            sql = self._insert_sql[names] = (
                f"INSERT INTO {self.table.name} ({', '.join(names)}) VALUES "
                f"({', '.join(self.placeholders[n] for n in names)})"
                + (" RETURNING id" if self.returning else "")
            )
        cursor = dbapi(session).cursor()
        params = self._bind(names, row)
        try:
            cursor.execute(sql, params)
            if self.returning:
                return int(cursor.fetchone()[0])
            return int(cursor.lastrowid)
        except self.dbapi_error as exc:
            raise wrapped(sql, params, exc, self.dbapi_error) from exc
        finally:
            cursor.close()

    def update(self, session: Session, row_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
        """Set ``values`` on the row with ``row_id`` (``onupdate`` columns refreshed too);
        returns what was set."""
        row = dict(values)
        for name, default in self.onupdate.items():
            row.setdefault(name, default())
        names = tuple(row)
        sql = self._update_sql.get(names)
        if sql is None:
            assignments = ", ".join(f"{n} = {self.placeholders[n]}" for n in names)
            mark = "?" if self.qmark else "%s"
            sql = self._update_sql[names] = (
                f"UPDATE {self.table.name} SET {assignments} WHERE id = {mark}"
            )
        cursor = dbapi(session).cursor()
        params = [*self._bind(names, row), row_id]
        try:
            cursor.execute(sql, params)
        except self.dbapi_error as exc:
            raise wrapped(sql, params, exc, self.dbapi_error) from exc
        finally:
            cursor.close()
        return row


def wrapped(sql: str, params: Any, exc: Exception, base: type[Exception]) -> Exception:
    """The driver's error as SQLAlchemy raises it (``IntegrityError``, ``OperationalError``
    …), so callers handle it as they handle the ORM's."""
    return DBAPIError.instance(sql, params, exc, base)


def dbapi(session: Session) -> Any:
    """The DBAPI connection of the session's current transaction (begun if need be)."""
    return session.connection().connection


_writers: weakref.WeakKeyDictionary[Dialect, dict[str, TableWriter]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def writer(session: Session, table: Table) -> TableWriter:
    """The cached writer of ``table`` for the dialect the session is bound to."""
    dialect = session.get_bind().dialect
    tables = _writers.get(dialect)
    if tables is None:
        with _lock:
            tables = _writers.setdefault(dialect, {})
    found = tables.get(table.name)
    if found is None:
        found = tables[table.name] = TableWriter(table, dialect)
    return found


class RowReader:
    """``SELECT columns FROM table WHERE a = ? AND b = ?`` for one dialect, the values read
    back through the columns' result processors (JSON parsed, timestamps made aware)."""

    def __init__(self, table: Table, dialect: Dialect, columns: Sequence[str], keys: Sequence[str]) -> None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        self.sql = (
            f"SELECT {', '.join(columns)} FROM {table.name} WHERE "
            + " AND ".join(f"{k} = {mark}" for k in keys)
        )
        self.processors = [
            table.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
            for name in columns
        ]

    def one(self, session: Session, *key_values: Any) -> tuple[Any, ...] | None:
        """The first matching row, or None."""
        cursor = dbapi(session).cursor()
        try:
            cursor.execute(self.sql, key_values)
            found = cursor.fetchone()
        except self.dbapi_error as exc:
            raise wrapped(self.sql, key_values, exc, self.dbapi_error) from exc
        finally:
            cursor.close()
        if found is None:
            return None
        return tuple(
            value if processor is None or value is None else processor(value)
            for value, processor in zip(found, self.processors, strict=True)
        )


_readers: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, tuple[str, ...], tuple[str, ...]], RowReader]] = (
    weakref.WeakKeyDictionary()
)


def reader(session: Session, table: Table, columns: Sequence[str], keys: Sequence[str]) -> RowReader:
    """The cached reader of ``columns`` of ``table`` by ``keys`` for the session's dialect."""
    dialect = session.get_bind().dialect
    readers = _readers.get(dialect)
    if readers is None:
        with _lock:
            readers = _readers.setdefault(dialect, {})
    key = (table.name, tuple(columns), tuple(keys))
    found = readers.get(key)
    if found is None:
        found = readers[key] = RowReader(table, dialect, columns, keys)
    return found

"""The declarative base: naming convention, type map and the columns every table shares."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp: stored as UTC, read back aware on every backend.

    SQLite has no timestamp-with-zone type, so values are normalised to UTC on the way in
    and tagged UTC on the way out; PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# Integer primary keys autoincrement on SQLite only as INTEGER; BIGINT elsewhere.
IdType = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        int: IdType,
    }


class IdMixin:
    """An integer primary key."""

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True, sort_order=-10)


class TimestampMixin:
    """Creation and last-change times."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, sort_order=10)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=10)


class TeamOwned(IdMixin, TimestampMixin):
    """A row that belongs to exactly one team."""

    @declared_attr
    def team_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True, sort_order=-9)

"""Helpers every record service shares: field checks, custom fields, patches, pages, commits."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import Select, update
from sqlalchemy.exc import IntegrityError

from server.core.errors import Conflict, InvalidInput
from server.core.models import Team
from server.core.scope import TeamScope

T = TypeVar("T")

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()./-]{3,30}$")
CUSTOM_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

CustomValue = str | int | float | bool | None
Custom = dict[str, CustomValue]


def check_email(value: str | None, field: str = "email") -> str | None:
    """``value`` if it looks like an email address (or is empty), else :class:`InvalidInput`."""
    if value is None or value == "":
        return None
    value = value.strip()
    if not EMAIL_RE.match(value):
        raise InvalidInput(f"{field}: {value!r} is not an email address", field=field)
    return value


def check_phone(value: str | None, field: str = "phone") -> str | None:
    """``value`` if it looks like a phone number (or is empty), else :class:`InvalidInput`."""
    if value is None or value == "":
        return None
    value = value.strip()
    if not PHONE_RE.match(value):
        raise InvalidInput(
            f"{field}: {value!r} is not a phone number (digits, spaces, + ( ) . - only)",
            field=field,
        )
    return value


def aware(value: dt.datetime, scope: TeamScope) -> dt.datetime:
    """An aware datetime in UTC; a naive one is read in the team's timezone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(scope.info.timezone))
    return value.astimezone(dt.UTC)


def domains(scope: TeamScope) -> dict[str, list[Any]]:
    """The team's field domains, keyed by path (``deal.custom.proposal_type``)."""
    cache = scope.__dict__.get("_domains")
    if cache is None:
        # The workflow index holds them, cached under the team's rules revision. No
        # autoflush: pending, not yet checked changes must reach the database only in
        # flush() or commit(), where a broken unique constraint becomes a 409.
        with scope.session.no_autoflush:
            info = scope.info
            index = scope.engine.index.for_team(scope.session, scope.team_id, info.workflows_rev)
        cache = scope.__dict__["_domains"] = index.domains
    return cache


def check_in_domain(scope: TeamScope, path: str, value: Any, field: str) -> None:
    """Refuse ``value`` when the team declared a domain for ``path`` and it is not in it."""
    allowed = domains(scope).get(path)
    if allowed is not None and value is not None and value not in allowed:
        raise InvalidInput(
            f"{field}: {value!r} is not one of the team's values for {path}: "
            + ", ".join(map(repr, allowed)),
            field=field,
        )


def merge_custom(
    scope: TeamScope, entity: str, current: dict[str, Any] | None, patch: Custom
) -> dict[str, Any]:
    """Merge ``patch`` into ``current`` (a ``null`` removes a key), checking names and domains."""
    merged = dict(current or {})
    for key, value in patch.items():
        if not CUSTOM_KEY_RE.match(key):
            raise InvalidInput(
                f"custom.{key}: custom field names are letters, digits and _ and start with a letter",
                field=f"custom.{key}",
            )
        if value is None:
            merged.pop(key, None)
            continue
        check_in_domain(scope, f"{entity}.custom.{key}", value, f"custom.{key}")
        merged[key] = value
    return merged


def set_fields(row: Any, patch: msgspec.Struct, skip: Iterable[str] = ()) -> list[str]:
    """Copy every field ``patch`` sets (not UNSET) onto ``row``; return the names that changed."""
    changed = []
    skip = set(skip)
    for name in patch.__struct_fields__:
        value = getattr(patch, name)
        if value is msgspec.UNSET or name in skip:
            continue
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(name)
    return changed


def is_set(value: Any) -> bool:
    """Whether a patch field was given."""
    return value is not msgspec.UNSET


def money(value: float | int | Decimal | None, field: str) -> Decimal | None:
    """A two-decimal amount, refusing negative, infinite and absurdly large values."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except ArithmeticError as exc:
        raise InvalidInput(f"{field}: {value!r} is not an amount", field=field) from exc
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e13"):
        raise InvalidInput(f"{field}: must be between 0 and 10^13, got {value!r}", field=field)
    return amount


def to_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class Page(msgspec.Struct):
    """Cursor pagination parameters, already checked."""

    limit: int
    after_id: int | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor points after, or :class:`InvalidInput` naming ``cursor``."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = raw.partition(":")
        if kind != "id":
            raise ValueError(raw)
        last_id = int(number)
        if not 0 <= last_id < 2**63:
            raise ValueError(raw)
        return last_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor: not a cursor this API handed out", field="cursor") from exc


def fetch_page(
    scope: TeamScope, stmt: Select[Any], model: Any, limit: int, cursor: str | None,
    *, newest_first: bool = False,
) -> tuple[Sequence[Any], str | None]:
    """One page of ``stmt`` in id order (descending with ``newest_first``), and the cursor of
    the next page (None on the last)."""
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(model.id < after if newest_first else model.id > after)
    order = model.id.desc() if newest_first else model.id
    rows = scope.session.scalars(stmt.order_by(order).limit(limit + 1)).all()
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].id)
    return rows, None


@contextmanager
def unique(scope: TeamScope, unique_field: str | None) -> Iterator[None]:
    """Around a write: a broken unique constraint rolls the session back and becomes a 409
    naming ``unique_field`` (other integrity errors are raised as they are)."""
    try:
        yield
    except IntegrityError as exc:
        scope.session.rollback()
        if unique_field and "unique" in str(exc.orig).lower():
            raise Conflict(
                f"{unique_field}: another record of this team already has this value",
                field=unique_field,
            ) from exc
        raise


def commit(scope: TeamScope, unique_field: str | None = None) -> None:
    """Commit the scope's session; a broken unique constraint becomes a 409 naming the field."""
    with unique(scope, unique_field):
        scope.session.commit()


def flush(scope: TeamScope, unique_field: str | None = None) -> None:
    """Flush the scope's session (to learn new ids) before :func:`commit`; a broken unique
    constraint becomes a 409 naming the field there too."""
    with unique(scope, unique_field):
        scope.session.flush()


def insert(scope: TeamScope, rtype: Any, state: Any, unique_field: str | None = None) -> None:
    """Write a new record (a :class:`~server.core.records.RecordState`) in one INSERT; a
    broken unique constraint becomes a 409 naming the field, as in :func:`flush`."""
    with unique(scope, unique_field):
        rtype.insert(scope, state)


def saved(
    scope: TeamScope,
    entity: str,
    row: Any,
    previous: dict[str, Any] | None,
    op: str,
    unique_field: str | None = None,
) -> None:
    """Finish a save: flush, let the engine run the team's workflows in this transaction, commit."""
    with unique(scope, unique_field):
        scope.session.flush()
        scope.engine.record_saved(scope, entity, row, previous, op)
        scope.session.commit()


def bump_rules(scope: TeamScope) -> None:
    """Tell every process that this team's workflows or domains changed (its index reloads).

    The new revision is random, not the next number: a transaction that bumps it and rolls
    back must not leave a process holding an index cached under a revision that a later
    change will reuse for different rules."""
    scope.session.execute(
        update(Team).where(Team.id == scope.team_id).values(workflows_rev=secrets.randbits(62))
    )
    scope.session.expire(scope.team, ["workflows_rev"])
    scope.forget_info()

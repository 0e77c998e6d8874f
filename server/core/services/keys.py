"""API keys: issue, list and revoke a team's keys, and resolve a presented key to its actor."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Annotated, Literal

import msgspec
from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from server.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from server.core.keys import SCOPES, digest_matches, generate_key, hash_key, prefix_of
from server.core.models import ApiKey, User, utcnow
from server.core.scope import Actor, TeamScope
from server.core.services import audit
from server.core.services.common import commit

log = logging.getLogger("dealflow.keys")

LAST_USED_EVERY = dt.timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key, not on every request."""

KeyName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
UserId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    """A key to issue."""

    name: KeyName
    """What the key is for (shown in listings)."""
    user_id: UserId | None = None
    """The team's user the key acts as; the caller when left out."""
    scope: Literal["ingest", "read"] | None = None
    """Narrow the key: ``ingest`` only creates and upserts records and posts webhooks,
    ``read`` only reads. Left out, the key acts with its user's role."""


class KeyOut(msgspec.Struct):
    """A key as listings show it: its prefix, never the key or its digest."""

    id: int
    name: str
    prefix: str
    scope: str | None
    user_id: int
    user_email: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class KeyCreated(KeyOut):
    """A key just issued: the only answer that carries the key itself."""

    key: str
    """The bearer key, shown this once; store it now."""


def check_scope(scope: str | None) -> str | None:
    """``scope`` if it is a known scope (or None), else :class:`InvalidInput` naming ``scope``."""
    if scope is not None and scope not in SCOPES:
        raise InvalidInput(f"scope: {scope!r} is not one of {', '.join(SCOPES)}", field="scope")
    return scope


def create_key(session: Session, user: User, *, name: str = "", scope: str | None = None) -> str:
    """A new API key for ``user``, narrowed to ``scope`` if given; the plain key is returned
    here and never stored."""
    key, prefix, digest = generate_key()
    session.add(
        ApiKey(
            team_id=user.team_id,
            user_id=user.id,
            name=name,
            prefix=prefix,
            key_hash=digest,
            scope=check_scope(scope),
        )
    )
    session.flush()
    return key


def revoke_key(session: Session, key_or_prefix: str) -> ApiKey:
    """Revoke a key given in full or by its display prefix (``dfk_abcdef``)."""
    row = _find(session, key_or_prefix)
    if row is None:
        matches = session.scalars(select(ApiKey).where(ApiKey.prefix == key_or_prefix)).all()
        if len(matches) > 1:
            raise Conflict(f"{key_or_prefix}: several keys share this prefix; give the whole key")
        row = matches[0] if matches else None
    if row is None:
        raise NotFound("api key", key_or_prefix)
    row.revoked_at = row.revoked_at or utcnow()
    _forget_on_commit(session)
    return row


def _forget_on_commit(session: Session) -> None:
    """Once the session commits a revoke (not before: a request verifying the key meanwhile
    would read it as valid and remember it), this process stops trusting remembered keys."""
    sa_event.listen(session, "after_commit", lambda _session: forget_verified(), once=True)


def _candidates(session: Session, key: str) -> list[tuple[ApiKey, str]]:
    """The keys sharing ``key``'s indexed prefix, each with its user's role (one query)."""
    stmt = (
        select(ApiKey, User.role)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.prefix == prefix_of(key))
    )
    return [(row, role) for row, role in session.execute(stmt)]


def _match(candidates: list[tuple[ApiKey, str]], key: str) -> tuple[ApiKey, str] | None:
    """The candidate whose digest is ``key``'s, each compared in constant time (no early
    exit), so timing tells nothing about the digest."""
    found = None
    for row, role in candidates:
        if digest_matches(row.key_hash, key):
            found = (row, role)
    return found


def _find(session: Session, key: str) -> ApiKey | None:
    """The row of ``key``, or None."""
    found = _match(_candidates(session, key), key)
    return found[0] if found is not None else None


def authenticate(session: Session, key: str, *, now: dt.datetime | None = None) -> Actor:
    """The actor an API key stands for, or :class:`Unauthorized`. Notes when the key was used
    (at most once a minute)."""
    found = _match(_candidates(session, key), key)
    if found is None or found[0].revoked_at is not None:
        raise Unauthorized("the API key is unknown or revoked")
    row, role = found
    actor = Actor(
        team_id=row.team_id, user_id=row.user_id, role=role, key_id=row.id, scope=row.scope
    )
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        _touch(session, row.id, now)
    return actor


class KeyCache:
    """Recently verified keys of this process, by digest: a request with a key seen in the
    last ``ttl`` seconds skips the database. A key revoked in this process is forgotten at
    once (:func:`forget_verified`); one revoked by another process (a second server, the
    CLI) stops working here within ``ttl`` seconds."""

    def __init__(
        self, ttl: float = 5.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[Actor, float, int]] = {}

    def get(self, digest: str) -> Actor | None:
        found = self._entries.get(digest)
        if found is None:
            return None
        actor, expires, generation = found
        if generation != _generation or self.clock() >= expires:
            self._entries.pop(digest, None)
            return None
        return actor

    def put(self, digest: str, actor: Actor, generation: int) -> None:
        """Remember ``actor``, read from the database while the generation was
        ``generation``: a revoke since then makes the entry stale at once."""
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = (actor, self.clock() + self.ttl, generation)


_generation = 0


def forget_verified() -> None:
    """Make every :class:`KeyCache` of this process verify its keys again (after a revoke)."""
    global _generation
    _generation += 1


def verified(session_factory: Callable[[], Session], cache: KeyCache | None, key: str) -> Actor:
    """:func:`authenticate` through ``cache`` (a new session only when the key is not in it)."""
    if cache is None:
        with session_factory() as session:
            return authenticate(session, key)
    digest = hash_key(key)
    actor = cache.get(digest)
    if actor is None:
        generation = _generation  # before the read: a revoke during it must win
        with session_factory() as session:
            actor = authenticate(session, key)
        cache.put(digest, actor, generation)
    return actor


def _touch(session: Session, key_id: int, now: dt.datetime) -> None:
    # Bookkeeping only: a busy database must not turn a valid key into an error.
    try:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
        session.commit()
    except OperationalError as exc:
        session.rollback()
        log.warning("could not note the use of API key %s: %s", key_id, exc.orig)


# --- the team's keys, as its admins manage them over HTTP -------------------------------------


def _out(row: ApiKey, email: str) -> KeyOut:
    return KeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scope=row.scope,
        user_id=row.user_id,
        user_email=email,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def list_(scope: TeamScope) -> list[KeyOut]:
    """The team's keys, revoked ones included, oldest first."""
    rows = scope.session.execute(
        scope.select(ApiKey, ApiKey, User.email)
        .join(User, User.id == ApiKey.user_id)
        .order_by(ApiKey.id)
    ).all()
    return [_out(row, email) for row, email in rows]


def create(scope: TeamScope, data: KeyIn) -> KeyCreated:
    """Issue a key for the caller or another user of the team."""
    user_id = scope.actor.user_id if data.user_id is None else data.user_id
    user = scope.get(User, user_id, field="user_id")
    key = create_key(scope.session, user, name=data.name, scope=data.scope)
    row = scope.session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one()
    out = _out(row, user.email)
    audit.record(scope, "key.create", row.id, None, key_summary(row, user.email))
    commit(scope)
    return KeyCreated(**msgspec.structs.asdict(out), key=key)


def revoke(scope: TeamScope, key_id: int) -> None:
    """Revoke one of the team's keys; revoking a revoked key changes nothing."""
    row = scope.get(ApiKey, key_id)
    if row.revoked_at is not None:
        return
    before = key_summary(row)
    row.revoked_at = utcnow()
    _forget_on_commit(scope.session)
    audit.record(scope, "key.revoke", row.id, before, {**before, "revoked": True})
    commit(scope)


def key_summary(row: ApiKey, email: str | None = None) -> dict[str, object]:
    """What the audit log keeps of a key: never the key or its digest."""
    out: dict[str, object] = {"name": row.name, "prefix": row.prefix, "scope": row.scope,
                              "user_id": row.user_id}
    if email is not None:
        out["user_email"] = email
    return out

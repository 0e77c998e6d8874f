"""Console sessions: open one with an API key or a password, find it from its cookie, end it."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.core.errors import InvalidInput, Unauthorized
from server.core.models import ApiKey, ConsoleSession, Team, User, utcnow
from server.core.passwords import check_new_password, hash_password, verify_password
from server.core.scope import Actor
from server.core.services import keys

LIFETIME = dt.timedelta(hours=12)
"""A session ends this long after sign-in, whatever happens meanwhile."""

CONSOLE_KINDS = ("admin", "member", "read")
"""Kinds of caller that may sign in: ``read`` keys sign in read-only; ``ingest`` keys, which
cannot read, are refused."""


@dataclass(frozen=True)
class Opened:
    """A session just opened: the token for the cookie (never stored) and its CSRF token."""

    token: str
    csrf_token: str
    actor: Actor


@dataclass(frozen=True)
class Current:
    """The session a request's cookie names, as it stands now."""

    id: int
    actor: Actor
    email: str
    csrf_token: str

    @property
    def kind(self) -> str:
        """``admin``, ``member`` or ``read``: the key's scope, else the user's role."""
        return self.actor.scope or self.actor.role


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _open(session: Session, actor: Actor, now: dt.datetime) -> Opened:
    kind = actor.scope or actor.role
    if kind not in CONSOLE_KINDS:
        raise Unauthorized(f"a key with the {kind} scope cannot sign in to the console")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            team_id=actor.team_id,
            token_hash=_digest(token),
            user_id=actor.user_id,
            key_id=actor.key_id,
            role=kind,
            csrf_token=csrf,
            expires_at=now + LIFETIME,
        )
    )
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    session.commit()
    return Opened(token, csrf, actor)


def open_with_key(session: Session, key: str, *, now: dt.datetime | None = None) -> Opened:
    """Sign in with an API key: the session acts as the key does, or :class:`Unauthorized`."""
    return _open(session, keys.authenticate(session, key.strip()), now or utcnow())


def open_with_password(
    session: Session, email: str, password: str, *, now: dt.datetime | None = None
) -> Opened:
    """Sign in with a user's email and password (the one team whose user has that email and
    whose password matches), or :class:`Unauthorized` saying nothing about which was wrong."""
    users = session.scalars(select(User).where(User.email == email.strip())).all()
    found = None
    if not users:
        verify_password(None, password)  # the same work as for a user, so timing says nothing
    for user in users:
        if verify_password(user.password_hash, password):
            found = user
    if found is None:
        raise Unauthorized("the email or the password is wrong")
    actor = Actor(team_id=found.team_id, user_id=found.id, role=found.role)
    return _open(session, actor, now or utcnow())


def current(session: Session, token: str, *, now: dt.datetime | None = None) -> Current | None:
    """The live session of ``token``; None when unknown, expired, its key revoked or its user
    gone. The role is read again from the user (and the key's scope) on every request."""
    now = now or utcnow()
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == _digest(token)))
    if row is None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.team_id != row.team_id:
        return None
    scope = None
    if row.key_id is not None:
        key = session.get(ApiKey, row.key_id)
        if key is None or key.revoked_at is not None:
            return None
        scope = key.scope
    actor = Actor(
        team_id=row.team_id,
        user_id=user.id,
        role=user.role,
        key_id=row.key_id,
        scope=scope,
        via="console",
    )
    return Current(row.id, actor, user.email, row.csrf_token)


def end(session: Session, token: str) -> None:
    """Sign out: the session's row is deleted, so its cookie no longer works anywhere."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _digest(token)))
    session.commit()


def set_password(session: Session, team: Team, email: str, password: str) -> User:
    """Set the console password of ``team``'s user ``email``; every session of theirs ends."""
    problem = check_new_password(password)
    if problem:
        raise InvalidInput(f"password: {problem}", field="password")
    user = session.scalar(
        select(User).where(User.team_id == team.id, User.email == email.strip())
    )
    if user is None:
        raise InvalidInput(f"email: team {team.name!r} has no user {email!r}", field="email")
    user.password_hash = hash_password(password)
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    return user

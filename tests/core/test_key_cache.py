"""Verified API keys are remembered for a few seconds, and forgotten at once on a revoke."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from server.core.db import make_session_factory
from server.core.errors import Unauthorized
from server.core.models import ApiKey, utcnow
from server.core.scope import TeamScope
from server.core.services import keys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingFactory:
    """A session factory that counts the sessions opened (one per database look-up)."""

    def __init__(self, engine: Any) -> None:
        self.factory = make_session_factory(engine)
        self.opened = 0

    def __call__(self) -> Session:
        self.opened += 1
        return self.factory()


def revoke_elsewhere(engine: Any, key_id: int) -> None:
    """Revoke as another process would: straight in the database, this process not told."""
    with Session(engine) as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=utcnow()))
        session.commit()


def test_a_key_seen_recently_is_not_looked_up_again(engine: Any, team: Any) -> None:
    factory, cache = CountingFactory(engine), keys.KeyCache(clock=Clock())
    first = keys.verified(factory, cache, team.key)
    again = [keys.verified(factory, cache, team.key) for _ in range(5)]
    assert factory.opened == 1
    assert all(actor == first for actor in again)
    assert (first.team_id, first.user_id, first.role) == (team.team_id, team.user_id, "admin")


def test_a_key_revoked_elsewhere_stops_working_when_its_entry_expires(
    engine: Any, team: Any
) -> None:
    clock = Clock()
    factory, cache = CountingFactory(engine), keys.KeyCache(ttl=5.0, clock=clock)
    actor = keys.verified(factory, cache, team.key)
    revoke_elsewhere(engine, actor.key_id)  # type: ignore[arg-type]

    clock.now += 4.9
    assert keys.verified(factory, cache, team.key) == actor  # still within the 5 s
    clock.now += 0.2
    with pytest.raises(Unauthorized):
        keys.verified(factory, cache, team.key)


def test_a_key_revoked_in_this_process_is_refused_at_once(engine: Any, team: Any) -> None:
    factory, cache = CountingFactory(engine), keys.KeyCache(clock=Clock())
    actor = keys.verified(factory, cache, team.key)
    with factory() as session:
        keys.revoke(TeamScope(session, actor), actor.key_id)  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        keys.verified(factory, cache, team.key)


def test_a_key_revoked_while_it_is_being_verified_is_not_remembered(
    engine: Any, team: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a revoke that commits while another request reads the key (not yet revoked)
    factory, cache = CountingFactory(engine), keys.KeyCache(clock=Clock())
    read = keys.authenticate

    def read_then_revoked(session: Session, key: str) -> Any:
        actor = read(session, key)
        with factory() as other:
            keys.revoke(TeamScope(other, actor), actor.key_id)
        return actor

    monkeypatch.setattr(keys, "authenticate", read_then_revoked)
    keys.verified(factory, cache, team.key)  # the request that raced the revoke
    monkeypatch.setattr(keys, "authenticate", read)

    # Then the next request does not take the key from the cache: it is refused
    with pytest.raises(Unauthorized):
        keys.verified(factory, cache, team.key)


def test_an_unknown_key_is_never_remembered(engine: Any, team: Any) -> None:
    factory, cache = CountingFactory(engine), keys.KeyCache(clock=Clock())
    for _ in range(3):
        with pytest.raises(Unauthorized):
            keys.verified(factory, cache, team.key + "x")
    assert factory.opened == 3

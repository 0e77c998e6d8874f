"""Per-key rate limits: a token bucket per API key answering 429 with ``Retry-After``, in the
process (time moved by a test clock) and in Redis, shared by two real server processes."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from conftest import _migrated_sqlite
from server.api import auth
from helpers import assert_problem
from processes import DEALFLOW, Process, RedisServer, free_port, wait_until
from server.core.db import make_engine, make_session_factory, transaction
from server.core.errors import ConfigError
from server.core.ratelimit import REDIS_PREFIX, LocalBuckets, RedisBuckets, make_buckets
from server.core.services.teams import create_team
from server.settings import Settings, load_settings

URL = "/api/v1/workflows"


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limit(app: Litestar, clock: Clock) -> Iterator[Callable[..., LocalBuckets]]:
    """``limit(rate=..., burst=...)`` puts in-process buckets on the test clock in the app."""
    before = app.state.rate_limiter

    def install(*, rate: float, burst: int) -> LocalBuckets:
        app.state.rate_limiter = LocalBuckets(rate, burst, clock=clock)
        return app.state.rate_limiter

    yield install
    app.state.rate_limiter = before


def statuses(client: TestClient[Litestar], n: int, **kwargs: Any) -> list[int]:
    return [client.get(URL, **kwargs).status_code for _ in range(n)]


# --- in-process buckets ----------------------------------------------------------------------


def test_a_key_gets_its_burst_then_429_with_retry_after(api: TestClient[Litestar], limit) -> None:
    # Given a burst of 3 and one request every 2 s after that
    limit(rate=0.5, burst=3)

    # When the key makes 3 requests at once
    answers = [api.get(URL) for _ in range(3)]

    # Then each goes through, saying what is left
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
    assert {r.headers["RateLimit-Limit"] for r in answers} == {"3"}

    # When it makes a fourth
    refused = api.get(URL)

    # Then it is a 429 problem saying when to retry (a token comes back in 2 s)
    body = assert_problem(refused, 429)
    assert body["type"] == "urn:dealflow:problem:rate-limited"
    assert refused.headers["Retry-After"] == "2"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert body["retry_after"] == 2
    assert "DEALFLOW_RATE_LIMIT_PER_SECOND" in body["detail"]
    assert "this API key" in body["detail"]


def test_the_bucket_refills_with_time_up_to_its_burst(
    api: TestClient[Litestar], limit, clock: Clock
) -> None:
    # Given a key that spent its burst of 2 (one token a second)
    limit(rate=1, burst=2)
    assert statuses(api, 2) == [200, 200]
    assert api.get(URL).headers["Retry-After"] == "1"

    # When half a second passes, then another half
    clock.now += 0.5
    half = api.get(URL)
    clock.now += 0.5
    whole = api.get(URL)

    # Then half a token is not enough (retry in 1 s, rounded up), a whole one is
    assert half.status_code == 429 and half.headers["Retry-After"] == "1"
    assert whole.status_code == 200

    # When a long time passes, the bucket holds its burst again and no more
    clock.now += 3600
    assert statuses(api, 3) == [200, 200, 429]


def test_two_keys_have_separate_buckets(api: TestClient[Litestar], make_team, limit) -> None:
    # Given team A's key, which spent its burst
    limit(rate=0.1, burst=2)
    assert statuses(api, 3) == [200, 200, 429]

    # When team B's key asks
    other = make_team("Beta")

    # Then B's bucket is full, and A's is still empty
    assert statuses(api, 2, headers=other.headers) == [200, 200]
    assert api.get(URL).status_code == 429


def test_requests_refused_for_their_key_are_not_counted_against_a_key(
    client: TestClient[Litestar], team, limit
) -> None:
    # Given a burst of 2
    limit(rate=0.1, burst=2)

    # When requests without a key, and with an unknown key, keep coming
    missing = statuses(client, 5)
    unknown = statuses(client, 5, headers={"Authorization": "Bearer dfk_not-a-real-key-at-all"})

    # Then each is a 401 (authentication comes first), and the real key's bucket is untouched
    assert missing == unknown == [401] * 5
    assert statuses(client, 3, headers=team.headers) == [200, 200, 429]


def test_health_and_schema_are_not_limited(api: TestClient[Litestar], limit) -> None:
    # Given a key that spent its burst of 1
    limit(rate=0.1, burst=1)
    assert statuses(api, 2) == [200, 429]

    # Then health checks and the schema still answer, without rate-limit headers
    for path in ["/healthz"] * 3 + ["/schema/openapi.json"] * 2:
        resp = api.get(path)
        assert resp.status_code == 200, path
        assert "RateLimit-Limit" not in resp.headers


def test_the_public_webhook_route_is_limited_per_client_address(
    client: TestClient[Litestar], team, limit
) -> None:
    # Given a burst of 1
    limit(rate=0.1, burst=1)
    hook = f"/api/v1/hooks/{team.team_id}/lead-form"

    # When a sender without an API key posts twice (unsigned, so the first is refused)
    first = client.post(hook, content=b"{}")
    second = client.post(hook, content=b"{}")

    # Then the second is limited by the sender's address, which is not the team's key
    assert first.status_code == 401
    body = assert_problem(second, 429)
    assert "this address" in body["detail"]
    assert statuses(client, 1, headers=team.headers) == [200]


# --- settings --------------------------------------------------------------------------------


def test_the_limits_are_settings_and_a_rate_of_zero_turns_them_off() -> None:
    settings = load_settings(
        {"DEALFLOW_RATE_LIMIT_PER_SECOND": "2.5", "DEALFLOW_RATE_LIMIT_BURST": "7"}
    )
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (2.5, 7)
    local = make_buckets(settings)
    assert isinstance(local, LocalBuckets) and (local.rate, local.burst) == (2.5, 7)
    shared = make_buckets(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(shared, RedisBuckets)
    assert make_buckets(Settings(rate_limit_per_second=0)) is None
    with pytest.raises(ConfigError, match="DEALFLOW_RATE_LIMIT_PER_SECOND"):
        make_buckets(Settings(rate_limit_per_second=-1))
    with pytest.raises(ConfigError, match="DEALFLOW_RATE_LIMIT_BURST"):
        make_buckets(Settings(rate_limit_burst=0))


def test_the_in_process_store_forgets_full_buckets(clock: Clock, monkeypatch) -> None:
    import server.core.ratelimit as ratelimit

    # Given a store that prunes above 3 buckets
    monkeypatch.setattr(ratelimit, "PRUNE_ABOVE", 3)
    buckets = LocalBuckets(1, 2, clock=clock)
    for n in range(3):
        buckets.take_now(f"ip:10.0.0.{n}")

    # When they have all refilled and a fourth key comes
    clock.now += 10
    buckets.take_now("ip:10.0.0.9")
    buckets.take_now("ip:10.0.0.8")

    # Then the refilled ones are forgotten, the ones in use kept
    assert set(buckets._buckets) == {"ip:10.0.0.9", "ip:10.0.0.8"}


# --- Redis -----------------------------------------------------------------------------------


def test_redis_buckets_are_one_bucket_for_every_process_and_refill_by_redis_time(
    redis_server: RedisServer,
) -> None:
    # Given two stores on the same Redis, as two server processes have
    first = RedisBuckets(redis_server.url, 1, 3)
    second = RedisBuckets(redis_server.url, 1, 3)

    async def alternate(n: int) -> list[bool]:
        stores = [first, second]
        return [(await stores[i % 2].take("key:1")).allowed for i in range(n)]

    # When they take tokens in turn
    taken = asyncio.run(alternate(6))

    # Then they drew on one bucket of 3, kept in Redis with an expiry
    assert taken == [True, True, True, False, False, False]
    client = redis.Redis.from_url(redis_server.url)
    assert 0 < client.ttl(REDIS_PREFIX + "key:1") <= 4
    assert asyncio.run(first.take("key:2")).remaining == 2  # another key, another bucket

    # When Redis's record says the last take was 10 s ago (Redis's clock, not ours)
    at = float(client.hget(REDIS_PREFIX + "key:1", "at"))
    client.hset(REDIS_PREFIX + "key:1", "at", str(at - 10))

    # Then the bucket refilled, up to its burst
    refilled = asyncio.run(second.take("key:1"))
    assert (refilled.allowed, refilled.remaining) == (True, 2)


def test_unreachable_redis_lets_requests_through_with_a_warning(
    free_port: Callable[[], int], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a store whose Redis does not answer
    buckets = RedisBuckets(f"redis://127.0.0.1:{free_port()}/0", 1, 1)

    # When requests come
    async def takes() -> list[bool]:
        return [(await buckets.take("key:1")).allowed for _ in range(3)]

    with caplog.at_level(logging.WARNING, logger="dealflow.ratelimit"):
        allowed = asyncio.run(takes())

    # Then they go through (past the burst of 1), and the outage is logged once
    assert allowed == [True, True, True]
    warnings = [r.getMessage() for r in caplog.records if r.name == "dealflow.ratelimit"]
    assert len(warnings) == 1 and "rate limits are not enforced" in warnings[0]


def test_two_server_processes_sharing_redis_share_one_bucket_per_key(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # Given a team on a database, and two `dealflow serve` processes on it and on one Redis,
    # with a burst of 4 and about one token every 100 s after it
    database = _migrated_sqlite(tmp_path)
    engine = make_engine(database)
    with transaction(make_session_factory(engine)) as session:
        _team, _user, key = create_team(session, "Acme", admin_email="admin@acme.test")
    engine.dispose()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DEALFLOW_") and k not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(
        DATABASE_URL=database,
        REDIS_URL=redis_server.url,
        DEALFLOW_RATE_LIMIT_PER_SECOND="0.01",
        DEALFLOW_RATE_LIMIT_BURST="4",
        PYTHONUNBUFFERED="1",
    )
    servers = []
    try:
        for n in range(2):
            port = free_port()
            command = [*DEALFLOW, "serve", "--port", str(port), "--log-level", "warning"]
            proc = Process(f"server{n}", command, env, tmp_path / f"server{n}.log").start()
            servers.append((proc, f"http://127.0.0.1:{port}"))
            wait_until(lambda base=servers[-1][1]: _healthy(base), 30, f"server{n}", proc)

        # When the key's requests alternate between the two servers
        headers = {"Authorization": f"Bearer {key}"}
        answers = []
        for n in range(10):
            proc, base = servers[n % 2]
            answers.append((n % 2, httpx.get(base + URL, headers=headers, timeout=10)))
    finally:
        for proc, _base in servers:
            proc.kill()

    # Then the two accepted 4 between them (one bucket, not one each), and then both refused
    assert [r.status_code for _, r in answers] == [200] * 4 + [429] * 6, [
        (r.status_code, r.text) for _, r in answers
    ]
    refused_by = {server for server, r in answers if r.status_code == 429}
    assert refused_by == {0, 1}
    for _, resp in answers[4:]:
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert int(resp.headers["Retry-After"]) >= 1


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# --- failed authentications --------------------------------------------------------------------


@pytest.fixture
def failures(app: Litestar, clock: Clock) -> Iterator[LocalBuckets]:
    """The app's per-address buckets of failed authentications, on the test clock."""
    before = app.state.auth_failures
    app.state.auth_failures = LocalBuckets(
        auth.AUTH_FAILURE_RATE, auth.AUTH_FAILURE_BURST, clock=clock
    )
    yield app.state.auth_failures
    app.state.auth_failures = before


def test_an_address_presenting_wrong_keys_waits_and_valid_keys_still_pass(
    client: TestClient[Litestar], make_team, failures: LocalBuckets, clock: Clock
) -> None:
    wrong = {"Authorization": "Bearer dfk_guessing-guessing-guessing-guessing"}

    # When one address presents wrong keys past the allowance
    answers = statuses(client, auth.AUTH_FAILURE_BURST + 2, headers=wrong)

    # Then the allowance answers 401, the rest 429 with Retry-After
    assert answers == [401] * auth.AUTH_FAILURE_BURST + [429, 429]
    refused = client.get(URL, headers=wrong)
    body = assert_problem(refused, 429)
    assert body["retry_after"] == int(refused.headers["Retry-After"]) == 1 / auth.AUTH_FAILURE_RATE
    # ... while a valid key, never seen before, still passes from the same address
    assert client.get(URL, headers=make_team("Other").headers).status_code == 200
    # ... and one more try is allowed once the bucket refilled a token
    clock.now += 1 / auth.AUTH_FAILURE_RATE
    assert statuses(client, 2, headers=wrong) == [401, 429]


def test_failed_authentications_are_only_limited_when_rate_limits_are_on() -> None:
    assert auth.failure_buckets(True) is not None
    assert auth.failure_buckets(False) is None

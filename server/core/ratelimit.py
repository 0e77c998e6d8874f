"""Token buckets for per-key rate limits: in this process, or in Redis shared by all of them."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.core.errors import ConfigError
from server.settings import Settings

log = logging.getLogger("dealflow.ratelimit")

REDIS_PREFIX = "dealflow:rl:"
"""Redis keys of the buckets: ``dealflow:rl:<bucket key>``, each a hash that expires once
the bucket would be full again."""
PRUNE_ABOVE = 10_000
"""The in-process store forgets its full buckets when it holds more than this many."""
REDIS_TIMEOUT = 0.5
"""Seconds a bucket may wait for Redis before the request goes through unlimited."""
REDIS_BACKOFF = 5.0
"""Seconds the Redis store leaves Redis alone (letting requests through) after a failure."""


@dataclass(frozen=True)
class Decision:
    """Whether a request may go on, what is left of its bucket and, if not, when to retry."""

    allowed: bool
    remaining: int
    retry_after: int
    """Whole seconds until a token is back (at least 1) when refused; 0 when allowed."""


class Buckets(Protocol):
    """A store of token buckets, one per key, each holding at most ``burst`` tokens and
    refilled with ``rate`` tokens a second; a request takes one."""

    rate: float
    burst: int

    async def take(self, key: str) -> Decision:
        """Called for each limited request: take a token from ``key``'s bucket if it has one."""
        ...


def _decision(allowed: bool, tokens: float, rate: float) -> Decision:
    if allowed:
        return Decision(True, max(0, math.floor(tokens)), 0)
    return Decision(False, 0, max(1, math.ceil((1 - tokens) / rate)))


class LocalBuckets:
    """Buckets in this process's memory (the embedded server, or one process on its own).

    ``clock`` gives monotonic seconds; tests pass their own to move time without waiting."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def take(self, key: str) -> Decision:
        return self.take_now(key)

    def take_now(self, key: str) -> Decision:
        """:meth:`take`, for callers outside an event loop."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > PRUNE_ABOVE:
                self._prune(now)
        return _decision(allowed, tokens, self.rate)

    def _prune(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: forget it.
        full = [
            key
            for key, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


# Refill and take in one step on the Redis server, with the Redis server's clock: the
# processes sharing the bucket need not agree on the time. Redis 5+ replicates the
# script's effects, so reading TIME before writing is allowed.
TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets in Redis, shared by every server process pointed at it.

    When Redis cannot be reached the request goes through (failing open: an outage of the
    limiter must not take the API down with it), a warning is logged at most once a
    minute, and Redis is left alone for :data:`REDIS_BACKOFF` seconds."""

    def __init__(self, url: str, rate: float, burst: int) -> None:
        self.url = url
        self.rate = rate
        self.burst = burst
        self.ttl = math.ceil(burst / rate) + 1
        self._client: tuple[asyncio.AbstractEventLoop, Redis, Any] | None = None
        self._down_until = 0.0
        self._warned_at = -math.inf

    def _script(self) -> Any:
        # An asyncio client belongs to the event loop it was made on: a server has one
        # loop; each test client starts its own.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            client = Redis.from_url(
                self.url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
            )
            self._client = (loop, client, client.register_script(TAKE_SCRIPT))
        return self._client[2]

    async def take(self, key: str) -> Decision:
        if time.monotonic() < self._down_until:
            return Decision(True, self.burst, 0)
        try:
            allowed, tokens = await self._script()(
                keys=[REDIS_PREFIX + key], args=[self.rate, self.burst, self.ttl]
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return Decision(True, self.burst, 0)
        return _decision(bool(allowed), float(tokens), self.rate)

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._down_until = now + REDIS_BACKOFF
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning(
                "rate limits are not enforced: Redis at REDIS_URL cannot be reached (%s: %s); "
                "requests go through until it answers again",
                type(exc).__name__,
                exc,
            )

    async def close(self) -> None:
        """Called when the server stops: close the connections of this loop's client."""
        if self._client is not None and self._client[0] is asyncio.get_running_loop():
            await self._client[1].aclose()
        self._client = None


def key_bucket(key_id: int) -> str:
    """The bucket an API key draws on: over the API and through a console session alike."""
    return f"key:{key_id}"


def make_buckets(settings: Settings) -> Buckets | None:
    """The buckets ``settings`` ask for: in Redis when ``REDIS_URL`` is set, in memory
    otherwise, or None when rate limiting is off (a rate of 0)."""
    rate, burst = settings.rate_limit_per_second, settings.rate_limit_burst
    if rate == 0:
        return None
    if rate < 0 or not math.isfinite(rate):
        raise ConfigError(
            f"DEALFLOW_RATE_LIMIT_PER_SECOND must be a positive number (0 turns limits off), "
            f"got {rate}"
        )
    if burst < 1:
        raise ConfigError(f"DEALFLOW_RATE_LIMIT_BURST must be at least 1, got {burst}")
    if settings.redis_url:
        return RedisBuckets(settings.redis_url, rate, burst)
    return LocalBuckets(rate, burst)


__all__ = ["Buckets", "Decision", "LocalBuckets", "RedisBuckets", "make_buckets"]

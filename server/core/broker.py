"""The dramatiq broker: Redis at scale, an in-memory broker for the embedded default."""

from __future__ import annotations

from typing import Any

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

QUEUE = "dealflow"
ACTOR = "perform_execution"


def make_broker(redis_url: str | None, **redis_options: Any) -> Broker:
    """A Redis broker for ``redis_url``, or an in-memory one (for the in-process worker).

    Only the Retries middleware is installed: it re-delivers a message whose handling
    failed for want of the database. An action's own failures are retried by Dealflow,
    from the execution's row, so they survive a restart of everything.
    """
    middleware = [Retries(max_retries=10, min_backoff=500, max_backoff=60_000)]
    if redis_url:
        import redis
        from dramatiq.brokers.redis import RedisBroker

        # A broker that is down must not hang the relay: fail fast, try again later.
        options = {"socket_connect_timeout": 2, "socket_timeout": 10, **redis_options}
        client = redis.Redis.from_url(redis_url, **options)
        return RedisBroker(client=client, middleware=middleware, namespace="dealflow")
    broker = StubBroker(middleware=middleware)
    broker.fail_fast_default = False
    return broker


def in_memory(broker: Broker) -> bool:
    """Whether the broker's messages live in this process only (lost when it dies)."""
    return isinstance(broker, StubBroker)

"""Server settings read from the environment, or from an optional TOML file."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from server.core.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///dealflow.db"


@dataclass(frozen=True)
class Settings:
    """Everything the server, the CLI and the workers read from their environment.

    Each field is set by the upper-cased environment variable of the same name
    (``database_url`` by ``DATABASE_URL``, ``secret_key`` by ``DEALFLOW_SECRET_KEY``...),
    or by the same key in the TOML file named by ``DEALFLOW_CONFIG``. The environment wins.
    """

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL of the database; a SQLite file in the working directory by default."""

    redis_url: str | None = None
    """Redis URL for the dramatiq broker; unset means the in-process worker."""

    smtp_url: str | None = None
    """``smtp://user:pass@host:port`` (``smtps://`` for TLS) used by the email action."""

    secret_key: str | None = None
    """Key that encrypts stored plugin credentials."""

    secret_key_previous: tuple[str, ...] = ()
    """Earlier secret keys, still accepted for decrypting while ``dealflow secret rotate``
    re-encrypts what they encrypted under ``secret_key`` (comma-separated)."""

    plugins_disable: tuple[str, ...] = ()
    """Names of plugins not to load."""

    outbound_allow: tuple[str, ...] = ()
    """Hosts, IP addresses and CIDR blocks that outbound requests (plugins, webhook actions)
    may reach although they are loopback, private, link-local or otherwise not public, such
    as ``127.0.0.1,localhost,10.0.0.0/8``; empty: none (see ``server.core.outbound``)."""

    max_body_size: int = 1_048_576
    """Largest request body accepted, in bytes; larger ones get 413."""

    page_size_max: int = 200
    """Largest page a list endpoint returns."""

    debug: bool = False
    """Serve tracebacks in error responses (never in production)."""

    webhook_max_body_size: int = 262_144
    """Largest inbound webhook body accepted, in bytes; larger ones get 413."""

    execution_lease_seconds: int = 300
    """How long a worker holds a running execution before another may take it over (the
    longest a side-effect action may run)."""

    relay_interval: float = 1.0
    """Seconds between the relay's scans for executions to hand to the broker (new ones
    left by a crash or an outage, retries that came due, leases that ran out)."""

    redelivery_seconds: int = 600
    """A queued execution no worker has taken up after this long is sent again (its
    message was lost with the broker's data)."""

    event_hook_lease_seconds: float = 60.0
    """How long the process that saved an event has to call the ``dealflow_event`` hooks
    before any relay may do it instead (the process crashed); a relay's delivery holds an
    event for twice as long before another relay may take it over."""

    worker_threads: int = 4
    """Threads per worker process (and of the in-process worker)."""

    schedule_interval: float = 60.0
    """Seconds between scans for due ``schedule`` occurrences (SLA breaches, silent contacts,
    approaching close dates) in ``dealflow serve`` and ``dealflow worker``; 0 turns this
    process's scanner off."""

    rate_limit_per_second: float = 20.0
    """Requests per second each API key may make once its burst is spent (a token bucket
    refilled at this rate); 0 turns rate limiting off. Shared through Redis when
    ``REDIS_URL`` is set, so the limit holds across server processes."""

    rate_limit_burst: int = 100
    """Requests an API key may make at once: the token bucket's capacity."""

    max_workflows_per_team: int = 500
    """Most workflows a team may have; creating one more is refused with 409."""

    max_actions_per_workflow: int = 50
    """Most actions one workflow may list; more is refused with 422 naming ``$.actions``."""

    max_depth: int = 5
    """Deepest chain of workflow-caused events followed: changes made by workflows' record
    actions, and webhooks that workflows' side effects post back to a Dealflow hook (counted
    by the ``Dealflow-Hops`` header). The event past it is recorded in the run log, not run;
    the save that started the chain still succeeds. A positive integer."""

    max_events_per_change: int = 50
    """Most follow-up events one change may cause across its whole cascade (the events of
    workflow-made changes, and of the records a webhook addresses); past it, what would have
    followed is recorded in the run log as refused. A positive integer."""

    max_executions_per_change: int = 100
    """Most side-effect executions (emails, HTTP pushes, notifications) one change may queue,
    its follow-up events included; past it, each further side effect is recorded in the run
    log as refused. A positive integer."""

    extra: dict[str, str] = field(default_factory=dict)
    """Keys of the TOML file that no field above names, and ``DEALFLOW_PLUGIN_<KEY>``
    environment variables (as ``<key>``, lower case; the environment wins), for plugins."""

    def __post_init__(self) -> None:
        # Settings built in code (tests, embedding) are held to what the loader enforces.
        for name in POSITIVE:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(_not_positive(_ENV_NAMES[name], name, value))
        lease = self.event_hook_lease_seconds
        if not (isinstance(lease, int | float) and LEASE_RANGE[0] <= lease <= LEASE_RANGE[1]):
            raise ConfigError(
                f"{_ENV_NAMES['event_hook_lease_seconds']}: event_hook_lease_seconds must be "
                f"from {LEASE_RANGE[0]:g} to {LEASE_RANGE[1]:g} seconds, got {lease!r}"
            )


_ENV_NAMES = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "smtp_url": "SMTP_URL",
    "secret_key": "DEALFLOW_SECRET_KEY",
    "secret_key_previous": "DEALFLOW_SECRET_KEY_PREVIOUS",
    "plugins_disable": "DEALFLOW_PLUGINS_DISABLE",
    "outbound_allow": "DEALFLOW_OUTBOUND_ALLOW",
    "max_body_size": "DEALFLOW_MAX_BODY_SIZE",
    "page_size_max": "DEALFLOW_PAGE_SIZE_MAX",
    "debug": "DEALFLOW_DEBUG",
    "webhook_max_body_size": "DEALFLOW_WEBHOOK_MAX_BODY_SIZE",
    "execution_lease_seconds": "DEALFLOW_EXECUTION_LEASE_SECONDS",
    "relay_interval": "DEALFLOW_RELAY_INTERVAL",
    "redelivery_seconds": "DEALFLOW_REDELIVERY_SECONDS",
    "event_hook_lease_seconds": "DEALFLOW_EVENT_HOOK_LEASE_SECONDS",
    "worker_threads": "DEALFLOW_WORKER_THREADS",
    "schedule_interval": "DEALFLOW_SCHEDULE_INTERVAL",
    "rate_limit_per_second": "DEALFLOW_RATE_LIMIT_PER_SECOND",
    "rate_limit_burst": "DEALFLOW_RATE_LIMIT_BURST",
    "max_workflows_per_team": "DEALFLOW_MAX_WORKFLOWS_PER_TEAM",
    "max_actions_per_workflow": "DEALFLOW_MAX_ACTIONS_PER_WORKFLOW",
    "max_depth": "DEALFLOW_MAX_DEPTH",
    "max_events_per_change": "DEALFLOW_MAX_EVENTS_PER_CHANGE",
    "max_executions_per_change": "DEALFLOW_MAX_EXECUTIONS_PER_CHANGE",
}
_BY_VARIABLE = {var: name for name, var in _ENV_NAMES.items()}
PLUGIN_PREFIX = "DEALFLOW_PLUGIN_"
"""Environment variables ``DEALFLOW_PLUGIN_<KEY>`` set ``extra[<key>]`` (lower case)."""


LEASE_RANGE = (0.1, 86400.0)
"""How long an event's hook may be owed before a relay takes it over: long enough for the
saving process to deliver, short enough that a crash is made good the same day (NaN, a
negative or an overflowing lease would break every save's event or deliver twice)."""

POSITIVE = ("max_depth", "max_events_per_change", "max_executions_per_change")
"""Settings that must be whole numbers of 1 or more: a limit of 0 would refuse everything."""


def _not_positive(source: str, name: str, raw: object) -> str:
    return f"{source}: {name} must be a positive integer (1 or more), got {raw!r}"


def _positive(name: str, raw: object, source: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        value: int | None = raw
    elif isinstance(raw, str) and re.fullmatch(r"\s*\d+\s*", raw):
        value = int(raw)
    else:
        value = None
    if value is None or value < 1:
        raise ConfigError(_not_positive(source, name, raw))
    return value


def _coerce(name: str, raw: object, source: str) -> object:
    if name in POSITIVE:
        return _positive(name, raw, source)
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "int":
            return int(raw)  # type: ignore[arg-type]
        if kind == "float":
            return float(raw)  # type: ignore[arg-type]
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in {"1", "true", "yes", "on"}
        if kind == "tuple[str, ...]":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {name} must be a number, got {raw!r}") from exc
    return str(raw) if raw not in (None, "") else None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from the TOML file named by ``DEALFLOW_CONFIG`` (if any) and the environment."""
    env = dict(os.environ if env is None else env)
    values: dict[str, object] = {}
    extra: dict[str, str] = {}
    config_path = env.get("DEALFLOW_CONFIG")
    if config_path:
        path = Path(config_path)
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read settings file: {exc}") from exc
        for key, raw in data.items():
            name = _BY_VARIABLE.get(key.upper(), key.lower())
            if name in _ENV_NAMES:
                values[name] = _coerce(name, raw, str(path))
            else:
                extra[key] = str(raw)
    for name, var in _ENV_NAMES.items():
        if env.get(var):
            values[name] = _coerce(name, env[var], var)
    for var, raw in env.items():
        # DEALFLOW_PLUGIN_TELEGRAM_API_BASE=... → extra["telegram_api_base"], for plugins.
        if var.startswith(PLUGIN_PREFIX) and len(var) > len(PLUGIN_PREFIX) and raw:
            extra[var[len(PLUGIN_PREFIX) :].lower()] = raw
    values = {k: v for k, v in values.items() if v is not None}
    return Settings(**values, extra=extra)  # type: ignore[arg-type]

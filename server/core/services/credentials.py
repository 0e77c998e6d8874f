"""Per-team plugin credentials: stored encrypted, shown masked, decrypted only for an action."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.crypto import HasSecretKey, decrypt, encrypt
from server.core.errors import DealflowError, InvalidInput, NotFound
from server.core.models import TeamCredential, utcnow
from server.core.outbound import OutboundRefused, allow_list, check_url, is_url
from server.core.scope import TeamScope
from server.core.services import audit
from server.core.services.common import commit

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""A credential set's name (the plugin's) and each of its keys."""
MAX_KEYS = 20
MAX_VALUE = 4096
MASK = "••••"
SHOWN_FROM = 12
"""Values at least this long show their last 4 characters; shorter ones show nothing."""


class CredentialOut(msgspec.Struct):
    """A credential set as the API shows it: every value masked."""

    plugin: str
    values: dict[str, str]
    """Each key with ``••••`` and, for values of 12 characters or more, their last 4."""
    updated_at: dt.datetime


def mask(value: str) -> str:
    """``value`` masked: ``••••`` and its last 4 characters, or ``••••`` alone when short."""
    return MASK + value[-4:] if len(value) >= SHOWN_FROM else MASK


def check_plugin(plugin: str) -> str:
    """``plugin`` if it is a valid set name, else :class:`InvalidInput` naming ``plugin``."""
    if not NAME_RE.match(plugin):
        raise InvalidInput(
            f"plugin: {plugin[:80]!r} is not a credential set name: lowercase letters, digits "
            "and _, starting with a letter, at most 64 characters",
            field="plugin",
        )
    return plugin


def check_values(values: Any) -> dict[str, str]:
    """The body of a PUT if it is a JSON object of 1–20 valid keys to 1–4096-character
    strings, else :class:`InvalidInput` naming the bad key (or ``body``)."""
    if not isinstance(values, dict):
        raise InvalidInput("body: must be a JSON object of names to strings", field="body")
    if not 1 <= len(values) <= MAX_KEYS:
        raise InvalidInput(
            f"body: a credential set has 1 to {MAX_KEYS} values, got {len(values)}", field="body"
        )
    for key, value in values.items():
        if not NAME_RE.match(key):
            raise InvalidInput(
                f"{key[:80]}: not a credential name: lowercase letters, digits and _, starting "
                "with a letter, at most 64 characters",
                field=key[:80],
            )
        # The value itself never goes into the message: it may be the secret.
        if not isinstance(value, str):
            raise InvalidInput(f"{key}: must be a string", field=key)
        if not 1 <= len(value) <= MAX_VALUE:
            raise InvalidInput(f"{key}: must have 1 to {MAX_VALUE} characters", field=key)
    return values


def check_urls(values: Mapping[str, str], settings: object) -> None:
    """Refuse, with :class:`InvalidInput` naming the key, every value that is an http(s) URL
    (a webhook, an endpoint, a base URL) whose host is no outbound target: loopback,
    private, link-local, a metadata service... unless the settings' ``outbound_allow``
    admits it (see :mod:`server.core.outbound`). Requests check again when they are sent."""
    allow = allow_list(settings)
    for key, value in values.items():
        if not is_url(value):
            continue
        try:
            check_url(value.strip(), allow, field=key)
        except OutboundRefused as exc:
            # The message names the key and the host, never the value: it may be the secret.
            raise InvalidInput(exc.message, field=key) from None


def _decoded(settings: HasSecretKey, row: TeamCredential) -> dict[str, str]:
    return msgspec.json.decode(decrypt(settings, row.values_encrypted), type=dict[str, str])


def _out(settings: HasSecretKey, row: TeamCredential) -> CredentialOut:
    values = _decoded(settings, row)
    return CredentialOut(row.plugin, {k: mask(v) for k, v in values.items()}, row.updated_at)


def missing_message(plugin: str) -> str:
    """What to say when a team has no set ``plugin``: that it is not configured for the
    team, and how to configure it. Nothing else stands in: not another team's set, not the
    process's environment or settings."""
    return (
        f"{plugin!r} is not configured for this team: no credentials for {plugin!r}; "
        f"PUT /api/v1/team/credentials/{plugin}"
    )


def _missing(plugin: str) -> NotFound:
    error = NotFound("credentials", plugin)
    error.message = missing_message(plugin) + " (admins only)"
    error.args = (error.message,)
    return error


def _names(settings: HasSecretKey | None, row: TeamCredential) -> list[str] | None:
    """The names (never the values) of a stored set's keys for the audit log, or None when
    they cannot be read (no usable secret key)."""
    if settings is None:
        return None
    try:
        return sorted(_decoded(settings, row))
    except (DealflowError, msgspec.DecodeError):
        return None


def _row(scope: TeamScope, plugin: str) -> TeamCredential | None:
    return scope.session.scalar(
        scope.select(TeamCredential).where(TeamCredential.plugin == check_plugin(plugin))
    )


def put(
    scope: TeamScope, plugin: str, values: Any, settings: HasSecretKey
) -> CredentialOut:
    """Replace the team's set ``plugin`` with ``values`` (creating it), encrypted."""
    check_plugin(plugin)
    check_urls(check_values(values), settings)
    token = encrypt(settings, msgspec.json.encode(values).decode())
    row = _row(scope, plugin)
    before = None if row is None else {"fields": _names(settings, row)}
    audit.record(scope, "credentials.set", plugin, before, {"fields": sorted(values)})
    if row is None:
        row = scope.add(TeamCredential(plugin=plugin, values_encrypted=token))
    else:
        row.values_encrypted = token
        row.updated_at = utcnow()
    # Two first PUTs of one set at once: the loser gets a 409 naming the plugin.
    commit(scope, unique_field="plugin")
    return _out(settings, row)


def list_(scope: TeamScope, settings: HasSecretKey) -> list[CredentialOut]:
    """The team's credential sets by name, masked."""
    rows = scope.session.scalars(scope.select(TeamCredential).order_by(TeamCredential.plugin))
    return [_out(settings, row) for row in rows]


def get(scope: TeamScope, plugin: str, settings: HasSecretKey) -> CredentialOut:
    """The team's set ``plugin``, masked; :class:`NotFound` when it has none."""
    row = _row(scope, plugin)
    if row is None:
        raise _missing(plugin)
    return _out(settings, row)


def delete(scope: TeamScope, plugin: str) -> None:
    """Remove the team's set ``plugin``; :class:`NotFound` when it has none."""
    row = _row(scope, plugin)
    if row is None:
        raise _missing(plugin)
    settings = getattr(scope.engine, "settings", None)
    audit.record(scope, "credentials.delete", plugin, {"fields": _names(settings, row)}, None)
    scope.session.delete(row)
    commit(scope)


def load(
    session: Session, team_id: int, plugin: str, settings: HasSecretKey
) -> Mapping[str, str] | None:
    """The plain values of team ``team_id``'s set ``plugin`` for an action to use, or None
    when the team has none. Only side-effect executions call this."""
    row = session.scalar(
        select(TeamCredential).where(
            TeamCredential.team_id == team_id, TeamCredential.plugin == plugin
        )
    )
    return None if row is None else _decoded(settings, row)


__all__ = [
    "CredentialOut",
    "check_plugin",
    "check_urls",
    "check_values",
    "delete",
    "get",
    "list_",
    "load",
    "mask",
    "missing_message",
    "put",
]

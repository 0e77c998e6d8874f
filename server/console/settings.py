"""The console's team settings page: field domains (checked against the exclusive groups before
saving), notification channels, plugin credentials (write-only, shown masked) and API keys
(shown once) — through the services of ``PUT /api/v1/team``, ``/team/credentials`` and
``/team/keys``."""

from __future__ import annotations

import json
from typing import Any, get_args

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server.console.auth import CSRF_FIELD, Refused, check_csrf, require_admin, require_session
from server.console.pages import Form, page, team_scope
from server.core.errors import ConfigError, DealflowError, NotFound
from server.core.scope import TeamScope
from server.core.services import credentials as credentials_service
from server.core.services import keys as keys_service
from server.core.services import teams
from server.core.services.console_sessions import Current
from server.core.services.keys import KeyIn
from server.core.services.teams import Channel, TeamUpdate

CHANNELS = get_args(Channel)
PAIRS = 4
"""Name/value rows of the credential form."""
KEY_SCOPES = ("", "read", "ingest")


def _settings_page(request: Request[Any, Any, Any], current: Current, *, status: int = 200,
                   domains_text: str | None = None, **context: Any) -> Template:
    is_admin = current.kind == "admin"
    with team_scope(request, current) as scope:
        team = teams.out(scope)
        try:
            stored = credentials_service.list_(scope, request.app.state.settings)
            credentials_error = None
        except ConfigError as exc:
            stored, credentials_error = [], exc.message
        keys = keys_service.list_(scope) if is_admin else None
    if domains_text is None:
        domains_text = json.dumps(team.field_domains, indent=2, ensure_ascii=False)
    return page(request, "settings.html", current, status, team=team, channels=CHANNELS,
                credentials=stored, credentials_error=credentials_error, keys=keys,
                can_save=is_admin, domains_text=domains_text, pairs=range(1, PAIRS + 1),
                key_scopes=KEY_SCOPES, **context)


def _admin(request: Request[Any, Any, Any], data: dict[str, str]) -> Current:
    current = require_session(request)
    check_csrf(current, data.get(CSRF_FIELD))
    require_admin(current)
    return current


@get("/settings", sync_to_thread=True)
def settings(request: Request[Any, Any, Any], saved: FromQuery[str | None] = None) -> Template:
    return _settings_page(request, require_session(request), saved=saved)


# --- field domains ----------------------------------------------------------------------------


def _domains(text: str) -> dict[str, list[str]]:
    """The draft as the API's body would carry it, checked as ``PUT /api/v1/team`` checks it."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DealflowError(f"field_domains: not JSON: {exc.msg} (line {exc.lineno}, column "
                            f"{exc.colno})") from None
    try:
        update = msgspec.convert({"field_domains": document}, TeamUpdate)
    except msgspec.ValidationError as exc:
        raise DealflowError(f"field_domains: {exc}") from None
    assert isinstance(update.field_domains, dict)
    return teams.check_domains(update.field_domains)


@post("/settings/domains/check", sync_to_thread=True, status_code=200)
def check_domains(request: Request[Any, Any, Any], data: Form) -> Template:
    current = _admin(request, data)
    text = data.get("domains", "")
    with team_scope(request, current) as scope:
        try:
            broken = teams.check_domain_change(scope, _domains(text))
        except DealflowError as exc:
            return _settings_page(request, current, status=422, domains_text=text,
                                  domains_error=exc.message)
    return _settings_page(request, current, domains_text=text, checked=True, broken=broken)


@post("/settings/domains", sync_to_thread=True, status_code=303)
def save_domains(request: Request[Any, Any, Any], data: Form) -> Template | Redirect:
    current = _admin(request, data)
    text = data.get("domains", "")
    with team_scope(request, current) as scope:
        try:
            result = teams.update(scope, TeamUpdate(field_domains=_domains(text)))
        except DealflowError as exc:
            return _settings_page(request, current, status=422, domains_text=text,
                                  domains_error=exc.message)
    if result.group_checks:
        return _settings_page(request, current, status=200, saved="domains",
                              broken=result.group_checks, checked=True)
    return Redirect("/console/settings?saved=domains#domains", status_code=303)


# --- notification channels --------------------------------------------------------------------


def _with_channels(scope: TeamScope, chosen: list[str]) -> TeamUpdate:
    current = teams.settings_of(scope.team)
    current.notification_channels = [c for c in CHANNELS if c in chosen]  # type: ignore[misc]
    return TeamUpdate(settings=current)


@post("/settings/channels", sync_to_thread=True, status_code=303)
def save_channels(request: Request[Any, Any, Any], data: Form) -> Redirect:
    current = _admin(request, data)
    chosen = [c for c in CHANNELS if data.get(f"channel_{c}")]
    with team_scope(request, current) as scope:
        teams.update(scope, _with_channels(scope, chosen))
    return Redirect("/console/settings?saved=channels#channels", status_code=303)


# --- credentials ------------------------------------------------------------------------------


@post("/settings/credentials", sync_to_thread=True, status_code=303)
def save_credentials(request: Request[Any, Any, Any], data: Form) -> Template | Redirect:
    current = _admin(request, data)
    plugin = data.get("plugin", "").strip()
    values = {}
    for n in range(1, PAIRS + 1):
        name, value = data.get(f"name_{n}", "").strip(), data.get(f"value_{n}", "")
        if name or value:
            values[name] = value
    with team_scope(request, current) as scope:
        try:
            credentials_service.put(scope, plugin, values, request.app.state.settings)
        except ConfigError as exc:
            raise Refused(503, exc.message) from None
        except DealflowError as exc:
            # The messages name the plugin and the key, never a value.
            return _settings_page(request, current, status=exc.status,
                                  credentials_failed=exc.message, plugin=plugin)
    return Redirect(f"/console/settings?saved=credentials#credential-{plugin}", status_code=303)


@post("/settings/credentials/{plugin:str}/delete", sync_to_thread=True, status_code=303)
def delete_credentials(request: Request[Any, Any, Any], plugin: FromPath[str],
                       data: Form) -> Redirect:
    current = _admin(request, data)
    with team_scope(request, current) as scope:
        try:
            credentials_service.delete(scope, plugin)
        except (NotFound, DealflowError) as exc:
            raise Refused(exc.status, exc.message) from None
    return Redirect("/console/settings?saved=credentials#credentials", status_code=303)


# --- API keys ---------------------------------------------------------------------------------


@post("/settings/keys", sync_to_thread=True, status_code=200)
def create_key(request: Request[Any, Any, Any], data: Form) -> Template:
    current = _admin(request, data)
    scope_name = data.get("scope", "")
    if scope_name not in KEY_SCOPES:
        raise Refused(400, f"scope: {scope_name!r} is not read or ingest")
    with team_scope(request, current) as scope:
        try:
            wanted = msgspec.convert({"name": data.get("name", "").strip(),
                                      "scope": scope_name or None}, KeyIn)
            created = keys_service.create(scope, wanted)
        except msgspec.ValidationError as exc:
            return _settings_page(request, current, status=422, keys_failed=f"key: {exc}")
        except DealflowError as exc:
            return _settings_page(request, current, status=exc.status, keys_failed=exc.message)
    # Shown on this answer only (no-store, as every console page): the list shows its prefix.
    return page(request, "key_created.html", current, key=created)


@post("/settings/keys/{key_id:int}/revoke", sync_to_thread=True, status_code=303)
def revoke_key(request: Request[Any, Any, Any], key_id: FromPath[int], data: Form) -> Redirect:
    current = _admin(request, data)
    with team_scope(request, current) as scope:
        try:
            keys_service.revoke(scope, key_id)
        except NotFound:
            raise Refused(404, f"There is no API key {key_id} in your team.") from None
    return Redirect("/console/settings?saved=keys#keys", status_code=303)


HANDLERS = [settings, check_domains, save_domains, save_channels, save_credentials,
            delete_credentials, create_key, revoke_key]

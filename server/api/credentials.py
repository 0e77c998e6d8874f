"""``/api/v1/team/credentials``: the team's plugin credentials, written whole, read masked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar import Controller, Request, delete, get, put
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.params import FromPath, JSONBody

from server.core.errors import ConfigError
from server.core.scope import TeamScope
from server.core.services import credentials as service
from server.core.services.credentials import CredentialOut

log = logging.getLogger("dealflow.api")

PLUGIN = (
    "The credential set's name, as the action's `credentials` names it (`slack`): lowercase "
    "letters, digits and _, starting with a letter, at most 64 characters."
)


@contextmanager
def secret_key_errors() -> Iterator[None]:
    """A missing or wrong ``DEALFLOW_SECRET_KEY`` answers 503, as the webhook endpoints do;
    the admin asking is told why (the reason names the setting, never a secret)."""
    try:
        yield
    except ConfigError as exc:
        log.error("cannot read or write team credentials: %s", exc.message)
        raise ServiceUnavailableException(exc.message) from exc


def _settings(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.settings


class CredentialController(Controller):
    path = "/team/credentials"
    tags = ["team"]

    @get(
        "/",
        sync_to_thread=False,
        opt={"access": "member"},
        summary="List the team's plugin credentials (masked)",
    )
    def list(
        self, request: Request[Any, Any, Any], team: NamedDependency[TeamScope]
    ) -> list[CredentialOut]:
        with secret_key_errors():
            return service.list_(team, _settings(request))

    @get(
        "/{plugin:str}",
        sync_to_thread=False,
        opt={"access": "member"},
        summary="Read a plugin's credentials (masked)",
    )
    def read(
        self,
        plugin: FromPath[str],
        request: Request[Any, Any, Any],
        team: NamedDependency[TeamScope],
    ) -> CredentialOut:
        with secret_key_errors():
            return service.get(team, plugin, _settings(request))

    @put(
        "/{plugin:str}",
        sync_to_thread=False,
        opt={"access": "admin"},
        summary="Set a plugin's credentials (replaces the whole set)",
        description="The body is a JSON object of 1–20 names (`^[a-z][a-z0-9_]{0,63}$`) to "
        "strings of 1–4096 characters. The answer shows the values masked. " + PLUGIN,
    )
    def update(
        self,
        plugin: FromPath[str],
        data: JSONBody[dict[str, Any]],
        request: Request[Any, Any, Any],
        team: NamedDependency[TeamScope],
    ) -> CredentialOut:
        with secret_key_errors():
            return service.put(team, plugin, data, _settings(request))

    @delete(
        "/{plugin:str}",
        sync_to_thread=False,
        opt={"access": "admin"},
        summary="Delete a plugin's credentials",
    )
    def remove(self, plugin: FromPath[str], team: NamedDependency[TeamScope]) -> None:
        service.delete(team, plugin)


HANDLERS: list[object] = [CredentialController]

"""``/api/v1/team/hook-secrets``: the team's webhook signing secrets, created, rotated (the
new value shown once) and listed without their values, by admins."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from server.api.credentials import secret_key_errors
from server.core.scope import TeamScope
from server.core.services import hooks as service
from server.core.services.hooks import NewSecret

ADMIN = {"access": "admin"}
MAX_GRACE_HOURS = 24 * 30


class SecretOut(msgspec.Struct):
    """A stored signing secret, never its value."""

    key_id: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    status: str
    """``current``, ``previous`` (rotated out, still accepted until ``expires_at``) or
    ``expired``."""


class SecretCreated(msgspec.Struct):
    """A new signing secret: the only answer that carries its value."""

    key_id: str
    secret: str
    """``whsec_…``: sign with it (Standard Webhooks); it is not shown again."""
    created_at: dt.datetime
    url: str
    """Where the team's signed events go, ``{name}`` being the hook's name."""
    previous_key_id: str | None = None
    previous_expires_at: dt.datetime | None = None


class RotateIn(msgspec.Struct, forbid_unknown_fields=True):
    """How long the secret being replaced is still accepted."""

    grace_hours: Annotated[int, msgspec.Meta(ge=0, le=MAX_GRACE_HOURS)] = int(
        service.DEFAULT_GRACE.total_seconds() // 3600
    )


def _created(scope: TeamScope, made: NewSecret) -> SecretCreated:
    return SecretCreated(
        key_id=made.key_id,
        secret=made.secret,
        created_at=made.created_at,
        url=f"/api/v1/hooks/{scope.team_id}/{{name}}",
        previous_key_id=made.previous_key_id,
        previous_expires_at=made.previous_expires_at,
    )


class HookSecretController(Controller):
    path = "/team/hook-secrets"
    tags = ["team"]

    @get("/", sync_to_thread=False, opt=ADMIN,
         summary="List the team's webhook signing secrets (key ids and status, never values)")
    def list(self, team: NamedDependency[TeamScope]) -> list[SecretOut]:
        return [SecretOut(s.key_id, s.created_at, s.expires_at, s.status)
                for s in service.list_secrets(team.session, team.team_id)]

    @post("/", sync_to_thread=False, opt=ADMIN,
          summary="Create the team's first webhook signing secret (shown once)",
          description="409 when the team already has one: rotate it instead.")
    def create(self, request: Request[Any, Any, Any],
               team: NamedDependency[TeamScope]) -> SecretCreated:
        with secret_key_errors():
            made = service.create_secret(team.session, team.team_id, request.app.state.settings,
                                         actor=team.actor)
        team.session.commit()
        return _created(team, made)

    @post("/rotate", sync_to_thread=False, opt=ADMIN,
          summary="Rotate the webhook signing secret (the new one shown once)",
          description="The previous secret is still accepted for `grace_hours` (default 24), "
          "so senders can switch without losing an event; older secrets are deleted. With no "
          "secret yet, this creates the first.")
    def rotate(self, request: Request[Any, Any, Any], team: NamedDependency[TeamScope],
               data: JSONBody[RotateIn | None] = None) -> SecretCreated:
        grace = dt.timedelta(hours=(data or RotateIn()).grace_hours)
        with secret_key_errors():
            made = service.rotate_secret(team.session, team.team_id,
                                         request.app.state.settings, grace=grace,
                                         actor=team.actor)
        team.session.commit()
        return _created(team, made)


HANDLERS: list[object] = [HookSecretController]

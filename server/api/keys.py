"""``/api/v1/team/keys``: the team's API keys, issued (shown once), listed and revoked by admins."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from server.core.scope import TeamScope
from server.core.services import keys as service
from server.core.services.keys import KeyCreated, KeyIn, KeyOut

ADMIN = {"access": "admin"}


class KeyController(Controller):
    path = "/team/keys"
    tags = ["team"]

    @get(
        "/",
        sync_to_thread=False,
        opt=ADMIN,
        summary="List the team's API keys (prefixes, never the keys)",
    )
    def list(self, team: NamedDependency[TeamScope]) -> list[KeyOut]:
        return service.list_(team)

    @post(
        "/",
        sync_to_thread=False,
        opt=ADMIN,
        summary="Issue an API key (the answer is the only time the key is shown)",
        description="Issues a key for the caller, or for `user_id`, a user of the team. A key "
        "acts with its user's role unless `scope` narrows it: `ingest` keys only create and "
        "upsert records and post webhooks, `read` keys only read. See docs/security.md.",
    )
    def create(self, data: JSONBody[KeyIn], team: NamedDependency[TeamScope]) -> KeyCreated:
        return service.create(team, data)

    @delete(
        "/{key_id:int}",
        sync_to_thread=False,
        opt=ADMIN,
        summary="Revoke an API key (it answers 401 from then on)",
    )
    def revoke(self, key_id: FromPath[int], team: NamedDependency[TeamScope]) -> None:
        service.revoke(team, key_id)


HANDLERS: list[object] = [KeyController]

"""``/api/v1/hooks``: signed inbound webhooks (Standard Webhooks) that trigger workflows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath

from server.core.errors import ConfigError
from server.core.scope import TeamScope
from server.core.services import hooks as service

log = logging.getLogger("dealflow.api")

SIGNED = (
    "Signed as Standard Webhooks do: `webhook-id`, `webhook-timestamp` (Unix seconds, within "
    "5 minutes of the server's clock) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of "
    "`{webhook-id}.{webhook-timestamp}.{body}` keyed by the team's `whsec_` secret). The body "
    "is a JSON object, the workflows' `payload`. A repeated `webhook-id` gets the first "
    "answer again and runs nothing. An optional `Dealflow-Hops` header (a whole number, sent "
    "by Dealflow's own side effects) is the depth of the event: past the depth limit the event "
    "is recorded with the status `limit` and nothing runs. See docs/webhooks.md."
)


class RunSummary(msgspec.Struct):
    """The run of the team's workflows on the webhook's event."""

    id: int
    status: str
    matched: list[str]
    """Ids of the workflows whose condition matched."""


class HookAccepted(msgspec.Struct):
    """A webhook taken in: the event it became and the runs of the team's workflows on it."""

    event_id: int | None
    runs: list[RunSummary]


async def _body(request: Request[Any, Any, Any]) -> bytes:
    """The exact body bytes (the signature covers them), refused past the webhook limit."""
    limit = request.app.state.settings.webhook_max_body_size
    too_large = RequestEntityTooLarge(
        detail=f"a webhook body may have at most {limit} bytes (DEALFLOW_WEBHOOK_MAX_BODY_SIZE)"
    )
    if (request.content_length or 0) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(receive: Callable[[], service.Accepted]) -> Response[HookAccepted]:
    try:
        accepted = receive()
    except ConfigError as exc:
        # The server's secret key is missing or wrong: the sender did nothing wrong, and a
        # 503 makes it retry (Standard Webhooks senders do) once the key is put right.
        log.error("cannot check a webhook signature: %s", exc.message)
        raise ServiceUnavailableException(
            "the server cannot check webhook signatures now; the error was logged, retry later"
        ) from exc
    return Response(msgspec.convert(accepted.body, HookAccepted), status_code=accepted.status_code)


# The handlers are async only to stream the body under their own limit (the app-wide one is
# lifted for them); the database work runs inline, like the sync handlers' (no thread).


@post(
    "/hooks/{name:str}",
    status_code=202,
    request_max_body_size=None,
    opt={"access": "ingest"},
    tags=["hooks"],
    summary="Post a signed webhook (team from the API key)",
    description="Runs the team's enabled `webhook` workflows whose trigger `name` is the "
    "path's. Needs the API key and a valid signature. " + SIGNED,
)
async def post_hook(
    name: FromPath[str], request: Request[Any, Any, Any], team: NamedDependency[TeamScope]
) -> Response[HookAccepted]:
    body = await _body(request)
    settings = request.app.state.settings
    return _answer(
        lambda: service.receive(
            team, name, request.headers, body, settings=settings, user_id=team.actor.user_id
        )
    )


@post(
    "/hooks/{team_id:int}/{name:str}",
    status_code=202,
    request_max_body_size=None,
    opt={"exclude_from_auth": True, "access": "public"},
    # Added to the router's bearer requirement: no API key needed, the signature authenticates.
    security=[{}],
    tags=["hooks"],
    summary="Post a signed webhook (public: team from the path)",
    description="For senders that cannot send an API key: no key is needed, the signature "
    "alone authenticates. An unknown team is answered like a wrong signature (401). " + SIGNED,
)
async def post_public_hook(
    team_id: FromPath[int], name: FromPath[str], request: Request[Any, Any, Any]
) -> Response[HookAccepted]:
    body = await _body(request)
    runtime = request.app.state.runtime
    with runtime.sessions() as session:
        return _answer(
            lambda: service.receive_public(
                session,
                runtime.engine,
                team_id,
                name,
                request.headers,
                body,
                settings=runtime.settings,
            )
        )


HANDLERS: list[object] = [post_hook, post_public_hook]

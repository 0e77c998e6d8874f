"""Signed inbound webhooks: a team's signing secrets, and verified deliveries run once each."""

from __future__ import annotations

import base64
import datetime as dt
import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.core.change import Change
from server.core.crypto import HasSecretKey, decrypt, encrypt
from server.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from server.core.models import HookSecret, Run, Team, WebhookDelivery, Workflow, utcnow
from server.core.outbound import HOPS_HEADER
from server.core.scope import Actor, TeamScope
from server.core.services import audit
from server.core.services.addressed import run_addressed
from server.core.signatures import SECRET_PREFIX, check, parse, sign, verify

if TYPE_CHECKING:
    from server.core.engine import WorkflowEngine

KEY_ID_PREFIX = "whk_"
DEFAULT_GRACE = dt.timedelta(hours=24)
"""How long a rotated-out secret is still accepted."""
MAX_DEPTH = 64
"""How deeply a webhook's JSON body may nest objects and arrays."""
MAX_HOPS = 1_000_000
"""Largest ``Dealflow-Hops`` value read (anything past the depth limit is refused anyway)."""


# --- secrets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSecret:
    """A secret just made: the only time its value is available."""

    key_id: str
    secret: str
    created_at: dt.datetime
    previous_key_id: str | None = None
    previous_expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class SecretInfo:
    """What may be shown about a stored secret: never its value."""

    key_id: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    status: str
    """``current``, ``previous`` (rotated out, still accepted) or ``expired``."""


def generate_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(32)).decode("ascii")


def _current(session: Session, team_id: int) -> HookSecret | None:
    return session.scalar(
        select(HookSecret).where(HookSecret.team_id == team_id, HookSecret.expires_at.is_(None))
    )


def _store(session: Session, team_id: int, settings: HasSecretKey, now: dt.datetime) -> NewSecret:
    secret = generate_secret()
    row = HookSecret(
        team_id=team_id,
        key_id=KEY_ID_PREFIX + random.token_hex(6),
        secret_encrypted=encrypt(settings, secret),
        expires_at=None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        # The partial unique index: another create or rotation made a current secret first.
        raise Conflict(
            "the team's webhook secret was changed at the same time by another request; "
            "list the secrets and try again"
        ) from exc
    return NewSecret(row.key_id, secret, now)


def create_secret(
    session: Session,
    team_id: int,
    settings: HasSecretKey,
    *,
    now: dt.datetime | None = None,
    actor: Actor | None = None,
) -> NewSecret:
    """The team's first signing secret; :class:`Conflict` when it already has a current one.
    The audit log names ``actor`` (the CLI when None), and the key id, never the secret."""
    current = _current(session, team_id)
    if current is not None:
        raise Conflict(
            f"the team already has a webhook secret ({current.key_id}); rotate it with "
            "`dealflow hooks secret rotate` to get a new one"
        )
    made = _store(session, team_id, settings, now or utcnow())
    after = {"key_id": made.key_id}
    audit.record_for(session, team_id, "hook_secret.create", made.key_id, None, after, actor=actor)
    return made


def rotate_secret(
    session: Session,
    team_id: int,
    settings: HasSecretKey,
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    now: dt.datetime | None = None,
    actor: Actor | None = None,
) -> NewSecret:
    """A new current secret. The previous current one is still accepted for ``grace``; any
    older one is deleted, so a team has at most two live secrets. With no secret yet, this
    creates the first. The audit log names ``actor`` (the CLI when None) and key ids only."""
    if grace < dt.timedelta(0):
        raise InvalidInput("grace: must not be negative", field="grace")
    now = now or utcnow()
    current = _current(session, team_id)
    stale = delete(HookSecret).where(HookSecret.team_id == team_id)
    if current is not None:
        stale = stale.where(HookSecret.id != current.id)
    session.execute(stale)
    if current is not None:
        # Rotated out before the new one is stored: one current secret at any moment.
        current.expires_at = now + grace
        session.flush()
    made = _store(session, team_id, settings, now)
    before = None if current is None else {"key_id": current.key_id}
    after: dict[str, Any] = {"key_id": made.key_id}
    if current is not None:
        after["previous_expires_at"] = current.expires_at.isoformat()
    audit.record_for(
        session, team_id, "hook_secret.rotate", made.key_id, before, after, actor=actor
    )
    if current is None:
        return made
    session.flush()
    return NewSecret(made.key_id, made.secret, now, current.key_id, current.expires_at)


def list_secrets(
    session: Session, team_id: int, *, now: dt.datetime | None = None
) -> list[SecretInfo]:
    """The team's stored secrets, newest first, without their values."""
    now = now or utcnow()
    rows = session.scalars(
        select(HookSecret)
        .where(HookSecret.team_id == team_id)
        .order_by(HookSecret.created_at.desc(), HookSecret.id.desc())
    )
    return [
        SecretInfo(
            row.key_id,
            row.created_at,
            row.expires_at,
            "current"
            if row.expires_at is None
            else ("previous" if row.expires_at > now else "expired"),
        )
        for row in rows
    ]


def live_secrets(
    session: Session, team_id: int, settings: HasSecretKey, now: dt.datetime
) -> list[str]:
    """The plain secrets a signature may be made with: the current one and any not expired."""
    rows = session.scalars(
        select(HookSecret.secret_encrypted).where(
            HookSecret.team_id == team_id,
            (HookSecret.expires_at.is_(None)) | (HookSecret.expires_at > now),
        )
    )
    return [decrypt(settings, token) for token in rows]


# --- delivery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The answer to a webhook: status and body, and whether it repeats an earlier one."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def receive(
    scope: TeamScope,
    name: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    settings: HasSecretKey,
    user_id: int | None = None,
    now: dt.datetime | None = None,
) -> Accepted:
    """Verify a webhook posted to hook ``name`` of the scope's team and run its workflows."""
    now = now or utcnow()
    signed = parse(headers, now)
    secrets = live_secrets(scope.session, scope.team_id, settings, now)
    if not secrets:
        raise Unauthorized(
            "the team has no webhook secret: an admin creates one with "
            f"`dealflow hooks secret create --team {scope.team_id}`"
        )
    check(signed, body, secrets)
    return _accept(scope, name, signed.webhook_id, body, user_id, hops_of(headers))


def receive_public(
    session: Session,
    engine: WorkflowEngine,
    team_id: int,
    name: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    settings: HasSecretKey,
    now: dt.datetime | None = None,
) -> Accepted:
    """Like :func:`receive` for a team named by id alone: the signature is the only
    credential, so an unknown team (or one without secrets) is answered exactly like a
    wrong signature."""
    now = now or utcnow()
    signed = parse(headers, now)
    known = -(2**63) <= team_id < 2**63 and session.get(Team, team_id) is not None
    check(signed, body, live_secrets(session, team_id, settings, now) if known else [])
    # No user stands behind a signed request: the event's user_id stays None.
    scope = TeamScope(session, Actor(team_id, user_id=0, role="member", scope="webhook"), engine)
    return _accept(scope, name, signed.webhook_id, body, None, hops_of(headers))


def hops_of(headers: Mapping[str, str]) -> int:
    """The ``Dealflow-Hops`` of a delivery: how many workflow side effects led to it (0 when
    absent, as from any sender but a Dealflow side effect). It becomes the depth of the
    delivery's event, so a workflow that posts back to a hook stops at the depth limit."""
    raw = next((v for k, v in headers.items() if k.lower() == HOPS_HEADER.lower()), None)
    if raw is None:
        return 0
    text = raw.strip()
    # The length first: int() of thousands of digits is refused by Python itself (a 500).
    if len(text) > 7 or not text.isascii() or not text.isdigit() or int(text) > MAX_HOPS:
        raise InvalidInput(
            f"{HOPS_HEADER}: must be a whole number from 0 to {MAX_HOPS}, got {raw[:20]!r}",
            field=HOPS_HEADER,
        )
    return int(text)


def _delivery(scope: TeamScope, webhook_id: str) -> WebhookDelivery | None:
    return scope.session.scalar(
        scope.select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    )


def _replay(delivery: WebhookDelivery) -> Accepted:
    return Accepted(delivery.status_code, dict(delivery.response), replayed=True)


def _check_hook(scope: TeamScope, name: str) -> None:
    documents = scope.session.scalars(
        scope.select(Workflow, Workflow.document).where(
            Workflow.trigger_type == "webhook", Workflow.enabled.is_(True)
        )
    )
    if not any((d.get("trigger") or {}).get("name") == name for d in documents):
        error = NotFound("hook", name)
        error.message = (
            f"hook {name!r} not found: no enabled workflow of the team has the trigger "
            f'{{"type": "webhook", "name": "{name}"}}'
        )
        error.args = (error.message,)
        raise error


def _storable(payload: dict[str, Any]) -> str | None:
    """Why a decoded payload cannot be stored and evaluated, or None: too deep a nesting
    (conditions and the JSON columns recurse), or a NUL character (PostgreSQL refuses it)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "strings must not contain the NUL character"
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack += [(item, depth + 1) for item in items]
    return None


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InvalidInput(f"body: not valid JSON ({reason})", field="body") from exc
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"body: must be a JSON object, got {type(payload).__name__}", field="body"
        )
    problem = _storable(payload)
    if problem:
        raise InvalidInput(f"body: {problem}", field="body")
    return payload


def _accept(
    scope: TeamScope, name: str, webhook_id: str, body: bytes, user_id: int | None, hops: int = 0
) -> Accepted:
    """Run the workflows of a verified webhook once per ``webhook-id``, in one transaction.
    Its event is at depth ``hops``: past the depth limit it is recorded, and nothing runs."""
    delivery = _delivery(scope, webhook_id)
    if delivery is not None:
        return _replay(delivery)
    _check_hook(scope, name)
    payload = _payload(body)
    change = Change(
        team_id=scope.team_id,
        entity=None,
        op="received",
        record=None,
        previous=None,
        payload=payload,
        name=name,
        source="webhook",
        depth=hops,
        user_id=user_id,
    )
    # The delivery is one change: its own event and its records' events share one budget.
    budget = scope.engine.budget()
    run_ids = scope.engine.process(scope, change, None, budget=budget)
    # Then the workflows that address a record from the payload, one event per record.
    first = run_ids[0] if run_ids else None
    if hops <= scope.engine.max_depth:
        run_ids += run_addressed(scope, name, payload, user_id, first, budget, hops)
    runs = [scope.session.get(Run, run_id) for run_id in run_ids]
    response: dict[str, Any] = {
        "event_id": runs[0].event_id if runs and runs[0] else None,
        "runs": [
            {
                "id": run.id,
                "status": run.status,
                "matched": [k for k in run.matched.split(",") if k],
            }
            for run in runs
            if run is not None
        ],
    }
    scope.add(
        WebhookDelivery(
            webhook_id=webhook_id,
            name=name,
            event_id=response["event_id"],
            status_code=202,
            response=response,
        )
    )
    try:
        scope.session.commit()
    except IntegrityError:
        # The same webhook-id, delivered concurrently, committed first: answer as it was.
        scope.session.rollback()
        delivery = _delivery(scope, webhook_id)
        if delivery is None:
            raise
        return _replay(delivery)
    return Accepted(202, response)


__all__ = [
    "Accepted",
    "NewSecret",
    "SecretInfo",
    "create_secret",
    "generate_secret",
    "list_secrets",
    "live_secrets",
    "receive",
    "receive_public",
    "rotate_secret",
    "sign",
    "verify",
]

"""Teams: creation, users, API keys, settings and field domains."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from server.core.keys import generate_key, hash_key
from server.core.models import ApiKey, FieldDomain, Team, User, utcnow
from server.core.scope import Actor, TeamScope
from server.core.services.common import bump_rules, check_email, commit

DOMAIN_PATH_RE = re.compile(
    r"^(deal\.(stage|currency)|(contact|deal|lead)\.custom\.[A-Za-z_][A-Za-z0-9_]{0,63})$"
)

TeamName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
DomainValue = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Side = Literal["marketing", "sales"]
LeadStage = Literal["lead", "mql", "sal", "opportunity", "customer", "recycled"]
OutreachTypeName = Literal["platform", "email", "call", "social", "messenger"]
Channel = Literal["slack", "telegram", "email"]


STAGE_OWNERS: dict[str, str] = {
    "lead": "marketing",
    "mql": "marketing",
    "sal": "sales",
    "opportunity": "sales",
    "customer": "sales",
    "recycled": "marketing",
}


class TeamSettings(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    """Team-wide settings."""

    notification_channels: list[Channel] = []
    """Channels that team notifications go to."""
    outreach_costs: dict[OutreachTypeName, Annotated[float, msgspec.Meta(ge=0)]] = {}
    """Default cost of one outreach effort per channel, for ROI figures."""
    stage_owners: dict[LeadStage, Side] = msgspec.field(default_factory=lambda: dict(STAGE_OWNERS))
    """Which side owns a lead in each lifecycle stage."""
    stage_sla_hours: dict[LeadStage, Annotated[int, msgspec.Meta(gt=0)]] = {}
    """How long a lead may stay in a stage without the expected action."""


class TeamOut(msgspec.Struct, omit_defaults=True):
    """A team's settings as the API returns them."""

    id: int
    name: str
    timezone: str
    settings: TeamSettings
    field_domains: dict[str, list[str]]
    group_checks: list[dict[str, Any]] = []
    """After a change of field domains: the report of each exclusive group it broke."""


class TeamUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Team settings to change; parts left out stay as they are. ``field_domains`` replaces the
    whole map: a path left out of it loses its domain."""

    name: TeamName | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
    settings: TeamSettings | UnsetType = UNSET
    field_domains: dict[str, list[DomainValue]] | UnsetType = UNSET


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA timezone, else :class:`InvalidInput` naming ``timezone``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"timezone: {name!r} is not an IANA timezone such as Europe/Berlin", field="timezone"
        ) from exc
    return name


def check_domains(domains: dict[str, list[str]]) -> dict[str, list[str]]:
    """Refuse domain paths a condition cannot see and empty or repeated value lists."""
    for path, values in domains.items():
        field = f"field_domains.{path}"
        if not DOMAIN_PATH_RE.match(path):
            raise InvalidInput(
                f"{field}: domains are declared for deal.stage, deal.currency or "
                "<contact|deal|lead>.custom.<name>",
                field=field,
            )
        if not values:
            raise InvalidInput(f"{field}: a domain needs at least one value", field=field)
        if len(set(values)) != len(values):
            raise InvalidInput(f"{field}: values are repeated", field=field)
    return domains


def settings_of(team: Team) -> TeamSettings:
    return msgspec.convert(team.settings or {}, TeamSettings)


def out(scope: TeamScope) -> TeamOut:
    team = scope.team
    rows = scope.session.scalars(scope.select(FieldDomain).order_by(FieldDomain.path)).all()
    return TeamOut(
        id=team.id,
        name=team.name,
        timezone=team.timezone,
        settings=settings_of(team),
        field_domains={r.path: list(r.values) for r in rows},
    )


def update(scope: TeamScope, data: TeamUpdate) -> TeamOut:
    team = scope.team
    if data.name is not UNSET:
        team.name = data.name
    if data.timezone is not UNSET:
        team.timezone = check_timezone(data.timezone)
    if data.settings is not UNSET:
        team.settings = msgspec.to_builtins(data.settings)
    broken = []
    if data.field_domains is not UNSET:
        from server.core.services.workflows import check_all_groups

        before = {r.group: r.ok for r in check_all_groups(scope)}
        set_domains(scope, check_domains(data.field_domains))
        scope.session.flush()
        broken = [r.as_dict() for r in check_all_groups(scope) if not r.ok and before.get(r.group, True)]
    commit(scope, unique_field="name")
    result = out(scope)
    result.group_checks = broken
    return result


def set_domains(scope: TeamScope, domains: dict[str, list[str]]) -> None:
    """Replace the team's field domains with ``domains``."""
    scope.session.execute(delete(FieldDomain).where(FieldDomain.team_id == scope.team_id))
    for path, values in domains.items():
        scope.add(FieldDomain(path=path, values=list(values)))
    scope.__dict__.pop("_domains", None)
    bump_rules(scope)


def find_team(session: Session, name_or_id: str) -> Team:
    """A team by name, or by id when given digits."""
    team = session.scalar(select(Team).where(Team.name == name_or_id))
    if team is None and name_or_id.isdigit():
        team = session.get(Team, int(name_or_id))
    if team is None:
        raise NotFound("team", name_or_id)
    return team


def create_team(
    session: Session,
    name: str,
    *,
    admin_email: str,
    admin_name: str = "Admin",
    timezone: str = "UTC",
    issue_key: bool = True,
) -> tuple[Team, User, str | None]:
    """A new team with its first admin user and, unless told not to, an API key for them
    (returned in plain, once)."""
    if not name.strip():
        raise InvalidInput("name: a team needs a name", field="name")
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise Conflict(f"name: a team named {name!r} already exists", field="name")
    team = Team(name=name, timezone=check_timezone(timezone), settings={})
    session.add(team)
    session.flush()
    user = User(
        team_id=team.id, name=admin_name, email=check_email(admin_email) or "", role="admin"
    )
    session.add(user)
    session.flush()
    key = create_key(session, user, name="initial admin key") if issue_key else None
    return team, user, key


def ensure_user(session: Session, team: Team, email: str, *, name: str | None, role: str) -> User:
    """The team's user with ``email``, created with ``role`` if there is none."""
    email = check_email(email) or ""
    user = session.scalar(select(User).where(User.team_id == team.id, User.email == email))
    if user is None:
        if role not in ("admin", "member"):
            raise InvalidInput(f"role: {role!r} is not admin or member", field="role")
        user = User(team_id=team.id, name=name or email.split("@")[0], email=email, role=role)
        session.add(user)
        session.flush()
    return user


def create_key(session: Session, user: User, *, name: str = "") -> str:
    """A new API key for ``user``; the plain key is returned here and never stored."""
    key, prefix, digest = generate_key()
    session.add(
        ApiKey(team_id=user.team_id, user_id=user.id, name=name, prefix=prefix, key_hash=digest)
    )
    session.flush()
    return key


def revoke_key(session: Session, key_or_prefix: str) -> ApiKey:
    """Revoke a key given in full or by its display prefix (``dfk_abcdef``)."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key_or_prefix)))
    if row is None:
        matches = session.scalars(select(ApiKey).where(ApiKey.prefix == key_or_prefix)).all()
        if len(matches) > 1:
            raise Conflict(f"{key_or_prefix}: several keys share this prefix; give the whole key")
        row = matches[0] if matches else None
    if row is None:
        raise NotFound("api key", key_or_prefix)
    row.revoked_at = row.revoked_at or utcnow()
    return row


def authenticate(session: Session, key: str) -> Actor:
    """The actor an API key stands for, or :class:`Unauthorized`."""
    row = session.execute(
        select(
            ApiKey.id, ApiKey.team_id, ApiKey.user_id, ApiKey.scope, ApiKey.revoked_at, User.role
        )
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == hash_key(key))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the API key is unknown or revoked")
    return Actor(
        team_id=row.team_id, user_id=row.user_id, role=row.role, key_id=row.id, scope=row.scope
    )
